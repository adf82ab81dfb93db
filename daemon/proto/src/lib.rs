//! Wire types shared by `keywardd` and its front ends. The console socket carries one JSON
//! object per line each way; the serial port (JSON mode) uses the same response shape:
//! `{"ok":true,"data":…}` or `{"ok":false,"error":{"code":…,"message":…}}`.
//!
//! This crate links no AWS SDK and no PKCS#11, so the console stays small.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::{Zeroize, Zeroizing};

/// The largest line either side accepts; longer input is an error, not a buffer to grow.
pub const MAX_LINE: usize = 64 * 1024;

/// A password or one-time password on the wire: zeroized on drop, never printed by `Debug`.
/// Reading it is a named, greppable call: [`Password::expose`].
#[derive(
    Clone, PartialEq, Eq, Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop,
)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// May take part in dual control.
    Administrator,
    /// Reads the audit trail and status, nothing else.
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Administrator => "administrator",
            Self::Auditor => "auditor",
        }
    }
}

/// A request from a front end. Which ones need one user, one administrator, or two
/// administrators is decided in one place in the daemon (`api::authz`), never by a front end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// HSM, store and audit-trail status.
    Status,
    /// Adds a user to this session (two administrators on one session satisfy dual control).
    Login {
        user: String,
        password: Password,
    },
    /// Logs one user (or everyone) out of this session.
    Logout {
        #[serde(default)]
        user: Option<String>,
    },
    Whoami,
    /// Changes the password of a user logged in on this session.
    Passwd {
        #[serde(default)]
        user: Option<String>,
        old: Password,
        new: Password,
    },
    UserList,
    UserAdd {
        name: String,
        role: Role,
    },
    UserLock {
        name: String,
    },
    UserUnlock {
        name: String,
    },
    UserReset {
        name: String,
    },
    UserRemove {
        name: String,
    },
    /// Approves another administrator's pending request; it then runs once.
    Approve {
        id: u64,
    },
    Pending,
    AuditList {
        #[serde(default)]
        from: Option<u64>,
        #[serde(default)]
        limit: Option<usize>,
    },
    AuditVerify,
    /// Installs a signed firmware image into the inactive slot and switches to it.
    FirmwareInstall {
        path: String,
        #[serde(default)]
        allow_downgrade: bool,
    },
    /// Stores an AWS credential from the CSV file the AWS console gives out (a path on the
    /// appliance, read by the daemon).
    CredentialImport {
        name: String,
        path: String,
    },
    /// Stores an AWS credential typed in (the serial port prompts for both parts).
    CredentialAdd {
        name: String,
        access_key_id: String,
        secret_access_key: Password,
    },
    CredentialList,
    CredentialRemove {
        name: String,
    },
    /// Creates a key group from `field=value` pairs (see `group show` for the fields).
    GroupCreate {
        name: String,
        fields: std::collections::BTreeMap<String, String>,
    },
    GroupSet {
        name: String,
        fields: std::collections::BTreeMap<String, String>,
    },
    GroupShow {
        name: String,
    },
    GroupList,
    GroupRemove {
        name: String,
    },
    /// Tests the group's connection and permissions in AWS KMS.
    GroupTest {
        name: String,
    },
    /// Force-rotates a group: a job; the response names it.
    GroupRotate {
        name: String,
    },
    KeyList {
        #[serde(default)]
        group: Option<String>,
    },
    KeyShow {
        key: String,
    },
    /// Synchronises one key with AWS: a job; the response names it.
    KeySync {
        key: String,
        #[serde(default)]
        delete_material: bool,
        #[serde(default)]
        update_policy: bool,
        #[serde(default)]
        import_material: bool,
    },
    JobList,
    JobShow {
        id: u64,
    },
    /// Log lines from index `from` (default 0).
    JobLog {
        id: u64,
        #[serde(default)]
        from: Option<usize>,
    },
    /// Returns when the job is done: ok if it succeeded, `job-failed` if it failed.
    JobWait {
        id: u64,
        /// Milliseconds; default 10 minutes, at most 1 hour.
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    /// Runs a failed job again from the step that failed.
    JobRetry {
        id: u64,
    },
    /// Each scheduled group: next due time, last result, and why it waits.
    ScheduleList,
    SettingsShow,
    SettingsSet {
        name: String,
        value: String,
    },
}

/// Stable error codes; front ends show them beside the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    Auth,
    Locked,
    DualControl,
    Permission,
    Invalid,
    NotFound,
    Hsm,
    Store,
    Audit,
    Internal,
    JobFailed,
    /// AWS KMS refused or could not be reached; the message says why.
    Cloud,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Locked => "locked",
            Self::DualControl => "dual-control",
            Self::Permission => "permission",
            Self::Invalid => "invalid",
            Self::NotFound => "not-found",
            Self::Hsm => "hsm",
            Self::Store => "store",
            Self::Audit => "audit",
            Self::Internal => "internal",
            Self::JobFailed => "job-failed",
            Self::Cloud => "cloud",
        }
    }

    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 12] = [
        Self::Auth,
        Self::Locked,
        Self::DualControl,
        Self::Permission,
        Self::Invalid,
        Self::NotFound,
        Self::Hsm,
        Self::Store,
        Self::Audit,
        Self::Internal,
        Self::JobFailed,
        Self::Cloud,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{} {message}", code.as_str())]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// A response: exactly one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

impl Response {
    pub fn ok(data: serde_json::Value) -> Self {
        Self {
            ok: true,
            data: Some(data),
            error: None,
        }
    }
    pub fn err(error: ApiError) -> Self {
        Self {
            ok: false,
            data: None,
            error: Some(error),
        }
    }
    pub fn into_result(self) -> Result<serde_json::Value, ApiError> {
        match (self.ok, self.error) {
            (true, _) => Ok(self.data.unwrap_or(serde_json::Value::Null)),
            (false, Some(e)) => Err(e),
            (false, None) => Err(ApiError::new(
                ErrorCode::Internal,
                "the daemon sent an error without a message",
            )),
        }
    }
}

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
    /// pending, active, previous, disabled or expired.
    pub state: String,
    pub fingerprint: String,
    pub aws_key_id: Option<String>,
    pub aws_arn: Option<String>,
    /// As last seen in AWS (`key show` reads it live).
    pub aws_key_state: Option<String>,
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

/// The answer to a request that queues a job (`group_rotate`, `key_sync`): its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStarted {
    pub job: u64,
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
    /// `Connected` or `Not connected`.
    pub connection: String,
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
    /// rotate or sync.
    pub kind: String,
    /// The group (rotate) or key (sync).
    pub target: String,
    /// queued, running, succeeded or failed.
    pub state: String,
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
    pub state: String,
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

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("line is not valid UTF-8")]
    NotUtf8,
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
}

/// Appends `more`, moving to a larger buffer when needed: the smaller one is wiped as it is
/// dropped, so a line holding a password leaves no copy behind in freed memory.
fn extend_wiping(buf: &mut Zeroizing<Vec<u8>>, more: &[u8]) {
    if buf.capacity() - buf.len() < more.len() {
        let want = (buf.len() + more.len()).max(buf.capacity() * 2);
        let mut bigger = Zeroizing::new(Vec::with_capacity(want));
        bigger.extend_from_slice(buf);
        *buf = bigger;
    }
    buf.extend_from_slice(more);
}

/// Reads one line of at most [`MAX_LINE`] bytes. `Ok(None)` at end of stream. The line (which
/// may hold a password or a one-time password) is wiped when the caller drops it.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Result<Option<Zeroizing<String>>, FrameError> {
    let mut buf = Zeroizing::new(Vec::new());
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()))
            };
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if buf.len() + chunk.len() > MAX_LINE {
            return Err(FrameError::TooLong);
        }
        extend_wiping(&mut buf, chunk);
        let used = done.unwrap_or(available.len());
        reader.consume(used);
        if done.is_some() {
            return match String::from_utf8(std::mem::take(&mut *buf)) {
                Ok(line) => Ok(Some(Zeroizing::new(line))),
                Err(e) => {
                    e.into_bytes().zeroize();
                    Err(FrameError::NotUtf8)
                }
            };
        }
    }
}

/// A `Write` into a buffer that is wiped, growing as [`extend_wiping`] does.
struct WipingWriter(Zeroizing<Vec<u8>>);

impl std::io::Write for WipingWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        extend_wiping(&mut self.0, bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes `value` as one JSON line and flushes. The serialised line (a login or `passwd`
/// carries passwords) is wiped once written.
pub async fn write_json<W: AsyncWrite + Unpin, T: Serialize>(
    writer: &mut W,
    value: &T,
) -> Result<(), FrameError> {
    let mut line = WipingWriter(Zeroizing::new(Vec::with_capacity(1024)));
    serde_json::to_writer(&mut line, value)?;
    extend_wiping(&mut line.0, b"\n");
    writer.write_all(&line.0).await?;
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_shapes_match_the_documented_json() {
        let ok = serde_json::to_string(&Response::ok(serde_json::json!({"job": 3}))).unwrap();
        assert_eq!(ok, r#"{"ok":true,"data":{"job":3}}"#);
        let err = serde_json::to_string(&Response::err(ApiError::new(
            ErrorCode::NotFound,
            "no user bob",
        )))
        .unwrap();
        assert_eq!(
            err,
            r#"{"ok":false,"error":{"code":"not-found","message":"no user bob"}}"#
        );
    }

    #[test]
    fn passwords_never_show_in_debug() {
        let r = Request::Login {
            user: "alice".into(),
            password: Password::new("hunter2hunter2"),
        };
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn unknown_request_is_rejected() {
        assert!(serde_json::from_str::<Request>(r#"{"op":"status"}"#).is_ok());
        assert!(serde_json::from_str::<Request>(r#"{"op":"format_disk"}"#).is_err());
    }

    #[tokio::test]
    async fn oversized_and_non_utf8_lines_are_refused() {
        let long = vec![b'a'; MAX_LINE + 10];
        let mut r = tokio::io::BufReader::new(&long[..]);
        assert!(matches!(read_line(&mut r).await, Err(FrameError::TooLong)));
        let bad: &[u8] = b"\xff\xfe\n";
        let mut r = tokio::io::BufReader::new(bad);
        assert!(matches!(read_line(&mut r).await, Err(FrameError::NotUtf8)));
        let good: &[u8] = b"{\"op\":\"status\"}\nnext\n";
        let mut r = tokio::io::BufReader::new(good);
        let line = |l: Option<Zeroizing<String>>| l.map(|l| l.as_str().to_owned());
        assert_eq!(
            line(read_line(&mut r).await.unwrap()).as_deref(),
            Some("{\"op\":\"status\"}")
        );
        assert_eq!(
            line(read_line(&mut r).await.unwrap()).as_deref(),
            Some("next")
        );
        assert_eq!(line(read_line(&mut r).await.unwrap()), None);
        // A line longer than the first buffer grows (wiping the smaller one) and arrives whole.
        let long = format!("{}\n", "x".repeat(20_000));
        let mut r = tokio::io::BufReader::with_capacity(100, long.as_bytes());
        assert_eq!(
            line(read_line(&mut r).await.unwrap()).map(|l| l.len()),
            Some(20_000)
        );
    }

    #[tokio::test]
    async fn write_json_writes_one_line() {
        let mut out = Vec::new();
        let request = Request::Login {
            user: "alice".into(),
            password: Password::new("p".repeat(3000).as_str()),
        };
        write_json(&mut out, &request).await.unwrap();
        assert_eq!(out.last(), Some(&b'\n'));
        let back: Request = serde_json::from_slice(&out[..out.len() - 1]).unwrap();
        assert_eq!(back, request);
    }
}
