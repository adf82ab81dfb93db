//! A serial line for the daemon (a pseudo-terminal) and what its text mode prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Fixture;

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

    /// Stops reading the line, as a terminal that hung does: what the daemon writes from now
    /// on stays in the pty until its buffer is full, and then the daemon's writes wait.
    pub fn stop_reading(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// After [`SerialLine::stop_reading`]: everything the line holds now, and whatever more
    /// arrives until it has been quiet for `quiet`.
    pub fn read_held(&self, quiet: Duration) -> Vec<u8> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::io::Read;
        use std::os::fd::AsFd;
        let wait = PollTimeout::from(u16::try_from(quiet.as_millis()).expect("a short wait"));
        let mut held = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, wait) {
                Ok(0) | Err(_) => return held,
                Ok(_) => match (&self.master).read(&mut buf) {
                    Ok(0) | Err(_) => return held,
                    Ok(n) => held.extend_from_slice(&buf[..n]),
                },
            }
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
    /// Initialises the appliance, starts it serving serial line `name`, and waits for the
    /// line's first prompt.
    pub fn init_and_start_with_serial_line(&self, name: &str) -> (SerialLine, crate::Daemon) {
        self.init_ok();
        let line = self.serial_line(name);
        let daemon = self.start();
        line.expect("keyward> ", Duration::from_secs(30));
        (line, daemon)
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
