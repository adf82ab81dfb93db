//! Each screen drawn from a fixed state into ratatui's `TestBackend` at 80×24 and compared with
//! a snapshot in `tests/snapshots/` (`INSTA_UPDATE=always cargo test -p keyward-console` to
//! accept a deliberate change, then review the diff). The states are built by feeding the
//! `App` the daemon's answers as typed views (`src/fixtures.rs`, shared with the unit tests).
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a broken fixture should fail the test loudly"
)]

use std::time::Duration;

use crossterm::event::KeyCode;
use keyward_console::app::{self, App, Effect, Event};
use keyward_console::client::Link;
use keyward_console::screens::audit;
use keyward_console::theme::Theme;
use keyward_console::ui;
use keyward_proto::{
    AuditRecordView, Connection, CredentialView, ErrorCode, JobKind, JobStarted, JobState, JobView,
    KeyState, KeyView, Op, Reply, Role, SettingView, UserInfo,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

#[path = "../src/fixtures.rs"]
mod fixtures;
use fixtures::{
    account, credential, group, group_test, job, job_log, key, kms_key, ok, ok_as, p, refused,
    schedule, sending, session, typed,
};

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

fn connected() -> App {
    let mut app = App::new("/var/lib/keyward/console.sock");
    app.handle(Event::Link(Link::Up));
    app
}

fn logged_in(users: &[&str]) -> App {
    let mut app = connected();
    ok(&mut app, Reply::Login(session(users, &[])));
    if users.len() < 2 {
        // The form waits for a second administrator; Esc leaves it.
        key(&mut app, KeyCode::Esc);
    }
    app.shell.notice = None;
    app
}

fn jobs() -> Vec<JobView> {
    vec![
        job(
            9,
            JobKind::Rotate,
            "payments",
            JobState::Running,
            50,
            Some("wrap_key"),
        ),
        job(
            8,
            JobKind::Sync,
            "3f1a9c0d2e4b5a6f",
            JobState::Queued,
            0,
            Some("delete_material"),
        ),
        job(
            7,
            JobKind::Rotate,
            "billing-eu",
            JobState::Failed,
            62,
            Some("import_key_material"),
        ),
        job(
            6,
            JobKind::Rotate,
            "payments",
            JobState::Succeeded,
            100,
            None,
        ),
    ]
}

fn on_status(app: &mut App) {
    key(app, KeyCode::Char('2'));
    ok(app, Reply::Status(fixtures::status(418)));
}

fn on_jobs(app: &mut App) {
    key(app, KeyCode::Char('3'));
    ok(app, Reply::JobList(jobs()));
}

#[test]
fn login_empty() {
    let app = connected();
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn login_one_admin_logged_in_typing_the_second() {
    let mut app = connected();
    ok(&mut app, Reply::Login(session(&["alice"], &[])));
    typed(&mut app, "bob");
    key(&mut app, KeyCode::Tab);
    typed(&mut app, "correct horse");
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn login_dual_control_satisfied() {
    let mut app = connected();
    ok(&mut app, Reply::Login(session(&["alice"], &[])));
    ok(&mut app, Reply::Login(session(&["alice", "bob"], &[])));
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
    ok(&mut app, Reply::Login(session(&["carol"], &["carol"])));
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
        [sending(
            p(Op::SettingsSet),
            keyward_proto::Request::SettingsSet {
                name: "rotation.designated".into(),
                value: "false".into(),
            }
        )]
    );
    let effects = ok(
        &mut app,
        Reply::SettingsSet(vec![SettingView {
            name: "rotation.designated".into(),
            value: "false".into(),
            description: "this appliance rotates key groups on their schedule".into(),
        }]),
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
    ok_as(
        &mut app,
        p(Op::JobLog).tag(9),
        Reply::JobLog(job_log(
            9,
            JobState::Running,
            0,
            &[
                "10:00:00 generate_key: AES-256 key generated in the HSM (id 3f1a9c0d2e4b5a6f…)",
                "10:00:01 create_kms_key: created KMS key 1234abcd-12ab-34cd-56ef-1234567890ab (origin EXTERNAL)",
                "10:00:02 get_import_parameters: RSA_AES_KEY_WRAP_SHA_256, token valid 24h",
                "10:00:03 wrap_key: wrapping inside the HSM …",
            ],
        )),
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
    ok_as(
        &mut app,
        p(Op::JobLog).tag(9),
        Reply::JobLog(job_log(9, JobState::Succeeded, 0, &lines)),
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
    ok_as(
        &mut app,
        p(Op::JobLog).tag(7),
        Reply::JobLog(job_log(
            7,
            JobState::Failed,
            0,
            &[
                "10:00:04 import_key_material: AccessDeniedException",
                "10:00:04 failed: credential prod-us has no permission kms:ImportKeyMaterial",
            ],
        )),
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

fn accounts() -> Vec<UserInfo> {
    vec![
        account(
            "alice",
            Role::Administrator,
            "active",
            false,
            0,
            "2026-10-01T09:00:00.000Z",
        ),
        account(
            "bob",
            Role::Administrator,
            "active",
            false,
            1,
            "2026-10-01T09:05:00.000Z",
        ),
        account(
            "carol",
            Role::Auditor,
            "locked until 2026-11-24T10:15:00Z",
            false,
            5,
            "2026-10-02T11:00:00.000Z",
        ),
        account(
            "dave",
            Role::Auditor,
            "active",
            true,
            0,
            "2026-11-20T08:30:00.000Z",
        ),
    ]
}

fn on_users(app: &mut App) {
    key(app, KeyCode::Char('4'));
    ok(app, Reply::UserList(accounts()));
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
    ok(
        &mut app,
        Reply::UserReset(fixtures::one_time_password("alice", "Vq4m-8TzR-k2Xe")),
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

fn pending() -> Reply {
    Reply::Pending(vec![
        fixtures::pending(
            431,
            "serial:ttyS0",
            "user remove bob",
            "2026-11-24T10:00:00.000Z",
            "2026-11-24T10:10:00.000Z",
        ),
        fixtures::pending(
            433,
            "console",
            "group rotate prod-payments",
            "2026-11-24T10:02:00.000Z",
            "2026-11-24T10:12:00.000Z",
        ),
    ])
}

#[test]
fn session_pending_approvals() {
    let mut app = connected();
    ok(&mut app, Reply::Login(session(&["carol"], &[])));
    ok(&mut app, pending());
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
    ok(&mut app, Reply::Login(session(&["carol"], &[])));
    ok(&mut app, pending());
    app.shell.notice = None;
    for _ in 0..3 {
        key(&mut app, KeyCode::Tab);
    }
    key(&mut app, KeyCode::Enter);
    insta::assert_snapshot!(screen(&app));
}

fn credentials() -> Vec<CredentialView> {
    vec![
        credential(
            "prod-us",
            "****************MPLE",
            "2026-11-24T10:00:04.000Z",
            &["payments", "billing-eu"],
        ),
        CredentialView {
            created: "2026-10-03T14:20:00.000Z".into(),
            ..credential("staging", "****************Q7ZK", "never", &[])
        },
    ]
}

fn on_credentials(app: &mut App) {
    key(app, KeyCode::Char('5'));
    ok(app, Reply::CredentialList(credentials()));
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

fn audit_records() -> Vec<AuditRecordView> {
    /// seq, time, actors, channel, action, target, outcome, details.
    type Row<'a> = (
        u64,
        &'a str,
        &'a [&'a str],
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
    );
    #[rustfmt::skip]
    let rows: [Row; 8] = [
        (411, "2026-11-24T09:58:12.044Z", &["alice"], "console", "login", "alice", "success", &[]),
        (412, "2026-11-24T09:58:40.310Z", &["bob"], "console", "login", "bob", "success", &[]),
        (413, "2026-11-24T09:59:02.871Z", &["alice", "bob"], "console", "user.add", "erin",
         "success", &[("role", "auditor")]),
        (414, "2026-11-24T09:59:30.005Z", &["carol"], "serial:ttyS0", "login", "carol",
         "failure", &[("reason", "wrong password"), ("failed_logins", "3")]),
        (415, "2026-11-24T10:00:00.000Z", &["scheduler"], "internal", "group.rotate",
         "payments", "attempt", &[("job", "9")]),
        (416, "2026-11-24T10:00:04.512Z", &["alice", "bob"], "console", "credential.add",
         "prod-us", "success", &[("access_key_id", "****************MPLE")]),
        (417, "2026-11-24T10:00:09.120Z", &["scheduler"], "internal", "group.rotate",
         "billing-eu", "failure", &[("job", "7"), ("error", "cloud: AccessDeniedException")]),
        (418, "2026-11-24T10:01:00.000Z", &["alice"], "console", "audit.verify", "trail",
         "success", &[("records", "417")]),
    ];
    rows.iter()
        .map(
            |&(seq, time, actors, channel, action, target, outcome, details)| AuditRecordView {
                time: time.into(),
                actors: actors.iter().map(|a| a.to_string()).collect(),
                channel: channel.into(),
                target: target.into(),
                outcome: outcome.into(),
                details: details
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                hash: format!(
                    "{seq:04x}e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                )
                .chars()
                .take(64)
                .collect(),
                ..fixtures::record(seq, "", action)
            },
        )
        .collect()
}

fn on_audit(app: &mut App) {
    ok(app, Reply::Status(fixtures::status(418)));
    key(app, KeyCode::Char('6'));
    ok_as(app, audit::NEWER, Reply::AuditList(audit_records()));
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
    ok(&mut app, Reply::AuditVerify(fixtures::verified(true, 418)));
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

/// A key as the tree shows it: its state, fingerprint, AWS key id, alias, created, valid to.
#[allow(clippy::too_many_arguments, reason = "one fixture row")]
fn tree_key(
    id: &str,
    group: &str,
    state: KeyState,
    fingerprint: &str,
    aws: Option<&str>,
    alias: Option<&str>,
    created: &str,
    valid_to: &str,
    expires_soon: bool,
) -> KeyView {
    KeyView {
        fingerprint: fingerprint.into(),
        created: created.into(),
        valid_to: valid_to.into(),
        expires_soon,
        ..kms_key(id, group, state, aws, alias)
    }
}

fn on_keys(app: &mut App) {
    key(app, KeyCode::Char('7'));
    ok(
        app,
        Reply::GroupList(vec![
            group("prod-payments", "alias/prod-payments", "90d", 3),
            group("billing-eu", "alias/billing-eu", "off", 1),
            group("staging", "alias/staging", "30d", 0),
        ]),
    );
    ok(
        app,
        Reply::KeyList(vec![
            tree_key(
                "3f1a9c0d2e4b5a6f",
                "prod-payments",
                KeyState::Disabled,
                "9c41e2",
                Some("0b7e2d4c-1f3a-4e5b-8c9d-0a1b2c3d4e5f"),
                None,
                "2026-02-24T10:00:00.000Z",
                "2027-02-24T10:00:00.000Z",
                false,
            ),
            tree_key(
                "7c2e8b1f4a6d3e90",
                "prod-payments",
                KeyState::Previous,
                "5e7a10",
                Some("5d1c9e7b-2a4f-4b6c-9d8e-1f2a3b4c5d6e"),
                None,
                "2026-05-25T10:00:00.000Z",
                "2026-12-01T10:00:00.000Z",
                true,
            ),
            tree_key(
                "c4d5e6f708192a3b",
                "prod-payments",
                KeyState::Active,
                "a1b2c3",
                Some("9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"),
                Some("alias/prod-payments"),
                "2026-08-23T10:00:00.000Z",
                "2027-08-23T10:00:00.000Z",
                false,
            ),
            tree_key(
                "1a2b3c4d5e6f7081",
                "billing-eu",
                KeyState::Pending,
                "0f9e8d",
                None,
                None,
                "2026-11-24T10:00:00.000Z",
                "forever",
                false,
            ),
        ]),
    );
    ok(
        app,
        Reply::ScheduleList(vec![
            schedule(
                "prod-payments",
                "90d",
                "2027-02-21T10:00:00.000Z",
                Some("2026-08-23T10:00:09.000Z"),
                Some("job 6 succeeded"),
                None,
            ),
            schedule(
                "staging",
                "30d",
                "now",
                None,
                Some(
                    "job 7 failed: cloud: credential prod-us has no permission kms:ImportKeyMaterial",
                ),
                Some("a job is running on this group (job 9)"),
            ),
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
    ok(
        &mut app,
        Reply::GroupTest(group_test(
            "prod-payments",
            Connection::Connected,
            &[
                ("kms:ListAliases", true, "3 aliases"),
                (
                    "kms:DescribeKey",
                    true,
                    "alias/prod-payments → 9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b (Enabled)",
                ),
                ("kms:GetParametersForImport", true, "allowed (dry run)"),
            ],
        )),
    );
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn keys_test_not_connected() {
    let mut app = logged_in(&["alice", "bob"]);
    on_keys(&mut app);
    key(&mut app, KeyCode::Char('t'));
    ok(
        &mut app,
        Reply::GroupTest(group_test(
            "prod-payments",
            Connection::NotConnected,
            &[(
                "kms:ListAliases",
                false,
                "credential prod has no permission kms:ListAliases (AccessDeniedException); grant it in IAM",
            )],
        )),
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
    ok(&mut app, Reply::GroupRotate(JobStarted { job: 12 }));
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
    ok(app, Reply::CredentialList(credentials()));
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
    edited.policy_file = Some("/media/usb/policy.json".into());
    edited.policy = Some("{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": []\n}".into());
    edited.tags = [("env", "prod"), ("team", "payments")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ok(&mut app, Reply::GroupList(vec![edited]));
    key(&mut app, KeyCode::Char('e'));
    ok(&mut app, Reply::CredentialList(credentials()));
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
