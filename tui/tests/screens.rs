//! Each screen drawn from a fixed state into ratatui's `TestBackend` at 80×24 and compared with
//! a snapshot in `tests/snapshots/` (`INSTA_UPDATE=always cargo test -p keyward-console` to
//! accept a deliberate change, then review the diff). The states are built by feeding the
//! `App` the daemon's answers, so the snapshots also cover how replies are read.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a broken fixture should fail the test loudly"
)]

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use keyward_console::app::{App, Effect, Event, Purpose};
use keyward_console::client::Link;
use keyward_console::screens::audit;
use keyward_console::theme::Theme;
use keyward_console::ui;
use keyward_console::wire::{Op, decode};
use keyward_proto::{ApiError, ErrorCode, Response};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

fn draw(app: &App, theme: Theme, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| ui::render(app, theme, f)).unwrap();
    terminal
}

/// The screen as text, one line per row, trailing spaces trimmed.
fn screen(app: &App) -> String {
    screen_at(app, 80, 24)
}

/// The screen at `width`×`height`, as text.
fn screen_at(app: &App, width: u16, height: u16) -> String {
    let terminal = draw(app, Theme::COLOR, width, height);
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let row: String = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol())
            .collect();
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}

fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.handle(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn p(op: Op) -> Purpose {
    Purpose::new(op)
}

fn reply(app: &mut App, purpose: Purpose, data: serde_json::Value) -> Vec<Effect> {
    app.handle(Event::Reply {
        purpose,
        reply: decode(Response::ok(data), purpose.op),
    })
}

/// The daemon refuses `purpose` with `code` and `message`.
fn refused(app: &mut App, purpose: Purpose, code: ErrorCode, message: &str) -> Vec<Effect> {
    app.handle(Event::Reply {
        purpose,
        reply: Err(ApiError::new(code, message)),
    })
}

fn connected() -> App {
    let mut app = App::new("/var/lib/keyward/console.sock");
    app.handle(Event::Link(Link::Up));
    app
}

fn session(users: &[(&str, bool)], dual: bool) -> serde_json::Value {
    let users: Vec<_> = users
        .iter()
        .map(|(name, otp)| json!({"name": name, "role": "administrator", "must_change_password": otp}))
        .collect();
    json!({"channel": "console", "users": users, "dual_control": dual})
}

fn logged_in(users: &[&str]) -> App {
    let mut app = connected();
    let list: Vec<(&str, bool)> = users.iter().map(|u| (*u, false)).collect();
    reply(&mut app, p(Op::Login), session(&list, users.len() == 2));
    if users.len() < 2 {
        // The form waits for a second administrator; Esc leaves it.
        key(&mut app, KeyCode::Esc);
    }
    app.shell.notice = None;
    app
}

fn status_report() -> serde_json::Value {
    json!({
        "version": "0.1.0",
        "hsm": {"state": "ok", "token_label": "keyward", "serial": "5f2c0e8a1b3d4c6e",
                "manufacturer": "SoftHSM project", "model": "SoftHSM v2",
                "wrap_algorithms": ["RSA_AES_KEY_WRAP_SHA_256", "RSAES_OAEP_SHA_256"],
                "missing_keys": []},
        "store": {"path": "/var/lib/keyward/db", "schema_version": 3, "size_bytes": 524288,
                  "users": 3, "keys": 12},
        "audit": {"records": 418, "head_seq": 418,
                  "head_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
        "hardening": {"core_dumps": "ok: disabled", "memory_lock": "degraded: RLIMIT_MEMLOCK too low"},
        "scheduler": {"state": "running", "designated": true, "scheduled_groups": 3,
                      "next_due": "2027-02-22T10:00:00.000Z", "running_rotations": 1,
                      "concurrency": 4}
    })
}

fn job(
    id: u64,
    kind: &str,
    target: &str,
    state: &str,
    progress: u8,
    step: Option<&str>,
) -> serde_json::Value {
    json!({
        "id": id, "kind": kind, "target": target, "state": state, "progress": progress,
        "step": step,
        "steps": ["generate_key", "create_kms_key", "get_import_parameters", "wrap_key",
                  "import_key_material", "put_key_policy", "move_alias", "disable_previous"],
        "requested_by": ["alice", "bob"], "created": "2026-11-24T10:00:00.000Z",
        "updated": "2026-11-24T10:00:05.000Z",
        "finished": if state == "succeeded" || state == "failed" { json!("2026-11-24T10:00:09.000Z") } else { json!(null) },
        "error": if state == "failed" { json!("cloud: credential prod-us has no permission kms:ImportKeyMaterial") } else { json!(null) },
        "key": null, "aws_key_id": null
    })
}

fn jobs() -> serde_json::Value {
    json!([
        job(9, "rotate", "payments", "running", 50, Some("wrap_key")),
        job(
            8,
            "sync",
            "3f1a9c0d2e4b5a6f",
            "queued",
            0,
            Some("delete_material")
        ),
        job(
            7,
            "rotate",
            "billing-eu",
            "failed",
            62,
            Some("import_key_material")
        ),
        job(6, "rotate", "payments", "succeeded", 100, None),
    ])
}

fn on_status(app: &mut App) {
    key(app, KeyCode::Char('2'));
    reply(app, p(Op::Status), status_report());
}

fn on_jobs(app: &mut App) {
    key(app, KeyCode::Char('3'));
    reply(app, p(Op::JobList), jobs());
}

#[test]
fn login_empty() {
    let app = connected();
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn login_one_admin_logged_in_typing_the_second() {
    let mut app = connected();
    reply(&mut app, p(Op::Login), session(&[("alice", false)], false));
    typed(&mut app, "bob");
    key(&mut app, KeyCode::Tab);
    typed(&mut app, "correct horse");
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn login_dual_control_satisfied() {
    let mut app = connected();
    reply(&mut app, p(Op::Login), session(&[("alice", false)], false));
    reply(
        &mut app,
        p(Op::Login),
        session(&[("alice", false), ("bob", false)], true),
    );
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn login_refused_shows_the_code() {
    let mut app = connected();
    typed(&mut app, "alice");
    key(&mut app, KeyCode::Tab);
    typed(&mut app, "wrong password");
    key(&mut app, KeyCode::Enter);
    refused(
        &mut app,
        p(Op::Login),
        ErrorCode::Auth,
        "wrong user name or password (4 attempts left before the account locks for 15m)",
    );
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn passwd_after_a_one_time_password_login_repeat_differs() {
    let mut app = connected();
    reply(&mut app, p(Op::Login), session(&[("carol", true)], false));
    typed(&mut app, "one-time-1");
    key(&mut app, KeyCode::Enter);
    typed(&mut app, "a new long password");
    key(&mut app, KeyCode::Enter);
    typed(&mut app, "a new long");
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn status() {
    let mut app = logged_in(&["alice", "bob"]);
    on_status(&mut app);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn status_d_asks_before_undesignating_then_sends_settings_set() {
    let mut app = logged_in(&["alice", "bob"]);
    on_status(&mut app);
    assert!(key(&mut app, KeyCode::Char('d')).is_empty(), "asks first");
    insta::assert_snapshot!(screen(&app));
    let effects = key(&mut app, KeyCode::Char('y'));
    assert_eq!(
        effects,
        [Effect::Send {
            purpose: p(Op::SettingsSet),
            request: keyward_proto::Request::SettingsSet {
                name: "rotation.designated".into(),
                value: "false".into(),
            },
        }]
    );
    let effects = reply(
        &mut app,
        p(Op::SettingsSet),
        json!([{"name": "rotation.designated", "value": "false",
                "description": "this appliance rotates key groups on their schedule"}]),
    );
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::Send { purpose, .. } if *purpose == p(Op::Status)
        )),
        "the status is asked for again: {effects:?}"
    );
    assert!(screen(&app).contains("rotation.designated is now false."));
}

#[test]
fn jobs_list() {
    let mut app = logged_in(&["alice", "bob"]);
    on_jobs(&mut app);
    key(&mut app, KeyCode::Down);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn jobs_list_filtered() {
    let mut app = logged_in(&["alice"]);
    on_jobs(&mut app);
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "pay");
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn job_log_running() {
    let mut app = logged_in(&["alice", "bob"]);
    on_jobs(&mut app);
    key(&mut app, KeyCode::Enter);
    reply(
        &mut app,
        p(Op::JobLog).tag(9),
        json!({"id": 9, "state": "running", "from": 0, "next": 4, "lines": [
            "10:00:00 generate_key: AES-256 key generated in the HSM (id 3f1a9c0d2e4b5a6f…)",
            "10:00:01 create_kms_key: created KMS key 1234abcd-12ab-34cd-56ef-1234567890ab (origin EXTERNAL)",
            "10:00:02 get_import_parameters: RSA_AES_KEY_WRAP_SHA_256, token valid 24h",
            "10:00:03 wrap_key: wrapping inside the HSM …",
        ]}),
    );
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn job_log_scrolled_to_the_top_wraps_and_starts_at_the_first_line() {
    let mut app = logged_in(&["alice", "bob"]);
    on_jobs(&mut app);
    key(&mut app, KeyCode::Enter);
    let lines: Vec<String> = (1..=30)
        .map(|n| format!("10:00:{n:02} step {n}: a detail long enough to need a second row on an 80-column console"))
        .collect();
    reply(
        &mut app,
        p(Op::JobLog).tag(9),
        json!({"id": 9, "state": "succeeded", "from": 0, "next": 30, "lines": lines}),
    );
    for _ in 0..3 {
        key(&mut app, KeyCode::PageUp);
    }
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn job_log_failed() {
    let mut app = logged_in(&["alice", "bob"]);
    on_jobs(&mut app);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    reply(
        &mut app,
        p(Op::JobLog).tag(7),
        json!({"id": 7, "state": "failed", "from": 0, "next": 2, "lines": [
            "10:00:04 import_key_material: AccessDeniedException",
            "10:00:04 failed: credential prod-us has no permission kms:ImportKeyMaterial",
        ]}),
    );
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn help_overlay_on_jobs() {
    let mut app = logged_in(&["alice", "bob"]);
    on_jobs(&mut app);
    key(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn error_bar_with_the_daemons_code() {
    let mut app = logged_in(&["alice"]);
    key(&mut app, KeyCode::Char('2'));
    refused(
        &mut app,
        p(Op::Status),
        ErrorCode::Hsm,
        "the HSM token 'keyward' is not present (CKR_TOKEN_NOT_PRESENT); check the module and slot in the config",
    );
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn daemon_unreachable_banner() {
    let mut app = logged_in(&["alice", "bob"]);
    on_status(&mut app);
    app.handle(Event::Link(Link::Down {
        reason:
            "cannot connect to /var/lib/keyward/console.sock: Connection refused (os error 111)"
                .into(),
        retry_in: Duration::from_secs(2),
    }));
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn quit_confirm_names_who_is_logged_out() {
    let mut app = logged_in(&["alice", "bob"]);
    on_status(&mut app);
    key(&mut app, KeyCode::Char('q'));
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn too_small_a_terminal_says_so_and_resizing_back_draws_again() {
    let mut app = logged_in(&["alice"]);
    on_jobs(&mut app);
    let text = screen_at(&app, 40, 10);
    assert!(text.contains("needs at least 60×16"), "{text}");
    for (w, h) in [(60, 16), (80, 24), (120, 40), (200, 60)] {
        let text = screen_at(&app, w, h);
        assert!(!text.contains("needs at least"), "{w}×{h}: {text}");
        assert!(
            text.contains("Jobs ("),
            "{w}×{h}: the job list is drawn again"
        );
    }
}

#[test]
fn no_color_draws_without_colour() {
    let mut app = logged_in(&["alice", "bob"]);
    on_jobs(&mut app);
    app.handle(Event::Link(Link::Down {
        reason: "gone".into(),
        retry_in: Duration::from_secs(1),
    }));
    let terminal = draw(&app, Theme::MONO, 80, 24);
    for cell in terminal.backend().buffer().content() {
        assert_eq!(cell.fg, ratatui::style::Color::Reset);
        assert_eq!(cell.bg, ratatui::style::Color::Reset);
    }
}

fn accounts() -> serde_json::Value {
    json!([
        {"name": "alice", "role": "administrator", "state": "active",
         "must_change_password": false, "failed_logins": 0, "created": "2026-10-01T09:00:00.000Z"},
        {"name": "bob", "role": "administrator", "state": "active",
         "must_change_password": false, "failed_logins": 1, "created": "2026-10-01T09:05:00.000Z"},
        {"name": "carol", "role": "auditor", "state": "locked until 2026-11-24T10:15:00Z",
         "must_change_password": false, "failed_logins": 5, "created": "2026-10-02T11:00:00.000Z"},
        {"name": "dave", "role": "auditor", "state": "active",
         "must_change_password": true, "failed_logins": 0, "created": "2026-11-20T08:30:00.000Z"},
    ])
}

fn on_users(app: &mut App) {
    key(app, KeyCode::Char('4'));
    reply(app, p(Op::UserList), accounts());
}

#[test]
fn users_list() {
    let mut app = logged_in(&["alice", "bob"]);
    on_users(&mut app);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn users_reset_confirm_names_the_effect() {
    let mut app = logged_in(&["alice", "bob"]);
    on_users(&mut app);
    key(&mut app, KeyCode::End);
    key(&mut app, KeyCode::Char('R'));
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn users_add_form() {
    let mut app = logged_in(&["alice", "bob"]);
    on_users(&mut app);
    key(&mut app, KeyCode::Char('a'));
    typed(&mut app, "erin");
    key(&mut app, KeyCode::Tab);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn users_one_time_password_shown_once() {
    let mut app = logged_in(&["alice", "bob"]);
    on_users(&mut app);
    key(&mut app, KeyCode::Char('R'));
    key(&mut app, KeyCode::Char('y'));
    reply(
        &mut app,
        p(Op::UserReset),
        json!({"name": "alice", "one_time_password": "Vq4m-8TzR-k2Xe"}),
    );
    insta::assert_snapshot!(screen(&app));
    key(&mut app, KeyCode::Enter);
    assert!(
        !screen(&app).contains("Vq4m-8TzR-k2Xe"),
        "closing clears it"
    );
}

#[test]
fn users_dual_control_error_shows_the_approval_id() {
    let mut app = logged_in(&["alice"]);
    on_users(&mut app);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('D'));
    key(&mut app, KeyCode::Enter);
    refused(
        &mut app,
        p(Op::UserRemove),
        ErrorCode::DualControl,
        "this operation needs a second administrator: log in a second administrator or ask one to run 'approve 431'",
    );
    insta::assert_snapshot!(screen(&app));
}

fn pending() -> serde_json::Value {
    json!([
        {"id": 431, "requested_by": "alice", "channel": "serial:ttyS0",
         "operation": "user remove bob", "requested": "2026-11-24T10:00:00.000Z",
         "expires": "2026-11-24T10:10:00.000Z"},
        {"id": 433, "requested_by": "alice", "channel": "console",
         "operation": "group rotate prod-payments", "requested": "2026-11-24T10:02:00.000Z",
         "expires": "2026-11-24T10:12:00.000Z"},
    ])
}

#[test]
fn session_pending_approvals() {
    let mut app = connected();
    reply(&mut app, p(Op::Login), session(&[("carol", false)], false));
    reply(&mut app, p(Op::Pending), pending());
    app.shell.notice = None;
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Tab); // Password → Logged in
    key(&mut app, KeyCode::Tab); // → Pending approvals
    key(&mut app, KeyCode::Down);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn session_approve_confirm_names_the_operation() {
    let mut app = connected();
    reply(&mut app, p(Op::Login), session(&[("carol", false)], false));
    reply(&mut app, p(Op::Pending), pending());
    app.shell.notice = None;
    for _ in 0..3 {
        key(&mut app, KeyCode::Tab);
    }
    key(&mut app, KeyCode::Enter);
    insta::assert_snapshot!(screen(&app));
}

fn credentials() -> serde_json::Value {
    json!([
        {"name": "prod-us", "access_key_id": "****************MPLE",
         "created": "2026-10-01T09:00:00.000Z", "last_used": "2026-11-24T10:00:04.000Z",
         "groups": ["payments", "billing-eu"]},
        {"name": "staging", "access_key_id": "****************Q7ZK",
         "created": "2026-10-03T14:20:00.000Z", "last_used": "never", "groups": []},
    ])
}

fn on_credentials(app: &mut App) {
    key(app, KeyCode::Char('5'));
    reply(app, p(Op::CredentialList), credentials());
}

#[test]
fn credentials_list() {
    let mut app = logged_in(&["alice", "bob"]);
    on_credentials(&mut app);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn credentials_add_form_masks_the_secret() {
    let mut app = logged_in(&["alice", "bob"]);
    on_credentials(&mut app);
    key(&mut app, KeyCode::Char('a'));
    typed(&mut app, "dev");
    key(&mut app, KeyCode::Tab);
    typed(&mut app, "AKIAIOSFODNN7EXAMPLE");
    key(&mut app, KeyCode::Tab);
    typed(&mut app, "wJalrXUtnFEMI/K7MDENG");
    let shown = screen(&app);
    assert!(!shown.contains("wJalr"), "the secret is never drawn");
    insta::assert_snapshot!(shown);
}

#[test]
fn credentials_import_form() {
    let mut app = logged_in(&["alice", "bob"]);
    on_credentials(&mut app);
    key(&mut app, KeyCode::Char('i'));
    typed(&mut app, "prod-eu");
    key(&mut app, KeyCode::Tab);
    typed(&mut app, "/media/usb/prod-eu_accessKeys.csv");
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn credentials_remove_confirm_names_the_groups() {
    let mut app = logged_in(&["alice", "bob"]);
    on_credentials(&mut app);
    key(&mut app, KeyCode::Char('D'));
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn credentials_refusal_shows_the_code() {
    let mut app = logged_in(&["alice", "bob"]);
    on_credentials(&mut app);
    key(&mut app, KeyCode::Char('D'));
    key(&mut app, KeyCode::Char('y'));
    refused(
        &mut app,
        p(Op::CredentialRemove),
        ErrorCode::Invalid,
        "credential prod-us is used by group payments, billing-eu; point the group at another credential first",
    );
    insta::assert_snapshot!(screen(&app));
}

fn audit_records() -> serde_json::Value {
    let rows = [
        (
            411,
            "2026-11-24T09:58:12.044Z",
            vec!["alice"],
            "console",
            "login",
            "alice",
            "success",
            json!({}),
        ),
        (
            412,
            "2026-11-24T09:58:40.310Z",
            vec!["bob"],
            "console",
            "login",
            "bob",
            "success",
            json!({}),
        ),
        (
            413,
            "2026-11-24T09:59:02.871Z",
            vec!["alice", "bob"],
            "console",
            "user.add",
            "erin",
            "success",
            json!({"role": "auditor"}),
        ),
        (
            414,
            "2026-11-24T09:59:30.005Z",
            vec!["carol"],
            "serial:ttyS0",
            "login",
            "carol",
            "failure",
            json!({"reason": "wrong password", "failed_logins": "3"}),
        ),
        (
            415,
            "2026-11-24T10:00:00.000Z",
            vec!["scheduler"],
            "internal",
            "group.rotate",
            "payments",
            "attempt",
            json!({"job": "9"}),
        ),
        (
            416,
            "2026-11-24T10:00:04.512Z",
            vec!["alice", "bob"],
            "console",
            "credential.add",
            "prod-us",
            "success",
            json!({"access_key_id": "****************MPLE"}),
        ),
        (
            417,
            "2026-11-24T10:00:09.120Z",
            vec!["scheduler"],
            "internal",
            "group.rotate",
            "billing-eu",
            "failure",
            json!({"job": "7", "error": "cloud: AccessDeniedException"}),
        ),
        (
            418,
            "2026-11-24T10:01:00.000Z",
            vec!["alice"],
            "console",
            "audit.verify",
            "trail",
            "success",
            json!({"records": "417"}),
        ),
    ];
    json!(rows
        .iter()
        .map(|(seq, time, actors, channel, action, target, outcome, details)| json!({
            "seq": seq, "time": time, "actors": actors, "channel": channel, "action": action,
            "target": target, "outcome": outcome, "details": details,
            "hash": format!("{:04x}e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", seq).get(..64).unwrap(),
        }))
        .collect::<Vec<_>>())
}

fn on_audit(app: &mut App) {
    reply(app, p(Op::Status), status_report());
    key(app, KeyCode::Char('6'));
    reply(app, audit::NEWER, audit_records());
}

#[test]
fn audit_trail() {
    let mut app = logged_in(&["alice", "bob"]);
    on_audit(&mut app);
    key(&mut app, KeyCode::Up);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn audit_trail_filtered() {
    let mut app = logged_in(&["alice", "bob"]);
    on_audit(&mut app);
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "rotate");
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn audit_record_details() {
    let mut app = logged_in(&["alice", "bob"]);
    on_audit(&mut app);
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Enter);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn audit_verify_intact() {
    let mut app = logged_in(&["alice", "bob"]);
    on_audit(&mut app);
    key(&mut app, KeyCode::Char('v'));
    reply(
        &mut app,
        p(Op::AuditVerify),
        json!({"intact": true, "records": 418, "head_seq": 418,
               "head_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}),
    );
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn audit_verify_broken() {
    let mut app = logged_in(&["alice"]);
    on_audit(&mut app);
    key(&mut app, KeyCode::Char('v'));
    refused(
        &mut app,
        p(Op::AuditVerify),
        ErrorCode::Audit,
        "the audit trail is broken at record 414: its hash does not match its contents",
    );
    insta::assert_snapshot!(screen(&app));
}

fn group(name: &str, alias: &str, rotate_every: &str, keys: usize) -> serde_json::Value {
    json!({"name": name, "credential": "prod", "region": "eu-west-1", "endpoint": null,
           "alias": alias, "description": "", "active_key_id": null, "policy_file": null,
           "policy": null, "disable_previous": false, "rotate_every": rotate_every,
           "valid_for": "365d", "rotation_mode": "new-key", "tags": {},
           "active_key": null, "keys": keys, "created": "2026-01-01T00:00:00.000Z"})
}

#[allow(clippy::too_many_arguments, reason = "one fixture row")]
fn kms_key(
    id: &str,
    group: &str,
    state: &str,
    fingerprint: &str,
    aws: Option<&str>,
    alias: Option<&str>,
    created: &str,
    valid_to: &str,
    expires_soon: bool,
) -> serde_json::Value {
    json!({"id": id, "group": group, "state": state, "fingerprint": fingerprint,
           "aws_key_id": aws, "aws_arn": null, "aws_key_state": null, "alias": alias,
           "created": created, "valid_to": valid_to, "expires_soon": expires_soon})
}

fn on_keys(app: &mut App) {
    key(app, KeyCode::Char('7'));
    reply(
        app,
        p(Op::GroupList),
        json!([
            group("prod-payments", "alias/prod-payments", "90d", 3),
            group("billing-eu", "alias/billing-eu", "off", 1),
            group("staging", "alias/staging", "30d", 0),
        ]),
    );
    reply(
        app,
        p(Op::KeyList),
        json!([
            kms_key(
                "3f1a9c0d2e4b5a6f",
                "prod-payments",
                "disabled",
                "9c41e2",
                Some("0b7e2d4c-1f3a-4e5b-8c9d-0a1b2c3d4e5f"),
                None,
                "2026-02-24T10:00:00.000Z",
                "2027-02-24T10:00:00.000Z",
                false
            ),
            kms_key(
                "7c2e8b1f4a6d3e90",
                "prod-payments",
                "previous",
                "5e7a10",
                Some("5d1c9e7b-2a4f-4b6c-9d8e-1f2a3b4c5d6e"),
                None,
                "2026-05-25T10:00:00.000Z",
                "2026-12-01T10:00:00.000Z",
                true
            ),
            kms_key(
                "c4d5e6f708192a3b",
                "prod-payments",
                "active",
                "a1b2c3",
                Some("9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"),
                Some("alias/prod-payments"),
                "2026-08-23T10:00:00.000Z",
                "2027-08-23T10:00:00.000Z",
                false
            ),
            kms_key(
                "1a2b3c4d5e6f7081",
                "billing-eu",
                "pending",
                "0f9e8d",
                None,
                None,
                "2026-11-24T10:00:00.000Z",
                "forever",
                false
            ),
        ]),
    );
    reply(
        app,
        p(Op::ScheduleList),
        json!([
            {"group": "prod-payments", "rotate_every": "90d",
             "next_due": "2027-02-21T10:00:00.000Z", "last_success": "2026-08-23T10:00:09.000Z",
             "last_result": "job 6 succeeded", "delay": null},
            {"group": "staging", "rotate_every": "30d", "next_due": "now",
             "last_success": null,
             "last_result": "job 7 failed: cloud: credential prod-us has no permission kms:ImportKeyMaterial",
             "delay": "a job is running on this group (job 9)"}
        ]),
    );
}

#[test]
fn keys_tree() {
    let mut app = logged_in(&["alice", "bob"]);
    on_keys(&mut app);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn keys_filtered_and_folded() {
    let mut app = logged_in(&["alice", "bob"]);
    on_keys(&mut app);
    key(&mut app, KeyCode::Char('G'));
    key(&mut app, KeyCode::Char('l'));
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "5d1c");
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn keys_tab_strip_at_120_columns() {
    let mut app = logged_in(&["alice", "bob"]);
    on_keys(&mut app);
    let terminal = draw(&app, Theme::COLOR, 120, 24);
    let buffer = terminal.backend().buffer();
    let top: String = (0..120).map(|x| buffer[(x, 0)].symbol()).collect();
    insta::assert_snapshot!(top.trim_end());
}

#[test]
fn keys_context_menu_on_a_key() {
    let mut app = logged_in(&["alice", "bob"]);
    on_keys(&mut app);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn keys_test_connection_dialog() {
    let mut app = logged_in(&["alice", "bob"]);
    on_keys(&mut app);
    key(&mut app, KeyCode::Char('t'));
    reply(
        &mut app,
        p(Op::GroupTest),
        json!({"group": "prod-payments", "connection": "Connected",
        "endpoint": "https://kms.eu-west-1.amazonaws.com",
        "checks": [
            {"permission": "kms:ListAliases", "ok": true, "detail": "3 aliases"},
            {"permission": "kms:DescribeKey", "ok": true, "detail": "alias/prod-payments → 9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b (Enabled)"},
            {"permission": "kms:GetParametersForImport", "ok": true, "detail": "allowed (dry run)"}
        ]}),
    );
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn keys_test_not_connected() {
    let mut app = logged_in(&["alice", "bob"]);
    on_keys(&mut app);
    key(&mut app, KeyCode::Char('t'));
    reply(
        &mut app,
        p(Op::GroupTest),
        json!({"group": "prod-payments", "connection": "Not connected",
        "endpoint": "https://kms.eu-west-1.amazonaws.com",
        "checks": [
            {"permission": "kms:ListAliases", "ok": false,
             "detail": "credential prod has no permission kms:ListAliases (AccessDeniedException); grant it in IAM"}
        ]}),
    );
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn keys_force_rotate_confirm_names_the_alias() {
    let mut app = logged_in(&["alice", "bob"]);
    on_keys(&mut app);
    key(&mut app, KeyCode::Char('R'));
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn keys_job_started_offers_its_log() {
    let mut app = logged_in(&["alice", "bob"]);
    on_keys(&mut app);
    key(&mut app, KeyCode::Char('R'));
    key(&mut app, KeyCode::Char('y'));
    reply(&mut app, p(Op::GroupRotate), json!({"job": 12}));
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn keys_synchronise_form_with_three_boxes() {
    let mut app = logged_in(&["alice", "bob"]);
    on_keys(&mut app);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('s'));
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn keys_synchronise_confirm_names_what_happens() {
    let mut app = logged_in(&["alice", "bob"]);
    on_keys(&mut app);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('s'));
    key(&mut app, KeyCode::Char(' '));
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Enter);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn jobs_retry_confirm() {
    let mut app = logged_in(&["alice", "bob"]);
    on_jobs(&mut app);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('y'));
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn keys_schedule_overdue_and_delayed() {
    let mut app = logged_in(&["alice", "bob"]);
    on_keys(&mut app);
    key(&mut app, KeyCode::Char('G'));
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn keys_schedule_not_scheduled() {
    let mut app = logged_in(&["alice", "bob"]);
    on_keys(&mut app);
    key(&mut app, KeyCode::Char('G'));
    key(&mut app, KeyCode::Up);
    insta::assert_snapshot!(screen(&app));
}

/// The Keys screen with the credentials known, the key group editor open for a new group.
fn new_group_editor(app: &mut App) {
    on_keys(app);
    key(app, KeyCode::Char('n'));
    reply(app, p(Op::CredentialList), credentials());
}

#[test]
fn group_editor_new_group_tab() {
    let mut app = logged_in(&["alice", "bob"]);
    new_group_editor(&mut app);
    typed(&mut app, "payments");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    // Rotate every: 90 with no unit is refused, the reason beside it.
    key(&mut app, KeyCode::Backspace);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn group_editor_new_aws_tab_with_a_bad_alias() {
    let mut app = logged_in(&["alice", "bob"]);
    new_group_editor(&mut app);
    typed(&mut app, "payments");
    key(&mut app, KeyCode::Tab);
    typed(&mut app, "us-east-1");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    typed(&mut app, "alias/aws/payments");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    typed(&mut app, "/media/usb/policy.json");
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn group_editor_edit_both_tabs() {
    let mut app = logged_in(&["alice", "bob"]);
    on_keys(&mut app);
    let mut edited = group("prod-payments", "alias/prod-payments", "90d", 3);
    edited["policy_file"] = json!("/media/usb/policy.json");
    edited["policy"] = json!("{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": []\n}");
    edited["tags"] = json!({"env": "prod", "team": "payments"});
    reply(&mut app, p(Op::GroupList), json!([edited]));
    key(&mut app, KeyCode::Char('e'));
    reply(&mut app, p(Op::CredentialList), credentials());
    insta::assert_snapshot!("group_editor_edit_group_tab", screen(&app));
    key(&mut app, KeyCode::Tab);
    insta::assert_snapshot!("group_editor_edit_aws_tab", screen(&app));
}

#[test]
fn group_editor_confirm_names_the_effect() {
    let mut app = logged_in(&["alice", "bob"]);
    new_group_editor(&mut app);
    typed(&mut app, "payments");
    key(&mut app, KeyCode::Tab);
    typed(&mut app, "us-east-1");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    typed(&mut app, "alias/payments");
    for _ in 0..6 {
        key(&mut app, KeyCode::Enter);
    }
    insta::assert_snapshot!(screen(&app));
}
