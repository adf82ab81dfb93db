#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "tests: a step that fails is a failed test, reported where it happened"
)]
//! The real console (`keyward-console`) in a real terminal (tmux, 80×24), against the real
//! daemon (SoftHSMv2 token) and the KMS peer, driven with key presses and read off the screen:
//! two administrators log in, import a credential from the AWS console's CSV, create a key
//! group, force-rotate it, watch the job succeed on the Jobs screen and find the new key with ★
//! in the key database. What the screen says is then checked against what AWS observes: the
//! alias names that key, and it encrypts and decrypts.

use std::time::Duration;

use keyward_proto::Request;
use keyward_tests::tmux::Tmux;
use keyward_tests::{Fixture, Kms, bin, kms_endpoint};

const REGION: &str = "eu-west-2";
const GROUP: &str = "tmux-e2e";
const ALIAS: &str = "alias/tmux-e2e";
const SHORT: Duration = Duration::from_secs(10);
/// A rotation against the peer takes about a second; a loaded CI machine gets room.
const JOB: Duration = Duration::from_secs(90);

/// The screen's lines that contain every one of `parts`.
fn rows_with<'s>(screen: &'s str, parts: &[&str]) -> Vec<&'s str> {
    screen
        .lines()
        .filter(|line| parts.iter().all(|p| line.contains(p)))
        .collect()
}

#[test]
fn two_administrators_import_create_rotate_and_see_the_new_key_starred() {
    let endpoint = kms_endpoint();
    let kms = Kms::new(REGION);
    let fixture = Fixture::new();
    fixture.init_ok();
    let daemon = fixture.start();
    let socket = fixture.socket().display().to_string();
    let console = bin("keyward-console");
    let tmux = Tmux::start(fixture.dir.path(), 80, 24, &console, &["--socket", &socket]);

    // 1. Two administrators, one after the other; the password files are pasted (their final
    //    newline is the Enter that logs in).
    tmux.wait_for("Log in", SHORT);
    for (n, name) in ["alice", "bob"].into_iter().enumerate() {
        tmux.type_text(name);
        tmux.keys(&["Tab"]);
        tmux.paste_file(&fixture.password_file(name));
        tmux.wait_for(&format!("{name} logged in."), SHORT);
        if n == 0 {
            tmux.wait_for("dual no", SHORT);
        }
    }
    let screen = tmux.wait_for("Dual control satisfied", SHORT);
    assert!(screen.contains("alice, bob · dual yes"), "{screen}");

    // 2. Credentials: import the AWS console's CSV, confirmed.
    let csv = fixture.credentials_csv();
    tmux.keys(&["5"]);
    tmux.wait_for("AWS credentials (0)", SHORT);
    tmux.keys(&["i"]);
    tmux.wait_for("Import an AWS credential", SHORT);
    tmux.type_text("prod");
    tmux.keys(&["Enter"]);
    tmux.type_text(&csv.display().to_string());
    tmux.keys(&["Enter"]);
    tmux.wait_for("Import credential prod?", SHORT);
    tmux.keys(&["y"]);
    tmux.wait_for("Credential prod stored", SHORT);
    // The list is asked for again after the import: the row arrives in the table (inside the
    // pane's border, not the notice under it).
    let screen = tmux.wait_until("the credential's row", SHORT, |s| {
        rows_with(s, &["│", "prod", "****MPLE", "never"]).len() == 1
    });
    // The secret is never on screen; the key id only masked.
    assert!(
        !screen.contains(keyward_tests::SECRET_ACCESS_KEY),
        "{screen}"
    );
    assert!(!screen.contains(keyward_tests::ACCESS_KEY_ID), "{screen}");

    // 3. Key database: a new group, not on a schedule (so only the forced rotation makes a key).
    tmux.keys(&["7"]);
    tmux.wait_for("Key database (0 groups, 0 keys)", SHORT);
    tmux.keys(&["n"]);
    tmux.wait_for("New key group", SHORT);
    tmux.type_text(GROUP);
    tmux.keys(&["Down", "Down", "Space"]); // past Credential (prod, the only one) to Rotate: off
    tmux.wait_until("Rotate off", SHORT, |s| {
        !rows_with(s, &["Rotate every", "off"]).is_empty()
    });
    tmux.keys(&["Tab"]);
    tmux.wait_for("Region", SHORT);
    tmux.type_text(REGION);
    tmux.keys(&["Down"]);
    tmux.type_text(&endpoint);
    tmux.keys(&["Down"]);
    tmux.type_text(ALIAS);
    // Description, active key id, policy file, disable previous, tags: left as they are; Enter
    // on the last field asks to confirm.
    tmux.keys(&["Down", "Down", "Down", "Down", "Down", "Enter"]);
    let screen = tmux.wait_for(&format!("Create key group {GROUP}?"), SHORT);
    assert!(
        screen.contains(REGION) && screen.contains(ALIAS),
        "{screen}"
    );
    tmux.keys(&["y"]);
    tmux.wait_for(&format!("Created key group {GROUP}"), SHORT);
    tmux.wait_until("the group with no key", SHORT, |s| {
        !rows_with(s, &[GROUP, ALIAS, "0 keys", REGION]).is_empty()
    });

    // 4. Force rotate, from the group's row, confirmed.
    tmux.keys(&["/"]);
    tmux.type_text(GROUP);
    tmux.keys(&["Enter"]);
    tmux.keys(&["R"]);
    let screen = tmux.wait_for(&format!("Force rotate {GROUP}?"), SHORT);
    assert!(
        screen.contains(&format!("{ALIAS} moves to it")),
        "the confirm names the effect: {screen}"
    );
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("The rotation is job", SHORT);
    let job: u64 = screen
        .split("The rotation is job ")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .and_then(|id| id.trim().parse().ok())
        .unwrap_or_else(|| panic!("no job id on screen:\n{screen}"));
    tmux.keys(&["n"]); // stay; the Jobs screen is next

    // 5. The Jobs screen: the job's row reaches succeeded; its log ends with success.
    tmux.keys(&["3"]);
    let job_row = format!("{job:<4} rotate {GROUP}");
    let screen = tmux.wait_until(&format!("job {job} succeeded"), JOB, |s| {
        let rows = rows_with(s, &[&job_row]);
        rows.iter().any(|r| r.contains("failed")) || rows.iter().any(|r| r.contains("succeeded"))
    });
    let row = rows_with(&screen, &[&job_row]).join("\n");
    assert!(
        row.contains("succeeded") && row.contains("100%"),
        "{screen}"
    );
    tmux.keys(&["/"]);
    tmux.type_text(GROUP);
    tmux.keys(&["Enter", "Enter"]);
    let screen = tmux.wait_for("job succeeded", SHORT);
    assert!(
        screen.contains(&format!("Job {job} · rotate {GROUP}")),
        "{screen}"
    );
    tmux.keys(&["Escape"]);

    // 6. The key database: the group's one key is active and holds the alias (★).
    tmux.keys(&["7"]);
    let screen = tmux.wait_until("the new key with ★", SHORT, |s| {
        !rows_with(s, &["★", "active"]).is_empty() && !rows_with(s, &[GROUP, "1 key"]).is_empty()
    });

    // What the screen says is what the daemon and AWS say.
    let mut admin = daemon.admins();
    let keys = admin.ok(&Request::KeyList {
        group: Some(GROUP.into()),
    });
    let keys = keys.as_array().expect("key list");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let aws_id = keys[0]["aws_key_id"]
        .as_str()
        .expect("aws key id")
        .to_owned();
    let starred = rows_with(&screen, &["★"]);
    assert_eq!(starred.len(), 1, "{screen}");
    assert!(
        starred[0].contains(&aws_id[..8]),
        "the starred row shows the AWS key {aws_id}:\n{screen}"
    );
    assert_eq!(kms.alias_target(ALIAS).as_deref(), Some(aws_id.as_str()));
    let meta = kms.describe(&aws_id);
    assert_eq!(meta.key_state().map(|s| s.as_str()), Some("Enabled"));
    assert_eq!(meta.origin().map(|o| o.as_str()), Some("EXTERNAL"));
    let plaintext = b"typed at the console";
    let ciphertext = kms.encrypt(ALIAS, plaintext);
    let (back, by) = kms.decrypt(&ciphertext).expect("Decrypt");
    assert_eq!(back, plaintext);
    assert!(by.ends_with(&aws_id), "{by}");

    // The console leaves on q, confirmed, with status 0; the terminal is given back (the
    // alternate screen is gone).
    tmux.keys(&["q"]);
    tmux.wait_for("Quit the console?", SHORT);
    tmux.keys(&["y"]);
    assert_eq!(tmux.wait_exit(SHORT), 0, "{}", tmux.screen());
    let screen = tmux.screen();
    assert!(!screen.contains("Key database"), "{screen}");
    drop(tmux);
    assert!(daemon.stop().success());
    let (code, report) = fixture.verify();
    assert_eq!(code, Some(0), "the audit trail verifies: {report}");
}

/// When its terminal goes away (the window closed, the link dropped) the console stops
/// instead of lingering on a dead terminal, and the daemon sees the session end.
#[test]
fn the_console_stops_when_its_terminal_goes_away() {
    let fixture = Fixture::new();
    fixture.init_ok();
    let daemon = fixture.start();
    let socket = fixture.socket().display().to_string();
    let tmux = Tmux::start(
        fixture.dir.path(),
        80,
        24,
        &bin("keyward-console"),
        &["--socket", &socket],
    );
    tmux.wait_for("Log in", SHORT);
    let pid = tmux.program_pid().expect("the console's pid");
    let alive = || std::path::Path::new(&format!("/proc/{pid}")).exists();
    assert!(alive());
    drop(tmux); // the tmux server goes, and the terminal with it
    let deadline = std::time::Instant::now() + SHORT;
    while alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        !alive() || state.split_whitespace().nth(2) == Some("Z"),
        "the console still runs without its terminal: {state}"
    );
    drop(daemon);
}
