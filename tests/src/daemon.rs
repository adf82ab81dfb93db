//! The daemon process: `keywardd` commands run to completion (`init`, `audit verify`, a
//! refused start), and a running `keywardd run` that a test stops, kills or waits for.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{Fixture, bin};

impl Fixture {
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

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the daemon to exit on its own (a fault point stopped it).
    pub fn wait_exit(mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.take().expect("running");
        self.reap(child, timeout, "")
    }

    /// Waits for `child` to exit. One still running after `timeout` is killed, and the test
    /// fails with the daemon's log.
    fn reap(&self, mut child: Child, timeout: Duration, after: &str) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "keywardd did not stop within {timeout:?}{after}: {}",
                    self.log_text()
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
    pub fn stop(self) -> ExitStatus {
        self.stop_within(Duration::from_secs(30))
    }

    /// SIGTERM, then wait at most `grace` for the exit status (as systemd's TimeoutStopSec
    /// does before it sends SIGKILL).
    pub fn stop_within(mut self, grace: Duration) -> ExitStatus {
        let child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        self.reap(child, grace, " of SIGTERM")
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
