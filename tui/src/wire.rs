//! The typed contract as the console reads it, until `keyward-proto` carries it: each request's
//! [`Op`], and the [`Reply`] its answer decodes to. Only the client decodes; the screens match
//! on [`Reply`] variants and never see JSON.

use keyward_proto::{
    ApiError, AuditRecordView, AuditVerifyReport, CredentialView, ErrorCode, GroupTestReport,
    GroupView, JobLogView, JobStarted, JobView, KeyView, OneTimePassword, PendingApproval, Request,
    Response, ScheduleView, SessionInfo, SettingView, StatusReport, UserInfo,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

macro_rules! ops {
    ($($op:ident $name:literal),* $(,)?) => {
        /// One per request: what a reply is decoded as.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Op {
            $($op),*
        }

        impl Op {
            /// The `op` string on the wire.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$op => $name),*
                }
            }
        }

        /// The operation of a request.
        pub fn op(request: &Request) -> Op {
            match request {
                $(Request::$op { .. } => Op::$op),*
            }
        }
    };
}

ops! {
    Status "status", Login "login", Logout "logout", Whoami "whoami", Passwd "passwd",
    UserList "user_list", UserAdd "user_add", UserLock "user_lock", UserUnlock "user_unlock",
    UserReset "user_reset", UserRemove "user_remove", Approve "approve", Pending "pending",
    AuditList "audit_list", AuditVerify "audit_verify", FirmwareInstall "firmware_install",
    CredentialImport "credential_import", CredentialAdd "credential_add",
    CredentialList "credential_list", CredentialRemove "credential_remove",
    GroupCreate "group_create", GroupSet "group_set", GroupShow "group_show",
    GroupList "group_list", GroupRemove "group_remove", GroupTest "group_test",
    GroupRotate "group_rotate", KeyList "key_list", KeyShow "key_show", KeySync "key_sync",
    JobList "job_list", JobShow "job_show", JobLog "job_log", JobWait "job_wait",
    JobRetry "job_retry", ScheduleList "schedule_list", SettingsShow "settings_show",
    SettingsSet "settings_set",
}

/// `credential_remove` and `group_remove`: the name removed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Removed {
    pub removed: String,
}

/// What an approved request answered: whatever that request answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Approved {
    OneTimePassword(OneTimePassword),
    JobStarted(JobStarted),
    Done(()),
}

/// The answer to each request the console sends, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Status(StatusReport),
    Login(SessionInfo),
    Logout(SessionInfo),
    Whoami(SessionInfo),
    Passwd(SessionInfo),
    UserList(Vec<UserInfo>),
    UserAdd(OneTimePassword),
    UserReset(OneTimePassword),
    UserLock(()),
    UserUnlock(()),
    UserRemove(()),
    Approve(Approved),
    Pending(Vec<PendingApproval>),
    AuditList(Vec<AuditRecordView>),
    AuditVerify(AuditVerifyReport),
    CredentialList(Vec<CredentialView>),
    CredentialImport(CredentialView),
    CredentialAdd(CredentialView),
    CredentialRemove(Removed),
    GroupCreate(GroupView),
    GroupSet(GroupView),
    GroupList(Vec<GroupView>),
    GroupRemove(Removed),
    GroupTest(GroupTestReport),
    GroupRotate(JobStarted),
    KeySync(JobStarted),
    KeyList(Vec<KeyView>),
    JobList(Vec<JobView>),
    JobShow(JobView),
    JobRetry(JobView),
    JobLog(JobLogView),
    ScheduleList(Vec<ScheduleView>),
    SettingsSet(Vec<SettingView>),
}

/// Reads the answer to a request of `op`: the daemon's refusal, or the reply typed; an answer
/// that does not fit is an `internal` error naming the op.
pub fn decode(response: Response, op: Op) -> Result<Reply, ApiError> {
    let data = response.into_result()?;
    let unreadable = |e: String| {
        ApiError::new(
            ErrorCode::Internal,
            format!(
                "the daemon's answer to {} could not be read ({e}); is the console older than the daemon?",
                op.name()
            ),
        )
    };
    fn read<T: DeserializeOwned>(data: serde_json::Value) -> Result<T, String> {
        serde_json::from_value(data).map_err(|e| e.to_string())
    }
    let reply = match op {
        Op::Status => read(data).map(Reply::Status),
        Op::Login => read(data).map(Reply::Login),
        Op::Logout => read(data).map(Reply::Logout),
        Op::Whoami => read(data).map(Reply::Whoami),
        Op::Passwd => read(data).map(Reply::Passwd),
        Op::UserList => read(data).map(Reply::UserList),
        Op::UserAdd => read(data).map(Reply::UserAdd),
        Op::UserReset => read(data).map(Reply::UserReset),
        Op::UserLock => Ok(Reply::UserLock(())),
        Op::UserUnlock => Ok(Reply::UserUnlock(())),
        Op::UserRemove => Ok(Reply::UserRemove(())),
        Op::Approve => Ok(Reply::Approve(if data.get("one_time_password").is_some() {
            Approved::OneTimePassword(read(data).map_err(unreadable)?)
        } else if let Ok(job) = serde_json::from_value::<JobStarted>(data) {
            Approved::JobStarted(job)
        } else {
            Approved::Done(())
        })),
        Op::Pending => read(data).map(Reply::Pending),
        Op::AuditList => read(data).map(Reply::AuditList),
        Op::AuditVerify => read(data).map(Reply::AuditVerify),
        Op::CredentialList => read(data).map(Reply::CredentialList),
        Op::CredentialImport => read(data).map(Reply::CredentialImport),
        Op::CredentialAdd => read(data).map(Reply::CredentialAdd),
        Op::CredentialRemove => read(data).map(Reply::CredentialRemove),
        Op::GroupCreate => read(data).map(Reply::GroupCreate),
        Op::GroupSet => read(data).map(Reply::GroupSet),
        Op::GroupList => read(data).map(Reply::GroupList),
        Op::GroupRemove => read(data).map(Reply::GroupRemove),
        Op::GroupTest => read(data).map(Reply::GroupTest),
        Op::GroupRotate => read(data).map(Reply::GroupRotate),
        Op::KeySync => read(data).map(Reply::KeySync),
        Op::KeyList => read(data).map(Reply::KeyList),
        Op::JobList => read(data).map(Reply::JobList),
        Op::JobShow => read(data).map(Reply::JobShow),
        Op::JobRetry => read(data).map(Reply::JobRetry),
        Op::JobLog => read(data).map(Reply::JobLog),
        Op::ScheduleList => read(data).map(Reply::ScheduleList),
        Op::SettingsSet => read(data).map(Reply::SettingsSet),
        Op::FirmwareInstall | Op::GroupShow | Op::KeyShow | Op::JobWait | Op::SettingsShow => {
            Err("the console does not send it".to_string())
        }
    };
    reply.map_err(unreadable)
}
