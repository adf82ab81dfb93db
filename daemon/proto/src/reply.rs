//! The contract: each request has one typed reply. [`Op`] names an operation, [`Reply`] holds
//! its answer, and the table in `contract!` below ties each request to its reply type, so the
//! daemon builds and a front end reads Rust types. On the wire a reply is the `data` of a
//! [`Response`], exactly as docs/console-protocol.md describes.
//!
//! As parsec ties `NativeOperation::X` to `NativeResult::X`: the daemon checks that the reply
//! it built is the one its request names ([`Reply::op`] against [`Request::op`]), and a client
//! decodes `data` with the [`Op`] of the request it sent ([`Response::decode`]).

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorCode};
use crate::request::Request;
use crate::views::*;

/// `credential_remove`, `group_remove`: what was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    pub removed: String,
}

/// The answer to a request that queues a job (`group_rotate`, `key_sync`): its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStarted {
    pub job: u64,
}

/// `firmware_install`: the version now in the active slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareInstalled {
    pub version: String,
    pub slot: String,
    pub active: bool,
}

/// What `approve` answers: the reply of the request it approved. Only two-administrator
/// requests are approved, so these are their reply types. The approver's front end does not
/// know which request it was, so the shapes are told apart by their fields (each has a field
/// the others lack; a test holds every one to that).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Approved {
    Done(()),
    Settings(Vec<SettingView>),
    OneTimePassword(OneTimePassword),
    Credential(CredentialView),
    Group(Box<GroupView>),
    Job(Box<JobView>),
    Firmware(FirmwareInstalled),
    Removed(Removed),
    JobStarted(JobStarted),
}

impl Approved {
    /// The approved request's reply, as `approve` answers it; `None` for a reply no
    /// two-administrator request gives.
    pub fn from_reply(reply: Reply) -> Option<Self> {
        Some(match reply {
            Reply::UserAdd(otp) | Reply::UserReset(otp) => Self::OneTimePassword(otp),
            Reply::UserLock(()) | Reply::UserUnlock(()) | Reply::UserRemove(()) => Self::Done(()),
            Reply::FirmwareInstall(f) => Self::Firmware(f),
            Reply::CredentialImport(c) | Reply::CredentialAdd(c) => Self::Credential(c),
            Reply::CredentialRemove(r) | Reply::GroupRemove(r) => Self::Removed(r),
            Reply::GroupCreate(g) | Reply::GroupSet(g) => Self::Group(Box::new(g)),
            Reply::GroupRotate(j) | Reply::KeySync(j) => Self::JobStarted(j),
            Reply::JobRetry(j) => Self::Job(Box::new(j)),
            Reply::SettingsSet(s) => Self::Settings(s),
            _ => return None,
        })
    }
}

/// The one table: each operation, its wire name, and its reply type.
macro_rules! contract {
    ($($op:ident $name:literal => $reply:ty,)*) => {
        /// An operation: one per [`Request`] variant, with the same name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Op {
            $($op,)*
        }

        impl Op {
            pub const ALL: &'static [Op] = &[$(Op::$op,)*];

            /// The wire name (`"op"` in the request's JSON).
            pub fn name(self) -> &'static str {
                match self {
                    $(Op::$op => $name,)*
                }
            }
        }

        impl Request {
            pub fn op(&self) -> Op {
                match self {
                    $(Request::$op { .. } => Op::$op,)*
                }
            }
        }

        /// The typed answer to a request: one variant per [`Op`], with the same name.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Reply {
            $($op($reply),)*
        }

        impl Reply {
            pub fn op(&self) -> Op {
                match self {
                    $(Reply::$op(_) => Op::$op,)*
                }
            }

            /// Reads the `data` of an answer to `op`.
            pub fn decode(op: Op, data: serde_json::Value) -> Result<Self, serde_json::Error> {
                match op {
                    $(Op::$op => serde_json::from_value(data).map(Reply::$op),)*
                }
            }
        }

        impl Serialize for Reply {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Reply::$op(reply) => reply.serialize(s),)*
                }
            }
        }
    };
}

contract! {
    Status "status" => StatusReport,
    Login "login" => SessionInfo,
    Logout "logout" => SessionInfo,
    Whoami "whoami" => SessionInfo,
    Passwd "passwd" => SessionInfo,
    UserList "user_list" => Vec<UserInfo>,
    UserAdd "user_add" => OneTimePassword,
    UserLock "user_lock" => (),
    UserUnlock "user_unlock" => (),
    UserReset "user_reset" => OneTimePassword,
    UserRemove "user_remove" => (),
    Approve "approve" => Approved,
    Pending "pending" => Vec<PendingApproval>,
    AuditList "audit_list" => Vec<AuditRecordView>,
    AuditVerify "audit_verify" => AuditVerifyReport,
    FirmwareInstall "firmware_install" => FirmwareInstalled,
    CredentialImport "credential_import" => CredentialView,
    CredentialAdd "credential_add" => CredentialView,
    CredentialList "credential_list" => Vec<CredentialView>,
    CredentialRemove "credential_remove" => Removed,
    GroupCreate "group_create" => GroupView,
    GroupSet "group_set" => GroupView,
    GroupShow "group_show" => GroupView,
    GroupList "group_list" => Vec<GroupView>,
    GroupRemove "group_remove" => Removed,
    GroupTest "group_test" => GroupTestReport,
    GroupRotate "group_rotate" => JobStarted,
    KeyList "key_list" => Vec<KeyView>,
    KeyShow "key_show" => KeyView,
    KeySync "key_sync" => JobStarted,
    JobList "job_list" => Vec<JobView>,
    JobShow "job_show" => JobView,
    JobLog "job_log" => JobLogView,
    JobWait "job_wait" => JobView,
    JobRetry "job_retry" => JobView,
    ScheduleList "schedule_list" => Vec<ScheduleView>,
    SettingsShow "settings_show" => Vec<SettingView>,
    SettingsSet "settings_set" => Vec<SettingView>,
}

/// A response: exactly one JSON line, `{"ok":true,"data":…}` or
/// `{"ok":false,"error":{"code":…,"message":…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

impl Response {
    /// A raw frame: for an answer a front end gives itself (the serial port's `format` and
    /// `help`, which are not operations of the API) and for tests of the wire itself. The
    /// daemon answers requests with [`Response::from_result`].
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

    /// The frame for a typed answer.
    pub fn from_result(result: Result<Reply, ApiError>) -> Self {
        let reply = match result {
            Ok(reply) => reply,
            Err(e) => return Self::err(e),
        };
        match serde_json::to_value(&reply) {
            Ok(data) => Self {
                ok: true,
                data: Some(data),
                error: None,
            },
            Err(e) => Self::err(ApiError::new(
                ErrorCode::Internal,
                format!(
                    "the answer to {} could not be written: {e}",
                    reply.op().name()
                ),
            )),
        }
    }

    /// Reads the answer to a request for `op`: its typed reply, or the daemon's error.
    pub fn decode(self, op: Op) -> Result<Reply, ApiError> {
        match (self.ok, self.error) {
            (true, _) => Reply::decode(op, self.data.unwrap_or(serde_json::Value::Null)).map_err(
                |e| {
                    ApiError::new(
                        ErrorCode::Internal,
                        format!(
                            "the daemon's answer to {} could not be read: {e}; are the console and the daemon the same version?",
                            op.name()
                        ),
                    )
                },
            ),
            (false, Some(e)) => Err(e),
            (false, None) => Err(ApiError::new(
                ErrorCode::Internal,
                "the daemon sent an error without a message",
            )),
        }
    }

    /// The `data` as JSON, for scripts and tests that look at the wire itself.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_shapes_match_the_documented_json() {
        let ok =
            serde_json::to_string(&Response::from_result(Ok(Reply::GroupRotate(JobStarted {
                job: 3,
            }))))
            .unwrap();
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
}
