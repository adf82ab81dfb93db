//! The fixture: a fresh SoftHSMv2 token provisioned by `keyward-hsm-sim`, a config written
//! from its `[hsm]` table, the administrators' password files, all in a private temporary
//! directory; and the files a test writes or inspects there.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// `keyward-hsm-sim COMMAND --dir DIR`, which must succeed: its standard output.
pub fn hsm_sim(command: &str, dir: &Path) -> String {
    let out = Command::new(bin("keyward-hsm-sim"))
        .arg(command)
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("run keyward-hsm-sim");
    assert!(
        out.status.success(),
        "keyward-hsm-sim {command} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes a file only its owner can read (mode 0600), replacing what was there, as the
/// appliance's own private files are written.
pub fn write_private(path: &Path, text: &str) {
    keyward_secret_file::write_private(path, text.as_bytes(), "test file")
        .unwrap_or_else(|e| panic!("{e}"));
}

impl Fixture {
    /// Provisions a token with `keyward-hsm-sim init` and writes a config from its `[hsm]` table.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let hsm_dir = dir.path().join("hsm");
        let table = hsm_sim("init", &hsm_dir);
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

    /// The console socket the config names (`DATA_DIR/console.sock` unless `[console] socket`).
    pub fn socket(&self) -> PathBuf {
        std::fs::read_to_string(&self.config)
            .ok()
            .and_then(|text| keyward_daemon::config::Config::parse(&text, &self.config).ok())
            .map_or_else(|| self.data_dir.join("console.sock"), |c| c.socket_path())
    }

    /// Opens the database directly (the daemon must be stopped), as an attacker with disk access would.
    pub fn open_db(&self) -> sled::Db {
        sled::open(self.data_dir.join("db")).expect("open sled")
    }

    /// The object count `keyward-hsm-sim status` reports.
    pub fn token_objects(&self) -> usize {
        let text = hsm_sim("status", &self.hsm_dir);
        text.lines()
            .find_map(|l| l.strip_prefix("objects:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("objects line")
    }

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
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
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
