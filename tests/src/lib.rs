#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "test harness: a step that fails is a failed test, reported where it happened"
)]
//! The end-to-end harness: real `keyward-hsm-sim` and `keywardd` processes, a real SoftHSMv2
//! token in a private temporary directory per test, the real console socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use keyward_proto::{Request, Response, StatusReport};

pub mod proxy;
pub mod tmux;

/// A workspace binary: next to this executable (a bench binary), or next to the test
/// executable's `deps/` directory.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let here = exe.parent().expect("target dir");
    let dir = if here.join(name).exists() {
        here
    } else {
        here.parent().expect("target dir")
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run 'cargo build --workspace --bins' first (scripts/test.sh does)",
        path.display()
    );
    path
}

pub const ADMINS: [(&str, &str); 2] = [
    ("alice", "alice-correct-horse-1"),
    ("bob", "bob-battery-staple-22"),
];

/// A fresh token, config and password files in a temporary directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub hsm_dir: PathBuf,
    pub data_dir: PathBuf,
}

pub fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

impl Fixture {
    /// Provisions a token with `keyward-hsm-sim init` and writes a config from its `[hsm]` table.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let hsm_dir = dir.path().join("hsm");
        let out = Command::new(bin("keyward-hsm-sim"))
            .arg("init")
            .arg("--dir")
            .arg(&hsm_dir)
            .output()
            .expect("run hsm-sim");
        assert!(
            out.status.success(),
            "hsm-sim init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let table = String::from_utf8(out.stdout).expect("utf8");
        let data_dir = dir.path().join("data");
        let config = dir.path().join("keyward.toml");
        write_private(
            &config,
            &format!("data_dir = {:?}\n\n{table}", data_dir.display().to_string()),
        );
        for (name, password) in ADMINS {
            write_private(
                &dir.path().join(format!("{name}.pw")),
                &format!("{password}\n"),
            );
        }
        Self {
            dir,
            config,
            hsm_dir,
            data_dir,
        }
    }

    pub fn password_file(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.pw"))
    }

    /// Runs a `keywardd` command to completion; one still running after 60 s is killed and
    /// fails the test (a refusal that never comes must not hang the suite).
    pub fn keywardd(&self, args: &[&str]) -> Output {
        let mut child = Command::new(bin("keywardd"))
            .args(args)
            .env("KEYWARD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run keywardd");
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!(
                    "keywardd {args:?} was still running after 60 s: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("output")
    }

    /// `keywardd init` with the two standard administrators.
    pub fn init(&self) -> Output {
        let config = self.config.display().to_string();
        let a = format!("alice={}", self.password_file("alice").display());
        let b = format!("bob={}", self.password_file("bob").display());
        self.keywardd(&["init", "--config", &config, "--admin", &a, "--admin", &b])
    }

    pub fn init_ok(&self) {
        let out = self.init();
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `keywardd audit verify`: exit code and stdout.
    pub fn verify(&self) -> (Option<i32>, String) {
        let out = self.keywardd(&[
            "audit",
            "verify",
            "--config",
            &self.config.display().to_string(),
        ]);
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    pub fn socket(&self) -> PathBuf {
        self.data_dir.join("console.sock")
    }

    /// Starts `keywardd run` and waits until its console socket answers.
    pub fn start(&self) -> Daemon {
        self.start_with_env(&[])
    }

    /// As [`Fixture::start`], with extra environment (e.g. a test fault point).
    pub fn start_with_env(&self, env: &[(&str, &str)]) -> Daemon {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log_path = self.dir.path().join(format!("keywardd-{run}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(bin("keywardd"))
            .args(["run", "--config", &self.config.display().to_string()])
            .env("KEYWARD_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone"))
            .stderr(log)
            .spawn()
            .expect("spawn keywardd");
        let mut daemon = Daemon {
            child: Some(child),
            socket: self.socket(),
            log: log_path,
        };
        daemon.wait_ready();
        daemon
    }

    /// Starts `keywardd run` expecting it to refuse: returns its exit status and output.
    pub fn run_refused(&self) -> (ExitStatus, String) {
        let out = self.keywardd(&["run", "--config", &self.config.display().to_string()]);
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Opens the database directly (the daemon must be stopped), as an attacker with disk access would.
    pub fn open_db(&self) -> sled::Db {
        sled::open(self.data_dir.join("db")).expect("open sled")
    }

    /// The object count `keyward-hsm-sim status` reports.
    pub fn token_objects(&self) -> usize {
        let out = Command::new(bin("keyward-hsm-sim"))
            .arg("status")
            .arg("--dir")
            .arg(&self.hsm_dir)
            .output()
            .expect("status");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("objects:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("objects line")
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

/// A running `keywardd run`. Dropping it kills the process if it was not stopped.
pub struct Daemon {
    child: Option<Child>,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("keywardd exited early ({status}): {}", self.log_text());
            }
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "keywardd did not open {} within 30 s: {}",
            self.socket.display(),
            self.log_text()
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// A console connection with `alice` logged in.
    pub fn console(&self) -> Console {
        let mut c = Console::connect(&self.socket);
        c.login(ADMINS[0].0, ADMINS[0].1)
            .into_result()
            .expect("alice logs in on the console");
        c
    }

    /// `status` over the console, as alice (one login record per call).
    pub fn status(&self) -> StatusReport {
        let data = self
            .console()
            .request(&Request::Status)
            .into_result()
            .expect("status ok");
        serde_json::from_value(data).expect("status shape")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A console connection with both standard administrators logged in: two-administrator
    /// requests run directly.
    pub fn admins(&self) -> Console {
        let mut c = self.console();
        c.login(ADMINS[1].0, ADMINS[1].1)
            .into_result()
            .expect("bob logs in on the console");
        c
    }

    /// Waits for the daemon to exit on its own (a fault point stopped it).
    pub fn wait_exit(mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "keywardd did not stop within {timeout:?}: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL now (no clean stop, nothing flushed), and reap the process.
    pub fn kill9(mut self) {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("SIGKILL");
        let status = child.wait().expect("wait");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "killed by SIGKILL"
        );
    }

    /// SIGTERM, then wait for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "keywardd did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One console connection: one session.
pub struct Console {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Console {
    pub fn connect(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket).expect("connect console socket");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        Self {
            writer: stream.try_clone().expect("clone"),
            reader: BufReader::new(stream),
        }
    }

    pub fn request(&mut self, request: &Request) -> Response {
        let mut line = serde_json::to_vec(request).expect("encode");
        line.push(b'\n');
        self.writer.write_all(&line).expect("send");
        read_response(&mut self.reader)
    }

    pub fn login(&mut self, user: &str, password: &str) -> Response {
        self.request(&Request::Login {
            user: user.into(),
            password: keyward_proto::Password::new(password),
        })
    }
}

/// One request on a fresh console connection.
pub fn request_on(socket: &Path, request: &Request) -> Response {
    let mut stream = UnixStream::connect(socket).expect("connect console socket");
    let mut line = serde_json::to_vec(request).expect("encode");
    line.push(b'\n');
    stream.write_all(&line).expect("send");
    read_response(&mut BufReader::new(stream))
}

pub fn read_response(reader: &mut impl BufRead) -> Response {
    let mut text = String::new();
    reader.read_line(&mut text).expect("read response");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad response {text:?}: {e}"))
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// A serial line for the daemon: a pseudo-terminal pair. The daemon opens `link`, a symlink to
/// the slave side, so a test can drop the line and bring a new one back at the same path, as a
/// USB serial adapter does.
pub struct SerialLine {
    master: std::fs::File,
    _slave: std::os::fd::OwnedFd,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    pub link: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SerialLine {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl SerialLine {
    pub fn new(link: &Path) -> Self {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let pty = nix::pty::openpty(None, None).expect("openpty");
        // openpty's descriptors are inherited by default: a daemon started later would hold the
        // master open, and the line could never drop.
        for fd in [&pty.master, &pty.slave] {
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .expect("cloexec");
        }
        let mut raw = tcgetattr(&pty.slave).expect("tcgetattr");
        cfmakeraw(&mut raw);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &raw).expect("tcsetattr");
        let slave_path = nix::unistd::ttyname(&pty.slave).expect("ttyname");
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(&slave_path, link).expect("symlink");
        let master = std::fs::File::from(pty.master);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (reader, sink, stopped) = (
            master.try_clone().expect("clone"),
            seen.clone(),
            stop.clone(),
        );
        // Polls with a timeout so that dropping the line can stop it: the pty closes (the line
        // drops) only when every descriptor of the master is closed, this one included.
        let thread = std::thread::spawn(move || {
            use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
            use std::io::Read;
            use std::os::fd::AsFd;
            let mut buf = [0u8; 4096];
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::from(50u16)) {
                    Ok(0) => continue,
                    Ok(_) => match (&reader).read(&mut buf) {
                        Ok(0) | Err(_) => std::thread::sleep(Duration::from_millis(20)),
                        Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
                    },
                    Err(_) => break,
                }
            }
        });
        Self {
            master,
            _slave: pty.slave,
            seen,
            link: link.to_path_buf(),
            stop,
            reader: Some(thread),
        }
    }

    pub fn send(&self, bytes: &[u8]) {
        (&self.master)
            .write_all(bytes)
            .expect("write to the serial line");
    }

    /// Waits until `needle` has been printed; returns everything up to and including it and
    /// forgets it, so the next wait starts after it.
    pub fn expect(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut seen = self.seen.lock().unwrap();
                let text = String::from_utf8_lossy(&seen).into_owned();
                if let Some(i) = text.find(needle) {
                    let end = i + needle.len();
                    let taken = text[..end].to_owned();
                    let consumed = text[..end].len().min(seen.len());
                    seen.drain(..consumed);
                    return taken;
                }
                assert!(
                    Instant::now() < deadline,
                    "waited {timeout:?} for {needle:?}; the line printed {text:?}"
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything printed and not yet consumed.
    pub fn pending_output(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Sends a command in text mode and returns its output up to the next prompt.
    pub fn command(&self, line: &str) -> String {
        self.send(format!("{line}\r").as_bytes());
        self.expect("keyward> ", Duration::from_secs(30))
    }

    /// `login USER`, answering the password prompt.
    pub fn login(&self, user: &str, password: &str) -> String {
        self.send(format!("login {user}\r").as_bytes());
        self.expect("Password: ", Duration::from_secs(30));
        self.send(format!("{password}\r").as_bytes());
        self.expect("keyward> ", Duration::from_secs(30))
    }

    /// Sends a command in JSON mode and returns the parsed response line.
    pub fn json(&self, line: &str) -> serde_json::Value {
        self.send(format!("{line}\r").as_bytes());
        let text = self.expect("}\r\n", Duration::from_secs(30));
        let start = text
            .rfind("\r\n{")
            .map(|i| i + 2)
            .or_else(|| text.find('{'))
            .expect("a JSON line");
        serde_json::from_str(text[start..].trim_end())
            .unwrap_or_else(|e| panic!("bad JSON response {text:?}: {e}"))
    }
}

impl Fixture {
    /// Appends TOML to the config (e.g. an `[auth]` table).
    pub fn append_config(&self, text: &str) {
        let mut config = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.config)
            .expect("config");
        config
            .write_all(format!("\n{text}\n").as_bytes())
            .expect("append");
    }

    /// Puts top-level keys (e.g. `user = "nobody"`) before the config's first table.
    pub fn prepend_config(&self, text: &str) {
        let old = std::fs::read_to_string(&self.config).expect("config");
        write_private(&self.config, &format!("{text}\n{old}"));
    }

    /// A serial line served by the daemon as `[[serial]]` port `name`.
    pub fn serial_line(&self, name: &str) -> SerialLine {
        let line = SerialLine::new(&self.dir.path().join(format!("tty-{name}")));
        self.append_config(&format!(
            "[[serial]]\ndevice = {:?}\nname = {name:?}\n",
            line.link.display().to_string()
        ));
        line
    }
}

/// The id in an `ERR dual-control … run 'approve ID'` message.
pub fn approval_id(text: &str) -> u64 {
    text.split("'approve ")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no approval id in {text:?}"))
}

/// The `one_time_password: …` a text-mode `user add` or `user reset` printed.
pub fn one_time_password(text: &str) -> String {
    text.split("one_time_password: ")
        .nth(1)
        .and_then(|s| s.split("\r\n").next())
        .unwrap_or_else(|| panic!("no one-time password in {text:?}"))
        .to_owned()
}

/// Calls `check` every 200 ms until it gives a value; fails the test after `timeout` with what
/// it last said.
pub fn poll<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "waited {timeout:?} for {what}; last seen: {last}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Milliseconds since the epoch of an RFC 3339 time the daemon printed
/// (`2025-01-02T03:04:05.678Z`).
pub fn rfc3339_ms(text: &str) -> u64 {
    let t = humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    u64::try_from(
        t.duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits")
}

/// The KMS peer (LocalStack's KMS on loopback) shared by the tests of one test binary.
/// `KEYWARD_TEST_KMS_ENDPOINT` names one that is running already (scripts/test.sh starts one);
/// otherwise one is started with scripts/kms-peer.sh, and a watchdog stops it by its process id
/// when this test process ends.
pub fn kms_endpoint() -> String {
    static PEER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PEER.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("KEYWARD_TEST_KMS_ENDPOINT") {
            return endpoint;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root")
            .to_path_buf();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("keyward-kms-peer-{}", std::process::id()));
        let script = root.join("scripts/kms-peer.sh");
        let out = Command::new(&script)
            .args(["start", &port.to_string(), &dir.display().to_string()])
            .output()
            .expect("run scripts/kms-peer.sh");
        assert!(
            out.status.success(),
            "the KMS peer did not start (run scripts/kms-peer.sh install first): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Stops the peer by its pid once this test process is gone. The watchdog outlives this
        // process on purpose, so it is never waited for.
        #[allow(
            clippy::zombie_processes,
            reason = "the watchdog must outlive the test process"
        )]
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {} 2>/dev/null; do sleep 1; done; {} stop {}; rm -rf {}",
                std::process::id(),
                script.display(),
                dir.display(),
                dir.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("peer watchdog");
        format!("http://127.0.0.1:{port}")
    })
    .clone()
}

/// An aws-sdk-kms client of the peer, for checking what AWS would observe, in `region` (each
/// test uses its own region, so tests never see each other's keys).
pub struct Kms {
    pub client: aws_sdk_kms::Client,
    runtime: tokio::runtime::Runtime,
}

/// The access key the tests load into Keyward (the peer accepts any).
pub const ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

impl Kms {
    pub fn new(region: &str) -> Self {
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new(region.to_owned()))
            .endpoint_url(kms_endpoint())
            .credentials_provider(aws_sdk_kms::config::Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "tests",
            ))
            .build();
        Self {
            client: aws_sdk_kms::Client::from_conf(config),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        }
    }

    pub fn run<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    pub fn describe(&self, key: &str) -> aws_sdk_kms::types::KeyMetadata {
        self.run(self.client.describe_key().key_id(key).send())
            .expect("DescribeKey")
            .key_metadata
            .expect("metadata")
    }

    /// Every key id in the region.
    pub fn key_ids(&self) -> Vec<String> {
        self.run(self.client.list_keys().limit(1000).send())
            .expect("ListKeys")
            .keys()
            .iter()
            .filter_map(|k| k.key_id().map(str::to_owned))
            .collect()
    }

    pub fn alias_target(&self, alias: &str) -> Option<String> {
        self.run(self.client.list_aliases().limit(100).send())
            .expect("ListAliases")
            .aliases()
            .iter()
            .find(|a| a.alias_name() == Some(alias))
            .and_then(|a| a.target_key_id().map(str::to_owned))
    }

    pub fn policy(&self, key: &str) -> serde_json::Value {
        let text = self
            .run(
                self.client
                    .get_key_policy()
                    .key_id(key)
                    .policy_name("default")
                    .send(),
            )
            .expect("GetKeyPolicy")
            .policy
            .expect("policy");
        serde_json::from_str(&text).expect("policy JSON")
    }

    /// Encrypts `plaintext` under `key` (an id, ARN or alias).
    pub fn encrypt(&self, key: &str, plaintext: &[u8]) -> aws_sdk_kms::primitives::Blob {
        self.run(
            self.client
                .encrypt()
                .key_id(key)
                .plaintext(aws_sdk_kms::primitives::Blob::new(plaintext.to_vec()))
                .send(),
        )
        .expect("Encrypt")
        .ciphertext_blob
        .expect("ciphertext")
    }

    /// The plaintext and the ARN of the key that decrypted it, or AWS's error in words.
    pub fn decrypt(
        &self,
        ciphertext: &aws_sdk_kms::primitives::Blob,
    ) -> Result<(Vec<u8>, String), String> {
        self.run(
            self.client
                .decrypt()
                .ciphertext_blob(ciphertext.clone())
                .send(),
        )
        .map(|out| {
            (
                out.plaintext
                    .map(aws_sdk_kms::primitives::Blob::into_inner)
                    .unwrap_or_default(),
                out.key_id.unwrap_or_default(),
            )
        })
        .map_err(|e| format!("{:?}", aws_sdk_kms::error::DisplayErrorContext(e)))
    }

    /// A key with origin EXTERNAL and no material (PendingImport), as an operator makes one.
    pub fn create_external_key(&self) -> String {
        self.run(
            self.client
                .create_key()
                .origin(aws_sdk_kms::types::OriginType::External)
                .send(),
        )
        .expect("CreateKey")
        .key_metadata
        .expect("metadata")
        .key_id
    }
}

impl Fixture {
    /// Starts the daemon and, as both administrators, imports the test access key as
    /// credential `prod` (from the AWS console's CSV).
    pub fn start_with_credential(&self) -> (Daemon, Console) {
        let daemon = self.start();
        let mut console = daemon.admins();
        let csv = self.credentials_csv();
        let view = console.ok(&Request::CredentialImport {
            name: "prod".into(),
            path: csv.display().to_string(),
        });
        assert_eq!(view["access_key_id"], "****************MPLE", "{view}");
        (daemon, console)
    }

    /// The AWS console's CSV for the test access key, in the fixture directory.
    pub fn credentials_csv(&self) -> PathBuf {
        let path = self.dir.path().join("prod_accessKeys.csv");
        write_private(
            &path,
            &format!(
                "\u{feff}Access key ID,Secret access key\r\n{ACCESS_KEY_ID},{SECRET_ACCESS_KEY}\r\n"
            ),
        );
        path
    }
}

/// A running appliance on the KMS peer, as most AWS tests start: a fresh token and database,
/// the daemon, both administrators logged in on one console with credential `prod` imported,
/// and a KMS client of the test's region (each test has its own, so tests never see each
/// other's keys).
pub struct Appliance {
    pub fx: Fixture,
    pub daemon: Option<Daemon>,
    pub console: Option<Console>,
    pub kms: Kms,
    pub region: &'static str,
    /// Objects on the token after first boot (system keys and the audit anchor).
    pub token_objects: usize,
}

impl Appliance {
    /// `config` (may be empty) is appended to the config file before the first start.
    pub fn new(region: &'static str, config: &str) -> Self {
        let kms = Kms::new(region);
        let fx = Fixture::new();
        fx.init_ok();
        if !config.is_empty() {
            fx.append_config(config);
        }
        let token_objects = fx.token_objects();
        let (daemon, console) = fx.start_with_credential();
        Self {
            fx,
            daemon: Some(daemon),
            console: Some(console),
            kms,
            region,
            token_objects,
        }
    }

    pub fn console(&mut self) -> &mut Console {
        self.console.as_mut().expect("console")
    }

    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("daemon running")
    }

    /// `group create` on the peer: credential `prod`, this region, `alias`, and `extra`.
    pub fn create_group(&mut self, name: &str, alias: &str, extra: &[(&str, &str)]) {
        let fields = group_fields(self.region, alias, extra);
        self.console().ok(&Request::GroupCreate {
            name: name.into(),
            fields,
        });
    }

    /// `key list GROUP`.
    pub fn keys(&mut self, group: &str) -> Vec<serde_json::Value> {
        self.console()
            .ok(&Request::KeyList {
                group: Some(group.into()),
            })
            .as_array()
            .expect("key list")
            .clone()
    }

    /// `job show ID`.
    pub fn job(&mut self, id: u64) -> serde_json::Value {
        self.console().ok(&Request::JobShow { id })
    }

    /// `job wait` that must succeed; a failure shows `what`, the job's log and the daemon's.
    pub fn wait_ok(&mut self, job: u64, what: &str) -> serde_json::Value {
        match self.console().wait(job) {
            Ok(view) => view,
            Err(e) => panic!(
                "{what}: job {job} failed: {e}\n{}\ndaemon log:\n{}",
                self.console().job_log(job).join("\n"),
                self.daemon().log_text()
            ),
        }
    }

    /// Stops the daemon cleanly and starts it again with `env`; both administrators log in.
    pub fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        self.console = None;
        if let Some(d) = self.daemon.take() {
            d.stop();
        }
        let d = self.fx.start_with_env(env);
        self.console = Some(d.admins());
        self.daemon = Some(d);
    }
}

impl Console {
    /// A request that must succeed; returns its data.
    pub fn ok(&mut self, request: &Request) -> serde_json::Value {
        self.request(request)
            .into_result()
            .unwrap_or_else(|e| panic!("{request:?} failed: {e}"))
    }

    /// `group rotate`: queues a rotation and returns its job id.
    pub fn rotate(&mut self, group: &str) -> u64 {
        self.ok(&Request::GroupRotate { name: group.into() })["job"]
            .as_u64()
            .expect("job id")
    }

    /// `job wait` with a two-minute timeout.
    pub fn wait(&mut self, job: u64) -> Result<serde_json::Value, keyward_proto::ApiError> {
        self.request(&Request::JobWait {
            id: job,
            timeout_ms: Some(120_000),
        })
        .into_result()
    }

    /// Every line of a job's log.
    pub fn job_log(&mut self, job: u64) -> Vec<String> {
        self.ok(&Request::JobLog {
            id: job,
            from: None,
        })["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| l.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The outcomes of the audit records of `action` made by job `job`, in order.
    pub fn audit_outcomes(&mut self, action: &str, job: u64) -> Vec<String> {
        let job = job.to_string();
        self.audit_records()
            .iter()
            .filter(|r| r["action"] == action && r["details"]["job"].as_str() == Some(job.as_str()))
            .map(|r| r["outcome"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Every audit record (`audit list` from the first).
    pub fn audit_records(&mut self) -> Vec<serde_json::Value> {
        self.audit_records_from(1)
    }

    /// Every audit record from sequence number `from` on, page by page (the daemon answers at
    /// most 1000 at a time).
    pub fn audit_records_from(&mut self, from: u64) -> Vec<serde_json::Value> {
        let mut all: Vec<serde_json::Value> = Vec::new();
        let mut next = from;
        loop {
            let page = self.ok(&Request::AuditList {
                from: Some(next),
                limit: Some(1000),
            });
            let page = page.as_array().expect("records");
            let Some(last) = page.last() else {
                return all;
            };
            next = last["seq"].as_u64().expect("seq") + 1;
            all.extend(page.iter().cloned());
        }
    }

    /// A request that must fail; returns the error.
    pub fn fails(&mut self, request: &Request) -> keyward_proto::ApiError {
        match self.request(request).into_result() {
            Ok(data) => panic!("{request:?} should have failed, got {data}"),
            Err(e) => e,
        }
    }
}

/// The fields issue 4 documents for `group show` / `group list` objects.
pub const GROUP_FIELDS: [&str; 12] = [
    "credential",
    "region",
    "endpoint",
    "alias",
    "description",
    "active_key_id",
    "policy_file",
    "disable_previous",
    "rotate_every",
    "valid_for",
    "rotation_mode",
    "tags",
];

/// The fields issue 4 documents for `key list` objects.
pub const KEY_FIELDS: [&str; 10] = [
    "id",
    "group",
    "state",
    "fingerprint",
    "aws_key_id",
    "aws_arn",
    "aws_key_state",
    "alias",
    "created",
    "valid_to",
];

/// Asserts that a JSON object has every documented field (`what` names it in the failure).
pub fn assert_fields(object: &serde_json::Value, fields: &[&str], what: &str) {
    for field in fields {
        assert!(
            object.get(*field).is_some(),
            "{what} lacks {field}: {object}"
        );
    }
}

/// The fields of a key group on the KMS peer: credential `prod`, `region`, the peer's endpoint,
/// `alias`, and `extra` on top (which may override any of them).
pub fn group_fields(
    region: &str,
    alias: &str,
    extra: &[(&str, &str)],
) -> std::collections::BTreeMap<String, String> {
    let endpoint = kms_endpoint();
    let mut f = fields(&[
        ("credential", "prod"),
        ("region", region),
        ("endpoint", &endpoint),
        ("alias", alias),
    ]);
    for (k, v) in extra {
        f.insert((*k).to_owned(), (*v).to_owned());
    }
    f
}

/// `key=value` pairs for `group create` and `group set`.
pub fn fields(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
