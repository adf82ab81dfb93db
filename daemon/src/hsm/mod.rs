//! The HSM boundary. [`Hsm`] is the operation set the appliance needs from any PKCS#11 token;
//! [`pkcs11::Pkcs11Hsm`] implements it with cryptoki. Only this module touches cryptoki.
//!
//! The trait is blocking, as PKCS#11 is; async callers run it with `spawn_blocking` (see
//! `api`). Key material never crosses this boundary in plaintext: keys are generated inside,
//! and leave only wrapped under an RSA public key.

pub mod ckr;
pub mod pkcs11;
pub mod rsa_spki;

pub use ckr::Ckr;

use std::collections::BTreeSet;

use secrecy::SecretSlice;
use serde::{Deserialize, Serialize};

use crate::domain::keys::{Fingerprint, KeyId, KeyPurpose};

/// The AWS KMS import wrapping algorithms, strongest first (AWS `WrappingAlgorithmSpec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WrapAlgorithm {
    #[serde(rename = "RSAES_OAEP_SHA_256")]
    RsaesOaepSha256,
    #[serde(rename = "RSA_AES_KEY_WRAP_SHA_256")]
    RsaAesKeyWrapSha256,
    #[serde(rename = "RSAES_OAEP_SHA_1")]
    RsaesOaepSha1,
    #[serde(rename = "RSA_AES_KEY_WRAP_SHA_1")]
    RsaAesKeyWrapSha1,
}

impl WrapAlgorithm {
    /// In order of preference.
    pub const ALL: [WrapAlgorithm; 4] = [
        Self::RsaesOaepSha256,
        Self::RsaAesKeyWrapSha256,
        Self::RsaesOaepSha1,
        Self::RsaAesKeyWrapSha1,
    ];

    /// The name AWS uses in GetParametersForImport.
    pub fn aws_name(self) -> &'static str {
        match self {
            Self::RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
            Self::RsaAesKeyWrapSha256 => "RSA_AES_KEY_WRAP_SHA_256",
            Self::RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
            Self::RsaAesKeyWrapSha1 => "RSA_AES_KEY_WRAP_SHA_1",
        }
    }

    pub fn uses_sha256(self) -> bool {
        matches!(self, Self::RsaesOaepSha256 | Self::RsaAesKeyWrapSha256)
    }

    /// RSA_AES_KEY_WRAP: an ephemeral AES key wraps the target (RFC 5649), RSA-OAEP wraps that.
    pub fn is_rsa_aes(self) -> bool {
        matches!(self, Self::RsaAesKeyWrapSha256 | Self::RsaAesKeyWrapSha1)
    }
}

impl std::fmt::Display for WrapAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.aws_name())
    }
}

/// What the token proved it can do when probed at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Wrap algorithms that worked on a throwaway key, strongest first.
    pub wrap_algorithms: Vec<WrapAlgorithm>,
}

impl Capabilities {
    /// The strongest algorithm the token supports, if any.
    pub fn best_wrap(&self) -> Option<WrapAlgorithm> {
        self.wrap_algorithms.first().copied()
    }
    pub fn supports(&self, alg: WrapAlgorithm) -> bool {
        self.wrap_algorithms.contains(&alg)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub label: String,
    pub serial: String,
    pub manufacturer: String,
    pub model: String,
}

/// A key generated in the HSM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    pub id: KeyId,
    pub fingerprint: Fingerprint,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum HsmError {
    #[error("cannot load the PKCS#11 module {module}: {reason}")]
    Module { module: String, reason: String },
    /// The module loaded, but C_Initialize failed: for a token that was working, usually its
    /// store gone (SoftHSM: the tokens directory).
    #[error(
        "the HSM is unavailable: {module} loaded but could not initialise ({ckr}); is the token connected and its store readable? The daemon reconnects on the next request"
    )]
    Initialize { module: String, ckr: Ckr },
    #[error(
        "no HSM token labelled '{label}' is present; check hsm.token_label and that the HSM is connected"
    )]
    TokenNotFound { label: String },
    #[error("the HSM refused the PIN from hsm.pin_file ({ckr}); check the PIN file")]
    Login { ckr: Ckr },
    #[error("HSM key {id} is not on the token")]
    KeyNotFound { id: KeyId },
    /// A return code that says the device is gone; the PKCS#11 context is rebuilt.
    #[error(
        "the HSM is unavailable during {op} ({ckr}); the daemon reconnects on the next request"
    )]
    Device { op: &'static str, ckr: Ckr },
    /// A return code that says the session is gone; that session is evicted from the pool.
    #[error("the HSM session was lost during {op} ({ckr}); retry: a new session is opened")]
    SessionLost { op: &'static str, ckr: Ckr },
    /// Any other return code: the token refused this request.
    #[error("HSM {op} failed: {ckr}")]
    Pkcs11 { op: &'static str, ckr: Ckr },
    /// A failure that is not a PKCS#11 return code (what the token returned makes no sense).
    #[error("HSM {op} failed: {reason}")]
    Operation { op: &'static str, reason: String },
    /// AES-GCM refused the ciphertext: its tag does not verify (tampered, or sealed under
    /// another key or AAD) or it is too short to carry one. Bad input, not an HSM fault.
    #[error("HSM {op}: the ciphertext is not valid under this key and AAD ({reason})")]
    InvalidCiphertext { op: &'static str, reason: String },
    #[error("the wrapping key is not an RSA public key in DER SubjectPublicKeyInfo form: {0}")]
    BadWrappingKey(String),
    #[error("the HSM cannot wrap with {alg}; it supports: {supported}")]
    UnsupportedWrap {
        alg: WrapAlgorithm,
        supported: String,
    },
    #[error("the HSM is faulted: {0}")]
    Faulted(String),
}

impl HsmError {
    /// A fault of the device or token, as opposed to a bad request.
    pub fn is_device_fault(&self) -> bool {
        matches!(
            self,
            Self::Device { .. }
                | Self::Initialize { .. }
                | Self::TokenNotFound { .. }
                | Self::Module { .. }
                | Self::Faulted(_)
        )
    }

    /// The PKCS#11 return code behind this error, when the token gave one.
    pub fn ckr(&self) -> Option<Ckr> {
        match self {
            Self::Initialize { ckr, .. }
            | Self::Login { ckr }
            | Self::Device { ckr, .. }
            | Self::SessionLost { ckr, .. }
            | Self::Pkcs11 { ckr, .. } => Some(*ckr),
            _ => None,
        }
    }
}

pub type HsmResult<T> = Result<T, HsmError>;

/// The operations the appliance needs from an HSM. Implementations are blocking.
pub trait Hsm: Send + Sync {
    fn token_info(&self) -> HsmResult<TokenInfo>;
    /// Recorded by probing at start-up.
    fn capabilities(&self) -> Capabilities;
    /// Generates a persistent, sensitive key with attributes for `purpose`, under a random id.
    fn generate_key(&self, purpose: KeyPurpose, label: &str) -> HsmResult<GeneratedKey> {
        let raw: [u8; 16] = self
            .random(16)?
            .try_into()
            .map_err(|_| HsmError::Operation {
                op: "generate key",
                reason: "the token returned the wrong number of random bytes".into(),
            })?;
        self.generate_key_with_id(purpose, label, KeyId(raw))
    }
    /// Generates a key under an id the caller chose (and recorded) first, so an interrupted
    /// job can look for the key it may have made.
    fn generate_key_with_id(
        &self,
        purpose: KeyPurpose,
        label: &str,
        id: KeyId,
    ) -> HsmResult<GeneratedKey>;
    /// The label of the key with this id, or `None` when the token does not hold it.
    fn find_key(&self, id: &KeyId) -> HsmResult<Option<String>>;
    /// The id of every secret key on the token, from one search whatever their number:
    /// start-up reconciliation compares this set with the database (a search per key made it
    /// quadratic, since a search reads every object on SoftHSM).
    fn key_ids(&self) -> HsmResult<BTreeSet<KeyId>>;
    fn destroy_key(&self, id: &KeyId) -> HsmResult<()>;
    /// The key check value, computed inside the HSM.
    fn fingerprint(&self, id: &KeyId) -> HsmResult<Fingerprint>;
    /// Wraps the key under an RSA public key (DER SubjectPublicKeyInfo), inside the HSM.
    fn wrap_key(
        &self,
        id: &KeyId,
        wrapping_key_der: &[u8],
        alg: WrapAlgorithm,
    ) -> HsmResult<Vec<u8>>;
    /// AES-256-GCM; returns `iv (12) || ciphertext || tag (16)`.
    fn encrypt(&self, id: &KeyId, plaintext: &[u8], aad: &[u8]) -> HsmResult<Vec<u8>>;
    fn decrypt(&self, id: &KeyId, sealed: &[u8], aad: &[u8]) -> HsmResult<SecretSlice<u8>>;
    fn hmac_sign(&self, id: &KeyId, data: &[u8]) -> HsmResult<Vec<u8>>;
    fn hmac_verify(&self, id: &KeyId, data: &[u8], mac: &[u8]) -> HsmResult<bool>;
    fn random(&self, len: usize) -> HsmResult<Vec<u8>>;
    /// Small private values kept inside the token under `name` (e.g. the audit head). More than
    /// one only after a write was interrupted; the caller decides which is newest.
    fn read_anchors(&self, name: &str) -> HsmResult<Vec<Vec<u8>>>;
    fn write_anchor(&self, name: &str, value: &[u8]) -> HsmResult<()>;
    fn remove_anchors(&self, name: &str) -> HsmResult<()>;
    /// Data objects that hold nothing (no label, application, object id or value), one
    /// description each. A process killed inside C_CreateObject leaves one (SoftHSM stores the
    /// object before its template). Keyward's own data objects always carry its application and
    /// a name, and an object with nothing in it is nobody's data.
    fn torn_objects(&self) -> HsmResult<Vec<String>>;
    /// Destroys every object [`Hsm::torn_objects`] would list now; returns how many.
    fn remove_torn_objects(&self) -> HsmResult<usize>;
    /// The last device fault seen, if the HSM has not recovered since.
    fn fault(&self) -> Option<String>;
    /// Drops every session and the module's view of the token, so the next call finds the
    /// token afresh (one that was removed, replaced or restored).
    fn reset(&self);
}
