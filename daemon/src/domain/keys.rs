//! Keys as the key database knows them: metadata only, never key material.

use serde::{Deserialize, Serialize};

/// A Keyward key id: the PKCS#11 `CKA_ID` of the key in the HSM, 16 random bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl From<KeyId> for String {
    fn from(id: KeyId) -> String {
        id.to_string()
    }
}

impl TryFrom<String> for KeyId {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let raw = hex::decode(&text).map_err(|_| format!("key id '{text}' is not hex"))?;
        let raw: [u8; 16] = raw
            .try_into()
            .map_err(|_| format!("key id '{text}' is not 32 hex digits"))?;
        Ok(KeyId(raw))
    }
}

/// What a key is for; decides its PKCS#11 attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyPurpose {
    /// AES-256 that encrypts secrets stored in the database (credentials). Never leaves the HSM.
    Storage,
    /// HMAC-SHA256 key that seals audit records. Never leaves the HSM.
    Audit,
    /// AES-256 customer key for AWS KMS: leaves the HSM only wrapped under an AWS wrapping key.
    Customer,
}

impl KeyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Storage => "storage",
            Self::Audit => "audit",
            Self::Customer => "customer",
        }
    }
}

/// A key check value: the first 3 bytes of AES-ECB(key, zeros) (HMAC for MAC keys), in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint(pub String);

impl Fingerprint {
    pub fn from_check_block(block: &[u8]) -> Self {
        Fingerprint(hex::encode_upper(&block[..block.len().min(3)]))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a key's material came from. It decides what the appliance can do with the key: only
/// material an HSM holds can be imported again after AWS deleted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeySource {
    /// Generated in this appliance's HSM, which keeps it.
    #[default]
    Hsm,
    /// Imported from a file and pushed to AWS; the appliance kept no copy.
    FileImport,
    /// Generated natively in AWS KMS (origin AWS_KMS); no material here.
    AwsNative,
    /// Only known from AWS (found by a sync); no material here.
    Synced,
}

/// A key as recorded in the key database (schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The Keyward key id. For a key an HSM holds it is also the key's `CKA_ID` there.
    pub id: KeyId,
    pub label: String,
    pub purpose: KeyPurpose,
    pub fingerprint: Fingerprint,
    pub created_ms: u64,
    #[serde(default)]
    pub source: KeySource,
    /// The HSM tokens (by label) that hold the material; empty when no HSM does.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Customer keys: the group and every AWS KMS key that holds the material.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CloudBinding>,
}

pub use keyward_proto::fields::TAG_PREFIX;
/// The tag that carries the Keyward key id on the KMS key: a resumed rotation looks for it
/// before creating, so it never makes a second key.
pub const TAG_KEY_ID: &str = "keyward:key-id";

pub use keyward_proto::state::{AwsKeyState, KeyState};

/// A customer key's place in its group, and the AWS KMS keys that hold it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CloudBinding {
    pub group: String,
    pub state: KeyState,
    /// The job that created the key.
    #[serde(default)]
    pub job: u64,
    /// The expiry warning for the current `valid_to_ms` has been audited.
    #[serde(default)]
    pub expiry_warned: bool,
    /// Every KMS key that holds this key's material, the group's own first. Empty until the
    /// rotation that made the key has created its KMS key.
    #[serde(default)]
    pub aws: Vec<AwsBinding>,
}

/// One AWS KMS key that holds a Keyward key (a region, an account, a linked copy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsBinding {
    pub region: String,
    pub key_id: String,
    #[serde(default)]
    pub arn: Option<String>,
    /// As last seen.
    #[serde(default)]
    pub state: Option<AwsKeyState>,
    /// The alias this key carries, if it holds one.
    #[serde(default)]
    pub alias: Option<String>,
    /// When the imported material expires in AWS; `None` for never.
    #[serde(default)]
    pub valid_to_ms: Option<u64>,
    /// When AWS deletes the key (scheduled deletion).
    #[serde(default)]
    pub deletion_ms: Option<u64>,
}

impl AwsBinding {
    pub fn new(region: &str, key_id: &str) -> Self {
        Self {
            region: region.to_owned(),
            key_id: key_id.to_owned(),
            arn: None,
            state: None,
            alias: None,
            valid_to_ms: None,
            deletion_ms: None,
        }
    }
}

impl CloudBinding {
    /// The group's own KMS key.
    pub fn primary(&self) -> Option<&AwsBinding> {
        self.aws.first()
    }

    /// Changes the group's own KMS key's record; nothing when there is none yet.
    pub fn on_primary(&mut self, change: impl FnOnce(&mut AwsBinding)) {
        if let Some(binding) = self.aws.first_mut() {
            change(binding);
        }
    }

    /// Records the group's own KMS key (found or created), keeping what is known of it.
    pub fn bind_primary(&mut self, region: &str, key_id: &str) -> &mut AwsBinding {
        match self.aws.first() {
            Some(b) if b.key_id == key_id => {}
            _ => self.aws.insert(0, AwsBinding::new(region, key_id)),
        }
        &mut self.aws[0]
    }

    pub fn aws_key_id(&self) -> Option<&str> {
        self.primary().map(|b| b.key_id.as_str())
    }

    pub fn alias(&self) -> Option<&str> {
        self.primary().and_then(|b| b.alias.as_deref())
    }

    pub fn valid_to_ms(&self) -> Option<u64> {
        self.primary().and_then(|b| b.valid_to_ms)
    }

    /// The key is `id` or `arn` of one of its KMS keys.
    pub fn is_aws_key(&self, id_or_arn: &str) -> bool {
        self.aws
            .iter()
            .any(|b| b.key_id == id_or_arn || b.arn.as_deref() == Some(id_or_arn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_round_trips_as_hex_and_rejects_junk() {
        let id = KeyId([0xab; 16]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(16)));
        assert_eq!(serde_json::from_str::<KeyId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<KeyId>("\"zz\"").is_err());
        assert!(serde_json::from_str::<KeyId>("\"abab\"").is_err());
    }

    #[test]
    fn fingerprint_is_three_bytes() {
        assert_eq!(
            Fingerprint::from_check_block(&[0x1a, 0x2b, 0x3c, 0x4d]).0,
            "1A2B3C"
        );
    }
}
