//! Accounts: login with lockout, and user management. Every failure and every change is audited;
//! no password, hash or one-time password ever goes into a record. A name that is no account
//! goes through the same count, the same password check (against a hash nothing matches) and
//! the same answers as an account, so neither the answers nor their timing tell which names
//! exist (issue 14).

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use keyward_proto::{OneTimePassword, Password, UserInfo};
use secrecy::{ExposeSecret, SecretString};

use super::Appliance;
use crate::config::AuthConfig;
use crate::domain::audit::{Actors, AuditEntry, Channel, Outcome};
use crate::domain::users::{
    Attempt, FAILED_LOGIN_NAMES, Failed, FailedLogins, FrontEnd, LockState, Lockout, PasswordHash,
    Role, User, one_time_password, validate_name, validate_password,
};
use crate::domain::{format_ms, now_ms};
use crate::error::{Error, Result};

const LOGIN_FAILED: &str = "login failed: unknown user or wrong password";

/// The first 8 hex digits of SHA-256 of a name that is no account.
fn name_fingerprint(name: &str) -> String {
    hex::encode(&ring::digest::digest(&ring::digest::SHA256, name.as_bytes()).as_ref()[..4])
}

/// Failed logins of every name on every front end, and the hash a name that is no account is
/// checked against.
pub(super) struct Logins {
    failed: Mutex<FailedLogins>,
    /// Signalled whenever a check finishes, for attempts that wait ([`Attempt::Wait`]).
    finished: Condvar,
    unmatchable: PasswordHash,
}

/// A password being checked: it counts as a possible failure until it is finished, and as a
/// failure if it is dropped unfinished.
struct Checking<'a> {
    logins: &'a Logins,
    front_end: FrontEnd,
    name: &'a str,
    policy: Lockout,
    finished: bool,
}

impl Checking<'_> {
    /// Records how the check went: the failure as counted, or `None` for a right password.
    fn finish(mut self, right: bool) -> Option<Failed> {
        self.finished = true;
        self.logins
            .finish(self.front_end, self.name, self.policy, right)
    }
}

impl Drop for Checking<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.logins
                .finish(self.front_end, self.name, self.policy, false);
        }
    }
}

impl Logins {
    /// `key`: random bytes (from the HSM) that key the names' hashes in the table.
    pub(super) fn new(key: &[u8]) -> Self {
        Self {
            failed: Mutex::new(FailedLogins::new(key, FAILED_LOGIN_NAMES)),
            finished: Condvar::new(),
            unmatchable: PasswordHash::unmatchable(),
        }
    }

    fn table(&self) -> MutexGuard<'_, FailedLogins> {
        self.failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts an attempt before its password is checked: a check to finish, or the time the
    /// name is locked until on this front end. Waits while the checks in flight could still
    /// use up what is left before the lock.
    fn begin<'a>(
        &'a self,
        front_end: FrontEnd,
        name: &'a str,
        policy: Lockout,
    ) -> std::result::Result<Checking<'a>, u64> {
        let mut table = self.table();
        loop {
            match table.begin(front_end, name, now_ms(), policy) {
                Attempt::Check => {
                    return Ok(Checking {
                        logins: self,
                        front_end,
                        name,
                        policy,
                        finished: false,
                    });
                }
                Attempt::Refused { until } => return Err(until),
                // A check takes a fraction of a second; the timeout only bounds a missed signal.
                Attempt::Wait => {
                    table = match self.finished.wait_timeout(table, Duration::from_secs(1)) {
                        Ok((table, _)) => table,
                        Err(poisoned) => poisoned.into_inner().0,
                    }
                }
            }
        }
    }

    fn finish(
        &self,
        front_end: FrontEnd,
        name: &str,
        policy: Lockout,
        right: bool,
    ) -> Option<Failed> {
        let failed = self
            .table()
            .finish(front_end, name, now_ms(), policy, right);
        self.finished.notify_all();
        failed
    }
}

/// The answer to an attempt refused unchecked while the name is locked on a front end.
fn locked_error(name: &str, until: u64, front_end: FrontEnd, policy: &AuthConfig) -> Error {
    Error::Locked(format!(
        "account {name} is locked until {} after {} failed logins on {}; wait, or ask administrators to 'user unlock {name}'",
        format_ms(until),
        policy.max_failed_logins,
        front_end.place()
    ))
}

impl Appliance {
    /// Checks a password. Failures count towards the lockout of the name on the front end the
    /// attempt came in on, and are audited with the reason.
    pub fn login(
        &self,
        name: &str,
        password: &SecretString,
        channel: Channel,
        policy: &AuthConfig,
    ) -> Result<User> {
        let front_end = FrontEnd::of(channel);
        // A name that is no account may be a password typed into the wrong field: it never
        // goes into the trail, only a short fingerprint that lets repeated attempts be matched.
        let known = validate_name(name)
            .is_ok()
            .then(|| self.store.get_user(name))
            .transpose()?
            .flatten();
        let shown = match &known {
            Some(_) => name.to_owned(),
            None => format!("(unknown user {})", name_fingerprint(name)),
        };
        let failure = |reason: &str| {
            AuditEntry::new(channel, "auth.login", shown.clone(), Outcome::Failure)
                .actors([shown.clone()])
                .detail("reason", reason)
        };
        // Counted before the password is checked, so attempts in flight count too.
        let checking = match self.logins.begin(front_end, name, policy.lockout_policy()) {
            Ok(checking) => checking,
            Err(until) => {
                let reason = match known {
                    Some(_) => "account locked after failed logins",
                    None => "no such user, locked after failed logins",
                };
                self.audit
                    .append(failure(reason).detail("locked_until", format_ms(until)))?;
                return Err(locked_error(name, until, front_end, policy));
            }
        };
        let hash = known
            .as_ref()
            .map_or(&self.logins.unmatchable, |u| &u.password);
        // Always the full PBKDF2, account or not (the unmatchable hash matches no password).
        let right = hash.verify(password);
        let failed = checking.finish(right);
        let user = match (known, failed) {
            (Some(user), None) => user,
            (known, failed) => {
                let reason = match known {
                    Some(_) => "wrong password",
                    None => "no such user",
                };
                let Failed {
                    count,
                    locked_until,
                } = failed.unwrap_or(Failed {
                    count: 0,
                    locked_until: None,
                });
                let mut entry = failure(reason).detail("failed_logins", count.to_string());
                if let Some(until) = locked_until {
                    entry = entry.detail("locked_until", format_ms(until));
                }
                self.audit.append(entry)?;
                return Err(match locked_until {
                    Some(until) => Error::Locked(format!(
                        "{LOGIN_FAILED}; account {name} is now locked until {} after {} failed logins on {}",
                        format_ms(until),
                        policy.max_failed_logins,
                        front_end.place()
                    )),
                    None => Error::Auth(LOGIN_FAILED.into()),
                });
            }
        };
        // Only someone who knows the password learns that an administrator locked the account.
        if user.locked {
            self.audit
                .append(failure("account locked by an administrator"))?;
            return Err(Error::Locked(format!(
                "account {name} is locked by an administrator; another administrator can 'user unlock {name}'"
            )));
        }
        // Audit first: a login the trail cannot record does not happen.
        self.audit.append(
            AuditEntry::new(channel, "auth.login", name, Outcome::Success)
                .actors([name])
                .detail(
                    "must_change_password",
                    user.must_change_password.to_string(),
                ),
        )?;
        Ok(user)
    }

    /// Whether `user` may stay logged in on `channel`: not locked by an administrator, nor
    /// after failed logins on that front end.
    pub fn lock_state(&self, user: &User, channel: Channel, policy: &AuthConfig) -> LockState {
        if user.locked {
            return LockState::Locked;
        }
        self.logins.table().lock_state(
            FrontEnd::of(channel),
            &user.name,
            now_ms(),
            policy.lockout_policy(),
        )
    }

    /// Records a logout (explicit, idle, or the line dropping).
    pub fn record_logout(&self, name: &str, channel: Channel, reason: &str) -> Result<()> {
        self.audit.append(
            AuditEntry::new(channel, "auth.logout", name, Outcome::Notice)
                .actors([name])
                .detail("reason", reason),
        )?;
        Ok(())
    }

    /// Records a request that waits for a second administrator; its sequence number is the
    /// approval's id (unique for the life of the appliance, and it points at the record).
    pub fn record_approval_request(
        &self,
        requester: &str,
        channel: Channel,
        operation: &str,
        expires_ms: u64,
    ) -> Result<u64> {
        Ok(self.audit.append(
            AuditEntry::new(channel, "approval.request", operation, Outcome::Notice)
                .actors([requester])
                .detail("expires", crate::domain::format_ms(expires_ms)),
        )?)
    }

    /// Records an approval that was refused (own request, expired, unknown, requester gone).
    pub fn record_approval_refused(&self, by: &Actors, id: u64, reason: &str) -> Result<()> {
        self.audit.append(
            by.entry("approval.refused", &id.to_string(), Outcome::Failure)
                .detail("reason", reason),
        )?;
        Ok(())
    }

    /// The account, if there is one (a session checks that its users still may act).
    pub fn find_user(&self, name: &str) -> Result<Option<User>> {
        Ok(self.store.get_user(name)?)
    }

    /// Accounts with their state: `locked` (by an administrator), `locked until T on serial`
    /// (after failed logins there), or `active`; `failed_logins` adds up the failures each front
    /// end still counts, the ones that set a lock included.
    pub fn list_users(&self, policy: &AuthConfig) -> Result<Vec<UserInfo>> {
        let users = self.store.list_users()?;
        let now = now_ms();
        let lockout = policy.lockout_policy();
        let table = self.logins.table();
        Ok(users
            .into_iter()
            .map(|u| {
                let failures = FrontEnd::ALL.map(|f| (f, table.current(f, &u.name, now, lockout)));
                let locks: Vec<String> = failures
                    .iter()
                    .filter_map(|(f, fails)| {
                        let until = fails.locked_until_ms.filter(|t| *t > now)?;
                        Some(format!("{} on {}", format_ms(until), f.as_str()))
                    })
                    .collect();
                UserInfo {
                    state: if u.locked {
                        "locked".into()
                    } else if locks.is_empty() {
                        "active".into()
                    } else {
                        format!("locked until {}", locks.join(", until "))
                    },
                    failed_logins: failures
                        .iter()
                        .fold(0u32, |sum, (_, f)| sum.saturating_add(f.count)),
                    name: u.name,
                    role: u.role,
                    must_change_password: u.must_change_password,
                    created: format_ms(u.created_ms),
                }
            })
            .collect())
    }

    pub fn get_user(&self, name: &str) -> Result<User> {
        self.store.get_user(name)?.ok_or_else(|| {
            Error::NotFound(format!("no user named '{name}'; 'user list' shows them"))
        })
    }

    fn new_one_time_password(&self, name: &str) -> Result<(SecretString, PasswordHash)> {
        let otp = one_time_password(&self.hsm.random(16)?);
        let salt = self.hsm.random(16)?;
        let hash = PasswordHash::derive(&otp, &salt);
        let _ = name;
        Ok((otp, hash))
    }

    fn reveal(name: &str, otp: SecretString) -> OneTimePassword {
        OneTimePassword {
            name: name.to_owned(),
            one_time_password: Password::new(otp.expose_secret()),
        }
    }

    /// Refuses a change that would leave fewer than two usable administrators: dual control
    /// could then never be satisfied again.
    fn keep_two_administrators(&self, without: &str, action: &str) -> Result<()> {
        let remaining = self
            .store
            .list_users()?
            .iter()
            .filter(|u| u.name != without && u.can_approve())
            .count();
        if remaining < 2 {
            return Err(Error::Invalid(format!(
                "refused: {action} {without} would leave {remaining} usable administrator(s), and dual control needs two; add an administrator first"
            )));
        }
        Ok(())
    }

    pub fn add_user(&self, by: &Actors, name: &str, role: Role) -> Result<OneTimePassword> {
        validate_name(name).map_err(Error::Invalid)?;
        self.audited(by, "user.add", name, || {
            if self.store.get_user(name)?.is_some() {
                return Err(Error::Invalid(format!("user '{name}' already exists")));
            }
            let (otp, password) = self.new_one_time_password(name)?;
            let user = User::new(name, role, password, true, now_ms());
            self.store.add_user(&user)?;
            self.store.flush()?;
            Ok(Self::reveal(name, otp))
        })
    }

    pub fn reset_user(&self, by: &Actors, name: &str) -> Result<OneTimePassword> {
        self.audited(by, "user.reset", name, || {
            let mut user = self.get_user(name)?;
            let (otp, password) = self.new_one_time_password(name)?;
            user.password = password;
            user.must_change_password = true;
            user.locked = false;
            self.store.put_user(&user)?;
            self.store.flush()?;
            self.logins.table().clear(name);
            Ok(Self::reveal(name, otp))
        })
    }

    pub fn lock_user(&self, by: &Actors, name: &str) -> Result<()> {
        let _one_at_a_time = self.lock_user_changes();
        self.audited(by, "user.lock", name, || {
            let mut user = self.get_user(name)?;
            if user.role == Role::Administrator {
                self.keep_two_administrators(name, "locking")?;
            }
            user.locked = true;
            self.store.put_user(&user)?;
            Ok(self.store.flush()?)
        })
    }

    pub fn unlock_user(&self, by: &Actors, name: &str) -> Result<()> {
        self.audited(by, "user.unlock", name, || {
            let mut user = self.get_user(name)?;
            user.locked = false;
            self.store.put_user(&user)?;
            self.store.flush()?;
            // Failed-login locks too, on every front end.
            self.logins.table().clear(name);
            Ok(())
        })
    }

    pub fn remove_user(&self, by: &Actors, name: &str) -> Result<()> {
        let _one_at_a_time = self.lock_user_changes();
        self.audited(by, "user.remove", name, || {
            let user = self.get_user(name)?;
            if user.role == Role::Administrator {
                self.keep_two_administrators(name, "removing")?;
            }
            self.store.remove_user(name)?;
            Ok(self.store.flush()?)
        })
    }

    /// Changes a user's own password (they proved the old one) and ends a one-time password.
    pub fn change_password(
        &self,
        name: &str,
        channel: Channel,
        old: &SecretString,
        new: &SecretString,
        policy: &AuthConfig,
    ) -> Result<()> {
        let by = Actors::new(vec![name.to_owned()], channel);
        let front_end = FrontEnd::of(channel);
        self.audited(&by, "user.passwd", name, || {
            let mut user = self.get_user(name)?;
            // Guessing the current password at an unattended session counts like a login.
            let checking = self
                .logins
                .begin(front_end, name, policy.lockout_policy())
                .map_err(|until| locked_error(name, until, front_end, policy))?;
            if checking.finish(user.password.verify(old)).is_some() {
                return Err(Error::Auth(
                    "the current password is wrong; the password was not changed".into(),
                ));
            }
            validate_password(new).map_err(Error::Invalid)?;
            if old.expose_secret() == new.expose_secret() {
                return Err(Error::Invalid(
                    "the new password must differ from the current one".into(),
                ));
            }
            user.password = PasswordHash::derive(new, &self.hsm.random(16)?);
            user.must_change_password = false;
            self.store.put_user(&user)?;
            Ok(self.store.flush()?)
        })
    }
}
