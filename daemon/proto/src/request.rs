//! Requests from a front end, one variant per operation. Which ones need one user, one
//! administrator or two administrators is decided in one place in the daemon
//! (`api::authz`), never by a front end.

use serde::{Deserialize, Serialize};

use crate::secret::Password;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
