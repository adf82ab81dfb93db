//! The cloud boundary. [`CloudKms`] is the set of AWS KMS operations the appliance needs;
//! [`aws::AwsConnector`] implements it with aws-sdk-kms (endpoint override, timeouts, retries
//! with backoff and jitter that report each retry). Only this module touches the AWS SDK.
//!
//! The trait is blocking, like [`crate::hsm::Hsm`]: jobs run on the blocking pool, and the AWS
//! implementation drives the SDK on the daemon's runtime. A fake implementation is allowed
//! only for faults the real peer cannot produce (throttling, dropped connections).

pub mod aws;
pub mod pacing;

use keyward_proto::AwsKeyState;
use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;

use crate::hsm::WrapAlgorithm;

/// Where and as whom to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The credential's name, for messages ("credential prod has no permission …").
    pub credential: String,
    pub region: String,
    pub endpoint: Option<String>,
}

impl Target {
    pub fn endpoint_text(&self) -> String {
        self.endpoint
            .clone()
            .unwrap_or_else(|| format!("https://kms.{}.amazonaws.com (default)", self.region))
    }
}

/// An AWS access key, decrypted for the length of one connection.
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
}

/// A KMS key as DescribeKey reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsKey {
    pub key_id: String,
    pub arn: String,
    pub state: AwsKeyState,
    /// AWS_KMS, EXTERNAL, …
    pub origin: String,
    pub valid_to_ms: Option<u64>,
}

/// GetParametersForImport's answer.
pub struct ImportParameters {
    pub algorithm: WrapAlgorithm,
    /// DER SubjectPublicKeyInfo of the wrapping key.
    pub public_key: Vec<u8>,
    pub import_token: Vec<u8>,
    pub valid_to_ms: Option<u64>,
}

/// What kind of failure, so callers can decide without reading messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The credential lacks a permission.
    Denied,
    /// AWS did not accept the credential at all.
    Rejected,
    NotFound,
    /// The key is not in a state that allows the call.
    InvalidState,
    /// The request was refused as invalid (e.g. an algorithm the peer does not offer).
    Invalid,
    /// The peer does not support the operation.
    Unsupported,
    /// Throttled, and it did not ease within the retries.
    Throttled,
    /// Not reachable, timed out, or failing (5xx), after the retries.
    Unavailable,
    Other,
}

/// A failed call, with a message that names the credential, the operation and the key.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct CloudError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CloudError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

pub type CloudResult<T> = Result<T, CloudError>;

/// The AWS KMS operations the appliance uses. Every call is one AWS API call (plus retries);
/// the job layer audits each.
pub trait CloudKms: Send + Sync {
    fn describe_key(&self, key: &str) -> CloudResult<KmsKey>;
    /// The customer-managed key that carries tag `key=value`, if any.
    fn find_key_by_tag(&self, tag_key: &str, tag_value: &str) -> CloudResult<Option<KmsKey>>;
    /// CreateKey: AES-256 (SYMMETRIC_DEFAULT), ENCRYPT_DECRYPT, origin EXTERNAL.
    fn create_key(&self, description: &str, tags: &BTreeMap<String, String>)
    -> CloudResult<KmsKey>;
    fn tag_key(&self, key: &str, tags: &BTreeMap<String, String>) -> CloudResult<()>;
    fn get_parameters_for_import(
        &self,
        key: &str,
        algorithm: WrapAlgorithm,
    ) -> CloudResult<ImportParameters>;
    /// ImportKeyMaterial; `new_material` sets ImportType NEW_KEY_MATERIAL.
    fn import_key_material(
        &self,
        key: &str,
        import_token: &[u8],
        wrapped: &[u8],
        valid_to_ms: Option<u64>,
        new_material: bool,
    ) -> CloudResult<()>;
    fn put_key_policy(&self, key: &str, policy: &str) -> CloudResult<()>;
    /// The key id the alias points at, if the alias exists.
    fn alias_target(&self, alias: &str) -> CloudResult<Option<String>>;
    /// CreateAlias when `exists` is false, UpdateAlias when true.
    fn set_alias(&self, alias: &str, key: &str, exists: bool) -> CloudResult<()>;
    fn disable_key(&self, key: &str) -> CloudResult<()>;
    fn delete_imported_key_material(&self, key: &str) -> CloudResult<()>;
    fn rotate_key_on_demand(&self, key: &str) -> CloudResult<()>;
    /// ListKeys with a limit of 1: the cheapest call that proves the connection.
    fn list_keys_probe(&self) -> CloudResult<usize>;
}

/// Receives a line for each retry (the job log shows them).
pub type RetryLog = Arc<dyn Fn(String) + Send + Sync>;

/// Makes connections; the daemon holds one.
pub trait Connector: Send + Sync {
    fn connect(&self, target: &Target, key: AccessKey, retries: RetryLog) -> Box<dyn CloudKms>;
}
