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
        // Reading the key inventory, groups, credentials (never a secret) and jobs.
        Request::CredentialList
        | Request::GroupShow { .. }
        | Request::GroupList
        | Request::KeyList { .. }
        | Request::KeyShow { .. }
        | Request::JobList
        | Request::JobShow { .. }
        | Request::JobLog { .. }
        | Request::JobWait { .. }
        | Request::ScheduleList
        | Request::SettingsShow => Requirement::OneUser,
        // Uses a credential against AWS, changes nothing.
        Request::GroupTest { .. } => Requirement::OneAdministrator,
        Request::CredentialImport { .. }
        | Request::CredentialAdd { .. }
        | Request::CredentialRemove { .. }
        | Request::GroupCreate { .. }
        | Request::GroupSet { .. }
        | Request::GroupRemove { .. }
        | Request::GroupRotate { .. }
        | Request::KeySync { .. }
        | Request::JobRetry { .. }
        | Request::SettingsSet { .. } => Requirement::TwoAdministrators,
    }
}

/// A word for a serial line: quoted when it is empty or holds spaces, quotes or backslashes.
pub fn quote(word: &str) -> String {
    if !word.is_empty()
        && !word
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        return word.to_owned();
    }
    let mut out = String::from("\"");
    for c in word.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn fields_text(fields: &std::collections::BTreeMap<String, String>) -> String {
    fields
        .iter()
        .map(|(k, v)| format!(" {k}={}", quote(v)))
        .collect()
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
        Request::CredentialImport { name, path } => {
            format!("credential import {name} {}", quote(path))
        }
        // The secret is prompted for; it never appears in a description.
        Request::CredentialAdd { name, .. } => format!("credential add {name}"),
        Request::CredentialList => "credential list".into(),
        Request::CredentialRemove { name } => format!("credential remove {name}"),
        Request::GroupCreate { name, fields } => {
            format!("group create {name}{}", fields_text(fields))
        }
        Request::GroupSet { name, fields } => format!("group set {name}{}", fields_text(fields)),
        Request::GroupShow { name } => format!("group show {name}"),
        Request::GroupList => "group list".into(),
        Request::GroupRemove { name } => format!("group remove {name}"),
        Request::GroupTest { name } => format!("group test {name}"),
        Request::GroupRotate { name } => format!("group rotate {name}"),
        Request::KeyList { group } => match group {
            Some(g) => format!("key list {g}"),
            None => "key list".into(),
        },
        Request::KeyShow { key } => format!("key show {key}"),
        Request::KeySync {
            key,
            delete_material,
            update_policy,
            import_material,
        } => {
            let mut s = format!("key sync {key}");
            for (on, word) in [
                (delete_material, "delete-material"),
                (update_policy, "update-policy"),
                (import_material, "import-material"),
            ] {
                if *on {
                    s.push(' ');
                    s.push_str(word);
                }
            }
            s
        }
        Request::JobList => "job list".into(),
        Request::JobShow { id } => format!("job show {id}"),
        Request::JobRetry { id } => format!("job retry {id}"),
        Request::ScheduleList => "schedule list".into(),
        Request::SettingsShow => "settings show".into(),
        Request::SettingsSet { name, value } => {
            format!("settings set {} {}", quote(name), quote(value))
        }
        Request::JobLog { id, from } => match from {
            Some(f) => format!("job log {id} from={f}"),
            None => format!("job log {id}"),
        },
        Request::JobWait { id, timeout_ms } => match timeout_ms {
            Some(ms) => format!(
                "job wait {id} timeout={}",
                crate::domain::duration::format(std::time::Duration::from_millis(*ms))
            ),
            None => format!("job wait {id}"),
        },
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
