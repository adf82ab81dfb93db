//! A real terminal for the console: a private tmux server (its own socket in the test's
//! directory) running one program in a detached 80×24 window. The test types with send-keys
//! and reads the screen with capture-pane, as an operator at the keyboard would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// What the shell around the program prints when it ends, before the status and a `]`.
const EXITED: &str = "[program exited with status ";

/// `word` quoted for `sh`.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

pub struct Tmux {
    socket: PathBuf,
    server_pid: Option<i32>,
}

impl Tmux {
    /// Starts `program` with `args` in a new tmux server whose socket is `dir/tmux.sock`, in a
    /// window of `width`×`height`. A shell around the program prints its exit status when it
    /// ends and keeps the window, so what the program left on the terminal (a crash, or the
    /// terminal as it was given back) can be read.
    pub fn start(dir: &Path, width: u16, height: u16, program: &Path, args: &[&str]) -> Self {
        let socket = dir.join("tmux.sock");
        let conf = dir.join("tmux.conf");
        std::fs::write(&conf, "set -g status off\n").expect("tmux.conf");
        let mut tmux = Self {
            socket,
            server_pid: None,
        };
        let command = vec![
            "-f".to_owned(),
            conf.display().to_string(),
            "new-session".into(),
            "-d".into(),
            "-s".into(),
            "console".into(),
            "-x".into(),
            width.to_string(),
            "-y".into(),
            height.to_string(),
            "--".into(),
            "sh".into(),
            "-c".into(),
            format!(
                "{} ; echo \"{EXITED}$?]\"; exec sleep 3600",
                std::iter::once(program.display().to_string())
                    .chain(args.iter().map(|a| (*a).to_owned()))
                    .map(|word| quote(&word))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ];
        let out = tmux.run(&command.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            out.status.success(),
            "tmux new-session failed (is tmux installed? scripts/test.sh installs it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid = tmux.run(&["display-message", "-p", "#{pid}"]);
        tmux.server_pid = String::from_utf8_lossy(&pid.stdout).trim().parse().ok();
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        // `-u` and a UTF-8 locale: the console draws ★, · and box lines, which tmux would
        // otherwise turn into `_` on a machine without a UTF-8 locale.
        Command::new("tmux")
            .arg("-u")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env("TERM", "xterm-256color")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .expect("run tmux (scripts/test.sh installs it)")
    }

    fn ok(&self, args: &[&str]) {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Presses keys by tmux's names: `Enter`, `Tab`, `Escape`, `Down`, `Space`, `y`, …
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "console"];
        args.extend_from_slice(keys);
        self.ok(&args);
    }

    /// Types `text` as it is (no key names).
    pub fn type_text(&self, text: &str) {
        self.ok(&["send-keys", "-t", "console", "-l", text]);
    }

    /// Types the contents of a file, as pasted (a final newline arrives as Enter). The text
    /// goes through a tmux buffer, never through a command line.
    pub fn paste_file(&self, path: &Path) {
        self.ok(&["load-buffer", "-b", "typed", &path.display().to_string()]);
        self.ok(&["paste-buffer", "-b", "typed", "-d", "-t", "console"]);
    }

    /// The screen as plain text, one line per row.
    pub fn screen(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", "console"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The program's process id (the child of the shell around it), once it has started.
    pub fn program_pid(&self) -> Option<i32> {
        let out = self.run(&["display-message", "-p", "-t", "console", "#{pane_pid}"]);
        let shell = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let children =
            std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    /// Waits until the program has exited; returns its exit status, which the shell around it
    /// prints on the terminal as it was given back (see [`Tmux::start`]).
    pub fn wait_exit(&self, timeout: Duration) -> i32 {
        let screen = self.wait_until("the program's exit", timeout, |s| s.contains(EXITED));
        screen
            .split(EXITED)
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .and_then(|status| status.trim().parse().ok())
            .unwrap_or_else(|| panic!("no exit status on screen:\n{screen}"))
    }

    /// Waits until `ready` holds for the screen; returns that screen. Fails with the last
    /// screen after `timeout`.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the console did not show {what} within {timeout:?}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the screen shows `text`.
    pub fn wait_for(&self, text: &str, timeout: Duration) -> String {
        self.wait_until(&format!("{text:?}"), timeout, |s| s.contains(text))
    }
}

impl Drop for Tmux {
    /// Stops the private server (and with it the program) through its own socket, then by its
    /// process id if it is still there.
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        if let Some(pid) = self.server_pid {
            let pid = nix::unistd::Pid::from_raw(pid);
            if nix::sys::signal::kill(pid, None).is_ok() {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}
