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

/// A workspace binary, next to the test executable's `deps/` directory.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
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
        std::fs::write(
            &config,
            format!("data_dir = {:?}\n\n{table}", data_dir.display().to_string()),
        )
        .expect("config");
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

    pub fn keywardd(&self, args: &[&str]) -> Output {
        Command::new(bin("keywardd"))
            .args(args)
            .env("KEYWARD_LOG", "info")
            .output()
            .expect("run keywardd")
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
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log_path = self.dir.path().join(format!("keywardd-{run}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(bin("keywardd"))
            .args(["run", "--config", &self.config.display().to_string()])
            .env("KEYWARD_LOG", "info")
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

    pub fn request(&self, request: &Request) -> Response {
        request_on(&self.socket, request)
    }

    pub fn status(&self) -> StatusReport {
        let data = self
            .request(&Request::Status)
            .into_result()
            .expect("status ok");
        serde_json::from_value(data).expect("status shape")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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
