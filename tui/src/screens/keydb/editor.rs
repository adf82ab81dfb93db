//! The key group editor: a form with two tabs, Group (name, credential, rotate, rotate every,
//! valid for, rotation mode) and AWS properties (region, endpoint, alias, description, active
//! key id, policy file, disable previous, tags). `n` on the Keys screen opens it empty and
//! sends `group_create`; `e` fills it from the selected group and sends `group_set` with only
//! the fields that changed. Each field is checked as it is typed by the daemon's own grammar
//! (`keyward_proto::fields`), its message shown beside the field; the daemon stays the
//! authority (a policy file's JSON, a credential that exists) and its errors come back with
//! their codes.

use std::collections::BTreeMap;

use keyward_proto::{GroupView, Request, fields};

use super::KeyDb;
use crate::app::Shell;
use crate::input::{Form, FormField, FormKind};

/// The group editor's form.
pub const GROUP: FormKind = FormKind("group");

/// The two tabs.
pub const GROUP_TABS: [&str; 2] = ["Group", "AWS properties"];

// The editor's fields, by index.
pub const NAME: usize = 0;
pub const CREDENTIAL: usize = 1;
pub const ROTATE: usize = 2;
pub const ROTATE_EVERY: usize = 3;
pub const VALID_FOR: usize = 4;
pub const ROTATION_MODE: usize = 5;
pub const REGION: usize = 6;
pub const ENDPOINT: usize = 7;
pub const ALIAS: usize = 8;
pub const DESCRIPTION: usize = 9;
pub const ACTIVE_KEY_ID: usize = 10;
pub const POLICY_FILE: usize = 11;
pub const DISABLE_PREVIOUS: usize = 12;
pub const TAGS: usize = 13;

/// The grammar's name of each field (one of `fields::FIELDS`), by the indices above; `None`
/// for the name (it is the group) and for rotate yes/no (it is sent as `rotate_every=off`).
const FIELD_NAMES: [Option<&str>; TAGS + 1] = {
    let mut names = [None; TAGS + 1];
    names[CREDENTIAL] = Some("credential");
    names[ROTATE_EVERY] = Some("rotate_every");
    names[VALID_FOR] = Some("valid_for");
    names[ROTATION_MODE] = Some("rotation_mode");
    names[REGION] = Some("region");
    names[ENDPOINT] = Some("endpoint");
    names[ALIAS] = Some("alias");
    names[DESCRIPTION] = Some("description");
    names[ACTIVE_KEY_ID] = Some("active_key_id");
    names[POLICY_FILE] = Some("policy_file");
    names[DISABLE_PREVIOUS] = Some("disable_previous");
    names[TAGS] = Some("tags");
    names
};

/// The rotation modes, as the grammar writes them.
fn rotation_modes() -> [&'static str; 2] {
    [
        fields::RotationMode::NewKey.as_str(),
        fields::RotationMode::NewMaterial.as_str(),
    ]
}

/// What the policy file field says when the daemon sent no policy to preview.
pub const POLICY_UNREAD: &str = "(read by the daemon when saved)";

/// The grammar's check of the field at `i`. Its message goes beside the field, so the part
/// that names the field (`alias=…: `, `tags: `) is left to the field's label.
fn grammar(i: usize) -> impl Fn(&str) -> Result<(), String> {
    let name = FIELD_NAMES.get(i).copied().flatten();
    move |value| {
        let Some(name) = name else {
            return Ok(());
        };
        fields::parse_field(name, value).map(drop).map_err(|e| {
            let named = [format!("{name}={value}: "), format!("{name}: ")];
            named
                .iter()
                .find_map(|prefix| e.strip_prefix(prefix.as_str()))
                .map_or_else(|| e.clone(), str::to_owned)
        })
    }
}

/// The credential picker: empty when none is stored (a name the grammar would refuse).
fn check_credential(value: &str) -> Result<(), String> {
    if value.is_empty() {
        Err("none stored: add one on Credentials".into())
    } else {
        grammar(CREDENTIAL)(value)
    }
}

/// The policy line: the first characters of the stored policy on one line, or what happens
/// to the file.
pub fn policy_preview(policy: Option<&str>) -> String {
    match policy {
        Some(text) => {
            let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let mut preview: String = flat.chars().take(24).collect();
            if flat.chars().count() > 24 {
                preview.push('…');
            }
            preview
        }
        None => POLICY_UNREAD.into(),
    }
}

/// The editor's fields, empty or filled from `group`, with the credential picker's names.
fn group_fields(group: Option<&GroupView>, credentials: Vec<String>) -> Vec<FormField> {
    let fill = |field: FormField, value: &str| match group {
        Some(_) => field.filled(value),
        None => field,
    };
    let g = group;
    let text = |f: fn(&GroupView) -> String| g.map(f).unwrap_or_default();
    let rotate_every = text(|g| g.rotate_every.clone());
    let rotating = rotate_every != "off";
    let mut editor = vec![
        fill(
            FormField::text("Name", 64).checked_by(fields::validate_name),
            &text(|g| g.name.clone()),
        ),
        fill(
            FormField::choices("Credential", credentials).checked_by(check_credential),
            &text(|g| g.credential.clone()),
        ),
        FormField::check("Rotate", group.is_none() || rotating).filled(
            if group.is_none() || rotating {
                "yes"
            } else {
                "no"
            },
        ),
        FormField::text("Rotate every", 16)
            .enabled_by(ROTATE)
            .filled(match g {
                Some(_) if rotating => &rotate_every,
                _ => "90d",
            }),
        FormField::text("Valid for", 16).filled(g.map_or("forever", |g| g.valid_for.as_str())),
        FormField::choice("Rotation mode", &rotation_modes()).filled(
            g.map_or(fields::RotationMode::default().as_str(), |g| {
                g.rotation_mode.as_str()
            }),
        ),
        fill(
            FormField::text("Region", 32).on_tab(1),
            &text(|g| g.region.clone()),
        ),
        fill(
            FormField::text("Endpoint", 256).on_tab(1).optional(),
            &text(|g| g.endpoint.clone().unwrap_or_default()),
        ),
        fill(
            FormField::text("Alias", 256).on_tab(1),
            &text(|g| g.alias.clone()),
        ),
        fill(
            FormField::text("Description", 256).on_tab(1).optional(),
            &text(|g| g.description.clone()),
        ),
        fill(
            FormField::text("Active key id", 2048).on_tab(1).optional(),
            &text(|g| g.active_key_id.clone().unwrap_or_default()),
        ),
        fill(
            FormField::text("Policy file", 1024)
                .on_tab(1)
                .optional()
                .note(policy_preview(g.and_then(|g| g.policy.as_deref()))),
            &text(|g| g.policy_file.clone().unwrap_or_default()),
        ),
        FormField::check("Disable previous", false)
            .on_tab(1)
            .filled(if g.is_some_and(|g| g.disable_previous) {
                "yes"
            } else {
                "no"
            }),
        fill(
            FormField::text("Tags", 1024).on_tab(1).optional(),
            &text(|g| {
                g.tags
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        ),
    ];
    // Every other field is checked by the daemon's grammar.
    for (i, field) in editor.iter_mut().enumerate() {
        if field.check.is_none() {
            field.check = Some(Box::new(grammar(i)));
        }
    }
    editor
}

/// What the daemon is sent for field `i`: an empty optional field is `default` or `none`
/// where the daemon reads a word for "unset".
fn wire_value(form: &Form, i: usize) -> String {
    let value = form.value(i);
    match i {
        ROTATE_EVERY if !form.checked(ROTATE) => "off".into(),
        ENDPOINT if value.is_empty() => "default".into(),
        ACTIVE_KEY_ID | POLICY_FILE if value.is_empty() => "none".into(),
        _ => value,
    }
}

impl KeyDb {
    /// `n` (a new group) or `e` (the selected group) on the Keys screen.
    pub(super) fn open_editor(&mut self, edit: bool, shell: &mut Shell) {
        let group = if edit {
            let Some(group) = self.selected_group() else {
                shell.notice = Some("No group is selected.".into());
                return;
            };
            Some(group.clone())
        } else {
            None
        };
        let mut fields = group_fields(group.as_ref(), self.credentials.clone());
        let (title, target) = match &group {
            Some(g) => {
                // The name is not changed by an edit: it is the title.
                fields[NAME] = FormField::text("Name", 64).filled(&g.name).on_tab(9);
                (format!("Edit key group {}", g.name), g.name.clone())
            }
            None => ("New key group".to_string(), String::new()),
        };
        let mut form = Form::new(
            GROUP,
            title,
            "Tab: other tab · ↑↓ field · ←→/Space choose · Enter on the last: confirm",
        )
        .tabs(&GROUP_TABS)
        .target(target);
        for field in fields {
            form = form.field(field);
        }
        if group.is_some() {
            form.focus = CREDENTIAL;
        }
        shell.open_form(form);
        shell.send_once(Request::CredentialList);
    }

    /// The credential names arrived: the picker offers them, keeping its choice.
    pub(super) fn credentials_for_editor(&self, shell: &mut Shell) {
        let mut names = self.credentials.clone();
        let Some(form) = shell.form.as_mut().filter(|f| f.kind == GROUP) else {
            return;
        };
        let Some(field) = form.fields.get_mut(CREDENTIAL) else {
            return;
        };
        let keep = field.current();
        let keep = if keep.is_empty() {
            field.initial.clone()
        } else {
            keep
        };
        if !keep.is_empty() && !names.contains(&keep) {
            names.push(keep.clone());
        }
        field.kind = crate::input::FieldKind::Choice {
            index: names.iter().position(|n| *n == keep).unwrap_or(0),
            options: names,
        };
    }

    pub(super) fn submit_group(&self, form: &Form, shell: &mut Shell) {
        if form.target.is_empty() {
            submit_create(form, shell);
        } else {
            submit_set(form, shell);
        }
    }

    pub(super) fn group_saved(&self, created: bool, group: &GroupView, shell: &mut Shell) {
        shell.notice = Some(if created {
            format!("Created key group {} ({}).", group.name, group.alias)
        } else {
            format!("Saved key group {}.", group.name)
        });
        Self::load(shell);
    }
}

fn submit_create(form: &Form, shell: &mut Shell) {
    let name = form.value(NAME);
    let mut fields = BTreeMap::new();
    for (i, key) in FIELD_NAMES.iter().enumerate() {
        let Some(key) = key else { continue };
        let value = wire_value(form, i);
        // Empty optional fields keep the daemon's default.
        if form.value(i).is_empty() && i != ROTATE_EVERY {
            continue;
        }
        fields.insert(key.to_string(), value);
    }
    let (rotation, first) = if form.checked(ROTATE) {
        (
            format!(
                "rotates every {} ({})",
                form.value(ROTATE_EVERY),
                form.value(ROTATION_MODE)
            ),
            // A scheduled group with no key is due at once (on the designated rotator).
            "Its first rotation starts at once on the designated rotator.",
        )
    } else {
        (
            "is not rotated on a schedule".to_string(),
            "No key is made until its first rotation.",
        )
    };
    let effect = format!(
        "Create key group {name} in {} with {}, credential {}: it {rotation}, material valid for {}{}. {first}",
        form.value(REGION),
        form.value(ALIAS),
        form.value(CREDENTIAL),
        form.value(VALID_FOR),
        if form.value(POLICY_FILE).is_empty() {
            String::new()
        } else {
            format!(
                "; the daemon reads the policy from {}",
                form.value(POLICY_FILE)
            )
        },
    );
    shell.ask(
        format!("Create key group {name}?"),
        effect,
        Request::GroupCreate { name, fields },
    );
}

fn submit_set(form: &Form, shell: &mut Shell) {
    let name = form.target.clone();
    let mut fields = BTreeMap::new();
    let mut changes = Vec::new();
    for (i, key) in FIELD_NAMES.iter().enumerate() {
        let Some(key) = key else { continue };
        let changed = form.changed(i) || (i == ROTATE_EVERY && form.changed(ROTATE));
        if !changed {
            continue;
        }
        let value = wire_value(form, i);
        let initial = form.fields[i].initial.as_str();
        let before = if i == ROTATE_EVERY && form.fields[ROTATE].initial == "no" {
            "off"
        } else if initial.is_empty() {
            "(none)"
        } else {
            initial
        };
        changes.push(format!("{key} {before} → {value}"));
        fields.insert(key.to_string(), value);
    }
    if fields.is_empty() {
        shell.notice = Some(format!("Nothing changed in {name}; nothing was sent."));
        return;
    }
    shell.ask(
        format!("Change key group {name}?"),
        format!(
            "Change key group {name}: {}. Keys already made keep theirs until the next rotation.",
            changes.join("; ")
        ),
        Request::GroupSet { name, fields },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::{ctrl, dual, key, notice, ok, p, refused, sending, typed};
    use crate::app::{App, ErrorLine};
    use crate::fixtures;
    use crate::screens::keydb::tests::group;
    use crossterm::event::KeyCode;
    use keyward_proto::{ErrorCode, Op, Reply};

    #[test]
    fn the_field_indices_are_the_forms_fields() {
        let mut app = on_keys();
        key(&mut app, KeyCode::Char('n'));
        let form = app.shell.form.as_ref().expect("the group editor");
        let expected = [
            (NAME, "Name"),
            (CREDENTIAL, "Credential"),
            (ROTATE, "Rotate"),
            (ROTATE_EVERY, "Rotate every"),
            (VALID_FOR, "Valid for"),
            (ROTATION_MODE, "Rotation mode"),
            (REGION, "Region"),
            (ENDPOINT, "Endpoint"),
            (ALIAS, "Alias"),
            (DESCRIPTION, "Description"),
            (ACTIVE_KEY_ID, "Active key id"),
            (POLICY_FILE, "Policy file"),
            (DISABLE_PREVIOUS, "Disable previous"),
            (TAGS, "Tags"),
        ];
        assert_eq!(form.fields.len(), expected.len());
        for (index, label) in expected {
            assert_eq!(form.fields[index].label, label, "field {index}");
        }
    }

    #[test]
    fn the_editors_fields_are_the_grammars() {
        let mut named: Vec<&str> = FIELD_NAMES.iter().flatten().copied().collect();
        named.sort_unstable();
        let mut grammar = fields::FIELDS.to_vec();
        grammar.sort_unstable();
        assert_eq!(named, grammar);
        let modes = rotation_modes();
        assert!(
            modes
                .iter()
                .all(|m| grammar_check(ROTATION_MODE, m).is_ok())
        );
    }

    fn grammar_check(i: usize, value: &str) -> Result<(), String> {
        grammar(i)(value)
    }

    #[test]
    fn durations_take_a_number_and_a_unit() {
        let rotate_every = |v| grammar_check(ROTATE_EVERY, v);
        for ok in ["90d", "1s", "15m", "12h"] {
            assert_eq!(rotate_every(ok), Ok(()), "{ok}");
        }
        for bad in ["", "90", "d", "0d", "-1d", "+5d", "9w", "1.5d"] {
            assert!(rotate_every(bad).is_err(), "{bad}");
        }
        assert_eq!(
            rotate_every("90").unwrap_err(),
            "'90' has no unit: write 90s, 90m, 90h or 90d, or 'off'",
            "the grammar's words, less the field's name"
        );
        assert_eq!(rotate_every("0d").unwrap_err(), "must be longer than 0s");
        let valid_for = |v| grammar_check(VALID_FOR, v);
        assert_eq!(valid_for("forever"), Ok(()));
        assert_eq!(valid_for("365d"), Ok(()));
        assert!(valid_for("never").unwrap_err().contains("forever"));
    }

    #[test]
    fn aliases_regions_endpoints_tags_and_names_as_the_daemon_reads_them() {
        let alias = |v| grammar_check(ALIAS, v);
        assert_eq!(alias("alias/payments-eu/2"), Ok(()));
        assert_eq!(
            alias("payments").unwrap_err(),
            "an alias starts with 'alias/'"
        );
        assert!(alias("alias/aws/kms").unwrap_err().contains("reserved"));
        assert!(alias("alias/").is_err());
        assert!(alias("alias/a b").is_err());
        // Any [a-z0-9-]{1,32} is a region, as the daemon reads it (the editor once demanded
        // word-word-digits).
        let region = |v| grammar_check(REGION, v);
        for ok in [
            "us-east-1",
            "ap-southeast-2",
            "us-gov-west-1",
            "us-east",
            "local",
        ] {
            assert_eq!(region(ok), Ok(()), "{ok}");
        }
        for bad in ["US-EAST-1", "us east-1", &"a".repeat(33)] {
            assert!(region(bad).is_err(), "{bad}");
        }
        let endpoint = |v| grammar_check(ENDPOINT, v);
        assert_eq!(endpoint("https://kms.us-east-1.amazonaws.com"), Ok(()));
        assert_eq!(endpoint("http://localhost:4566"), Ok(()));
        assert!(endpoint("kms.example").is_err());
        // Tags: the count and the lengths are checked too, as the daemon does.
        let tags = |v: &str| grammar_check(TAGS, v);
        assert_eq!(tags("env=prod,team=payments"), Ok(()));
        assert_eq!(tags("empty="), Ok(()));
        assert!(tags("env").unwrap_err().contains("KEY=VALUE"));
        assert!(tags("aws:x=1").unwrap_err().contains("reserved"));
        assert!(tags("keyward:group=a").is_err());
        assert!(tags("=v").is_err());
        let many: Vec<String> = (0..41).map(|i| format!("k{i}=v")).collect();
        assert!(tags(&many.join(",")).unwrap_err().contains("at most 40"));
        assert!(tags(&format!("{}=v", "k".repeat(129))).is_err());
        assert_eq!(fields::validate_name("prod.payments_1"), Ok(()));
        assert!(fields::validate_name("-x").is_err() && fields::validate_name("a b").is_err());
        let key_id = |v| grammar_check(ACTIVE_KEY_ID, v);
        assert!(key_id("1234abcd-12ab").is_ok() && key_id("a b").is_err());
        assert_eq!(
            check_credential(""),
            Err("none stored: add one on Credentials".into())
        );
        assert_eq!(check_credential("prod"), Ok(()));
    }

    #[test]
    fn the_policy_preview_is_one_short_line_or_says_who_reads_it() {
        assert_eq!(policy_preview(None), POLICY_UNREAD);
        assert_eq!(
            policy_preview(Some(
                "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": []\n}"
            )),
            "{ \"Version\": \"2012-10-17…"
        );
        assert_eq!(policy_preview(Some("{}")), "{}");
    }

    fn on_keys() -> App {
        let mut app = dual();
        key(&mut app, KeyCode::Char('7'));
        ok(
            &mut app,
            Reply::GroupList(vec![group("payments", "alias/payments")]),
        );
        ok(&mut app, Reply::KeyList(Vec::new()));
        app
    }
    fn credentials() -> Reply {
        Reply::CredentialList(vec![
            fixtures::credential("prod", "****MPLE", "never", &[]),
            fixtures::credential("test", "****Q7ZK", "never", &[]),
        ])
    }

    #[test]
    fn a_new_group_is_checked_confirmed_then_created() {
        let mut app = on_keys();
        let effects = key(&mut app, KeyCode::Char('n'));
        assert!(effects.contains(&sending(p(Op::CredentialList), Request::CredentialList)));
        ok(&mut app, credentials());
        let form = app.shell.form.as_ref().unwrap();
        assert_eq!(form.value(CREDENTIAL), "prod");
        typed(&mut app, "billing");
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Right); // credential: test
        key(&mut app, KeyCode::Tab); // AWS properties, on Region
        assert_eq!(app.shell.form.as_ref().unwrap().focus, REGION);
        typed(&mut app, "us-east-1");
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Down);
        typed(&mut app, "billing");
        assert_eq!(
            app.shell.form.as_ref().unwrap().reason(ALIAS).as_deref(),
            Some("an alias starts with 'alias/'")
        );
        // Enter through to the last field, then Enter: refused with the reason.
        for _ in 0..6 {
            key(&mut app, KeyCode::Enter);
        }
        assert!(app.shell.confirm.is_none());
        assert_eq!(app.shell.form.as_ref().unwrap().focus, ALIAS);
        assert_eq!(
            app.shell.notice.as_deref(),
            Some("Not sent: Alias: an alias starts with 'alias/'.")
        );
        ctrl(&mut app, 'u');
        typed(&mut app, "alias/billing");
        // Shift-Tab back to Group: switch rotation off.
        key(&mut app, KeyCode::BackTab);
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Char(' '));
        assert!(!app.shell.form.as_ref().unwrap().enabled(ROTATE_EVERY));
        app.shell.form.as_mut().unwrap().show(TAGS);
        typed(&mut app, "env=prod");
        key(&mut app, KeyCode::Enter);
        let confirm = app.shell.confirm.clone().unwrap();
        assert_eq!(
            confirm.effect,
            "Create key group billing in us-east-1 with alias/billing, credential test: it is not rotated on a schedule, material valid for forever. No key is made until its first rotation."
        );
        let effects = key(&mut app, KeyCode::Char('y'));
        let fields: BTreeMap<String, String> = [
            ("alias", "alias/billing"),
            ("credential", "test"),
            ("disable_previous", "no"),
            ("region", "us-east-1"),
            ("rotate_every", "off"),
            ("rotation_mode", "new-key"),
            ("tags", "env=prod"),
            ("valid_for", "forever"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            effects,
            [sending(
                p(Op::GroupCreate),
                Request::GroupCreate {
                    name: "billing".into(),
                    fields
                }
            )]
        );
        let effects = ok(
            &mut app,
            Reply::GroupCreate(group("billing", "alias/billing")),
        );
        assert!(crate::app::tests::sent(&effects).contains(&p(Op::GroupList)));
        assert_eq!(
            app.shell.notice.as_deref(),
            Some("Created key group billing (alias/billing).")
        );
    }

    #[test]
    fn an_edit_sends_only_the_changed_fields_and_the_daemons_error_keeps_its_code() {
        let mut app = on_keys();
        key(&mut app, KeyCode::Char('e'));
        ok(&mut app, credentials());
        let form = app.shell.form.as_ref().unwrap();
        assert_eq!(form.target, "payments");
        assert_eq!(form.focus, CREDENTIAL);
        assert_eq!(form.value(REGION), "eu-west-1");
        assert_eq!(form.value(ROTATE_EVERY), "90d");
        assert_eq!(form.fields[POLICY_FILE].note, POLICY_UNREAD);
        // Nothing changed: nothing to send.
        app.shell.form.as_mut().unwrap().show(TAGS);
        key(&mut app, KeyCode::Enter);
        assert!(app.shell.confirm.is_none());
        assert!(notice(&app).starts_with("Nothing changed"));
        key(&mut app, KeyCode::Char('e'));
        ok(&mut app, credentials());
        key(&mut app, KeyCode::Down); // Rotate: off
        key(&mut app, KeyCode::Char(' '));
        key(&mut app, KeyCode::Tab); // Region
        key(&mut app, KeyCode::Down); // Endpoint
        typed(&mut app, "http://localhost:4566");
        app.shell.form.as_mut().unwrap().show(DISABLE_PREVIOUS);
        key(&mut app, KeyCode::Right);
        key(&mut app, KeyCode::Enter);
        key(&mut app, KeyCode::Enter);
        let confirm = app.shell.confirm.clone().unwrap();
        assert_eq!(
            confirm.effect,
            "Change key group payments: rotate_every 90d → off; endpoint (none) → http://localhost:4566; disable_previous no → yes. Keys already made keep theirs until the next rotation."
        );
        let fields: BTreeMap<String, String> = [
            ("disable_previous", "yes"),
            ("endpoint", "http://localhost:4566"),
            ("rotate_every", "off"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            key(&mut app, KeyCode::Enter),
            [sending(
                p(Op::GroupSet),
                Request::GroupSet {
                    name: "payments".into(),
                    fields
                }
            )]
        );
        refused(
            &mut app,
            p(Op::GroupSet),
            ErrorCode::Invalid,
            "endpoint=http://localhost:4566: unreachable",
        );
        assert_eq!(
            app.shell.error.as_ref().map(ErrorLine::text).as_deref(),
            Some("invalid: endpoint=http://localhost:4566: unreachable")
        );
    }

    #[test]
    fn clearing_an_optional_field_sends_the_daemons_word_for_unset() {
        let mut app = on_keys();
        let mut g = group("payments", "alias/payments");
        g.endpoint = Some("https://kms.local".into());
        g.policy_file = Some("/media/usb/p.json".into());
        g.policy = Some("{}".into());
        ok(&mut app, Reply::GroupList(vec![g]));
        key(&mut app, KeyCode::Char('e'));
        assert_eq!(
            app.shell.form.as_ref().unwrap().fields[POLICY_FILE].note,
            "{}"
        );
        for field in [ENDPOINT, POLICY_FILE] {
            app.shell.form.as_mut().unwrap().show(field);
            ctrl(&mut app, 'u');
        }
        app.shell.form.as_mut().unwrap().show(TAGS);
        key(&mut app, KeyCode::Enter);
        let Some(crate::app::dialogs::Confirmable::Send {
            request: Request::GroupSet { fields, .. },
            ..
        }) = app.shell.confirm.clone().map(|c| c.then)
        else {
            panic!("no group_set to confirm");
        };
        assert_eq!(fields.get("endpoint").map(String::as_str), Some("default"));
        assert_eq!(fields.get("policy_file").map(String::as_str), Some("none"));
        assert_eq!(fields.len(), 2);
    }

    #[test]
    fn the_tab_line_switches_tabs_with_the_arrows() {
        let mut app = on_keys();
        key(&mut app, KeyCode::Char('n'));
        key(&mut app, KeyCode::Up);
        assert!(app.shell.form.as_ref().unwrap().on_tabs);
        key(&mut app, KeyCode::Right);
        assert_eq!(app.shell.form.as_ref().unwrap().tab, 1);
        key(&mut app, KeyCode::Right);
        assert_eq!(app.shell.form.as_ref().unwrap().tab, 0, "wraps");
        key(&mut app, KeyCode::Left);
        key(&mut app, KeyCode::Down);
        let form = app.shell.form.as_ref().unwrap();
        assert!(!form.on_tabs);
        assert_eq!(form.focus, REGION);
        key(&mut app, KeyCode::Esc);
        assert!(app.shell.form.is_none());
    }
}
