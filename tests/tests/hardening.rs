#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration test: a failed step is a failed test"
)]
//! The daemon hardens its own process: what the kernel shows about the real process, and what
//! `status` reports. The privilege drop gives the daemon's user what the daemon must write (its
//! database and its socket) and nothing else, and a start as root refuses a config, or a file it
//! names, that someone other than root (or the daemon's user, for what is not code) could have
//! changed. Firmware install through the daemon: two administrators, audited.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use keyward_tests::{ADMINS, Fixture, bin, write_private};

const NOBODY: u32 = 65534;

fn proc_status(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap()
}

fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

fn chown_tree(path: &Path, uid: u32) {
    chown(path, uid);
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

#[test]
fn the_daemon_locks_memory_is_not_dumpable_and_drops_to_its_user() {
    assert_root();
    let fx = Fixture::new();
    fx.init_ok();
    fx.prepend_config("user = \"nobody\"");
    // The unprivileged user must reach its data and the token: as a package would set it up.
    std::fs::set_permissions(fx.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    chown_tree(&fx.hsm_dir, NOBODY);

    // A descriptor the daemon would inherit (no close-on-exec), as from a careless parent.
    let leaked = fx.dir.path().join("leaked-descriptor");
    std::fs::write(&leaked, "x").unwrap();
    let fd = nix::fcntl::open(
        &leaked,
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();

    // A symlink planted in the data directory (by a compromised daemon user) must not make the
    // next start as root hand its target to that user.
    let precious = fx.dir.path().join("root-owned-file");
    std::fs::write(&precious, "root only").unwrap();
    std::os::unix::fs::symlink(&precious, fx.data_dir.join("planted-link")).unwrap();

    let daemon = fx.start();
    drop(fd);
    // The socket accepts as soon as it is bound (before the drop); requests are served after it.
    let report = daemon.status();
    let pid = daemon.pid();
    let status = proc_status(pid);
    let uids: Vec<u32> = field(&status, "Uid:")
        .split_whitespace()
        .map(|u| u.parse().unwrap())
        .collect();
    assert_eq!(uids, [NOBODY; 4], "real, effective, saved and fs uid");
    assert_eq!(
        field(&status, "CapEff:"),
        "0000000000000000",
        "no capability after the drop"
    );
    let locked_kb: u64 = field(&status, "VmLck:")
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    assert!(locked_kb > 1024, "memory is locked: VmLck {locked_kb} kB");
    // Not dumpable: the kernel gives /proc/PID to root although the process runs as nobody.
    assert_eq!(
        std::fs::metadata(format!("/proc/{pid}/status"))
            .unwrap()
            .uid(),
        0,
        "the process is not dumpable"
    );
    let fds: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .collect();
    assert!(
        !fds.iter().any(|target| target == &leaked),
        "an inherited descriptor stayed open: {fds:?}"
    );

    // Where root may lift the memlock limit (systemd's LimitMEMLOCK=infinity), every future
    // allocation is locked too; where it may not (a container without CAP_SYS_RESOURCE), the
    // daemon keeps what it locked at start and says how to fix it.
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let unlimited = limits
        .lines()
        .find(|l| l.starts_with("Max locked memory"))
        .is_some_and(|l| l.split_whitespace().nth(4) == Some("unlimited"));
    let mlock = &report.hardening["mlockall"];
    if unlimited {
        assert!(mlock.starts_with("ok"), "{mlock}");
    } else {
        assert!(
            mlock.starts_with("degraded") && mlock.contains("LimitMEMLOCK=infinity"),
            "{mlock}"
        );
    }
    for (measure, expected) in [
        ("dumpable", "ok: off"),
        ("core_dumps", "ok"),
        ("no_new_privs", "ok"),
        ("umask", "ok: 077"),
        ("inherited_fds", "ok"),
        ("user", "ok: dropped to nobody"),
        ("capabilities", "ok: none"),
    ] {
        let state = report
            .hardening
            .get(measure)
            .unwrap_or_else(|| panic!("status lacks {measure}: {:?}", report.hardening));
        assert!(state.starts_with(expected), "{measure}: {state}");
    }
    // Still fully working as nobody: the status call's login was audited (sled and the token).
    assert!(daemon.stop().success());
    let (code, out) = fx.verify();
    assert_eq!(code, Some(0), "{out}");
    let owner = std::fs::metadata(fx.data_dir.join("db")).unwrap().uid();
    assert_eq!(
        owner, NOBODY,
        "the data directory belongs to the daemon's user"
    );
    assert_eq!(
        std::fs::metadata(&precious).unwrap().uid(),
        0,
        "the symlink's target was not given away"
    );
}

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

#[test]
fn a_config_others_can_read_is_refused() {
    let fx = Fixture::new();
    fx.init_ok();
    std::fs::set_permissions(&fx.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (status, stderr) = fx.run_refused();
    assert!(!status.success());
    assert!(
        stderr.contains("config file") && stderr.contains("readable by group or others"),
        "{stderr}"
    );
}

/// A signed image of small stand-in binaries, and its public key.
fn image(dir: &Path, version: &str) -> String {
    let key = dir.join("firmware.key");
    if !key.exists() {
        let out = Command::new(bin("keyward-image"))
            .args(["keygen", "--out"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let bins = dir.join(format!("bins-{version}"));
    std::fs::create_dir_all(&bins).unwrap();
    for b in [
        "keywardd",
        "keyward-console",
        "keyward-hsm-sim",
        "keyward-image",
    ] {
        std::fs::write(bins.join(b), format!("#!/bin/sh\necho {b} {version}\n")).unwrap();
        std::fs::set_permissions(bins.join(b), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out_path = dir.join(format!("keyward-{version}.img"));
    let out = Command::new(bin("keyward-image"))
        .args(["build", "--version", version, "--signing-key"])
        .arg(&key)
        .arg("--out")
        .arg(&out_path)
        .arg("--bin-dir")
        .arg(&bins)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out_path.display().to_string()
}

#[test]
fn firmware_install_through_the_serial_port_needs_two_administrators_and_is_audited() {
    let fx = Fixture::new();
    fx.init_ok();
    let v2 = image(fx.dir.path(), "2.0.0");
    let v1 = image(fx.dir.path(), "1.0.0");
    let root = fx.data_dir.join("firmware");
    fx.append_config(&format!(
        "[firmware]\nroot = {:?}\npublic_key = {:?}\n",
        root.display().to_string(),
        fx.dir.path().join("firmware.key.pub").display().to_string()
    ));
    let line = fx.serial_line("fw");
    let _daemon = fx.start();
    line.expect("keyward> ", Duration::from_secs(30));
    line.login(ADMINS[0].0, ADMINS[0].1);
    assert!(
        line.command(&format!("firmware install {v2}"))
            .contains("ERR dual-control")
    );
    assert!(
        !root.join("active").exists(),
        "nothing installed by one administrator"
    );

    line.login(ADMINS[1].0, ADMINS[1].1);
    let installed = line.command(&format!("firmware install {v2}"));
    assert!(
        installed.contains("version: 2.0.0")
            && installed.contains("slot: a")
            && installed.contains("\r\nOK\r\n"),
        "{installed}"
    );
    let status = Command::new(bin("keyward-image"))
        .args(["status", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&status.stdout)
            .contains("slot a (active): version 2.0.0, verified")
    );

    let downgrade = line.command(&format!("firmware install {v1}"));
    assert!(
        downgrade.contains("ERR invalid") && downgrade.contains("lower than the installed 2.0.0"),
        "{downgrade}"
    );
    let forced = line.command(&format!("firmware install {v1} allow-downgrade"));
    assert!(
        forced.contains("version: 1.0.0") && forced.contains("slot: b"),
        "{forced}"
    );

    line.send(b"format json\r");
    line.expect("}\r\n", Duration::from_secs(30));
    let trail = line.json("audit list limit=1000");
    let records = trail["data"].as_array().unwrap();
    let installs: Vec<_> = records
        .iter()
        .filter(|r| {
            r["outcome"] == "success"
                && r["action"]
                    .as_str()
                    .unwrap()
                    .starts_with("firmware.install")
        })
        .collect();
    assert_eq!(installs.len(), 2, "{records:?}");
    assert_eq!(installs[0]["actors"], serde_json::json!(["alice", "bob"]));
    assert_eq!(
        installs[1]["action"], "firmware.install (downgrade allowed)",
        "a downgrade is audited as such"
    );
    let refused = records
        .iter()
        .find(|r| r["outcome"] == "failure" && r["action"] == "firmware.install")
        .expect("the refused downgrade");
    assert!(
        refused["details"]["error"]
            .as_str()
            .unwrap()
            .contains("lower than")
    );
}
