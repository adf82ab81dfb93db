#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration test: a failed step is a failed test"
)]
//! The privilege drop gives the daemon's user what the daemon must write (its database and its
//! socket) and nothing else; and a start as root refuses a config, or a file it names, that
//! someone other than root (or the daemon's user, for what is not code) could have changed.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use keyward_tests::{Fixture, write_private};

const NOBODY: u32 = 65534;
/// A uid that is neither root nor the daemon's user.
const STRANGER: u32 = 4242;

fn assert_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test starts the daemon as root, as systemd does"
    );
}

fn chown(path: &Path, uid: u32) {
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(uid)),
    )
    .unwrap();
}

fn chown_tree(path: &Path, uid: u32) {
    chown(path, uid);
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Owner and group of every entry under `dir` (and of `dir`), links not followed.
fn owners(dir: &Path) -> BTreeMap<PathBuf, (u32, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        out.insert(path.clone(), (meta.uid(), meta.gid()));
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        }
    }
    out
}

/// The layout of the report: the console socket beside the config, the daemon dropping to
/// `nobody`. The token directory is the user's, as a package would set it up.
fn socket_beside_the_config() -> (Fixture, PathBuf) {
    let fx = Fixture::new();
    fx.init_ok();
    let socket = fx.dir.path().join("console.sock");
    fx.prepend_config("user = \"nobody\"");
    fx.append_config(&format!(
        "[console]\nsocket = {:?}\n",
        socket.display().to_string()
    ));
    chmod(fx.dir.path(), 0o755);
    chown_tree(&fx.hsm_dir, NOBODY);
    (fx, socket)
}

#[test]
fn the_drop_gives_the_user_its_database_and_socket_and_nothing_else() {
    assert_root();
    let (fx, socket) = socket_beside_the_config();
    let before = owners(fx.dir.path());

    let daemon = fx.start();
    let report = daemon.status();
    assert!(
        report.hardening["user"].starts_with("ok: dropped to nobody"),
        "{:?}",
        report.hardening
    );
    assert_eq!(
        std::fs::symlink_metadata(&socket).unwrap().uid(),
        NOBODY,
        "the socket is the daemon's user's"
    );
    assert!(daemon.stop().success());

    let after = owners(fx.dir.path());
    let changed: Vec<_> = before
        .iter()
        .filter(|(path, _)| !path.starts_with(&fx.data_dir) && **path != socket)
        .filter_map(|(path, was)| {
            let now = after.get(path)?;
            (now != was).then(|| format!("{}: {was:?} -> {now:?}", path.display()))
        })
        .collect();
    assert!(
        changed.is_empty(),
        "files outside the data directory changed owner: {changed:#?}"
    );
    for path in [
        fx.config.clone(),
        fx.password_file("alice"),
        fx.dir.path().to_path_buf(),
    ] {
        assert_eq!(
            std::fs::metadata(&path).unwrap().uid(),
            0,
            "{}",
            path.display()
        );
    }
    assert_eq!(
        std::fs::metadata(fx.data_dir.join("db")).unwrap().uid(),
        NOBODY,
        "the database belongs to the daemon's user"
    );

    // The next start as root still trusts its config (nobody was given it) and serves.
    let daemon = fx.start();
    assert!(daemon.status().hardening["user"].starts_with("ok: dropped to nobody"));
    assert!(daemon.stop().success());
    let (code, out) = fx.verify();
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn a_hard_link_planted_in_the_database_is_not_given_away() {
    assert_root();
    let (fx, _) = socket_beside_the_config();
    // What a compromised daemon user could leave for the next start as root.
    let precious = fx.dir.path().join("root-owned-file");
    std::fs::write(&precious, "root only").unwrap();
    std::fs::hard_link(&precious, fx.data_dir.join("db").join("planted-hard-link")).unwrap();
    let (status, stderr) = fx.run_refused();
    assert!(!status.success());
    assert!(
        stderr.contains("planted-hard-link") && stderr.contains("hard link"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::metadata(&precious).unwrap().uid(),
        0,
        "not given away"
    );
}

/// Runs `keywardd run` expecting a refusal whose message contains every one of `expected`.
fn refused(fx: &Fixture, case: &str, expected: &[&str]) {
    let (status, stderr) = fx.run_refused();
    assert!(!status.success(), "{case}: the daemon started");
    for text in expected {
        assert!(stderr.contains(text), "{case}: {text:?} not in {stderr}");
    }
}

#[test]
fn a_config_or_a_file_it_names_that_others_could_change_is_refused() {
    assert_root();
    let fx = Fixture::new();

    // A password file for init that another user owns.
    let alice = fx.password_file("alice");
    chown(&alice, STRANGER);
    let out = fx.init();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "init took a stranger's password file"
    );
    assert!(
        stderr.contains(&alice.display().to_string()) && stderr.contains("uid 4242"),
        "{stderr}"
    );
    chown(&alice, 0);
    fx.init_ok();
    let config = fx.config.display().to_string();

    // The escalation of the report: a config its own daemon user could edit.
    fx.prepend_config("user = \"nobody\"");
    chmod(fx.dir.path(), 0o755);
    chown_tree(&fx.hsm_dir, NOBODY);
    chown(&fx.config, NOBODY);
    refused(
        &fx,
        "config owned by the daemon's user",
        &["config", &config, "owned by uid 65534 (nobody)"],
    );
    chown(&fx.config, STRANGER);
    refused(
        &fx,
        "config owned by a stranger",
        &[&config, "owned by uid 4242"],
    );
    chown(&fx.config, 0);

    // A config in a directory others can write (they could replace it).
    chmod(fx.dir.path(), 0o777);
    refused(
        &fx,
        "config in a world-writable directory",
        &[&config, &fx.dir.path().display().to_string(), "writable"],
    );
    chmod(fx.dir.path(), 0o755);

    // The PIN file: the daemon's user may own it, a stranger may not.
    let pin = fx.hsm_dir.join("user.pin");
    chown(&pin, STRANGER);
    refused(
        &fx,
        "PIN file owned by a stranger",
        &[
            "hsm.pin_file",
            &pin.display().to_string(),
            "owned by uid 4242",
        ],
    );
    chown(&pin, NOBODY);

    // The module runs as root: only root may own it or the directories above it.
    let text = std::fs::read_to_string(&fx.config).unwrap();
    let module = text
        .lines()
        .find_map(|l| l.strip_prefix("module = "))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap();
    let lib_dir = fx.dir.path().join("lib");
    std::fs::create_dir(&lib_dir).unwrap();
    let copy = lib_dir.join("libvendor-pkcs11.so");
    std::fs::copy(&module, &copy).unwrap();
    write_private(
        &fx.config,
        &text.replace(&module, &copy.display().to_string()),
    );
    chmod(&lib_dir, 0o777);
    refused(
        &fx,
        "module in a world-writable directory",
        &["hsm.module", &copy.display().to_string(), "writable"],
    );
    chmod(&lib_dir, 0o755);
    chown(&copy, NOBODY);
    refused(
        &fx,
        "module owned by the daemon's user",
        &["hsm.module", "owned by uid 65534 (nobody)"],
    );
    chown(&copy, 0);

    // With every file back in trusted hands the same config starts.
    let daemon = fx.start();
    assert!(daemon.stop().success());
}
