//! Key groups: a container for keys and the template for new ones (the AWS KMS properties).
//! Fields are set as `key=value` text, validated here; a bad value changes nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::duration;

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

/// A key group as stored. Holds no secret: the credential is referenced by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub credential: String,
    pub region: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    pub alias: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub active_key_id: Option<String>,
    /// Where the policy was read from, as given.
    #[serde(default)]
    pub policy_file: Option<String>,
    /// The key policy JSON, validated when it was set.
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub disable_previous: bool,
    /// Seconds between scheduled rotations; `None` is `off`.
    #[serde(default)]
    pub rotate_every_s: Option<u64>,
    /// Seconds each key's material stays valid in AWS; `None` is `forever`.
    #[serde(default)]
    pub valid_for_s: Option<u64>,
    #[serde(default)]
    pub rotation_mode: RotationMode,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub created_ms: u64,
    /// The last `group set`; a failed rotation planned before it is not retried as it was.
    #[serde(default)]
    pub updated_ms: u64,
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
pub(crate) fn parse_bool(field: &str, value: &str) -> Result<bool, String> {
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
        if k.starts_with("aws:") || k.starts_with(crate::domain::keys::TAG_PREFIX) {
            return Err(format!("tags: the tag key '{k}' is reserved"));
        }
        tags.insert(k.to_owned(), v.to_owned());
    }
    if tags.len() > 40 {
        return Err("tags: at most 40 tags".into());
    }
    Ok(tags)
}

/// Checks a policy document: JSON, an object, at most 32 KiB (the AWS limit).
pub fn validate_policy(text: &str) -> Result<String, String> {
    if text.len() > 32 * 1024 {
        return Err(format!(
            "the policy is {} bytes; AWS allows at most 32768",
            text.len()
        ));
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "the policy is not valid JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    if !value.is_object() {
        return Err("the policy must be a JSON object with a Statement list".into());
    }
    Ok(text.to_owned())
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

fn parse_field(key: &str, value: &str) -> Result<FieldChange, String> {
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

impl Group {
    /// A group with only its name; `group create` applies the given fields and then checks
    /// that the required ones are there.
    pub fn empty(name: &str, now_ms: u64) -> Self {
        Self {
            name: name.to_owned(),
            credential: String::new(),
            region: String::new(),
            endpoint: None,
            alias: String::new(),
            description: String::new(),
            active_key_id: None,
            policy_file: None,
            policy: None,
            disable_previous: false,
            rotate_every_s: None,
            valid_for_s: None,
            rotation_mode: RotationMode::NewKey,
            tags: BTreeMap::new(),
            created_ms: now_ms,
            updated_ms: now_ms,
        }
    }

    /// Applies parsed changes. `policy` is the validated text of a `PolicyFile` change.
    pub fn apply(&mut self, change: FieldChange, policy: Option<String>) {
        match change {
            FieldChange::Credential(v) => self.credential = v,
            FieldChange::Region(v) => self.region = v,
            FieldChange::Endpoint(v) => self.endpoint = v,
            FieldChange::Alias(v) => self.alias = v,
            FieldChange::Description(v) => self.description = v,
            FieldChange::ActiveKeyId(v) => self.active_key_id = v,
            FieldChange::PolicyFile(v) => {
                self.policy_file = v;
                self.policy = policy;
            }
            FieldChange::DisablePrevious(v) => self.disable_previous = v,
            FieldChange::RotateEvery(v) => self.rotate_every_s = v,
            FieldChange::ValidFor(v) => self.valid_for_s = v,
            FieldChange::RotationMode(v) => self.rotation_mode = v,
            FieldChange::Tags(v) => self.tags = v,
        }
    }

    /// The fields a group cannot work without.
    pub fn check_complete(&self) -> Result<(), String> {
        let missing: Vec<&str> = [
            ("credential", self.credential.is_empty()),
            ("region", self.region.is_empty()),
            ("alias", self.alias.is_empty()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(f, _)| *f)
        .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "group {} needs {}: e.g. 'group create {} credential=prod region=us-east-1 alias=alias/payments'",
                self.name,
                missing.join(", "),
                self.name
            ))
        }
    }

    pub fn rotate_every_text(&self) -> String {
        self.rotate_every_s.map_or_else(
            || "off".into(),
            |s| duration::format(std::time::Duration::from_secs(s)),
        )
    }

    pub fn valid_for_text(&self) -> String {
        self.valid_for_s.map_or_else(
            || "forever".into(),
            |s| duration::format(std::time::Duration::from_secs(s)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn fields_parse_and_bad_values_name_the_field() {
        let changes = parse_fields(&fields(&[
            ("alias", "alias/payments"),
            ("rotate_every", "90d"),
            ("valid_for", "forever"),
            ("tags", "env=prod,team=pay"),
            ("rotation_mode", "new-material"),
        ]))
        .unwrap();
        let mut g = Group::empty("payments", 0);
        for c in changes {
            g.apply(c, None);
        }
        assert_eq!(g.rotate_every_s, Some(90 * 86_400));
        assert_eq!(g.valid_for_text(), "forever");
        assert_eq!(g.tags.len(), 2);
        assert_eq!(g.rotation_mode, RotationMode::NewMaterial);
        assert!(
            g.check_complete()
                .unwrap_err()
                .contains("credential, region")
        );

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
            let err = parse_fields(&fields(&[(k, v)])).unwrap_err();
            assert!(err.contains(want), "{k}={v}: {err}");
        }
    }

    #[test]
    fn policy_must_be_a_json_object() {
        assert!(validate_policy(r#"{"Version":"2012-10-17","Statement":[]}"#).is_ok());
        assert!(
            validate_policy("{\"Version\": ")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(validate_policy("[1]").unwrap_err().contains("JSON object"));
    }
}
