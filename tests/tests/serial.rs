#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration test: a failed step is a failed test"
)]
//! The serial administration port as an operator (or a script) on a terminal sees it: a real
//! daemon, a real token, pseudo-terminal pairs as the ports.

use std::time::Duration;

use keyward_proto::Request;
use keyward_tests::{ADMINS, Daemon, Fixture, SerialLine};

const ALICE: (&str, &str) = ADMINS[0];
const BOB: (&str, &str) = ADMINS[1];
const WAIT: Duration = Duration::from_secs(30);

/// A running appliance with the given serial lines (and extra config).
fn appliance(ports: &[&str], extra: &str) -> (Fixture, Daemon, Vec<SerialLine>) {
    let fx = Fixture::new();
    fx.init_ok();
    let lines: Vec<SerialLine> = ports.iter().map(|p| fx.serial_line(p)).collect();
    if !extra.is_empty() {
        fx.append_config(extra);
    }
    let daemon = fx.start();
    for line in &lines {
        line.expect("keyward> ", WAIT);
    }
    (fx, daemon, lines)
}

fn audit_records(line: &SerialLine) -> Vec<serde_json::Value> {
    line.send(b"format json\r");
    line.expect("}\r\n", WAIT);
    let r = line.json("audit list from=1 limit=1000");
    line.send(b"format text\r");
    line.expect("keyward> ", WAIT);
    r["data"].as_array().unwrap().clone()
}

fn user_names(line: &SerialLine) -> Vec<String> {
    line.send(b"format json\r");
    line.expect("}\r\n", WAIT);
    let r = line.json("user list");
    line.send(b"format text\r");
    line.expect("keyward> ", WAIT);
    assert_eq!(r["ok"], true, "{r}");
    r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn dual_login_allows_a_sensitive_operation_and_one_administrator_is_refused() {
    let (_fx, _daemon, lines) = appliance(&["a"], "");
    let port = &lines[0];
    assert!(port.login(ALICE.0, ALICE.1).contains("OK"));
    let refused = port.command("user add carol auditor");
    assert!(
        refused.contains("ERR dual-control this operation needs a second administrator: log in a second administrator or ask one to run 'approve "),
        "{refused}"
    );
    assert!(
        !user_names(port).contains(&"carol".to_owned()),
        "nothing changed"
    );

    let both = port.login(BOB.0, BOB.1);
    assert!(both.contains("dual_control: true"), "{both}");
    let added = port.command("user add carol auditor");
    assert!(
        added.contains("one_time_password: ") && added.contains("\r\nOK\r\n"),
        "{added}"
    );
    assert!(user_names(port).contains(&"carol".to_owned()));
    let record = audit_records(port)
        .into_iter()
        .find(|r| r["action"] == "user.add" && r["outcome"] == "success")
        .expect("an audit record of the addition");
    assert_eq!(
        record["actors"],
        serde_json::json!(["alice", "bob"]),
        "both administrators are named"
    );
    assert_eq!(record["channel"], "serial");
}

#[test]
fn approval_from_another_front_end_runs_once_and_self_approval_is_refused() {
    let (_fx, daemon, lines) = appliance(&["a"], "");
    let port = &lines[0];
    port.login(ALICE.0, ALICE.1);
    let refused = port.command("user add dave administrator");
    let id = keyward_tests::approval_id(&refused);

    // The id is the sequence number of the request's own audit record: unique across restarts.
    let request_record = audit_records(port)
        .into_iter()
        .find(|r| r["seq"] == id)
        .expect("the approval.request record");
    assert_eq!(request_record["action"], "approval.request");
    assert_eq!(request_record["target"], "user add dave administrator");
    let own = port.command(&format!("approve {id}"));
    assert!(
        own.contains("ERR dual-control you cannot approve your own request"),
        "{own}"
    );
    assert!(!user_names(port).contains(&"dave".to_owned()));

    // Bob approves on the console socket: another front end, the same check.
    let mut console = keyward_tests::Console::connect(&daemon.socket);
    assert!(console.login(BOB.0, BOB.1).ok);
    let pending = console.request(&Request::Pending).into_result().unwrap();
    assert_eq!(pending[0]["operation"], "user add dave administrator");
    assert_eq!(pending[0]["requested_by"], "alice");
    let approved = console.request(&Request::Approve { id });
    assert!(approved.ok, "{approved:?}");
    assert!(user_names(port).contains(&"dave".to_owned()));
    let again = console.request(&Request::Approve { id });
    assert_eq!(
        again.error.unwrap().code,
        keyward_proto::ErrorCode::NotFound,
        "it runs once"
    );

    let record = audit_records(port)
        .into_iter()
        .find(|r| r["action"] == "user.add" && r["outcome"] == "success")
        .unwrap();
    assert_eq!(record["actors"], serde_json::json!(["alice", "bob"]));
    assert_eq!(record["details"]["approval"], id.to_string());
}

#[test]
fn an_approval_expires() {
    let (_fx, daemon, lines) = appliance(&["a"], "[auth]\napproval_ttl = \"2s\"");
    let port = &lines[0];
    port.login(ALICE.0, ALICE.1);
    let refused = port.command("user add erin auditor");
    let id = keyward_tests::approval_id(&refused);
    std::thread::sleep(Duration::from_secs(3));
    let mut console = keyward_tests::Console::connect(&daemon.socket);
    console.login(BOB.0, BOB.1);
    let late = console.request(&Request::Approve { id });
    let err = late.error.expect("refused");
    assert!(err.message.contains("expired"), "{}", err.message);
    assert!(!user_names(port).contains(&"erin".to_owned()));
}

#[test]
fn five_wrong_passwords_lock_the_account_and_each_failure_is_audited() {
    let (_fx, _daemon, lines) = appliance(&["a"], "");
    let port = &lines[0];
    for _ in 0..4 {
        assert!(
            port.login(ALICE.0, "not-the-password")
                .contains("ERR auth login failed")
        );
    }
    let fifth = port.login(ALICE.0, "not-the-password");
    assert!(
        fifth.contains("ERR locked") && fifth.contains("locked until"),
        "{fifth}"
    );
    let right = port.login(ALICE.0, ALICE.1);
    assert!(
        right.contains("ERR locked account alice is locked until"),
        "the right password is refused while locked: {right}"
    );
    port.login(BOB.0, BOB.1);
    let failures = audit_records(port)
        .into_iter()
        .filter(|r| {
            r["action"] == "auth.login" && r["outcome"] == "failure" && r["target"] == "alice"
        })
        .count();
    assert_eq!(failures, 6, "5 wrong passwords and 1 attempt while locked");
    let listed = port.command("user list");
    assert!(
        listed.contains("name=alice") && listed.contains("state=locked until"),
        "{listed}"
    );
}

#[test]
fn an_idle_session_is_logged_out() {
    let (_fx, _daemon, lines) = appliance(&["a"], "[auth]\nidle_timeout = \"2s\"");
    let port = &lines[0];
    port.login(ALICE.0, ALICE.1);
    let notice = port.expect(
        "logged out after inactivity: alice",
        Duration::from_secs(10),
    );
    assert!(notice.contains("alice"));
    port.expect("keyward> ", WAIT);
    let after = port.command("status");
    assert!(after.contains("ERR auth not logged in"), "{after}");
}

#[test]
fn an_auditor_reads_but_cannot_change_anything() {
    let (_fx, _daemon, lines) = appliance(&["a", "b"], "");
    let (admins, audit) = (&lines[0], &lines[1]);
    admins.login(ALICE.0, ALICE.1);
    admins.login(BOB.0, BOB.1);
    let added = admins.command("user add audrey auditor");
    let otp = keyward_tests::one_time_password(&added);

    audit.login("audrey", &otp);
    let before = audit.command("status");
    assert!(
        before.contains("ERR auth a one-time password is in use"),
        "{before}"
    );
    audit.send(b"passwd\r");
    audit.expect("Current password: ", WAIT);
    audit.send(format!("{otp}\r").as_bytes());
    audit.expect("New password: ", WAIT);
    audit.send(b"audrey-reads-the-trail\r");
    audit.expect("Repeat new password: ", WAIT);
    let changed = {
        audit.send(b"audrey-reads-the-trail\r");
        audit.expect("keyward> ", WAIT)
    };
    assert!(changed.contains("OK"), "{changed}");
    assert!(
        !changed.contains("audrey-reads-the-trail"),
        "passwords are not echoed"
    );

    assert!(audit.command("status").contains("\r\nOK\r\n"));
    assert!(audit.command("audit verify").contains("intact: true"));
    assert!(audit.command("audit list limit=2").contains("\r\nOK\r\n"));
    for attempt in [
        "user add mallory administrator",
        "user lock alice",
        "user remove bob",
        "user reset alice",
        "user list",
        "pending",
        "approve 1",
    ] {
        let refused = audit.command(attempt);
        assert!(
            refused.contains(
                "ERR permission this needs an administrator; you are logged in as an auditor"
            ),
            "{attempt}: {refused}"
        );
    }
    assert_eq!(user_names(admins), ["alice", "audrey", "bob"]);
}

#[test]
fn garbage_oversized_and_binary_lines_change_nothing_and_do_not_stall_other_ports() {
    let (_fx, daemon, lines) = appliance(&["a", "b"], "");
    let (noisy, quiet) = (&lines[0], &lines[1]);
    quiet.login(ALICE.0, ALICE.1);
    let head_before = daemon.status().audit.head_seq;

    noisy.send(&vec![b'x'; 10_000]);
    noisy.send(b"\r");
    assert!(
        noisy
            .expect("keyward> ", WAIT)
            .contains("ERR invalid line longer than 4096 bytes; discarded")
    );
    noisy.send(b"\xff\xfe\xc3(\r");
    assert!(
        noisy
            .expect("keyward> ", WAIT)
            .contains("ERR invalid line is not valid UTF-8; discarded")
    );
    assert!(noisy.command("user add !!! root").contains("ERR invalid"));
    assert!(
        noisy
            .command("format yaml")
            .contains("ERR invalid usage: format text|json")
    );

    // A flood on one port; the other answers meanwhile.
    let flood: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    noisy.send(&flood);
    let answer = quiet.command("whoami");
    assert!(answer.contains("name=alice"), "{answer}");
    noisy.send(b"\x15\r");
    let after = daemon.status();
    // Only the status logins (one per status call) were added to the trail.
    assert_eq!(
        after.audit.head_seq,
        head_before + 2,
        "garbage wrote nothing but the status call's own login"
    );
    assert_eq!(after.store.users, 2);
}

/// Every operation that needs two administrators, as the serial port spells it. A new
/// sensitive command fails this test until it is listed here.
const SENSITIVE: &[&str] = &[
    "user add",
    "user lock",
    "user unlock",
    "user reset",
    "user remove",
    "firmware install",
    "credential import",
    "credential add",
    "credential remove",
    "group create",
    "group set",
    "group remove",
    "group rotate",
    "key sync",
    "job retry",
    "settings set",
];

#[test]
fn every_sensitive_command_is_refused_for_a_single_administrator() {
    let (_fx, daemon, lines) = appliance(&["a"], "");
    let port = &lines[0];
    port.send(b"format json\r");
    port.expect("}\r\n", WAIT);
    let help = port.json("help");
    let commands = help["data"].as_array().unwrap();
    let mut needing_two: Vec<&str> = commands
        .iter()
        .filter(|c| c["needs"] == "two-administrators")
        .map(|c| c["command"].as_str().unwrap())
        .collect();
    needing_two.sort_unstable();
    let mut listed = SENSITIVE.to_vec();
    listed.sort_unstable();
    assert_eq!(
        needing_two, listed,
        "the daemon's sensitive commands and this test's list must agree"
    );

    port.send(b"login alice\r");
    port.expect("\r\nPassword:\r\n", WAIT);
    let login = port.json(ALICE.1);
    assert_eq!(login["ok"], true, "{login}");
    let before = daemon.status();
    let (head, users_before) = (before.audit.head_seq, before.store.users);
    for (i, command) in SENSITIVE.iter().enumerate() {
        let line = match *command {
            "user add" => "user add zed administrator".to_owned(),
            "firmware install" => "firmware install /nonexistent/keyward.img".to_owned(),
            "credential import" => "credential import prod /nonexistent/keys.csv".to_owned(),
            "group create" => {
                "group create g credential=prod region=us-east-1 alias=alias/g".to_owned()
            }
            "group set" => "group set g rotate_every=90d".to_owned(),
            "key sync" => format!("key sync {} delete-material", "ab".repeat(16)),
            "job retry" => "job retry 1".to_owned(),
            "settings set" => "settings set rotation.designated false".to_owned(),
            other => format!("{other} bob"),
        };
        let r = if *command == "credential add" {
            // The access key id and the secret are prompted for, each on a line of its own.
            port.send(format!("{line}\r").as_bytes());
            port.expect("Access key ID:\r\n", WAIT);
            port.send(b"AKIAIOSFODNN7EXAMPLE\r");
            port.expect("Secret access key:\r\n", WAIT);
            port.json("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        } else {
            port.json(&line)
        };
        assert_eq!(r["ok"], false, "{line}: {r}");
        assert_eq!(r["error"]["code"], "dual-control", "{line}: {r}");
        let _ = i;
    }
    let after = daemon.status();
    assert_eq!(after.store.users, users_before, "nothing changed");
    // Each refusal is audited as an approval request (and each status call logs in once).
    assert_eq!(after.audit.head_seq, head + 1 + SENSITIVE.len() as u64 + 1);
}

#[test]
fn the_line_dropping_logs_everyone_out_and_the_port_comes_back() {
    let fx = Fixture::new();
    fx.init_ok();
    let line = fx.serial_line("a");
    let daemon = fx.start();
    line.expect("keyward> ", WAIT);
    line.login(ALICE.0, ALICE.1);
    let link = line.link.clone();
    drop(line);
    // A new adapter appears at the same path.
    let again = SerialLine::new(&link);
    again.expect("keyward> ", Duration::from_secs(20));
    assert!(!again.command("whoami").contains("name=alice"));
    assert!(
        again.command("status").contains("ERR auth not logged in"),
        "the dropped line's session did not survive"
    );
    assert!(again.login(ALICE.0, ALICE.1).contains("OK"));
    let log = daemon.log_text();
    assert!(log.contains("serial line dropped"), "{log}");
}

#[test]
fn a_password_reset_ends_that_users_other_sessions() {
    let (_fx, _daemon, lines) = appliance(&["a", "b"], "");
    let (stolen, admins) = (&lines[0], &lines[1]);
    // Someone is logged in as alice on one port (say, with a stolen password).
    stolen.login(ALICE.0, ALICE.1);
    assert!(stolen.command("whoami").contains("name=alice"));
    admins.login(BOB.0, BOB.1);
    admins.login(ALICE.0, ALICE.1);
    let reset = admins.command("user reset alice");
    assert!(reset.contains("one_time_password: "), "{reset}");
    let after = stolen.command("status");
    assert!(
        after.contains("ERR auth not logged in"),
        "the old login must not survive the reset: {after}"
    );
    assert!(!stolen.command("whoami").contains("name=alice"));
}

#[test]
fn guessing_the_current_password_at_passwd_locks_the_account() {
    let (_fx, _daemon, lines) = appliance(&["a", "b"], "");
    let (unattended, admin) = (&lines[0], &lines[1]);
    unattended.login(ALICE.0, ALICE.1);
    for guess in 0..5 {
        unattended.send(b"passwd\r");
        unattended.expect("Current password: ", WAIT);
        unattended.send(format!("guess-number-{guess}\r").as_bytes());
        unattended.expect("New password: ", WAIT);
        unattended.send(b"whatever-new-pass\r");
        unattended.expect("Repeat new password: ", WAIT);
        unattended.send(b"whatever-new-pass\r");
        let out = unattended.expect("keyward> ", WAIT);
        assert!(
            out.contains("ERR auth the current password is wrong"),
            "{out}"
        );
    }
    admin.login(BOB.0, BOB.1);
    let listed = admin.command("user list");
    assert!(
        listed.contains("name=alice") && listed.contains("state=locked until"),
        "{listed}"
    );
    assert!(
        unattended
            .command("status")
            .contains("ERR auth not logged in"),
        "the locked account's session ends"
    );
}
