#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration test: a failed step is a failed test"
)]
//! After a full run, no administrator password, one-time password, wrong password tried, or
//! HSM PIN appears anywhere the appliance writes: the database files, the daemon log, command
//! output, or the audit trail.

use keyward_tests::{ADMINS, Console, Fixture, files_under, secrets_in_memory};

#[test]
fn passwords_and_pins_appear_nowhere() {
    let fx = Fixture::new();
    let init = fx.init();
    assert!(init.status.success());
    let line = fx.serial_line("leak");
    let daemon = fx.start();
    daemon.status();
    // Passwords typed at the serial prompt, and a one-time password the port shows once.
    line.expect("keyward> ", std::time::Duration::from_secs(30));
    line.login(ADMINS[0].0, ADMINS[0].1);
    let typed = line.login(ADMINS[1].0, ADMINS[1].1);
    assert!(!typed.contains(ADMINS[1].1), "the password is not echoed");
    let added = line.command("user add carol auditor");
    let otp = keyward_tests::one_time_password(&added);
    line.login("carol", "wrong-password-for-carol");
    // A password typed into the user field: the name is no account, so it is only fingerprinted.
    line.login("typed-my-password-here-42", "anything");
    let log = daemon.log.clone();
    assert!(daemon.stop().success());
    let (code, verify_out) = fx.verify();
    assert_eq!(code, Some(0));

    let user_pin = std::fs::read_to_string(fx.hsm_dir.join("user.pin")).unwrap();
    let so_pin = std::fs::read_to_string(fx.hsm_dir.join("so.pin")).unwrap();
    let mut secrets: Vec<String> = ADMINS.iter().map(|(_, pw)| pw.to_string()).collect();
    secrets.push(user_pin.trim().to_owned());
    secrets.push(so_pin.trim().to_owned());
    secrets.push(otp);
    secrets.push("wrong-password-for-carol".into());
    secrets.push("typed-my-password-here-42".into());
    assert!(secrets.iter().all(|s| s.len() >= 12));

    let mut haystacks: Vec<(String, Vec<u8>)> = files_under(&fx.data_dir)
        .into_iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read(&p).unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        haystacks.iter().any(|(p, _)| p.contains("db")),
        "the database files were searched"
    );
    // The search reads what is really stored: a non-secret we know is there is found.
    assert!(
        haystacks.iter().any(|(_, b)| b
            .windows(b"\"name\":\"alice\"".len())
            .any(|w| w == b"\"name\":\"alice\"")),
        "the user record should be visible in the raw database bytes"
    );
    haystacks.push(("daemon log".into(), std::fs::read(&log).unwrap()));
    haystacks.push(("init output".into(), [init.stdout, init.stderr].concat()));
    haystacks.push(("verify output".into(), verify_out.into_bytes()));
    for (name, bytes) in &haystacks {
        for secret in &secrets {
            let needle = secret.as_bytes();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "a secret appears in {name}"
            );
        }
    }
}

/// Issue 14: a password sent to the daemon, right or wrong, on the serial port or the console,
/// is wiped once it was checked; an attacker who reads the daemon's memory (root, ptrace, a
/// core or swap) a second later finds none of them.
#[test]
fn passwords_do_not_stay_in_the_daemons_memory() {
    let fx = Fixture::new();
    let (line, daemon) = fx.init_and_start_with_serial_line("memory");
    let wrong_serial = "wrong-serial-password-71";
    let unknown = "unknown-user-password-93";
    let wrong_console = "wrong-console-password-57";
    // The serial port: a login, a wrong password, another login, a name that is no account.
    line.login(ADMINS[0].0, ADMINS[0].1);
    assert!(line.login(ADMINS[1].0, wrong_serial).contains("ERR auth"));
    line.login(ADMINS[1].0, ADMINS[1].1);
    line.login("nobody-by-this-name", unknown);
    // A one-time password the port shows once, and carol's first login with it.
    let otp = keyward_tests::one_time_password(&line.command("user add carol auditor"));
    // The console: a wrong password, then a login, and carol's one-time password.
    let mut console = Console::connect(&daemon.socket);
    assert!(!console.login(ADMINS[1].0, wrong_console).ok);
    assert!(console.login(ADMINS[0].0, ADMINS[0].1).ok);
    assert!(Console::connect(&daemon.socket).login("carol", &otp).ok);
    // The attack found wrong passwords about a second after they were sent.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let data_dir = fx.data_dir.display().to_string();
    let found = secrets_in_memory(
        daemon.pid(),
        &[
            ("the data directory (a control: it is in memory)", &data_dir),
            ("alice's password", ADMINS[0].1),
            ("bob's password", ADMINS[1].1),
            ("a wrong password sent on the serial port", wrong_serial),
            ("a password sent for a name that is no account", unknown),
            ("a wrong password sent on the console", wrong_console),
            ("carol's one-time password", &otp),
        ],
    );
    assert!(
        found
            .first()
            .is_some_and(|f| f.starts_with("the data directory")),
        "the search reads the daemon's memory: the data directory's path is in it ({found:?})"
    );
    assert_eq!(
        &found[1..],
        &[] as &[String],
        "passwords remain in the daemon's memory"
    );
    drop(console);
    assert!(daemon.stop().success());
}
