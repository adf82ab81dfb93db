#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration test: a failed step is a failed test"
)]
//! The appliance as an operator meets it: first boot, serving, stopping, restarting, and the
//! refusals that keep bad input from changing anything.

use std::os::unix::fs::PermissionsExt;

use keyward_daemon::domain::keys::{Fingerprint, KeyId, KeyPurpose, KeyRecord, KeySource};
use keyward_tests::{Fixture, write_private};

#[test]
fn init_run_stop_restart_keeps_everything() {
    let fx = Fixture::new();
    fx.init_ok();
    let objects_after_init = fx.token_objects();
    assert!(
        objects_after_init >= 2,
        "storage and audit keys are on the token"
    );

    let daemon = fx.start();
    let mode = std::fs::metadata(&daemon.socket)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "console socket must be owner-only");
    let first = daemon.status();
    assert_eq!(first.hsm.state, "ok");
    assert!(
        !first.hsm.wrap_algorithms.is_empty(),
        "the probe found a wrap algorithm"
    );
    assert!(first.hsm.missing_keys.is_empty());
    assert_eq!(first.store.users, 2);
    assert_eq!(first.store.keys, 2);
    assert_eq!(
        first.audit.head_seq, 4,
        "init, daemon.start, settings.seed (rotation.designated from the config), and the status call's login"
    );
    let (code, out) = fx.verify();
    assert_eq!(
        code,
        Some(1),
        "offline verify cannot run beside the daemon: {out}"
    );
    assert!(out.contains("keywardd is running"), "{out}");
    let status = daemon.stop();
    assert!(status.success(), "SIGTERM stops cleanly: {status}");
    assert!(!fx.socket().exists(), "socket removed on stop");

    let (code, out) = fx.verify();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("6 records"),
        "init, start, settings.seed, login, logout, stop: {out}"
    );

    let daemon = fx.start();
    let second = daemon.status();
    assert_eq!(second.hsm.serial, first.hsm.serial);
    assert_eq!(second.store.users, 2);
    assert_eq!(second.store.keys, 2);
    assert_eq!(
        second.audit.head_seq, 8,
        "the trail continues where it stopped: start and login (the setting is seeded once)"
    );
    assert!(daemon.stop().success());
    assert_eq!(
        fx.token_objects(),
        objects_after_init,
        "no key created or lost by restarts"
    );
    let (code, out) = fx.verify();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("10 records"), "{out}");
}

#[test]
fn init_refuses_bad_input_and_changes_nothing() {
    let fx = Fixture::new();
    let config = fx.config.display().to_string();
    let alice = format!("alice={}", fx.password_file("alice").display());
    let bob = format!("bob={}", fx.password_file("bob").display());
    let short = fx.dir.path().join("short.pw");
    write_private(&short, "tooshort\n");
    let open = fx.dir.path().join("open.pw");
    std::fs::write(&open, "a-long-enough-password\n").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();

    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![alice.clone()], "at least two administrators"),
        (vec![alice.clone(), alice.clone()], "named twice"),
        (
            vec![
                alice.clone(),
                format!("Bob={}", fx.password_file("bob").display()),
            ],
            "user name 'Bob' is not allowed",
        ),
        (
            vec![alice.clone(), "bob=/nonexistent/bob.pw".into()],
            "/nonexistent/bob.pw",
        ),
        (
            vec![alice.clone(), format!("bob={}", open.display())],
            "readable by group or others",
        ),
        (
            vec![alice.clone(), format!("bob={}", short.display())],
            "use at least 12",
        ),
        (vec![alice.clone(), "bob".into()], "NAME=PASSWORD_FILE"),
    ];
    for (admins, expected) in cases {
        let mut args = vec!["init".to_string(), "--config".into(), config.clone()];
        for a in &admins {
            args.extend(["--admin".to_string(), a.clone()]);
        }
        let out = fx.keywardd(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "init {admins:?} must fail");
        assert!(
            stderr.contains(expected),
            "init {admins:?}: expected {expected:?} in {stderr}"
        );
        assert!(
            !stderr.contains("a-long-enough-password") && !stderr.contains("tooshort"),
            "no password in errors"
        );
        assert_eq!(
            fx.token_objects(),
            0,
            "init {admins:?} created an HSM object"
        );
        let (status, stderr) = fx.run_refused();
        assert!(!status.success());
        assert!(stderr.contains("not initialised"), "{stderr}");
    }

    fx.init_ok();
    let objects = fx.token_objects();
    let out = fx.keywardd(&[
        "init", "--config", &config, "--admin", &alice, "--admin", &bob,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already initialised"));
    assert_eq!(
        fx.token_objects(),
        objects,
        "a refused second init creates nothing"
    );
    let (code, out) = fx.verify();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 records"), "{out}");
}

#[test]
fn pin_file_readable_by_others_is_refused() {
    let fx = Fixture::new();
    fx.init_ok();
    let pin = fx.hsm_dir.join("user.pin");
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (status, stderr) = fx.run_refused();
    assert!(!status.success());
    assert!(stderr.contains("hsm.pin_file"), "{stderr}");
    assert!(stderr.contains("line 6"), "names the config line: {stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
    let daemon = fx.start();
    assert_eq!(daemon.status().hsm.state, "ok");
}

#[test]
fn config_errors_name_the_key_and_line() {
    let fx = Fixture::new();
    let text = std::fs::read_to_string(&fx.config).unwrap();
    std::fs::write(&fx.config, format!("{text}\n[telemetry]\nenabled = true\n")).unwrap();
    let (status, stderr) = fx.run_refused();
    assert!(!status.success());
    assert!(
        stderr.contains("telemetry") && stderr.contains("line 1"),
        "{stderr}"
    );

    std::fs::write(
        &fx.config,
        text.replace(
            "/usr/lib/softhsm/libsofthsm2.so",
            "/nonexistent/libvendor.so",
        ),
    )
    .unwrap();
    let (status, stderr) = fx.run_refused();
    assert!(!status.success());
    assert!(
        stderr.contains("hsm.module")
            && stderr.contains("/nonexistent/libvendor.so")
            && stderr.contains("line 4"),
        "{stderr}"
    );

    let (status, stderr) = {
        let out = fx.keywardd(&["run", "--config", "/nonexistent/keyward.toml"]);
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(!status.success());
    assert!(stderr.contains("/nonexistent/keyward.toml"), "{stderr}");
}

#[test]
fn key_missing_from_the_token_is_reported_and_kept() {
    let fx = Fixture::new();
    fx.init_ok();
    // A key the database knows but the token does not (destroyed out of band).
    let ghost = KeyRecord {
        id: KeyId([0x5a; 16]),
        label: "keyward:customer:ghost".into(),
        purpose: KeyPurpose::Customer,
        fingerprint: Fingerprint("ABCDEF".into()),
        created_ms: 1,
        source: KeySource::Hsm,
        tokens: vec!["keyward".into()],
        cloud: None,
    };
    {
        let db = fx.open_db();
        db.open_tree("keys")
            .unwrap()
            .insert(ghost.id.to_string(), serde_json::to_vec(&ghost).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let daemon = fx.start();
    let status = daemon.status();
    assert_eq!(status.hsm.missing_keys, vec![ghost.id.to_string()]);
    assert_eq!(status.store.keys, 3, "the record is kept");
    assert!(
        daemon.log_text().contains("missing from the HSM"),
        "{}",
        daemon.log_text()
    );
    assert!(daemon.stop().success());

    let db = fx.open_db();
    assert!(
        db.open_tree("keys")
            .unwrap()
            .contains_key(ghost.id.to_string())
            .unwrap(),
        "never dropped"
    );
    let audit = db.open_tree("audit").unwrap();
    let reconcile = audit
        .iter()
        .values()
        .map(|v| serde_json::from_slice::<serde_json::Value>(&v.unwrap()).unwrap())
        .find(|r| r["action"] == "hsm.reconcile")
        .expect("an audit record of the finding");
    assert_eq!(reconcile["target"], ghost.id.to_string());
    drop(audit);
    drop(db);
    let (code, out) = fx.verify();
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn newer_database_schema_is_refused() {
    let fx = Fixture::new();
    fx.init_ok();
    {
        let db = fx.open_db();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &99u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let (status, stderr) = fx.run_refused();
    assert!(!status.success());
    assert!(stderr.contains("schema version 99"), "{stderr}");
}

#[test]
fn malformed_and_oversized_console_input_gets_an_error_and_the_daemon_keeps_serving() {
    use std::io::{BufReader, Write};
    let fx = Fixture::new();
    fx.init_ok();
    let daemon = fx.start();
    let before = daemon.status();

    let mut stream = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
    stream
        .write_all(b"{\"op\":\"format_disk\"}\nnot json at all\n")
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for _ in 0..2 {
        let r = keyward_tests::read_response(&mut reader);
        assert!(!r.ok);
        assert_eq!(r.error.unwrap().code, keyward_proto::ErrorCode::Invalid);
    }
    // The daemon answers as soon as the line passes the limit and hangs up, so the rest of
    // this write may meet a closed socket; the answer is already on its way.
    let mut oversized = vec![b'x'; keyward_proto::MAX_LINE + 100];
    oversized.push(b'\n');
    let _ = stream.write_all(&oversized);
    let r = keyward_tests::read_response(&mut reader);
    assert!(r.error.unwrap().message.contains("longer than"));

    let mut stream = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
    stream.write_all(b"\xff\xfe\xfd\n").unwrap();
    let r = keyward_tests::read_response(&mut BufReader::new(stream));
    assert!(r.error.unwrap().message.contains("UTF-8"));

    let after = daemon.status();
    assert_eq!(
        after.audit.head_seq,
        before.audit.head_seq + 2,
        "bad input changed nothing: only the status calls' own logout and login were recorded"
    );
    assert_eq!(after.store.users, before.store.users);
}

#[test]
fn interrupted_first_boot_is_discarded_and_init_runs_again() {
    let fx = Fixture::new();
    fx.init_ok();
    let objects = fx.token_objects();
    // A first boot that stopped before its last step leaves keys, users and a trail, but not
    // the settings that mark the database initialised.
    {
        let db = fx.open_db();
        db.open_tree("settings").unwrap().clear().unwrap();
        db.flush().unwrap();
    }
    let (status, stderr) = fx.run_refused();
    assert!(!status.success());
    assert!(stderr.contains("not initialised"), "{stderr}");
    fx.init_ok();
    assert_eq!(
        fx.token_objects(),
        objects,
        "the interrupted attempt's keys and audit head are destroyed"
    );
    let (code, out) = fx.verify();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 records"), "a fresh trail: {out}");
    let daemon = fx.start();
    assert_eq!(daemon.status().store.keys, 2);
}
