//! Accounts: login with lockout, and user management. Every failure and every change is audited;
//! no password, hash or one-time password ever goes into a record.

use keyward_proto::{OneTimePassword, Password, UserInfo};
use secrecy::{ExposeSecret, SecretString};

use super::Appliance;
use crate::config::AuthConfig;
use crate::domain::audit::{Actors, AuditEntry, Channel, Outcome};
use crate::domain::users::{
    LockState, PasswordHash, Role, User, one_time_password, validate_name, validate_password,
};
use crate::domain::{format_ms, now_ms};
use crate::error::{Error, Result};

const LOGIN_FAILED: &str = "login failed: unknown user or wrong password";

/// The first 8 hex digits of SHA-256 of a name that is no account.
fn name_fingerprint(name: &str) -> String {
    hex::encode(&ring::digest::digest(&ring::digest::SHA256, name.as_bytes()).as_ref()[..4])
}

impl Appliance {
    /// Checks a password. Failures count towards the lockout and are audited with the reason.
    pub fn login(
        &self,
        name: &str,
        password: &SecretString,
        channel: Channel,
        policy: &AuthConfig,
    ) -> Result<User> {
        let now = now_ms();
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
        let Some(mut user) = known else {
            self.audit.append(failure("no such user"))?;
            return Err(Error::Auth(LOGIN_FAILED.into()));
        };
        match user.lock_state(now) {
            LockState::Active => {}
            LockState::Locked => {
                self.audit
                    .append(failure("account locked by an administrator"))?;
                return Err(Error::Locked(format!(
                    "account {name} is locked by an administrator; another administrator can 'user unlock {name}'"
                )));
            }
            LockState::LockedUntil(until) => {
                self.audit
                    .append(failure("account locked after failed logins"))?;
                return Err(Error::Locked(format!(
                    "account {name} is locked until {} after {} failed logins; wait, or ask administrators to 'user unlock {name}'",
                    format_ms(until),
                    policy.max_failed_logins
                )));
            }
        }
        if !user.password.verify(password) {
            user.record_failure(
                now,
                policy.max_failed_logins,
                u64::try_from(policy.lockout.as_millis()).unwrap_or(u64::MAX),
            );
            self.store.put_user(&user)?;
            self.store.flush()?;
            let mut entry =
                failure("wrong password").detail("failed_logins", user.failed_logins.to_string());
            if let Some(until) = user.locked_until_ms {
                entry = entry.detail("locked_until", format_ms(until));
            }
            self.audit.append(entry)?;
            return Err(match user.locked_until_ms {
                Some(until) => Error::Locked(format!(
                    "{LOGIN_FAILED}; account {name} is now locked until {} after {} failed logins",
                    format_ms(until),
                    policy.max_failed_logins
                )),
                None => Error::Auth(LOGIN_FAILED.into()),
            });
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
        user.record_success();
        self.store.put_user(&user)?;
        self.store.flush()?;
        Ok(user)
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

    pub fn list_users(&self) -> Result<Vec<UserInfo>> {
        let now = now_ms();
        Ok(self
            .store
            .list_users()?
            .into_iter()
            .map(|u| UserInfo {
                state: match u.lock_state(now) {
                    LockState::Active => "active".into(),
                    LockState::Locked => "locked".into(),
                    LockState::LockedUntil(t) => format!("locked until {}", format_ms(t)),
                },
                name: u.name,
                role: u.role,
                must_change_password: u.must_change_password,
                failed_logins: u.failed_logins,
                created: format_ms(u.created_ms),
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
        let now = now_ms();
        let remaining = self
            .store
            .list_users()?
            .iter()
            .filter(|u| u.name != without && u.can_approve(now))
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
            let user = User {
                name: name.to_owned(),
                role,
                password,
                must_change_password: true,
                created_ms: now_ms(),
                failed_logins: 0,
                locked_until_ms: None,
                locked: false,
            };
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
            user.record_success();
            user.locked = false;
            self.store.put_user(&user)?;
            self.store.flush()?;
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
            user.record_success();
            self.store.put_user(&user)?;
            Ok(self.store.flush()?)
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
        self.audited(&by, "user.passwd", name, || {
            let mut user = self.get_user(name)?;
            if !user.password.verify(old) {
                // Guessing the current password at an unattended session counts like a login.
                let lockout = u64::try_from(policy.lockout.as_millis()).unwrap_or(u64::MAX);
                user.record_failure(now_ms(), policy.max_failed_logins, lockout);
                self.store.put_user(&user)?;
                self.store.flush()?;
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
