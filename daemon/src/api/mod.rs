//! The one API every front end uses. A front end turns its input into a [`Request`], keeps a
//! [`Session`], and shows the [`Response`]; it holds no business logic. The dual-control check
//! is here, below every front end ([`authz`]). Requests run on the blocking pool, because the
//! appliance core does PKCS#11 and sled I/O.

pub mod approvals;
pub mod authz;
pub mod session;

use std::sync::Arc;

use keyward_proto::{ApiError, Approved, ErrorCode, JobStarted, Removed, Reply, Request, Response};
use secrecy::SecretString;
use tracing::error;

use crate::appliance::Appliance;
use crate::config::AuthConfig;
use crate::domain::audit::Actors;
use crate::domain::duration;
use crate::domain::users::LockState;
use crate::error::{Error, Result};
use crate::jobs::Jobs;
use approvals::Approvals;
use authz::{Decision, Requirement, decide, describe, requirement};
use session::{LoggedIn, MAX_USERS, Session};

#[derive(Clone)]
pub struct Api {
    appliance: Arc<Appliance>,
    jobs: Arc<Jobs>,
    approvals: Arc<Approvals>,
    policy: AuthConfig,
}

fn secret(p: &keyward_proto::Password) -> SecretString {
    SecretString::from(p.expose().to_owned())
}

impl Api {
    pub fn new(jobs: Arc<Jobs>, policy: AuthConfig) -> Self {
        Self {
            appliance: jobs.appliance().clone(),
            jobs,
            approvals: Arc::new(Approvals::default()),
            policy,
        }
    }

    pub fn appliance(&self) -> &Arc<Appliance> {
        &self.appliance
    }

    /// Handles one request for `session`, on the blocking pool.
    pub async fn handle(&self, session: &mut Session, request: Request) -> Response {
        let api = self.clone();
        let mut owned = session.clone();
        let fallback = Session::new(session.channel, session.peer.clone());
        // Every line logged while the request runs says which front end asked for what.
        let span = tracing::info_span!(
            "request",
            channel = session.channel.as_str(),
            op = request.op().name()
        );
        match tokio::task::spawn_blocking(move || {
            let result = span.in_scope(|| api.handle_blocking(&mut owned, request));
            (owned, result)
        })
        .await
        {
            Ok((updated, result)) => {
                *session = updated;
                Response::from_result(result.map_err(ApiError::from))
            }
            Err(join) => {
                error!(error = %join, "request handler failed; the session is logged out");
                *session = fallback;
                Response::err(ApiError::new(
                    ErrorCode::Internal,
                    "the request failed inside the daemon; see its log",
                ))
            }
        }
    }

    /// Logs everyone out of an idle session. Returns who was logged out.
    pub fn expire_idle(&self, session: &mut Session) -> Vec<String> {
        if session.users.is_empty() || session.last_activity.elapsed() < self.policy.idle_timeout {
            return Vec::new();
        }
        let reason = format!("idle for {}", duration::format(self.policy.idle_timeout));
        self.logout_all(session, &reason)
    }

    /// Logs everyone out (idle, the line dropped, the connection closed).
    pub fn logout_all(&self, session: &mut Session, reason: &str) -> Vec<String> {
        let names: Vec<String> = session.users.drain(..).map(|u| u.name).collect();
        for name in &names {
            if let Err(e) = self.appliance.record_logout(name, session.channel, reason) {
                error!(user = %name, error = %e, "could not audit a logout");
            }
        }
        names
    }

    /// Drops users whose account was locked (by an administrator, or after failed logins on
    /// this session's front end) or removed since they logged in.
    fn revalidate(&self, session: &mut Session) -> Result<()> {
        let mut kept = Vec::new();
        for user in session.users.drain(..).collect::<Vec<_>>() {
            match self.appliance.find_user(&user.name)? {
                Some(u) if u.credential_epoch() != user.epoch => self.appliance.record_logout(
                    &user.name,
                    session.channel,
                    "password changed or reset, or account re-created",
                )?,
                Some(u)
                    if self.appliance.lock_state(&u, session.channel, &self.policy)
                        == LockState::Active =>
                {
                    kept.push(LoggedIn {
                        must_change_password: u.must_change_password,
                        role: u.role,
                        ..user
                    })
                }
                Some(_) => {
                    self.appliance
                        .record_logout(&user.name, session.channel, "account locked")?
                }
                None => {
                    self.appliance
                        .record_logout(&user.name, session.channel, "account removed")?
                }
            }
        }
        session.users = kept;
        Ok(())
    }

    fn handle_blocking(&self, session: &mut Session, request: Request) -> Result<Reply> {
        let idle = self.expire_idle(session);
        if !idle.is_empty() && !matches!(request, Request::Login { .. }) {
            return Err(Error::Auth(format!(
                "{} logged out after {} without activity; log in again",
                idle.join(" and "),
                duration::format(self.policy.idle_timeout)
            )));
        }
        self.revalidate(session)?;
        session.last_activity = std::time::Instant::now();
        match decide(session, requirement(&request))? {
            Decision::Run(names) => {
                let op = request.op();
                let reply = self.run(session, names, request)?;
                // The contract: a request gets its own reply (as parsec checks its opcodes).
                if reply.op() != op {
                    return Err(Error::Internal(format!(
                        "'{}' was answered as '{}'",
                        op.name(),
                        reply.op().name()
                    )));
                }
                Ok(reply)
            }
            Decision::NeedsApproval(requester) => {
                let pending = self.approvals.request(
                    &self.appliance,
                    &requester,
                    session.channel,
                    request,
                    self.policy.approval_ttl,
                )?;
                Err(Error::DualControl(format!(
                    "this operation needs a second administrator: log in a second administrator or ask one to run 'approve {}'",
                    pending
                )))
            }
        }
    }

    /// Runs a request the session is allowed to make, performed by `names`.
    fn run(&self, session: &mut Session, names: Vec<String>, request: Request) -> Result<Reply> {
        let app = &self.appliance;
        let by = Actors::new(names, session.channel);
        match request {
            Request::Login { user, password } => {
                if session.users.iter().any(|u| u.name == user) {
                    return Err(Error::Invalid(format!(
                        "{user} is already logged in on this session"
                    )));
                }
                if session.users.len() >= MAX_USERS {
                    return Err(Error::Invalid(format!(
                        "{MAX_USERS} users are logged in on this session already; 'logout USER' first"
                    )));
                }
                let account =
                    app.login(&user, &secret(&password), session.channel, &self.policy)?;
                session.users.push(LoggedIn {
                    epoch: account.credential_epoch(),
                    name: account.name,
                    role: account.role,
                    must_change_password: account.must_change_password,
                });
                Ok(Reply::Login(session.info()))
            }
            Request::Logout { user } => {
                match user {
                    Some(name) => {
                        let before = session.users.len();
                        session.users.retain(|u| u.name != name);
                        if session.users.len() == before {
                            return Err(Error::NotFound(format!(
                                "{name} is not logged in on this session"
                            )));
                        }
                        app.record_logout(&name, session.channel, "logout")?;
                    }
                    None => {
                        self.logout_all(session, "logout");
                    }
                }
                Ok(Reply::Logout(session.info()))
            }
            Request::Whoami => Ok(Reply::Whoami(session.info())),
            Request::Passwd { user, old, new } => {
                let name = match (user, session.users.as_slice()) {
                    (Some(name), users) if users.iter().any(|u| u.name == name) => name,
                    (Some(name), _) => {
                        return Err(Error::Auth(format!(
                            "{name} is not logged in on this session"
                        )));
                    }
                    (None, [only]) => only.name.clone(),
                    (None, []) => {
                        return Err(Error::Auth("not logged in: 'login USER' first".into()));
                    }
                    (None, _) => {
                        return Err(Error::Invalid(
                            "two users are logged in: say whose password, 'passwd USER'".into(),
                        ));
                    }
                };
                app.change_password(
                    &name,
                    session.channel,
                    &secret(&old),
                    &secret(&new),
                    &self.policy,
                )?;
                let epoch = app.get_user(&name)?.credential_epoch();
                for u in session.users.iter_mut().filter(|u| u.name == name) {
                    u.must_change_password = false;
                    u.epoch = epoch.clone();
                }
                Ok(Reply::Passwd(session.info()))
            }
            Request::Status => {
                let mut status = app.status()?;
                status.scheduler = self.jobs.scheduler_status();
                Ok(Reply::Status(status))
            }
            Request::ScheduleList => Ok(Reply::ScheduleList(self.jobs.schedule_list()?)),
            Request::SettingsShow => Ok(Reply::SettingsShow(app.settings_show())),
            Request::AuditList { from, limit } => Ok(Reply::AuditList(
                app.audit_list(from.unwrap_or(1), limit.unwrap_or(50))?,
            )),
            Request::AuditVerify => Ok(Reply::AuditVerify(app.audit_verify()?)),
            Request::UserList => Ok(Reply::UserList(app.list_users(&self.policy)?)),
            Request::Pending => Ok(Reply::Pending(self.approvals.list())),
            Request::CredentialList => Ok(Reply::CredentialList(app.credential_list()?)),
            Request::GroupShow { name } => {
                Ok(Reply::GroupShow(app.group_view(&app.get_group(&name)?)?))
            }
            Request::GroupList => Ok(Reply::GroupList(app.group_list()?)),
            Request::GroupTest { name } => {
                Ok(Reply::GroupTest(self.jobs.kms().group_test(&by, &name)?))
            }
            Request::KeyList { group } => Ok(Reply::KeyList(app.key_list(group.as_deref())?)),
            Request::KeyShow { key } => Ok(Reply::KeyShow(self.jobs.kms().key_show(&by, &key)?)),
            Request::JobList => Ok(Reply::JobList(self.jobs.list()?)),
            Request::JobShow { id } => Ok(Reply::JobShow(crate::jobs::view(&self.jobs.get(id)?))),
            Request::JobLog { id, from } => {
                Ok(Reply::JobLog(self.jobs.log(id, from.unwrap_or(0))?))
            }
            Request::JobWait { id, timeout_ms } => Ok(Reply::JobWait(
                self.jobs
                    .wait(id, timeout_ms.map(std::time::Duration::from_millis))?,
            )),
            Request::Approve { id } => {
                let taken = self.approvals.take(id, &by.names).and_then(|(approved, performed_by)| {
                    // The requester must still be an administrator in good standing.
                    if app.get_user(&performed_by[0])?.can_approve() {
                        Ok((approved, performed_by))
                    } else {
                        Err(Error::DualControl(format!(
                            "request {id} was made by {}, who is no longer an active administrator; it was dropped",
                            performed_by[0]
                        )))
                    }
                });
                let (approved, performed_by) = match taken {
                    Ok(t) => t,
                    Err(e) => {
                        // Refused approvals (own request, expired, unknown) are part of the record.
                        app.record_approval_refused(&by, id, &e.to_string())?;
                        return Err(e);
                    }
                };
                let mut actors = Actors::new(performed_by, session.channel);
                actors.approval = Some(id);
                let reply = self.run_sensitive(&actors, approved)?;
                let op = reply.op();
                Approved::from_reply(reply)
                    .map(Reply::Approve)
                    .ok_or_else(|| Error::Internal(format!("'{}' cannot be approved", op.name())))
            }
            sensitive => self.run_sensitive(&by, sensitive),
        }
    }

    /// Runs a two-administrator request; `by` names both administrators.
    fn run_sensitive(&self, by: &Actors, request: Request) -> Result<Reply> {
        let app = &self.appliance;
        if requirement(&request) != Requirement::TwoAdministrators || by.names.len() < 2 {
            return Err(Error::Internal(format!(
                "refused to run '{}' without two administrators",
                describe(&request)
            )));
        }
        match request {
            Request::UserAdd { name, role } => Ok(Reply::UserAdd(app.add_user(by, &name, role)?)),
            Request::UserReset { name } => Ok(Reply::UserReset(app.reset_user(by, &name)?)),
            Request::UserLock { name } => Ok(Reply::UserLock(app.lock_user(by, &name)?)),
            Request::UserUnlock { name } => Ok(Reply::UserUnlock(app.unlock_user(by, &name)?)),
            Request::UserRemove { name } => Ok(Reply::UserRemove(app.remove_user(by, &name)?)),
            Request::FirmwareInstall {
                path,
                allow_downgrade,
            } => Ok(Reply::FirmwareInstall(app.firmware_install(
                by,
                &path,
                allow_downgrade,
            )?)),
            Request::CredentialImport { name, path } => Ok(Reply::CredentialImport(
                app.credential_import(by, &name, &path)?,
            )),
            Request::CredentialAdd {
                name,
                access_key_id,
                secret_access_key,
            } => Ok(Reply::CredentialAdd(app.credential_add(
                by,
                &name,
                &access_key_id,
                &secret(&secret_access_key),
            )?)),
            Request::CredentialRemove { name } => {
                app.credential_remove(by, &name)?;
                Ok(Reply::CredentialRemove(Removed { removed: name }))
            }
            Request::GroupCreate { name, fields } => {
                Ok(Reply::GroupCreate(app.group_create(by, &name, &fields)?))
            }
            Request::GroupSet { name, fields } => {
                Ok(Reply::GroupSet(app.group_set(by, &name, &fields)?))
            }
            Request::GroupRemove { name } => {
                app.group_remove(by, &name)?;
                Ok(Reply::GroupRemove(Removed { removed: name }))
            }
            Request::GroupRotate { name } => Ok(Reply::GroupRotate(JobStarted {
                job: self.jobs.rotate(by, &name)?,
            })),
            Request::KeySync {
                key,
                delete_material,
                update_policy,
                import_material,
            } => Ok(Reply::KeySync(JobStarted {
                job: self
                    .jobs
                    .sync(by, &key, delete_material, update_policy, import_material)?,
            })),
            Request::JobRetry { id } => Ok(Reply::JobRetry(self.jobs.retry(by, id)?)),
            Request::SettingsSet { name, value } => {
                Ok(Reply::SettingsSet(app.settings_set(by, &name, &value)?))
            }
            other => Err(Error::Internal(format!(
                "'{}' is not a two-administrator operation",
                describe(&other)
            ))),
        }
    }
}
