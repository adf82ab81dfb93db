//! Key groups: a container for keys and the template for new ones (the AWS KMS properties).
//! Fields are set as `key=value` text, validated here; a bad value changes nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::duration;
pub use keyward_proto::fields::{
    FIELDS, FieldChange, RotationMode, parse_bool, parse_fields, parse_tags, validate_name,
};

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
