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
    /// `credential add NAME`: the access key id and the secret are prompted for.
    CredentialAdd(String),
    /// `job log ID follow`: the log until the job is done.
    JobFollow(u64),
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
        name: "credential import",
        usage: "credential import NAME FILE",
        summary: "store an AWS access key from the CSV the AWS console gives out (FILE on the appliance)",
        example: "credential import prod /media/usb/prod_accessKeys.csv",
    },
    Spec {
        name: "credential add",
        usage: "credential add NAME",
        summary: "store an AWS access key typed in (prompts for the id, then the secret without echo)",
        example: "credential add prod",
    },
    Spec {
        name: "credential list",
        usage: "credential list",
        summary: "stored credentials: name, masked access key id, created, last used",
        example: "credential list",
    },
    Spec {
        name: "credential remove",
        usage: "credential remove NAME",
        summary: "delete a credential no group uses",
        example: "credential remove prod",
    },
    Spec {
        name: "group create",
        usage: "group create NAME FIELD=VALUE…",
        summary: "create a key group (fields: credential region endpoint alias description active_key_id policy_file disable_previous rotate_every valid_for rotation_mode tags)",
        example: "group create payments credential=prod region=us-east-1 alias=alias/payments",
    },
    Spec {
        name: "group set",
        usage: "group set NAME FIELD=VALUE…",
        summary: "change fields of a key group (quote values with spaces: description=\"Payments key\")",
        example: "group set payments rotate_every=90d",
    },
    Spec {
        name: "group show",
        usage: "group show NAME",
        summary: "every field of a key group",
        example: "group show payments",
    },
    Spec {
        name: "group list",
        usage: "group list",
        summary: "the key groups",
        example: "group list",
    },
    Spec {
        name: "group remove",
        usage: "group remove NAME",
        summary: "delete a key group that holds no keys",
        example: "group remove payments",
    },
    Spec {
        name: "group test",
        usage: "group test NAME",
        summary: "test the group's connection and permissions in AWS KMS",
        example: "group test payments",
    },
    Spec {
        name: "group rotate",
        usage: "group rotate NAME",
        summary: "force-rotate the group now: a job (new HSM key, imported to KMS, alias moved)",
        example: "group rotate payments",
    },
    Spec {
        name: "key list",
        usage: "key list [GROUP]",
        summary: "customer keys: id, group, state, fingerprint, AWS key, alias, valid to",
        example: "key list",
    },
    Spec {
        name: "key show",
        usage: "key show KEYID",
        summary: "one key, with its AWS key state read live",
        example: "key show 00112233445566778899aabbccddeeff",
    },
    Spec {
        name: "key sync",
        usage: "key sync KEYID [delete-material] [update-policy] [import-material]",
        summary: "synchronise a key with AWS: a job (re-import uses the same material from the HSM)",
        example: "key sync 00112233445566778899aabbccddeeff delete-material import-material",
    },
    Spec {
        name: "job list",
        usage: "job list",
        summary: "jobs: id, kind, target, state, progress",
        example: "job list",
    },
    Spec {
        name: "job show",
        usage: "job show ID",
        summary: "one job: its steps, state and error",
        example: "job show 1",
    },
    Spec {
        name: "job log",
        usage: "job log ID [from=N] [follow]",
        summary: "a job's log; 'follow' prints new lines until the job is done",
        example: "job log 1",
    },
    Spec {
        name: "job wait",
        usage: "job wait ID [timeout=DURATION]",
        summary: "return when the job is done (default timeout 10m): OK if it succeeded, ERR job-failed if not",
        example: "job wait 1 timeout=30s",
    },
    Spec {
        name: "job retry",
        usage: "job retry ID",
        summary: "run a failed job again from the step that failed",
        example: "job retry 7",
    },
    Spec {
        name: "schedule list",
        usage: "schedule list",
        summary: "scheduled rotation per group: next due, last result, and why it waits",
        example: "schedule list",
    },
    Spec {
        name: "settings show",
        usage: "settings show",
        summary: "the appliance settings (rotation.designated)",
        example: "settings show",
    },
    Spec {
        name: "settings set",
        usage: "settings set NAME VALUE",
        summary: "change a setting (two administrators; audited)",
        example: "settings set rotation.designated false",
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

/// Splits a line into words at whitespace. Double quotes group words (`description="a b"`);
/// inside them a backslash escapes a quote or a backslash.
pub fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => match chars.next() {
                Some(e @ ('"' | '\\')) => word.push(e),
                Some(other) => {
                    word.push('\\');
                    word.push(other);
                }
                None => return Err("a quoted word is not closed".into()),
            },
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return Err("a quoted word is not closed: add the closing \"".into());
    }
    if in_word {
        out.push(word);
    }
    Ok(out)
}

fn job_id(name: &str, id: &str) -> Result<u64, String> {
    id.parse()
        .map_err(|_| format!("'{id}' is not a job id; {}", usage(name)))
}

/// `FIELD=VALUE` arguments of `group create` and `group set`.
fn fields(name: &str, args: &[&str]) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut out = std::collections::BTreeMap::new();
    for arg in args {
        let Some((k, v)) = arg.split_once('=') else {
            return Err(format!("'{arg}' is not FIELD=VALUE; {}", usage(name)));
        };
        if out.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(format!("field '{k}' is given twice"));
        }
    }
    Ok(out)
}

/// Parses one line. `Ok(None)` for an empty line.
pub fn parse(line: &str) -> Result<Option<Command>, String> {
    let owned = words(line)?;
    let words: Vec<&str> = owned.iter().map(String::as_str).collect();
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
        ("credential", ["import", name, path]) => Command::Api(Request::CredentialImport {
            name: (*name).to_owned(),
            path: (*path).to_owned(),
        }),
        ("credential", ["add", name]) => Command::CredentialAdd((*name).to_owned()),
        ("credential", ["list"]) => Command::Api(Request::CredentialList),
        ("credential", ["remove", name]) => Command::Api(Request::CredentialRemove {
            name: (*name).to_owned(),
        }),
        ("group", ["create", name, args @ ..]) => Command::Api(Request::GroupCreate {
            name: (*name).to_owned(),
            fields: fields("group create", args)?,
        }),
        ("group", ["set", name, args @ ..]) if !args.is_empty() => {
            Command::Api(Request::GroupSet {
                name: (*name).to_owned(),
                fields: fields("group set", args)?,
            })
        }
        ("group", ["show", name]) => Command::Api(Request::GroupShow {
            name: (*name).to_owned(),
        }),
        ("group", ["list"]) => Command::Api(Request::GroupList),
        ("group", ["remove", name]) => Command::Api(Request::GroupRemove {
            name: (*name).to_owned(),
        }),
        ("group", ["test", name]) => Command::Api(Request::GroupTest {
            name: (*name).to_owned(),
        }),
        ("group", ["rotate", name]) => Command::Api(Request::GroupRotate {
            name: (*name).to_owned(),
        }),
        ("key", ["list"]) => Command::Api(Request::KeyList { group: None }),
        ("key", ["list", group]) => Command::Api(Request::KeyList {
            group: Some((*group).to_owned()),
        }),
        ("key", ["show", key]) => Command::Api(Request::KeyShow {
            key: (*key).to_owned(),
        }),
        ("key", ["sync", key, options @ ..]) => {
            let (mut delete_material, mut update_policy, mut import_material) =
                (false, false, false);
            for option in options {
                match *option {
                    "delete-material" => delete_material = true,
                    "update-policy" => update_policy = true,
                    "import-material" => import_material = true,
                    other => {
                        return Err(format!("unknown option '{other}'; {}", usage("key sync")));
                    }
                }
            }
            Command::Api(Request::KeySync {
                key: (*key).to_owned(),
                delete_material,
                update_policy,
                import_material,
            })
        }
        ("job", ["list"]) => Command::Api(Request::JobList),
        ("job", ["show", id]) => Command::Api(Request::JobShow {
            id: job_id("job show", id)?,
        }),
        ("job", ["log", id, args @ ..]) => {
            let id = job_id("job log", id)?;
            let mut from = None;
            let mut follow = false;
            for arg in args {
                match (*arg, key_value("job log", arg, "from")?) {
                    ("follow", _) => follow = true,
                    (_, Some(f)) => from = Some(usize::try_from(f).unwrap_or(usize::MAX)),
                    _ => return Err(format!("unknown argument '{arg}'; {}", usage("job log"))),
                }
            }
            if follow {
                Command::JobFollow(id)
            } else {
                Command::Api(Request::JobLog { id, from })
            }
        }
        ("job", ["wait", id, args @ ..]) => {
            let id = job_id("job wait", id)?;
            let timeout_ms = match args {
                [] => None,
                [arg] => match arg.strip_prefix("timeout=") {
                    Some(text) => Some(
                        u64::try_from(
                            crate::domain::duration::parse(text)
                                .map_err(|e| format!("timeout: {e}"))?
                                .as_millis(),
                        )
                        .unwrap_or(u64::MAX),
                    ),
                    None => return Err(usage("job wait")),
                },
                _ => return Err(usage("job wait")),
            };
            Command::Api(Request::JobWait { id, timeout_ms })
        }
        ("job", ["retry", id]) => Command::Api(Request::JobRetry {
            id: job_id("job retry", id)?,
        }),
        ("schedule", ["list"]) => Command::Api(Request::ScheduleList),
        ("settings", ["show"]) => Command::Api(Request::SettingsShow),
        ("settings", ["set", name, value]) => Command::Api(Request::SettingsSet {
            name: (*name).to_owned(),
            value: (*value).to_owned(),
        }),
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
            | Request::FirmwareInstall { .. }
            | Request::CredentialImport { .. }
            | Request::CredentialAdd { .. }
            | Request::CredentialList
            | Request::CredentialRemove { .. }
            | Request::GroupCreate { .. }
            | Request::GroupSet { .. }
            | Request::GroupShow { .. }
            | Request::GroupList
            | Request::GroupRemove { .. }
            | Request::GroupTest { .. }
            | Request::GroupRotate { .. }
            | Request::KeyList { .. }
            | Request::KeyShow { .. }
            | Request::KeySync { .. }
            | Request::JobList
            | Request::JobShow { .. }
            | Request::JobLog { .. }
            | Request::JobWait { .. }
            | Request::JobRetry { .. }
            | Request::ScheduleList
            | Request::SettingsShow
            | Request::SettingsSet { .. } => (),
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
            Request::CredentialImport {
                name: "prod".into(),
                path: "/media/usb stick/keys.csv".into(),
            },
            Request::CredentialAdd {
                name: "prod".into(),
                access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
                secret_access_key: pw(),
            },
            Request::CredentialList,
            Request::CredentialRemove {
                name: "prod".into(),
            },
            Request::GroupCreate {
                name: "payments".into(),
                fields: [
                    ("alias", "alias/payments"),
                    ("description", "Payments \"main\" key"),
                    ("tags", ""),
                ]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            },
            Request::GroupSet {
                name: "payments".into(),
                fields: [("rotate_every".to_owned(), "90d".to_owned())].into(),
            },
            Request::GroupShow {
                name: "payments".into(),
            },
            Request::GroupList,
            Request::GroupRemove {
                name: "payments".into(),
            },
            Request::GroupTest {
                name: "payments".into(),
            },
            Request::GroupRotate {
                name: "payments".into(),
            },
            Request::KeyList { group: None },
            Request::KeyList {
                group: Some("payments".into()),
            },
            Request::KeyShow { key: "ab".into() },
            Request::KeySync {
                key: "ab".into(),
                delete_material: true,
                update_policy: true,
                import_material: true,
            },
            Request::JobList,
            Request::JobShow { id: 4 },
            Request::JobLog { id: 4, from: None },
            Request::JobLog {
                id: 4,
                from: Some(10),
            },
            Request::JobWait {
                id: 4,
                timeout_ms: None,
            },
            Request::JobWait {
                id: 4,
                timeout_ms: Some(30_000),
            },
            Request::JobRetry { id: 4 },
            Request::ScheduleList,
            Request::SettingsShow,
            Request::SettingsSet {
                name: "rotation.designated".into(),
                value: "false".into(),
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
                (Request::CredentialAdd { name, .. }, Some(Command::CredentialAdd(n))) => {
                    assert_eq!(name, &n)
                }
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
