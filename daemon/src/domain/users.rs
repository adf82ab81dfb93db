//! Administrator accounts and their password hashes (PBKDF2-HMAC-SHA256).

use std::num::NonZeroU32;

use ring::pbkdf2;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// OWASP's 2023 figure for PBKDF2-HMAC-SHA256.
pub const PBKDF2_ITERATIONS: u32 = 600_000;
pub const MIN_PASSWORD_LEN: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// May take part in dual control.
    Administrator,
    /// Reads the audit trail and status, nothing else.
    Auditor,
}

/// A stored password hash. Holds no secret: the salt and hash are public by design.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordHash {
    pub iterations: u32,
    pub salt: String,
    pub hash: String,
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
            "the password has {len} characters; use at least {MIN_PASSWORD_LEN}"
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
