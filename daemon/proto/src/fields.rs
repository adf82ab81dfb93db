//! The key-group field grammar: names, formats and limits, in one place for the daemon, the
//! serial parser and the console's editor. Format checks only; the daemon adds the semantic ones
//! (a policy file's JSON, a complete group, a credential that exists).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::duration;

/// Tags Keyward puts on KMS keys start with this; operators' tags may not.
pub const TAG_PREFIX: &str = "keyward:";

/// How a rotation lands in AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RotationMode {
    /// A new KMS key per rotation; the alias moves to it.
    #[default]
    NewKey,
    /// New material imported into the same KMS key (ImportType NEW_KEY_MATERIAL), then
    /// RotateKeyOnDemand; key id and alias stay.
    NewMaterial,
}

impl RotationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewKey => "new-key",
            Self::NewMaterial => "new-material",
        }
    }
}

/// The fields `group create` and `group set` accept, in the order `group show` lists them.
pub const FIELDS: [&str; 12] = [
    "credential",
    "region",
    "endpoint",
    "alias",
    "description",
    "active_key_id",
    "policy_file",
    "disable_previous",
    "rotate_every",
    "valid_for",
    "rotation_mode",
    "tags",
];

/// Group names: as user names, so they fit serial lines, aliases and tags.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || name.len() > 64 || !ok_start || !ok_chars {
        return Err(format!(
            "name '{}' is not allowed: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// A yes/no field or setting: yes, true or on; no, false or off.
pub fn parse_bool(field: &str, value: &str) -> Result<bool, String> {
    match value {
        "yes" | "true" | "on" => Ok(true),
        "no" | "false" | "off" => Ok(false),
        _ => Err(format!(
            "{field}: '{value}' is not yes or no, true or false"
        )),
    }
}

fn parse_region(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "region={value}: not an AWS region name (e.g. us-east-1)"
        ))
    }
}

fn parse_endpoint(value: &str) -> Result<Option<String>, String> {
    if value.is_empty() || value == "default" {
        return Ok(None);
    }
    if !(value.starts_with("https://") || value.starts_with("http://")) || value.contains(' ') {
        return Err(format!(
            "endpoint={value}: write a URL such as https://kms.us-east-1.amazonaws.com, or 'default'"
        ));
    }
    Ok(Some(value.trim_end_matches('/').to_owned()))
}

/// AWS alias names: `alias/` then letters, digits, `/_-`, not the reserved `alias/aws/`.
fn parse_alias(value: &str) -> Result<String, String> {
    let Some(rest) = value.strip_prefix("alias/") else {
        return Err(format!("alias={value}: an alias starts with 'alias/'"));
    };
    let ok = !rest.is_empty()
        && value.len() <= 256
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-'));
    if !ok {
        return Err(format!(
            "alias={value}: after 'alias/' use letters, digits, '/', '_' or '-'"
        ));
    }
    if rest.starts_with("aws/") {
        return Err(format!("alias={value}: 'alias/aws/' is reserved for AWS"));
    }
    Ok(value.to_owned())
}

fn parse_key_id(value: &str) -> Result<Option<String>, String> {
    if value.is_empty() || value == "none" {
        return Ok(None);
    }
    let ok = value.len() <= 2048
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '/'));
    if !ok {
        return Err(format!(
            "active_key_id={value}: write a KMS key id or ARN, or 'none'"
        ));
    }
    Ok(Some(value.to_owned()))
}

fn parse_optional_duration(
    field: &str,
    value: &str,
    none_word: &str,
) -> Result<Option<u64>, String> {
    if value == none_word {
        return Ok(None);
    }
    let d = duration::parse(value).map_err(|e| format!("{field}: {e}, or '{none_word}'"))?;
    if d.as_secs() == 0 {
        return Err(format!("{field}={value}: must be longer than 0s"));
    }
    Ok(Some(d.as_secs()))
}

/// `tags=env=prod,team=payments`; empty clears them.
pub fn parse_tags(value: &str) -> Result<BTreeMap<String, String>, String> {
    let mut tags = BTreeMap::new();
    for pair in value.split(',').filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!(
                "tags: '{pair}' is not KEY=VALUE; write tags=env=prod,team=payments"
            ));
        };
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            return Err(format!(
                "tags: '{pair}': a tag key is 1-128 characters, a value at most 256"
            ));
        }
        if k.starts_with("aws:") || k.starts_with(TAG_PREFIX) {
            return Err(format!("tags: the tag key '{k}' is reserved"));
        }
        tags.insert(k.to_owned(), v.to_owned());
    }
    if tags.len() > 40 {
        return Err("tags: at most 40 tags".into());
    }
    Ok(tags)
}

/// A field value as given, before the daemon resolves file paths and names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldChange {
    Credential(String),
    Region(String),
    Endpoint(Option<String>),
    Alias(String),
    Description(String),
    ActiveKeyId(Option<String>),
    /// A path on the appliance; the daemon reads and validates the file.
    PolicyFile(Option<String>),
    DisablePrevious(bool),
    RotateEvery(Option<u64>),
    ValidFor(Option<u64>),
    RotationMode(RotationMode),
    Tags(BTreeMap<String, String>),
}

/// Parses `key=value` pairs. Unknown fields and bad values are errors that name them.
pub fn parse_fields(fields: &BTreeMap<String, String>) -> Result<Vec<FieldChange>, String> {
    fields
        .iter()
        .map(|(k, v)| parse_field(k, v))
        .collect::<Result<Vec<_>, _>>()
}

pub fn parse_field(key: &str, value: &str) -> Result<FieldChange, String> {
    Ok(match key {
        "credential" => {
            validate_name(value).map_err(|e| format!("credential: {e}"))?;
            FieldChange::Credential(value.to_owned())
        }
        "region" => FieldChange::Region(parse_region(value)?),
        "endpoint" => FieldChange::Endpoint(parse_endpoint(value)?),
        "alias" => FieldChange::Alias(parse_alias(value)?),
        "description" => {
            if value.chars().count() > 8192 || value.chars().any(char::is_control) {
                return Err("description: at most 8192 characters, no control characters".into());
            }
            FieldChange::Description(value.to_owned())
        }
        "active_key_id" => FieldChange::ActiveKeyId(parse_key_id(value)?),
        "policy_file" => FieldChange::PolicyFile(match value {
            "" | "none" => None,
            path => Some(path.to_owned()),
        }),
        "disable_previous" => FieldChange::DisablePrevious(parse_bool(key, value)?),
        "rotate_every" => FieldChange::RotateEvery(parse_optional_duration(key, value, "off")?),
        "valid_for" => FieldChange::ValidFor(parse_optional_duration(key, value, "forever")?),
        "rotation_mode" => FieldChange::RotationMode(match value {
            "new-key" => RotationMode::NewKey,
            "new-material" => RotationMode::NewMaterial,
            _ => {
                return Err(format!(
                    "rotation_mode={value}: write new-key or new-material"
                ));
            }
        }),
        "tags" => FieldChange::Tags(parse_tags(value)?),
        other => {
            return Err(format!(
                "unknown group field '{other}'; the fields are {}",
                FIELDS.join(", ")
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_the_field() {
        for (k, v, want) in [
            ("alias", "payments", "starts with 'alias/'"),
            ("alias", "alias/aws/x", "reserved"),
            ("rotate_every", "90", "no unit"),
            ("valid_for", "0s", "longer than 0s"),
            ("disable_previous", "maybe", "yes or no"),
            ("colour", "blue", "unknown group field 'colour'"),
            ("tags", "novalue", "not KEY=VALUE"),
            ("tags", "keyward:key-id=x", "reserved"),
            ("endpoint", "ftp://x", "write a URL"),
            ("region", "US East", "not an AWS region"),
        ] {
            let err = parse_field(k, v).unwrap_err();
            assert!(err.contains(want), "{k}={v}: {err}");
        }
    }

    #[test]
    fn limits_hold_for_every_front_end() {
        // Any [a-z0-9-]{1,32} is a region (the console once demanded word-word-digits).
        assert!(parse_field("region", "eu-central-1").is_ok());
        assert!(parse_field("region", "local").is_ok());
        assert!(parse_field("region", &"a".repeat(33)).is_err());
        let many: Vec<String> = (0..41).map(|i| format!("k{i}=v")).collect();
        assert!(
            parse_tags(&many.join(","))
                .unwrap_err()
                .contains("at most 40")
        );
        assert!(parse_tags(&format!("{}=v", "k".repeat(129))).is_err());
        assert!(parse_tags(&format!("k={}", "v".repeat(257))).is_err());
        assert_eq!(parse_tags("").unwrap().len(), 0);
        for f in FIELDS {
            // Every listed field has a grammar: an empty value is either accepted or refused
            // with the field's own name, never as an unknown field.
            if let Err(e) = parse_field(f, "") {
                assert!(!e.contains("unknown group field"), "{f}: {e}");
            }
        }
    }
}
