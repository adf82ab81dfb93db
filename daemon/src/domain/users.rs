//! Administrator accounts, their password hashes (PBKDF2-HMAC-SHA256), and the failed-login
//! rules: counted per name and per front end, for names that are accounts and names that are
//! not alike, so that neither the answers nor the work done tell the two apart.

use std::collections::HashMap;
use std::num::NonZeroU32;

use ring::{hmac, pbkdf2};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::domain::audit::Channel;

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

    /// What a name that is no account is checked against: the same work as an account's hash
    /// (same iterations, salt and hash sizes), and no password matches it.
    pub fn unmatchable() -> Self {
        Self {
            iterations: PBKDF2_ITERATIONS,
            salt: hex::encode([0u8; 16]),
            hash: hex::encode([0u8; 32]),
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

/// An account. Failed logins are not part of it: they are counted in memory, per front end, in
/// [`FailedLogins`] (names that are no account are counted there too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub password: PasswordHash,
    /// A one-time password must be changed at the next login.
    pub must_change_password: bool,
    pub created_ms: u64,
    /// Locked by an administrator until unlocked.
    #[serde(default)]
    pub locked: bool,
}

/// Whether a name may log in on a front end now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    Active,
    /// Locked by an administrator (on every front end).
    Locked,
    /// Locked on this front end after failed logins, until this time (ms).
    LockedUntil(u64),
}

impl User {
    /// A new account, not locked.
    pub fn new(
        name: &str,
        role: Role,
        password: PasswordHash,
        must_change_password: bool,
        created_ms: u64,
    ) -> Self {
        Self {
            name: name.to_owned(),
            role,
            password,
            must_change_password,
            created_ms,
            locked: false,
        }
    }

    /// Changes whenever the password is set (new salt) or the account is re-created: sessions
    /// logged in under an older epoch are ended.
    pub fn credential_epoch(&self) -> String {
        format!("{}:{}", self.created_ms, self.password.salt)
    }

    /// May take part in dual control: an administrator, not locked by an administrator, its
    /// one-time password changed. A lock after failed logins does not count here: it holds on
    /// one front end and only slows guessing there, so it cannot take an administrator away
    /// from dual control (issue 14).
    pub fn can_approve(&self) -> bool {
        self.role == Role::Administrator && !self.locked && !self.must_change_password
    }
}

/// Where failed logins are counted and locked. All serial ports count together, so more lines
/// give no more guesses; the local console counts apart, so a lockout earned at a serial line
/// never reaches it (and the other way round).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrontEnd {
    Console,
    Serial,
}

impl FrontEnd {
    pub const ALL: [Self; 2] = [Self::Console, Self::Serial];

    /// The front end a request came in on. Only the console and the serial ports log users in;
    /// anything else on the appliance itself counts as the console.
    pub fn of(channel: Channel) -> Self {
        match channel {
            Channel::Serial => Self::Serial,
            Channel::Console | Channel::Cli | Channel::System => Self::Console,
        }
    }

    /// Its name in `user list` (as the audit trail names the channel).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::Serial => "serial",
        }
    }

    /// Where a lock holds, in an error message.
    pub fn place(self) -> &'static str {
        match self {
            Self::Console => "the console",
            Self::Serial => "the serial ports",
        }
    }
}

/// The lockout policy (`[auth]`): `max_failures` failed logins in a row on one front end, each
/// within `lockout_ms` of the one before, lock the name there for `lockout_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    pub max_failures: u32,
    pub lockout_ms: u64,
}

/// Failed logins of one name on one front end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    /// Failed logins in a row, the ones that set a lock included (until it is forgotten).
    pub count: u32,
    /// When the last of them was counted (ms).
    pub last_ms: u64,
    /// Locked until this time (ms), after `max_failures` of them.
    pub locked_until_ms: Option<u64>,
    /// Passwords being checked right now; each may turn out to be a failure.
    pub checking: u32,
}

impl Failures {
    /// From this time the entry says nothing any more: its lock is over, its last failure is
    /// forgotten and no password is being checked. It can then be dropped without changing any
    /// answer.
    fn forgotten_at(&self, policy: Lockout) -> u64 {
        if self.checking > 0 {
            return u64::MAX;
        }
        self.last_ms
            .saturating_add(policy.lockout_ms)
            .max(self.locked_until_ms.unwrap_or(0))
    }

    fn lock_at(&self, now_ms: u64) -> Option<u64> {
        self.locked_until_ms.filter(|until| *until > now_ms)
    }

    /// Forgets failures older than the lockout (each counts within `lockout` of the last).
    fn refresh(&mut self, now_ms: u64, policy: Lockout) {
        if self.lock_at(now_ms).is_none()
            && self.last_ms.saturating_add(policy.lockout_ms) <= now_ms
        {
            self.count = 0;
            self.locked_until_ms = None;
        }
    }
}

/// What to do with a login (or a `passwd`) attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The name is locked on this front end until then: the password is not checked.
    Refused { until: u64 },
    /// Check the password, then say how it went ([`FailedLogins::finish`]).
    Check,
    /// As many passwords are being checked as could still fail before the lock: ask again
    /// when one of them is finished. So a burst on many connections gets no more checked
    /// than attempts one after the other, and right passwords in a burst all get in.
    Wait,
}

/// A failed attempt, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    /// Its number in the row of failures.
    pub count: u32,
    /// The lock it set, if it was the last allowed.
    pub locked_until: Option<u64>,
}

/// Names whose failures are remembered at most; the least useful entry gives way beyond that.
/// Replacing a live entry takes this many passwords checked within `auth.lockout`, about 2 h of
/// one core's PBKDF2 (see docs/threat-model.md, "Failed logins"); a full table takes about 8 MB.
pub const FAILED_LOGIN_NAMES: usize = 65_536;

/// Failed logins per front end and name, for accounts and names that are none alike: one
/// table, one rule, one eviction, so no answer tells them apart. Names are kept only as a keyed
/// hash (a name that is no account may be a password typed into the wrong field). In memory: a
/// restart forgets them.
pub struct FailedLogins {
    key: hmac::Key,
    capacity: usize,
    entries: HashMap<(FrontEnd, [u8; 16]), Failures>,
}

impl std::fmt::Debug for FailedLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FailedLogins({} names)", self.entries.len())
    }
}

impl FailedLogins {
    /// `key`: random bytes (from the HSM) that key the names' hashes for this process.
    pub fn new(key: &[u8], capacity: usize) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            capacity: capacity.max(1),
            entries: HashMap::new(),
        }
    }

    fn entry_key(&self, front_end: FrontEnd, name: &str) -> (FrontEnd, [u8; 16]) {
        let tag = hmac::sign(&self.key, name.as_bytes());
        let mut short = [0u8; 16];
        short.copy_from_slice(&tag.as_ref()[..16]);
        (front_end, short)
    }

    /// Before a password is checked. Passwords being checked count as possible failures: when
    /// the failures so far and the checks in flight reach `max_failures`, the attempt waits.
    /// Every `Check` must be followed by one [`finish`](Self::finish).
    pub fn begin(
        &mut self,
        front_end: FrontEnd,
        name: &str,
        now_ms: u64,
        policy: Lockout,
    ) -> Attempt {
        let key = self.entry_key(front_end, name);
        if !self.entries.contains_key(&key) {
            self.make_room(now_ms, policy);
        }
        let entry = self.entries.entry(key).or_default();
        if let Some(until) = entry.lock_at(now_ms) {
            return Attempt::Refused { until };
        }
        entry.refresh(now_ms, policy);
        if entry.count.saturating_add(entry.checking) >= policy.max_failures {
            return Attempt::Wait;
        }
        entry.checking += 1;
        Attempt::Check
    }

    /// After a password was checked: a right one ends the name's failures on this front end,
    /// a wrong one is counted (and may set the lock).
    pub fn finish(
        &mut self,
        front_end: FrontEnd,
        name: &str,
        now_ms: u64,
        policy: Lockout,
        right: bool,
    ) -> Option<Failed> {
        let key = self.entry_key(front_end, name);
        let entry = self.entries.entry(key).or_default();
        entry.checking = entry.checking.saturating_sub(1);
        if right {
            *entry = Failures {
                checking: entry.checking,
                ..Failures::default()
            };
            if entry.checking == 0 {
                self.entries.remove(&key);
            }
            return None;
        }
        entry.refresh(now_ms, policy);
        entry.count = entry.count.saturating_add(1);
        entry.last_ms = now_ms;
        if entry.count >= policy.max_failures && entry.lock_at(now_ms).is_none() {
            entry.locked_until_ms = Some(now_ms.saturating_add(policy.lockout_ms));
        }
        Some(Failed {
            count: entry.count,
            locked_until: entry.lock_at(now_ms),
        })
    }

    /// Forgets the name's failures and locks on every front end (`user unlock`, `user reset`);
    /// checks in flight still finish.
    pub fn clear(&mut self, name: &str) {
        for front_end in FrontEnd::ALL {
            let key = self.entry_key(front_end, name);
            match self.entries.get_mut(&key) {
                Some(entry) if entry.checking > 0 => {
                    *entry = Failures {
                        checking: entry.checking,
                        ..Failures::default()
                    };
                }
                Some(_) => {
                    self.entries.remove(&key);
                }
                None => {}
            }
        }
    }

    /// The name's failures on a front end as they count now (nothing once forgotten).
    pub fn current(
        &self,
        front_end: FrontEnd,
        name: &str,
        now_ms: u64,
        policy: Lockout,
    ) -> Failures {
        let mut failures = self
            .entries
            .get(&self.entry_key(front_end, name))
            .copied()
            .unwrap_or_default();
        failures.refresh(now_ms, policy);
        failures
    }

    /// Whether the name may log in on the front end now, as far as failed logins go.
    pub fn lock_state(
        &self,
        front_end: FrontEnd,
        name: &str,
        now_ms: u64,
        policy: Lockout,
    ) -> LockState {
        match self
            .current(front_end, name, now_ms, policy)
            .lock_at(now_ms)
        {
            Some(until) => LockState::LockedUntil(until),
            None => LockState::Active,
        }
    }

    /// Keeps the table bounded: drops what is forgotten, and if that is not enough, the entry
    /// that would be forgotten soonest, the one with fewer failures first (whether it is an
    /// account's or not).
    fn make_room(&mut self, now_ms: u64, policy: Lockout) {
        if self.entries.len() < self.capacity {
            return;
        }
        self.entries.retain(|_, e| e.forgotten_at(policy) > now_ms);
        if self.entries.len() < self.capacity {
            return;
        }
        let soonest = self
            .entries
            .iter()
            .min_by_key(|(_, e)| (e.forgotten_at(policy), e.count))
            .map(|(k, _)| *k);
        if let Some(key) = soonest {
            self.entries.remove(&key);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
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

    const POLICY: Lockout = Lockout {
        max_failures: 5,
        lockout_ms: 900_000,
    };

    fn table() -> FailedLogins {
        FailedLogins::new(&[9; 32], FAILED_LOGIN_NAMES)
    }

    /// One wrong password, one after the other: its failure, or `None` if it was refused
    /// unchecked.
    fn wrong(t: &mut FailedLogins, front_end: FrontEnd, name: &str, now: u64) -> Option<Failed> {
        match t.begin(front_end, name, now, POLICY) {
            Attempt::Check => t.finish(front_end, name, now, POLICY, false),
            Attempt::Refused { .. } => None,
            Attempt::Wait => panic!("one after the other never waits"),
        }
    }

    fn failed(count: u32, locked_until: Option<u64>) -> Option<Failed> {
        Some(Failed {
            count,
            locked_until,
        })
    }

    fn state(t: &FailedLogins, front_end: FrontEnd, name: &str, now: u64) -> LockState {
        t.lock_state(front_end, name, now, POLICY)
    }

    fn count(t: &FailedLogins, front_end: FrontEnd, name: &str, now: u64) -> u32 {
        t.current(front_end, name, now, POLICY).count
    }

    /// Nothing is counted for `name` on the serial ports at `now`, and the next failure is
    /// the first.
    fn starts_afresh(t: &mut FailedLogins, name: &str, now: u64) {
        assert_eq!(count(t, FrontEnd::Serial, name, now), 0);
        assert_eq!(state(t, FrontEnd::Serial, name, now), LockState::Active);
        assert_eq!(wrong(t, FrontEnd::Serial, name, now), failed(1, None));
    }

    #[test]
    fn the_unmatchable_hash_costs_what_an_account_s_does_and_matches_nothing() {
        let real = PasswordHash::derive(&SecretString::from("correct horse battery"), &[7; 16]);
        let none = PasswordHash::unmatchable();
        assert_eq!(none.iterations, real.iterations);
        assert_eq!(none.salt.len(), real.salt.len());
        assert_eq!(none.hash.len(), real.hash.len());
        assert!(!none.verify(&SecretString::from("correct horse battery")));
        assert!(!none.verify(&SecretString::from("")));
    }

    #[test]
    fn five_failures_lock_one_front_end_for_the_lockout_and_keep_their_count() {
        let mut t = table();
        for n in 1..=4 {
            assert_eq!(
                wrong(&mut t, FrontEnd::Serial, "alice", 1_000),
                failed(n, None)
            );
        }
        assert_eq!(
            wrong(&mut t, FrontEnd::Serial, "alice", 1_000),
            failed(5, Some(901_000))
        );
        assert_eq!(
            t.begin(FrontEnd::Serial, "alice", 2_000, POLICY),
            Attempt::Refused { until: 901_000 }
        );
        // The count that locked the name stays visible while the lock holds (issue 14, item 9).
        assert_eq!(count(&t, FrontEnd::Serial, "alice", 2_000), 5);
        assert_eq!(
            state(&t, FrontEnd::Serial, "alice", 2_000),
            LockState::LockedUntil(901_000)
        );
        // The console is another front end: not locked, nothing counted.
        assert_eq!(
            state(&t, FrontEnd::Console, "alice", 2_000),
            LockState::Active
        );
        assert_eq!(
            wrong(&mut t, FrontEnd::Console, "alice", 2_000),
            failed(1, None)
        );
        // After the lock: a fresh start.
        starts_afresh(&mut t, "alice", 901_000);
    }

    #[test]
    fn checks_in_flight_count_so_a_burst_gets_no_more_checked() {
        let mut t = table();
        let started: Vec<Attempt> = (0..20)
            .map(|_| t.begin(FrontEnd::Console, "bob", 5_000, POLICY))
            .collect();
        let checks = started.iter().filter(|a| **a == Attempt::Check).count();
        assert_eq!(checks, 5);
        assert!(started[5..].iter().all(|a| *a == Attempt::Wait));
        // The five turn out wrong: the name is locked, and those who waited are refused.
        for _ in 0..checks {
            t.finish(FrontEnd::Console, "bob", 5_100, POLICY, false);
        }
        assert_eq!(
            t.begin(FrontEnd::Console, "bob", 5_200, POLICY),
            Attempt::Refused { until: 905_100 }
        );
    }

    #[test]
    fn right_passwords_in_a_burst_all_get_in() {
        let mut t = table();
        for _ in 0..5 {
            assert_eq!(
                t.begin(FrontEnd::Console, "alice", 0, POLICY),
                Attempt::Check
            );
        }
        assert_eq!(
            t.begin(FrontEnd::Console, "alice", 0, POLICY),
            Attempt::Wait
        );
        assert_eq!(t.finish(FrontEnd::Console, "alice", 1, POLICY, true), None);
        assert_eq!(
            t.begin(FrontEnd::Console, "alice", 1, POLICY),
            Attempt::Check
        );
        for _ in 0..5 {
            assert_eq!(t.finish(FrontEnd::Console, "alice", 2, POLICY, true), None);
        }
        assert!(t.is_empty());
    }

    #[test]
    fn guessing_stays_at_the_documented_rate() {
        // One guess a second for a day, on each front end: no more than max_failures checked
        // per lockout on each.
        let mut t = table();
        let day_ms = 86_400_000u64;
        for front_end in FrontEnd::ALL {
            let checked_in_a_day = (0..day_ms / 1_000)
                .filter(|s| wrong(&mut t, front_end, "alice", s * 1_000).is_some())
                .count() as u64;
            let windows = day_ms / POLICY.lockout_ms + 1;
            assert!(
                checked_in_a_day <= u64::from(POLICY.max_failures) * windows,
                "{checked_in_a_day} checked in a day on {front_end:?}"
            );
            assert!(checked_in_a_day >= 5 * (windows - 1));
        }
    }

    #[test]
    fn a_failure_is_forgotten_a_lockout_after_the_last_one() {
        let mut t = table();
        for s in 0..4 {
            wrong(&mut t, FrontEnd::Serial, "carol", s * 60_000);
        }
        assert_eq!(count(&t, FrontEnd::Serial, "carol", 200_000), 4);
        // Each within the lockout of the one before: they add up.
        let fifth = 180_000 + 899_999;
        assert_eq!(
            wrong(&mut t, FrontEnd::Serial, "carol", fifth),
            failed(5, Some(fifth + 900_000))
        );
        let mut t = table();
        wrong(&mut t, FrontEnd::Serial, "carol", 0);
        starts_afresh(&mut t, "carol", 900_000);
    }

    #[test]
    fn a_success_ends_its_front_end_s_failures_and_clear_ends_all() {
        let mut t = table();
        for front_end in FrontEnd::ALL {
            for _ in 0..4 {
                wrong(&mut t, front_end, "dave", 0);
            }
        }
        assert_eq!(
            t.begin(FrontEnd::Console, "dave", 1, POLICY),
            Attempt::Check
        );
        t.finish(FrontEnd::Console, "dave", 1, POLICY, true);
        assert_eq!(count(&t, FrontEnd::Console, "dave", 1), 0);
        assert_eq!(count(&t, FrontEnd::Serial, "dave", 1), 4);
        wrong(&mut t, FrontEnd::Serial, "dave", 2);
        assert_eq!(
            state(&t, FrontEnd::Serial, "dave", 3),
            LockState::LockedUntil(900_002)
        );
        t.clear("dave");
        assert!(t.is_empty());
    }

    #[test]
    fn the_table_is_bounded_and_gives_way_by_what_is_forgotten_soonest() {
        let mut t = FailedLogins::new(&[1; 32], 3);
        // "old" is forgotten at 900_000; "locked" holds until 1_000_000 + 900_000, when
        // "recent" is forgotten too.
        wrong(&mut t, FrontEnd::Serial, "old", 0);
        wrong(&mut t, FrontEnd::Serial, "recent", 1_000_000);
        for _ in 0..5 {
            wrong(&mut t, FrontEnd::Serial, "locked", 1_000_000);
        }
        wrong(&mut t, FrontEnd::Serial, "new", 1_000_001);
        assert_eq!(t.len(), 3);
        assert_eq!(count(&t, FrontEnd::Serial, "old", 1_000_001), 0);
        // Full of live entries: the one forgotten soonest ("recent") gives way, not the lock.
        wrong(&mut t, FrontEnd::Serial, "newer", 1_000_003);
        assert_eq!(t.len(), 3);
        assert_eq!(count(&t, FrontEnd::Serial, "recent", 1_000_004), 0);
        assert_eq!(
            state(&t, FrontEnd::Serial, "locked", 1_000_004),
            LockState::LockedUntil(1_900_000)
        );
        // A check in flight is never given away.
        assert_eq!(
            t.begin(FrontEnd::Serial, "x", 2_000_000, POLICY),
            Attempt::Check
        );
        for n in 0..5 {
            wrong(&mut t, FrontEnd::Serial, &format!("flood-{n}"), 2_000_001);
        }
        assert_eq!(
            t.finish(FrontEnd::Serial, "x", 2_000_002, POLICY, false),
            failed(1, None)
        );
        assert_eq!(count(&t, FrontEnd::Serial, "x", 2_000_003), 1);
    }

    #[test]
    fn names_are_kept_only_as_keyed_hashes() {
        let mut t = table();
        t.begin(FrontEnd::Serial, "typed-my-password-here", 0, POLICY);
        assert!(!format!("{t:?}").contains("typed"));
        let other = FailedLogins::new(&[10; 32], 8);
        assert_ne!(
            t.entry_key(FrontEnd::Serial, "x"),
            other.entry_key(FrontEnd::Serial, "x")
        );
    }

    #[test]
    fn only_an_administrator_s_lock_or_a_one_time_password_keep_one_from_dual_control() {
        let mut u = User::new(
            "alice",
            Role::Administrator,
            PasswordHash::unmatchable(),
            false,
            0,
        );
        assert!(u.can_approve());
        u.locked = true;
        assert!(!u.can_approve());
        u.locked = false;
        u.must_change_password = true;
        assert!(!u.can_approve());
        u.must_change_password = false;
        u.role = Role::Auditor;
        assert!(!u.can_approve());
    }

    #[test]
    fn an_old_record_with_failed_logins_still_reads() {
        let old = r#"{"name":"alice","role":"administrator","password":{"iterations":1,"salt":"","hash":""},"must_change_password":false,"created_ms":5,"failed_logins":3,"locked_until_ms":null,"locked":false}"#;
        let u: User = serde_json::from_str(old).unwrap();
        assert_eq!(u.created_ms, 5);
        assert!(!u.locked);
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
