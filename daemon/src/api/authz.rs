//! Who may do what: the one place that decides. Every front end's request passes through
//! [`requirement`]; the match is exhaustive, so a new request cannot compile unclassified.

use keyward_proto::{Request, Role};

use super::session::Session;
use crate::error::{Error, Result};

/// What a request needs from the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Works logged out (login, logout, whoami).
    Anyone,
    /// Any logged-in user, auditors included: status and the audit trail.
    OneUser,
    /// One administrator: reading users and approvals, approving another's request.
    OneAdministrator,
    /// Two distinct administrators: on this session, or one here and one approving.
    TwoAdministrators,
}

pub fn requirement(request: &Request) -> Requirement {
    match request {
        Request::Login { .. }
        | Request::Logout { .. }
        | Request::Whoami
        | Request::Passwd { .. } => Requirement::Anyone,
        Request::Status | Request::AuditList { .. } | Request::AuditVerify => Requirement::OneUser,
        Request::UserList | Request::Pending | Request::Approve { .. } => {
            Requirement::OneAdministrator
        }
        Request::UserAdd { .. }
        | Request::UserLock { .. }
        | Request::UserUnlock { .. }
        | Request::UserReset { .. }
        | Request::UserRemove { .. }
        | Request::FirmwareInstall { .. } => Requirement::TwoAdministrators,
    }
}

/// The request in the serial command language, for `pending` and audit records.
pub fn describe(request: &Request) -> String {
    match request {
        Request::Status => "status".into(),
        Request::Login { user, .. } => format!("login {user}"),
        Request::Logout { user } => format!("logout {}", user.as_deref().unwrap_or(""))
            .trim_end()
            .to_owned(),
        Request::Whoami => "whoami".into(),
        Request::Passwd { .. } => "passwd".into(),
        Request::UserList => "user list".into(),
        Request::UserAdd { name, role } => format!("user add {name} {}", role.as_str()),
        Request::UserLock { name } => format!("user lock {name}"),
        Request::UserUnlock { name } => format!("user unlock {name}"),
        Request::UserReset { name } => format!("user reset {name}"),
        Request::UserRemove { name } => format!("user remove {name}"),
        Request::Approve { id } => format!("approve {id}"),
        Request::Pending => "pending".into(),
        Request::AuditList { from, limit } => {
            let mut s = "audit list".to_owned();
            if let Some(f) = from {
                s.push_str(&format!(" from={f}"));
            }
            if let Some(l) = limit {
                s.push_str(&format!(" limit={l}"));
            }
            s
        }
        Request::AuditVerify => "audit verify".into(),
        Request::FirmwareInstall {
            path,
            allow_downgrade,
        } => {
            format!(
                "firmware install {path}{}",
                if *allow_downgrade {
                    " allow-downgrade"
                } else {
                    ""
                }
            )
        }
    }
}

/// What the session may do about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run it, performed by these users.
    Run(Vec<String>),
    /// One administrator asked for a two-administrator operation: it waits for approval.
    NeedsApproval(String),
}

/// Applies the requirement to the session's users.
pub fn decide(session: &Session, requirement: Requirement) -> Result<Decision> {
    let users = session.users();
    if requirement != Requirement::Anyone {
        if users.is_empty() {
            return Err(Error::Auth("not logged in: 'login USER' first".into()));
        }
        if users.iter().all(|u| u.must_change_password) {
            return Err(Error::Auth(
                "a one-time password is in use: change it with 'passwd' first".into(),
            ));
        }
    }
    let admins = session.administrators();
    let readers = || {
        users
            .iter()
            .filter(|u| !u.must_change_password)
            .map(|u| u.name.clone())
            .collect::<Vec<_>>()
    };
    match requirement {
        Requirement::Anyone => Ok(Decision::Run(
            users.iter().map(|u| u.name.clone()).collect(),
        )),
        Requirement::OneUser => Ok(Decision::Run(readers())),
        Requirement::OneAdministrator | Requirement::TwoAdministrators if admins.is_empty() => {
            let roles: Vec<&str> = users
                .iter()
                .map(|u| {
                    if u.role == Role::Auditor {
                        "an auditor"
                    } else {
                        "an administrator with a one-time password"
                    }
                })
                .collect();
            Err(Error::Permission(format!(
                "this needs an administrator; you are logged in as {}",
                roles.join(" and ")
            )))
        }
        Requirement::OneAdministrator => Ok(Decision::Run(
            admins.iter().map(|a| (*a).to_owned()).collect(),
        )),
        Requirement::TwoAdministrators if admins.len() >= 2 => Ok(Decision::Run(
            admins[..2].iter().map(|a| (*a).to_owned()).collect(),
        )),
        Requirement::TwoAdministrators => Ok(Decision::NeedsApproval(admins[0].to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::session::LoggedIn;
    use super::*;
    use crate::domain::audit::Channel;

    fn session(users: &[(&str, Role, bool)]) -> Session {
        let mut s = Session::new(Channel::Serial, "test");
        s.users = users
            .iter()
            .map(|(n, r, m)| LoggedIn {
                name: (*n).into(),
                role: *r,
                must_change_password: *m,
                epoch: String::new(),
            })
            .collect();
        s
    }

    #[test]
    fn two_administrators_run_one_waits_for_approval() {
        let two = session(&[
            ("alice", Role::Administrator, false),
            ("bob", Role::Administrator, false),
        ]);
        assert_eq!(
            decide(&two, Requirement::TwoAdministrators).unwrap(),
            Decision::Run(vec!["alice".into(), "bob".into()])
        );
        let one = session(&[("alice", Role::Administrator, false)]);
        assert_eq!(
            decide(&one, Requirement::TwoAdministrators).unwrap(),
            Decision::NeedsApproval("alice".into())
        );
    }

    #[test]
    fn auditors_read_but_never_change() {
        let auditor = session(&[("audrey", Role::Auditor, false)]);
        assert!(decide(&auditor, Requirement::OneUser).is_ok());
        assert!(matches!(
            decide(&auditor, Requirement::OneAdministrator),
            Err(Error::Permission(_))
        ));
        assert!(matches!(
            decide(&auditor, Requirement::TwoAdministrators),
            Err(Error::Permission(_))
        ));
        // An auditor beside one administrator does not make two administrators.
        let mixed = session(&[
            ("alice", Role::Administrator, false),
            ("audrey", Role::Auditor, false),
        ]);
        assert_eq!(
            decide(&mixed, Requirement::TwoAdministrators).unwrap(),
            Decision::NeedsApproval("alice".into())
        );
    }

    #[test]
    fn one_time_password_users_count_for_nothing_until_changed() {
        let fresh = session(&[("carol", Role::Administrator, true)]);
        assert!(matches!(
            decide(&fresh, Requirement::OneUser),
            Err(Error::Auth(_))
        ));
        let pair = session(&[
            ("alice", Role::Administrator, false),
            ("carol", Role::Administrator, true),
        ]);
        assert_eq!(
            decide(&pair, Requirement::TwoAdministrators).unwrap(),
            Decision::NeedsApproval("alice".into())
        );
    }

    #[test]
    fn logged_out_sessions_only_reach_login() {
        let empty = session(&[]);
        assert!(decide(&empty, Requirement::Anyone).is_ok());
        for r in [
            Requirement::OneUser,
            Requirement::OneAdministrator,
            Requirement::TwoAdministrators,
        ] {
            assert!(matches!(decide(&empty, r), Err(Error::Auth(_))));
        }
    }
}
