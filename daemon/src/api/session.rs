//! A front-end session: one console connection, or one serial port. Up to two users log in on
//! it; two distinct administrators on one session satisfy dual control (as on Futurex KMES).

use std::time::Instant;

use keyward_proto::{Role, SessionInfo, SessionUser};

use crate::domain::audit::Channel;

/// A logged-in user as the session remembers them; re-checked against the store per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    pub name: String,
    pub role: Role,
    pub must_change_password: bool,
    /// The account's credential epoch at login: a password change or reset, or a removed and
    /// re-created account, ends this login.
    pub epoch: String,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub channel: Channel,
    /// Where the session is, for logs: `console uid 0`, `serial rack-a`.
    pub peer: String,
    pub(super) users: Vec<LoggedIn>,
    pub(super) last_activity: Instant,
}

/// At most this many users share one session.
pub const MAX_USERS: usize = 2;

impl Session {
    pub fn new(channel: Channel, peer: impl Into<String>) -> Self {
        Self {
            channel,
            peer: peer.into(),
            users: Vec::new(),
            last_activity: Instant::now(),
        }
    }

    pub fn users(&self) -> &[LoggedIn] {
        &self.users
    }

    /// Administrators who may take part in dual control now (one-time passwords changed).
    pub fn administrators(&self) -> Vec<&str> {
        self.users
            .iter()
            .filter(|u| u.role == Role::Administrator && !u.must_change_password)
            .map(|u| u.name.as_str())
            .collect()
    }

    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            channel: self.channel.as_str().into(),
            users: self
                .users
                .iter()
                .map(|u| SessionUser {
                    name: u.name.clone(),
                    role: u.role,
                    must_change_password: u.must_change_password,
                })
                .collect(),
            dual_control: self.administrators().len() >= 2,
        }
    }
}
