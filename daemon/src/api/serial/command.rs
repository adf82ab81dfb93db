//! The serial command language v1 (documented in docs/serial.md): parsing a line into a
//! command, and the command table behind `help`.

use keyward_proto::{Request, Role};

/// Output format of the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// A parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help(Option<String>),
    Format(Format),
    /// `login USER`: the password is prompted for.
    Login(String),
    /// `passwd [USER]`: the passwords are prompted for.
    Passwd(Option<String>),
    Api(Request),
}

/// One entry of `help`. `example` is a line that parses to the command, so the daemon can tell
/// (from the one authorization table) what the command needs.
pub struct Spec {
    pub name: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
    pub example: &'static str,
}

pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "help",
        usage: "help [COMMAND]",
        summary: "list the commands, or explain one",
        example: "help",
    },
    Spec {
        name: "format",
        usage: "format text|json",
        summary: "choose text or one-line JSON responses",
        example: "format text",
    },
    Spec {
        name: "login",
        usage: "login USER",
        summary: "log a user in on this port (prompts for the password)",
        example: "login alice",
    },
    Spec {
        name: "logout",
        usage: "logout [USER]",
        summary: "log one user, or everyone, out of this port",
        example: "logout",
    },
    Spec {
        name: "whoami",
        usage: "whoami",
        summary: "who is logged in here, and whether dual control is satisfied",
        example: "whoami",
    },
    Spec {
        name: "passwd",
        usage: "passwd [USER]",
        summary: "change your password (prompts for the old and new one)",
        example: "passwd",
    },
    Spec {
        name: "status",
        usage: "status",
        summary: "HSM, store, audit head",
        example: "status",
    },
    Spec {
        name: "user list",
        usage: "user list",
        summary: "the accounts and their state",
        example: "user list",
    },
    Spec {
        name: "user add",
        usage: "user add NAME administrator|auditor",
        summary: "create an account with a one-time password, shown once",
        example: "user add carol auditor",
    },
    Spec {
        name: "user lock",
        usage: "user lock NAME",
        summary: "lock an account until it is unlocked",
        example: "user lock carol",
    },
    Spec {
        name: "user unlock",
        usage: "user unlock NAME",
        summary: "unlock an account (also clears a failed-login lock)",
        example: "user unlock carol",
    },
    Spec {
        name: "user reset",
        usage: "user reset NAME",
        summary: "give an account a new one-time password, shown once",
        example: "user reset carol",
    },
    Spec {
        name: "user remove",
        usage: "user remove NAME",
        summary: "delete an account",
        example: "user remove carol",
    },
    Spec {
        name: "approve",
        usage: "approve ID",
        summary: "approve another administrator's pending request; it runs once",
        example: "approve 1",
    },
    Spec {
        name: "pending",
        usage: "pending",
        summary: "requests waiting for a second administrator",
        example: "pending",
    },
    Spec {
        name: "audit list",
        usage: "audit list [from=SEQ] [limit=N]",
        summary: "audit records from SEQ (default 1), at most N (default 50)",
        example: "audit list from=1 limit=5",
    },
    Spec {
        name: "audit verify",
        usage: "audit verify",
        summary: "check every hash link, HSM MAC and the head kept in the HSM",
        example: "audit verify",
    },
    Spec {
        name: "firmware install",
        usage: "firmware install PATH [allow-downgrade]",
        summary: "verify a signed firmware image and install it into the inactive slot",
        example: "firmware install /var/lib/keyward/incoming/keyward-1.2.0.img",
    },
];

pub fn spec(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| s.name == name)
}

fn usage(name: &str) -> String {
    spec(name).map_or_else(
        || format!("'help {name}'"),
        |s| format!("usage: {}", s.usage),
    )
}

fn one_name(name: &str, args: &[&str]) -> Result<String, String> {
    match args {
        [n] => Ok((*n).to_owned()),
        _ => Err(usage(name)),
    }
}

fn key_value(name: &str, arg: &str, key: &str) -> Result<Option<u64>, String> {
    match arg.split_once('=') {
        Some((k, v)) if k == key => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{key}={v}: not a number; {}", usage(name))),
        _ => Ok(None),
    }
}

/// Parses one line. `Ok(None)` for an empty line.
pub fn parse(line: &str) -> Result<Option<Command>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((first, rest)) = words.split_first() else {
        return Ok(None);
    };
    let command = match (*first, rest) {
        ("help", []) => Command::Help(None),
        ("help", topic) => Command::Help(Some(topic.join(" "))),
        ("format", ["text"]) => Command::Format(Format::Text),
        ("format", ["json"]) => Command::Format(Format::Json),
        ("format", _) => return Err(usage("format")),
        ("login", args) => Command::Login(one_name("login", args)?),
        ("logout", []) => Command::Api(Request::Logout { user: None }),
        ("logout", [user]) => Command::Api(Request::Logout {
            user: Some((*user).to_owned()),
        }),
        ("logout", _) => return Err(usage("logout")),
        ("whoami", []) => Command::Api(Request::Whoami),
        ("passwd", []) => Command::Passwd(None),
        ("passwd", [user]) => Command::Passwd(Some((*user).to_owned())),
        ("passwd", _) => return Err(usage("passwd")),
        ("status", []) => Command::Api(Request::Status),
        ("pending", []) => Command::Api(Request::Pending),
        ("approve", [id]) => Command::Api(Request::Approve {
            id: id
                .parse()
                .map_err(|_| format!("'{id}' is not a request id; {}", usage("approve")))?,
        }),
        ("approve", _) => return Err(usage("approve")),
        ("user", [sub, args @ ..]) => {
            let name = format!("user {sub}");
            match (*sub, args) {
                ("list", []) => Command::Api(Request::UserList),
                ("add", [user, role]) => {
                    let role = match *role {
                        "administrator" => Role::Administrator,
                        "auditor" => Role::Auditor,
                        other => {
                            return Err(format!(
                                "unknown role '{other}': use administrator or auditor"
                            ));
                        }
                    };
                    Command::Api(Request::UserAdd {
                        name: (*user).to_owned(),
                        role,
                    })
                }
                ("lock", a) => Command::Api(Request::UserLock {
                    name: one_name(&name, a)?,
                }),
                ("unlock", a) => Command::Api(Request::UserUnlock {
                    name: one_name(&name, a)?,
                }),
                ("reset", a) => Command::Api(Request::UserReset {
                    name: one_name(&name, a)?,
                }),
                ("remove", a) => Command::Api(Request::UserRemove {
                    name: one_name(&name, a)?,
                }),
                _ if spec(&name).is_some() => return Err(usage(&name)),
                _ => {
                    return Err(format!(
                        "unknown command '{name}'; 'help' lists the commands"
                    ));
                }
            }
        }
        ("audit", ["verify"]) => Command::Api(Request::AuditVerify),
        ("firmware", ["install", path]) => Command::Api(Request::FirmwareInstall {
            path: (*path).to_owned(),
            allow_downgrade: false,
        }),
        ("firmware", ["install", path, "allow-downgrade"]) => {
            Command::Api(Request::FirmwareInstall {
                path: (*path).to_owned(),
                allow_downgrade: true,
            })
        }
        ("firmware", _) => return Err(usage("firmware install")),
        ("audit", ["list", args @ ..]) => {
            let (mut from, mut limit) = (None, None);
            for arg in args {
                match (
                    key_value("audit list", arg, "from")?,
                    key_value("audit list", arg, "limit")?,
                ) {
                    (Some(f), _) => from = Some(f),
                    (_, Some(l)) => limit = Some(usize::try_from(l).unwrap_or(usize::MAX)),
                    _ => return Err(format!("unknown argument '{arg}'; {}", usage("audit list"))),
                }
            }
            Command::Api(Request::AuditList { from, limit })
        }
        (word, _)
            if COMMANDS
                .iter()
                .any(|s| s.name == word || s.name.starts_with(&format!("{word} "))) =>
        {
            return Err(format!(
                "'{}' is not a valid use of {word}; 'help {word}' explains it",
                line.trim()
            ));
        }
        (word, _) => {
            return Err(format!(
                "unknown command '{}'; 'help' lists the commands",
                word.escape_debug()
            ));
        }
    };
    Ok(Some(command))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_example_parses_to_its_command() {
        for spec in COMMANDS {
            let parsed = parse(spec.example);
            assert!(
                matches!(parsed, Ok(Some(_))),
                "{}: {parsed:?}",
                spec.example
            );
        }
    }

    #[test]
    fn commands_and_errors() {
        assert_eq!(
            parse("  user add carol auditor ").unwrap(),
            Some(Command::Api(Request::UserAdd {
                name: "carol".into(),
                role: Role::Auditor
            }))
        );
        assert_eq!(
            parse("audit list limit=3 from=7").unwrap(),
            Some(Command::Api(Request::AuditList {
                from: Some(7),
                limit: Some(3)
            }))
        );
        assert_eq!(parse("").unwrap(), None);
        assert!(
            parse("user add carol wizard")
                .unwrap_err()
                .contains("unknown role")
        );
        assert!(
            parse("user add carol")
                .unwrap_err()
                .contains("usage: user add")
        );
        assert!(
            parse("approve twelve")
                .unwrap_err()
                .contains("not a request id")
        );
        assert!(parse("rm -rf /").unwrap_err().contains("unknown command"));
        assert!(
            parse("audit list from=x")
                .unwrap_err()
                .contains("not a number")
        );
    }

    /// One example of every request. Adding a `Request` variant breaks the match below until
    /// it is listed here too, and the test after it then insists the serial language and
    /// `help` know it.
    fn every_request() -> Vec<Request> {
        let _exhaustive = |r: &Request| match r {
            Request::Status
            | Request::Login { .. }
            | Request::Logout { .. }
            | Request::Whoami
            | Request::Passwd { .. }
            | Request::UserList
            | Request::UserAdd { .. }
            | Request::UserLock { .. }
            | Request::UserUnlock { .. }
            | Request::UserReset { .. }
            | Request::UserRemove { .. }
            | Request::Approve { .. }
            | Request::Pending
            | Request::AuditList { .. }
            | Request::AuditVerify
            | Request::FirmwareInstall { .. } => (),
        };
        let pw = || keyward_proto::Password::new("x");
        let name = || "carol".to_owned();
        vec![
            Request::Status,
            Request::Login {
                user: name(),
                password: pw(),
            },
            Request::Logout { user: None },
            Request::Logout { user: Some(name()) },
            Request::Whoami,
            Request::Passwd {
                user: None,
                old: pw(),
                new: pw(),
            },
            Request::UserList,
            Request::UserAdd {
                name: name(),
                role: Role::Administrator,
            },
            Request::UserLock { name: name() },
            Request::UserUnlock { name: name() },
            Request::UserReset { name: name() },
            Request::UserRemove { name: name() },
            Request::Approve { id: 7 },
            Request::Pending,
            Request::AuditList {
                from: Some(3),
                limit: Some(9),
            },
            Request::AuditVerify,
            Request::FirmwareInstall {
                path: "/tmp/k.img".into(),
                allow_downgrade: false,
            },
            Request::FirmwareInstall {
                path: "/tmp/k.img".into(),
                allow_downgrade: true,
            },
        ]
    }

    #[test]
    fn every_request_has_a_serial_command_a_help_entry_and_a_description_that_parses_back() {
        use crate::api::authz::describe;
        for request in every_request() {
            let line = describe(&request);
            let parsed = parse(&line).unwrap_or_else(|e| panic!("{line:?} does not parse: {e}"));
            match (&request, parsed) {
                (Request::Login { user, .. }, Some(Command::Login(u))) => assert_eq!(user, &u),
                (Request::Passwd { .. }, Some(Command::Passwd(None))) => {}
                (_, Some(Command::Api(back))) => assert_eq!(back, request, "{line}"),
                (_, other) => panic!("{line:?} parsed to {other:?}"),
            }
            assert!(
                COMMANDS
                    .iter()
                    .any(|s| line == s.name || line.starts_with(&format!("{} ", s.name))),
                "{line:?} has no entry in COMMANDS, so 'help' would not list it"
            );
        }
    }

    proptest! {
        #[test]
        fn any_line_parses_or_errors_without_panic(line in "\\PC{0,200}") {
            let _ = parse(&line);
        }

        #[test]
        fn word_salad_from_the_vocabulary_never_panics(words in proptest::collection::vec(
            prop_oneof!["user", "add", "audit", "list", "from=1", "limit=x", "approve", "9", "login", "format", "json", "help", "=", ""],
            0..6)) {
            let _ = parse(&words.join(" "));
        }
    }
}
