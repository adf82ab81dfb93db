//! For tests: the views the daemon would send, built as Rust values, and the driving of an
//! [`App`] (keys, answers, refusals). Shared by the unit tests (`crate::fixtures`) and the
//! snapshot tests (`tests/screens.rs` includes this file beside `use keyward_console::app`),
//! so it reaches the console only through the public `app` module as `super::app`.

#![allow(
    dead_code,
    reason = "each test binary uses the builders it needs; the others are shared"
)]

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use keyward_proto::{
    ApiError, AuditRecordView, AuditStatus, AuditVerifyReport, Connection, CredentialView,
    ErrorCode, GroupTestCheck, GroupTestReport, GroupView, HsmStatus, JobKind, JobLogView,
    JobState, JobView, KeyState, KeyView, OneTimePassword, Op, Password, PendingApproval, Reply,
    Request, Role, ScheduleView, SchedulerStatus, SessionInfo, SessionUser, StatusReport,
    StoreStatus, UserInfo,
};

use super::app::{App, Effect, Event, Purpose};

pub fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.handle(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

pub fn ctrl(app: &mut App, c: char) -> Vec<Effect> {
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::CONTROL,
    )))
}

/// Types `text`; typing sends nothing.
pub fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        assert!(key(app, KeyCode::Char(c)).is_empty());
    }
}

pub fn p(op: Op) -> Purpose {
    Purpose::new(op)
}

/// What the console does to send `request` for `purpose`.
pub fn sending(purpose: Purpose, request: Request) -> Effect {
    Effect::Send { purpose, request }
}

/// The daemon answers the request for `purpose` with `reply`.
pub fn ok_as(app: &mut App, purpose: Purpose, reply: Reply) -> Vec<Effect> {
    app.handle(Event::Reply {
        purpose,
        reply: Ok(reply),
    })
}

/// The daemon answers a request without a tag with `reply`.
pub fn ok(app: &mut App, reply: Reply) -> Vec<Effect> {
    ok_as(app, Purpose::new(reply.op()), reply)
}

/// The daemon refuses `purpose` with `code` and `message`.
pub fn refused(app: &mut App, purpose: Purpose, code: ErrorCode, message: &str) -> Vec<Effect> {
    app.handle(Event::Reply {
        purpose,
        reply: Err(ApiError::new(code, message)),
    })
}

/// A session of administrators (dual control with two), `one_time` naming who logged in with
/// a one-time password.
pub fn session(names: &[&str], one_time: &[&str]) -> SessionInfo {
    let users = names
        .iter()
        .map(|name| SessionUser {
            name: (*name).into(),
            role: Role::Administrator,
            must_change_password: one_time.contains(name),
        })
        .collect();
    SessionInfo {
        channel: "console".into(),
        users,
        dual_control: names.len() == 2,
    }
}

/// An appliance's status with the audit head at `head`.
pub fn status(head: u64) -> StatusReport {
    StatusReport {
        version: "0.1.0".into(),
        hsm: HsmStatus {
            state: "ok".into(),
            token_label: "keyward".into(),
            serial: "5f2c0e8a1b3d4c6e".into(),
            manufacturer: "SoftHSM project".into(),
            model: "SoftHSM v2".into(),
            wrap_algorithms: vec![
                "RSA_AES_KEY_WRAP_SHA_256".into(),
                "RSAES_OAEP_SHA_256".into(),
            ],
            missing_keys: Vec::new(),
            torn_objects: Vec::new(),
        },
        store: StoreStatus {
            path: "/var/lib/keyward/db".into(),
            schema_version: 3,
            size_bytes: 524_288,
            users: 3,
            keys: 12,
        },
        audit: AuditStatus {
            records: head,
            head_seq: head,
            head_hash: HEAD_HASH.into(),
        },
        hardening: [
            ("core_dumps", "ok: disabled"),
            ("memory_lock", "degraded: RLIMIT_MEMLOCK too low"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        scheduler: SchedulerStatus {
            state: "running".into(),
            designated: true,
            scheduled_groups: 3,
            next_due: Some("2027-02-22T10:00:00.000Z".into()),
            running_rotations: 1,
            concurrency: 4,
        },
    }
}

/// The audit head's hash in [`status`] and [`verified`].
pub const HEAD_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// The steps of a rotation.
const ROTATE_STEPS: [&str; 8] = [
    "generate_key",
    "create_kms_key",
    "get_import_parameters",
    "wrap_key",
    "import_key_material",
    "put_key_policy",
    "move_alias",
    "disable_previous",
];

/// A job requested by alice and bob; a finished one has its time, a failed one its error.
pub fn job(
    id: u64,
    kind: JobKind,
    target: &str,
    state: JobState,
    progress: u8,
    step: Option<&str>,
) -> JobView {
    JobView {
        id,
        kind,
        target: target.into(),
        state,
        progress,
        step: step.map(Into::into),
        steps: ROTATE_STEPS.iter().map(|s| s.to_string()).collect(),
        requested_by: vec!["alice".into(), "bob".into()],
        created: "2026-11-24T10:00:00.000Z".into(),
        updated: "2026-11-24T10:00:05.000Z".into(),
        finished: state.is_done().then(|| "2026-11-24T10:00:09.000Z".into()),
        error: (state == JobState::Failed)
            .then(|| "cloud: credential prod-us has no permission kms:ImportKeyMaterial".into()),
        key: None,
        aws_key_id: None,
    }
}

/// Log lines `from`..`next` of job `id`.
pub fn job_log<S: AsRef<str>>(id: u64, state: JobState, from: usize, lines: &[S]) -> JobLogView {
    JobLogView {
        id,
        state,
        from,
        next: from + lines.len(),
        lines: lines.iter().map(|l| l.as_ref().to_string()).collect(),
    }
}

pub fn account(
    name: &str,
    role: Role,
    state: &str,
    one_time: bool,
    failed_logins: u32,
    created: &str,
) -> UserInfo {
    UserInfo {
        name: name.into(),
        role,
        state: state.into(),
        must_change_password: one_time,
        failed_logins,
        created: created.into(),
    }
}

pub fn one_time_password(name: &str, password: &str) -> OneTimePassword {
    OneTimePassword {
        name: name.into(),
        one_time_password: Password::new(password),
    }
}

pub fn pending(
    id: u64,
    channel: &str,
    operation: &str,
    requested: &str,
    expires: &str,
) -> PendingApproval {
    PendingApproval {
        id,
        requested_by: "alice".into(),
        channel: channel.into(),
        operation: operation.into(),
        requested: requested.into(),
        expires: expires.into(),
    }
}

pub fn credential(
    name: &str,
    access_key_id: &str,
    last_used: &str,
    groups: &[&str],
) -> CredentialView {
    CredentialView {
        name: name.into(),
        access_key_id: access_key_id.into(),
        created: "2026-10-01T09:00:00.000Z".into(),
        last_used: last_used.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

/// Audit record `seq`: `action` by `actor` on the console, a success, no details; its hash
/// is the sequence number in hex.
pub fn record(seq: u64, actor: &str, action: &str) -> AuditRecordView {
    AuditRecordView {
        seq,
        time: format!("2026-11-24T10:{:02}:00.000Z", seq % 60),
        actors: vec![actor.into()],
        channel: "console".into(),
        action: action.into(),
        target: "t".into(),
        outcome: "success".into(),
        details: BTreeMap::new(),
        hash: format!("{seq:064x}"),
    }
}

/// `audit_verify` for a chain of `records` ending at [`HEAD_HASH`].
pub fn verified(intact: bool, records: u64) -> AuditVerifyReport {
    AuditVerifyReport {
        intact,
        records,
        head_seq: records,
        head_hash: HEAD_HASH.into(),
    }
}

/// A key group on credential prod in eu-west-1, valid 365d, rotating by new keys.
pub fn group(name: &str, alias: &str, rotate_every: &str, keys: usize) -> GroupView {
    GroupView {
        name: name.into(),
        credential: "prod".into(),
        region: "eu-west-1".into(),
        endpoint: None,
        alias: alias.into(),
        description: String::new(),
        active_key_id: None,
        policy_file: None,
        policy: None,
        disable_previous: false,
        rotate_every: rotate_every.into(),
        valid_for: "365d".into(),
        rotation_mode: "new-key".into(),
        tags: BTreeMap::new(),
        active_key: None,
        keys,
        created: "2026-01-01T00:00:00.000Z".into(),
    }
}

/// A key of `group`, never seen in AWS's own state, created 2026-08-26, valid for ever.
pub fn kms_key(
    id: &str,
    group: &str,
    state: KeyState,
    aws_key_id: Option<&str>,
    alias: Option<&str>,
) -> KeyView {
    KeyView {
        id: id.into(),
        group: group.into(),
        state,
        fingerprint: "a1b2c3".into(),
        aws_key_id: aws_key_id.map(Into::into),
        aws_arn: None,
        aws_key_state: None,
        alias: alias.map(Into::into),
        created: "2026-08-26T10:00:00.000Z".into(),
        valid_to: "forever".into(),
        expires_soon: false,
    }
}

pub fn schedule(
    group: &str,
    rotate_every: &str,
    next_due: &str,
    last_success: Option<&str>,
    last_result: Option<&str>,
    delay: Option<&str>,
) -> ScheduleView {
    ScheduleView {
        group: group.into(),
        rotate_every: rotate_every.into(),
        next_due: next_due.into(),
        last_success: last_success.map(Into::into),
        last_result: last_result.map(Into::into),
        delay: delay.map(Into::into),
    }
}

/// `group_test` of `group` against eu-west-1: (permission, ok, detail) per check.
pub fn group_test(
    group: &str,
    connection: Connection,
    checks: &[(&str, bool, &str)],
) -> GroupTestReport {
    GroupTestReport {
        group: group.into(),
        connection,
        endpoint: "https://kms.eu-west-1.amazonaws.com".into(),
        checks: checks
            .iter()
            .map(|(permission, ok, detail)| GroupTestCheck {
                permission: (*permission).into(),
                ok: *ok,
                detail: (*detail).into(),
            })
            .collect(),
    }
}
