//! What the daemon answers with: one view type per thing shown. Never a secret.

use serde::{Deserialize, Serialize};

use crate::request::Role;
use crate::secret::Password;
use crate::state::{Connection, JobKind, JobState, KeyState, SeenState};

/// `status`: what the appliance reports about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub hsm: HsmStatus,
    pub store: StoreStatus,
    pub audit: AuditStatus,
    /// Each process-hardening measure and its state (`ok: …`, `degraded: …`, `failed: …`).
    #[serde(default)]
    pub hardening: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub scheduler: SchedulerStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HsmStatus {
    /// `ok`, or the fault in words.
    pub state: String,
    pub token_label: String,
    pub serial: String,
    pub manufacturer: String,
    pub model: String,
    /// AWS import wrapping algorithms the token can perform, strongest first.
    pub wrap_algorithms: Vec<String>,
    /// Keys the database knows that the token does not hold (never dropped silently).
    pub missing_keys: Vec<String>,
    /// Objects an interrupted write left half-made on the token, found at start-up, and what
    /// was done with each (absent when there were none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub torn_objects: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreStatus {
    pub path: String,
    pub schema_version: u32,
    pub size_bytes: u64,
    pub users: usize,
    pub keys: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditStatus {
    pub records: u64,
    pub head_seq: u64,
    pub head_hash: String,
}

/// `whoami` and `login`: who is logged in on this session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub channel: String,
    pub users: Vec<SessionUser>,
    /// Two distinct administrators are logged in: sensitive operations run directly.
    pub dual_control: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub name: String,
    pub role: Role,
    /// A one-time password is in use: only `passwd` and `logout` work until it is changed.
    pub must_change_password: bool,
}

/// `user list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
    /// `active`, `locked` (by an administrator) or `locked until <time>` (failed logins).
    pub state: String,
    pub must_change_password: bool,
    pub failed_logins: u32,
    pub created: String,
}

/// `user add` and `user reset`: the one-time password, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTimePassword {
    pub name: String,
    pub one_time_password: Password,
}

/// `pending`: a request waiting for a second administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingApproval {
    pub id: u64,
    pub requested_by: String,
    pub channel: String,
    /// The operation in the serial command language, e.g. `user add carol auditor`.
    pub operation: String,
    pub requested: String,
    pub expires: String,
}

/// `audit list`: one record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecordView {
    pub seq: u64,
    pub time: String,
    pub actors: Vec<String>,
    pub channel: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub details: std::collections::BTreeMap<String, String>,
    pub hash: String,
}

/// `credential list`: never the secret; the access key id masked but for its last 4.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialView {
    pub name: String,
    pub access_key_id: String,
    pub created: String,
    /// `never`, or when a job or test last used it.
    pub last_used: String,
    /// Groups that use it (it cannot be removed while there are any).
    pub groups: Vec<String>,
}

/// `group show` / `group list`: every field of the group (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    pub name: String,
    pub credential: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub alias: String,
    pub description: String,
    pub active_key_id: Option<String>,
    pub policy_file: Option<String>,
    /// The stored policy document.
    pub policy: Option<String>,
    pub disable_previous: bool,
    pub rotate_every: String,
    pub valid_for: String,
    pub rotation_mode: String,
    pub tags: std::collections::BTreeMap<String, String>,
    /// The Keyward id of the group's active key, if it has one.
    pub active_key: Option<String>,
    pub keys: usize,
    pub created: String,
}

/// `key list` / `key show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyView {
    /// The Keyward key id (the HSM's CKA_ID, hex).
    pub id: String,
    pub group: String,
    pub state: KeyState,
    pub fingerprint: String,
    pub aws_key_id: Option<String>,
    pub aws_arn: Option<String>,
    /// As last seen in AWS (`key show` reads it live, and says when AWS did not answer).
    pub aws_key_state: Option<SeenState>,
    pub alias: Option<String>,
    pub created: String,
    /// When the material expires in AWS, or `forever`.
    pub valid_to: String,
    /// The material expires within the warning time (`rotation.expiry_warning`), or has.
    #[serde(default)]
    pub expires_soon: bool,
}

/// `schedule list`: one scheduled key group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleView {
    pub group: String,
    pub rotate_every: String,
    /// RFC 3339, `now` when overdue, or `-` when the group has no schedule.
    pub next_due: String,
    pub last_success: Option<String>,
    /// How the latest rotation job ended (`job 7 succeeded`, `job 8 failed: …`).
    pub last_result: Option<String>,
    /// Why the group is not rotating now although it is due (not the designated rotator, HSM
    /// fault, a job running, waiting to retry), or `None`.
    pub delay: Option<String>,
}

/// The scheduler, for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerStatus {
    /// `running`, or `paused: WHY`.
    pub state: String,
    pub designated: bool,
    pub scheduled_groups: usize,
    /// The earliest next due time of any group, RFC 3339.
    pub next_due: Option<String>,
    pub running_rotations: usize,
    pub concurrency: usize,
}

/// `settings show`: one setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingView {
    pub name: String,
    pub value: String,
    pub description: String,
}

/// `group test`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupTestReport {
    pub group: String,
    pub connection: Connection,
    pub endpoint: String,
    /// Each check: what was called and what came back.
    pub checks: Vec<GroupTestCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupTestCheck {
    /// The permission exercised, e.g. `kms:ListAliases`.
    pub permission: String,
    pub ok: bool,
    pub detail: String,
}

/// `job list` / `job show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    pub id: u64,
    pub kind: JobKind,
    /// The group (rotate) or key (sync).
    pub target: String,
    pub state: JobState,
    /// Percent of steps done.
    pub progress: u8,
    /// The step running or next, if any.
    pub step: Option<String>,
    pub steps: Vec<String>,
    pub requested_by: Vec<String>,
    pub created: String,
    pub updated: String,
    pub finished: Option<String>,
    pub error: Option<String>,
    /// The Keyward key the job made or synchronised.
    pub key: Option<String>,
    pub aws_key_id: Option<String>,
}

/// `job log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLogView {
    pub id: u64,
    pub state: JobState,
    /// Index of the first line returned; ask again with `from = next` for more.
    pub from: usize,
    pub next: usize,
    pub lines: Vec<String>,
}

/// `audit verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditVerifyReport {
    pub intact: bool,
    pub records: u64,
    pub head_seq: u64,
    pub head_hash: String,
}
