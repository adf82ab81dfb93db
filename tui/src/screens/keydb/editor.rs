//! The key group editor: a form with two tabs, Group (name, credential, rotate, rotate every,
//! valid for, rotation mode) and AWS properties (region, endpoint, alias, description, active
//! key id, policy file, disable previous, tags). `n` on the Keys screen opens it empty and
//! sends `group_create`; `e` fills it from the selected group and sends `group_set` with only
//! the fields that changed. Each field's format is checked as it is typed, the reason shown
//! beside it; the daemon stays the authority and its errors come back with their codes.

use std::collections::BTreeMap;

use keyward_proto::{GroupView, Request};

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

/// The daemon's name of each field, by the indices above; `None` for the name (it is the
/// group) and for rotate yes/no (it is sent as `rotate_every=off`).
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

/// What the policy file field says when the daemon sent no policy to preview.
pub const POLICY_UNREAD: &str = "(read by the daemon when saved)";

/// `N` then `s`, `m`, `h` or `d`, more than 0.
pub fn check_duration(value: &str) -> Result<(), String> {
    let Some(unit) = value.chars().last() else {
        return Err("is empty".into());
    };
    let number = &value[..value.len() - unit.len_utf8()];
    if !matches!(unit, 's' | 'm' | 'h' | 'd') {
        return Err("N then s, m, h or d (90d)".into());
    }
    // Digits only: `parse` would also take a sign, which the daemon does not.
    if !number.chars().all(|c| c.is_ascii_digit()) {
        return Err("N then s, m, h or d (90d)".into());
    }
    match number.parse::<u64>() {
        Ok(0) => Err("must be longer than 0".into()),
        Ok(_) => Ok(()),
        Err(_) => Err("N then s, m, h or d (90d)".into()),
    }
}

/// A duration, or `forever`.
pub fn check_valid_for(value: &str) -> Result<(), String> {
    if value == "forever" {
        return Ok(());
    }
    check_duration(value).map_err(|_| "N then s, m, h or d, or forever".into())
}

/// `alias/` then letters, digits, `/`, `_` or `-`; not `alias/aws/`.
pub fn check_alias(value: &str) -> Result<(), String> {
    let Some(rest) = value.strip_prefix("alias/") else {
        return Err("must start with alias/".into());
    };
    if rest.starts_with("aws/") {
        return Err("alias/aws/ is reserved for AWS".into());
    }
    if rest.is_empty()
        || !rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-'))
    {
        return Err("after alias/ use letters, digits, / _ -".into());
    }
    Ok(())
}

/// An AWS region name: letters, a dash, letters, a dash, a number (`us-east-1`,
/// `ap-southeast-2`, `us-gov-west-1`).
pub fn check_region(value: &str) -> Result<(), String> {
    let parts: Vec<&str> = value.split('-').collect();
    let ok = parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err("not a region like us-east-1".into())
    }
}

/// Empty (the regional endpoint) or an `http://` or `https://` URL.
pub fn check_endpoint(value: &str) -> Result<(), String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !value.contains(' ') => Ok(()),
        _ => Err("empty or http(s)://host".into()),
    }
}

/// `k=v,k=v`; `aws:` and `keyward:` keys are reserved.
pub fn check_tags(value: &str) -> Result<(), String> {
    for pair in value.split(',') {
        let Some((k, _)) = pair.split_once('=') else {
            return Err(format!("'{pair}' is not key=value"));
        };
        if k.is_empty() {
            return Err("a tag key is empty".into());
        }
        if k.starts_with("aws:") || k.starts_with("keyward:") {
            return Err(format!("the key {k} is reserved"));
        }
    }
    Ok(())
}

/// A group name: letters, digits, `.`, `_`, `-`, starting with a letter or digit.
pub fn check_name(value: &str) -> Result<(), String> {
    let ok = value.len() <= 64
        && value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err("letters, digits, . _ - (1-64)".into())
    }
}

/// A KMS key id or ARN.
pub fn check_key_id(value: &str) -> Result<(), String> {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '/'))
    {
        Ok(())
    } else {
        Err("not a KMS key id or ARN".into())
    }
}

fn check_credential(value: &str) -> Result<(), String> {
    if value.is_empty() {
        Err("none stored: add one on Credentials".into())
    } else {
        Ok(())
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
    vec![
        fill(
            FormField::text("Name", 64).checked_by(check_name),
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
            .checked_by(check_duration)
            .enabled_by(ROTATE)
            .filled(match g {
                Some(_) if rotating => &rotate_every,
                _ => "90d",
            }),
        FormField::text("Valid for", 16)
            .checked_by(check_valid_for)
            .filled(g.map_or("forever", |g| g.valid_for.as_str())),
        FormField::choice("Rotation mode", &["new-key", "new-material"])
            .filled(g.map_or("new-key", |g| g.rotation_mode.as_str())),
        fill(
            FormField::text("Region", 32)
                .on_tab(1)
                .checked_by(check_region),
            &text(|g| g.region.clone()),
        ),
        fill(
            FormField::text("Endpoint", 256)
                .on_tab(1)
                .optional()
                .checked_by(check_endpoint),
            &text(|g| g.endpoint.clone().unwrap_or_default()),
        ),
        fill(
            FormField::text("Alias", 256)
                .on_tab(1)
                .checked_by(check_alias),
            &text(|g| g.alias.clone()),
        ),
        fill(
            FormField::text("Description", 256).on_tab(1).optional(),
            &text(|g| g.description.clone()),
        ),
        fill(
            FormField::text("Active key id", 2048)
                .on_tab(1)
                .optional()
                .checked_by(check_key_id),
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
            FormField::text("Tags", 1024)
                .on_tab(1)
                .optional()
                .checked_by(check_tags),
            &text(|g| {
                g.tags
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        ),
    ]
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
    use crate::app::tests::{ctrl, dual, key, ok, p, refused, typed};
    use crate::app::{App, Effect, ErrorLine};
    use crate::screens::keydb::tests::group;
    use crate::wire::Op;
    use crossterm::event::KeyCode;
    use keyward_proto::ErrorCode;
    use serde_json::json;

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
    fn durations_take_a_number_and_a_unit() {
        for ok in ["90d", "1s", "15m", "12h"] {
            assert_eq!(check_duration(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", "90", "d", "0d", "-1d", "+5d", " 5d", "9w", "1.5d", "off",
        ] {
            assert!(check_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(check_valid_for("forever"), Ok(()));
        assert_eq!(check_valid_for("365d"), Ok(()));
        assert!(check_valid_for("never").unwrap_err().contains("forever"));
    }

    #[test]
    fn aliases_regions_endpoints_tags_and_names() {
        assert_eq!(check_alias("alias/payments-eu/2"), Ok(()));
        assert_eq!(
            check_alias("payments").unwrap_err(),
            "must start with alias/"
        );
        assert!(
            check_alias("alias/aws/kms")
                .unwrap_err()
                .contains("reserved")
        );
        assert!(check_alias("alias/").is_err());
        assert!(check_alias("alias/a b").is_err());
        for ok in ["us-east-1", "ap-southeast-2", "us-gov-west-1"] {
            assert_eq!(check_region(ok), Ok(()), "{ok}");
        }
        for bad in ["us-east", "US-EAST-1", "useast1", "us--1", "us-east-1a"] {
            assert!(check_region(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_endpoint("https://kms.us-east-1.amazonaws.com"),
            Ok(())
        );
        assert_eq!(check_endpoint("http://localhost:4566"), Ok(()));
        assert!(check_endpoint("kms.example").is_err());
        assert!(check_endpoint("https://").is_err());
        assert_eq!(check_tags("env=prod,team=payments"), Ok(()));
        assert_eq!(check_tags("empty="), Ok(()));
        assert!(check_tags("env").unwrap_err().contains("key=value"));
        assert!(check_tags("aws:x=1").unwrap_err().contains("reserved"));
        assert!(check_tags("keyward:group=a").is_err());
        assert!(check_tags("=v").is_err());
        assert_eq!(check_name("prod.payments_1"), Ok(()));
        assert!(check_name("-x").is_err() && check_name("a b").is_err());
        assert!(check_key_id("1234abcd-12ab").is_ok() && check_key_id("a b").is_err());
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
            p(Op::GroupList),
            json!([group("payments", "alias/payments")]),
        );
        ok(&mut app, p(Op::KeyList), json!([]));
        app
    }
    fn credentials() -> serde_json::Value {
        json!([
            {"name": "prod", "access_key_id": "****MPLE", "created": "t", "last_used": "never",
             "groups": []},
            {"name": "test", "access_key_id": "****Q7ZK", "created": "t", "last_used": "never",
             "groups": []},
        ])
    }

    #[test]
    fn a_new_group_is_checked_confirmed_then_created() {
        let mut app = on_keys();
        let effects = key(&mut app, KeyCode::Char('n'));
        assert!(effects.contains(&Effect::Send {
            purpose: p(Op::CredentialList),
            request: Request::CredentialList,
        }));
        ok(&mut app, p(Op::CredentialList), credentials());
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
            Some("must start with alias/")
        );
        // Enter through to the last field, then Enter: refused with the reason.
        for _ in 0..6 {
            key(&mut app, KeyCode::Enter);
        }
        assert!(app.shell.confirm.is_none());
        assert_eq!(app.shell.form.as_ref().unwrap().focus, ALIAS);
        assert_eq!(
            app.shell.notice.as_deref(),
            Some("Not sent: Alias must start with alias/.")
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
            [Effect::Send {
                purpose: p(Op::GroupCreate),
                request: Request::GroupCreate {
                    name: "billing".into(),
                    fields
                },
            }]
        );
        let effects = ok(
            &mut app,
            p(Op::GroupCreate),
            group("billing", "alias/billing"),
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
        ok(&mut app, p(Op::CredentialList), credentials());
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
        assert!(
            app.shell.notice
                .as_deref()
                .unwrap()
                .starts_with("Nothing changed")
        );
        key(&mut app, KeyCode::Char('e'));
        ok(&mut app, p(Op::CredentialList), credentials());
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
            [Effect::Send {
                purpose: p(Op::GroupSet),
                request: Request::GroupSet {
                    name: "payments".into(),
                    fields
                },
            }]
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
        g["endpoint"] = json!("https://kms.local");
        g["policy_file"] = json!("/media/usb/p.json");
        g["policy"] = json!("{}");
        ok(&mut app, p(Op::GroupList), json!([g]));
        key(&mut app, KeyCode::Char('e'));
        assert_eq!(app.shell.form.as_ref().unwrap().fields[POLICY_FILE].note, "{}");
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
