//! Administrator accounts and their password hashes (PBKDF2-HMAC-SHA256).

use std::num::NonZeroU32;

use ring::pbkdf2;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// OWASP's 2023 figure for PBKDF2-HMAC-SHA256.
pub const PBKDF2_ITERATIONS: u32 = 600_000;
pub const MIN_PASSWORD_LEN: usize = 12;

pub use keyward_proto::Role;

/// A stored password hash. Not a secret, but no help to an offline guesser either: `Debug`
/// shows only the iteration count.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordHash {
    pub iterations: u32,
    pub salt: String,
    pub hash: String,
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PasswordHash(PBKDF2-HMAC-SHA256, {} iterations)",
            self.iterations
        )
    }
}

impl PasswordHash {
    /// Hashes `password` with `salt` (16 bytes from the HSM's RNG).
    pub fn derive(password: &SecretString, salt: &[u8]) -> Self {
        let iterations = NonZeroU32::new(PBKDF2_ITERATIONS).unwrap_or(NonZeroU32::MIN);
        let mut out = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            salt,
            password.expose_secret().as_bytes(),
            &mut out,
        );
        Self {
            iterations: iterations.get(),
            salt: hex::encode(salt),
            hash: hex::encode(out),
        }
    }

    /// Constant-time check of `password` against this hash.
    pub fn verify(&self, password: &SecretString) -> bool {
        let (Some(iterations), Ok(salt), Ok(hash)) = (
            NonZeroU32::new(self.iterations),
            hex::decode(&self.salt),
            hex::decode(&self.hash),
        ) else {
            return false;
        };
        pbkdf2::verify(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            password.expose_secret().as_bytes(),
            &hash,
        )
        .is_ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub password: PasswordHash,
    /// A one-time password must be changed at the next login.
    pub must_change_password: bool,
    pub created_ms: u64,
    /// Consecutive failed logins since the last success.
    #[serde(default)]
    pub failed_logins: u32,
    /// Locked after too many failed logins, until this time.
    #[serde(default)]
    pub locked_until_ms: Option<u64>,
    /// Locked by an administrator until unlocked.
    #[serde(default)]
    pub locked: bool,
}

/// Whether an account may log in now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    Active,
    /// Locked by an administrator.
    Locked,
    /// Locked after failed logins, until this time (ms).
    LockedUntil(u64),
}

impl User {
    pub fn lock_state(&self, now_ms: u64) -> LockState {
        match self.locked_until_ms {
            _ if self.locked => LockState::Locked,
            Some(until) if until > now_ms => LockState::LockedUntil(until),
            _ => LockState::Active,
        }
    }

    /// Records a failed login; locks the account once `max_failures` is reached.
    pub fn record_failure(&mut self, now_ms: u64, max_failures: u32, lockout_ms: u64) {
        self.failed_logins = self.failed_logins.saturating_add(1);
        if self.failed_logins >= max_failures {
            self.locked_until_ms = Some(now_ms.saturating_add(lockout_ms));
            self.failed_logins = 0;
        }
    }

    pub fn record_success(&mut self) {
        self.failed_logins = 0;
        self.locked_until_ms = None;
    }

    /// Changes whenever the password is set (new salt) or the account is re-created: sessions
    /// logged in under an older epoch are ended.
    pub fn credential_epoch(&self) -> String {
        format!("{}:{}", self.created_ms, self.password.salt)
    }

    /// May take part in dual control right now (its one-time password changed, too).
    pub fn can_approve(&self, now_ms: u64) -> bool {
        self.is_usable_administrator(now_ms) && !self.must_change_password
    }

    /// May take part in dual control right now.
    pub fn is_usable_administrator(&self, now_ms: u64) -> bool {
        self.role == Role::Administrator && self.lock_state(now_ms) == LockState::Active
    }
}

/// Characters of one-time passwords: no 0/O, 1/l/I, so they survive being read aloud.
const OTP_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
pub const OTP_LEN: usize = 16;

/// A one-time password from random bytes (from the HSM). Each byte picks one character; the
/// modulo bias of 256 % 56 is negligible for a password that must be changed at first use.
pub fn one_time_password(random: &[u8]) -> SecretString {
    let text: String = random
        .iter()
        .take(OTP_LEN)
        .map(|b| OTP_ALPHABET[usize::from(*b) % OTP_ALPHABET.len()] as char)
        .collect();
    SecretString::from(text)
}

/// Account names: 1–32 of lowercase letters, digits, `.`, `_`, `-`, starting with a letter.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok_start = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || name.len() > 32 || !ok_start || !ok_chars {
        return Err(format!(
            "user name '{}' is not allowed: use 1-32 lowercase letters, digits, '.', '_' or '-', starting with a letter",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// Rejects passwords too short to resist guessing.
pub fn validate_password(password: &SecretString) -> Result<(), String> {
    let len = password.expose_secret().chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(format!(
            "the password is too short: use at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_verifies_only_the_right_password() {
        let h = PasswordHash::derive(&SecretString::from("correct horse battery"), &[7; 16]);
        assert_eq!(h.iterations, 600_000);
        assert!(h.verify(&SecretString::from("correct horse battery")));
        assert!(!h.verify(&SecretString::from("correct horse battery!")));
        let other_salt =
            PasswordHash::derive(&SecretString::from("correct horse battery"), &[8; 16]);
        assert_ne!(h.hash, other_salt.hash);
    }

    fn user() -> User {
        User {
            name: "alice".into(),
            role: Role::Administrator,
            password: PasswordHash {
                iterations: 1,
                salt: String::new(),
                hash: String::new(),
            },
            must_change_password: false,
            created_ms: 0,
            failed_logins: 0,
            locked_until_ms: None,
            locked: false,
        }
    }

    #[test]
    fn five_failures_lock_for_the_lockout_then_expire() {
        let mut u = user();
        for _ in 0..4 {
            u.record_failure(1_000, 5, 900_000);
        }
        assert_eq!(u.lock_state(1_000), LockState::Active);
        u.record_failure(1_000, 5, 900_000);
        assert_eq!(u.lock_state(1_000), LockState::LockedUntil(901_000));
        assert!(!u.is_usable_administrator(2_000));
        assert_eq!(u.lock_state(901_000), LockState::Active);
        u.locked = true;
        assert_eq!(u.lock_state(2_000_000), LockState::Locked);
    }

    #[test]
    fn one_time_passwords_use_the_unambiguous_alphabet() {
        let otp = one_time_password(&[0, 55, 56, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(otp.expose_secret().len(), OTP_LEN);
        assert!(otp.expose_secret().chars().all(|c| !"0O1lI".contains(c)));
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("alice").is_ok());
        assert!(validate_name("ops-2.b_c").is_ok());
        for bad in [
            "",
            "Alice",
            "1bob",
            "a b",
            "x".repeat(33).as_str(),
            "al/ice",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
