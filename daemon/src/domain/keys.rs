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

/// A key as recorded in the key database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: KeyId,
    pub label: String,
    pub purpose: KeyPurpose,
    pub fingerprint: Fingerprint,
    pub created_ms: u64,
    /// Customer keys: the group and the AWS KMS key that holds the material.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CloudBinding>,
}

pub use keyward_proto::fields::TAG_PREFIX;
/// The tag that carries the Keyward key id on the KMS key: a resumed rotation looks for it
/// before creating, so it never makes a second key.
pub const TAG_KEY_ID: &str = "keyward:key-id";

pub use keyward_proto::state::{AwsKeyState, KeyState};

/// A customer key's place in AWS KMS.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CloudBinding {
    pub group: String,
    pub state: KeyState,
    #[serde(default)]
    pub aws_key_id: Option<String>,
    #[serde(default)]
    pub aws_arn: Option<String>,
    /// The KMS key state as last seen (Enabled, Disabled, PendingImport, …).
    #[serde(default)]
    pub aws_key_state: Option<AwsKeyState>,
    #[serde(default)]
    pub alias: Option<String>,
    /// When the imported material expires in AWS; `None` for never.
    #[serde(default)]
    pub valid_to_ms: Option<u64>,
    /// The job that created the key.
    #[serde(default)]
    pub job: u64,
    /// The expiry warning for the current `valid_to_ms` has been audited.
    #[serde(default)]
    pub expiry_warned: bool,
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
