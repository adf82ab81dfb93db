#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration test: a failed step is a failed test"
)]
//! The daemon hardens its own process: what the kernel shows about the real process, and what
//! `status` reports. Firmware install through the daemon: two administrators, audited.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use keyward_tests::{ADMINS, Fixture, bin};

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
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(uid)),
    )
    .unwrap();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

#[test]
fn the_daemon_locks_memory_is_not_dumpable_and_drops_to_its_user() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test starts the daemon as root, as systemd does"
    );
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
