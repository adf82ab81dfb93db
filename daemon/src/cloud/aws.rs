//! [`CloudKms`] with aws-sdk-kms. The SDK's own retries are off: this module retries throttling,
//! 5xx and connection failures itself, with exponential backoff and full jitter, so each retry
//! can be reported (the job log shows them). Errors become messages that name the credential,
//! the permission and the key.

use keyward_proto::AwsKeyState;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kms::Client;
use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::{Blob, DateTime};
use aws_sdk_kms::types::{
    AlgorithmSpec, ExpirationModelType, ImportType, KeySpec, KeyUsageType, OriginType, Tag,
    WrappingKeySpec,
};
use rand::Rng;
use secrecy::ExposeSecret;

use super::pacing::Pacer;
use super::{
    AccessKey, CloudError, CloudKms, CloudResult, Connector, ErrorKind, ImportParameters, KmsKey,
    RetryLog, Target,
};
use crate::config::AwsConfig;
use crate::domain::keys::TAG_KEY_ID;
use crate::hsm::WrapAlgorithm;

const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(10);

/// Connects with aws-sdk-kms, driving it on the daemon's runtime. All clients share one pacer.
pub struct AwsConnector {
    runtime: tokio::runtime::Handle,
    config: AwsConfig,
    pacer: Arc<Pacer>,
}

impl AwsConnector {
    pub fn new(runtime: tokio::runtime::Handle, config: AwsConfig) -> Self {
        Self {
            runtime,
            pacer: Arc::new(Pacer::new(config.quotas.clone())),
            config,
        }
    }
}

impl Connector for AwsConnector {
    fn connect(&self, target: &Target, key: AccessKey, retries: RetryLog) -> Box<dyn CloudKms> {
        // The SDK keeps its own copy of the secret for the life of this client (one job step
        // or one test); ours is zeroized when `key` drops at the end of this function.
        let credentials = Credentials::new(
            key.access_key_id.clone(),
            key.secret_access_key.expose_secret().to_owned(),
            None,
            None,
            "keyward",
        );
        let mut config = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(target.region.clone()))
            .credentials_provider(credentials)
            .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_kms::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(self.config.connect_timeout)
                    .operation_attempt_timeout(self.config.call_timeout)
                    .build(),
            );
        if let Some(endpoint) = &target.endpoint {
            config = config.endpoint_url(endpoint.clone());
        }
        Box::new(AwsKms {
            client: Client::from_conf(config.build()),
            runtime: self.runtime.clone(),
            target: target.clone(),
            retries,
            pacer: self.pacer.clone(),
            attempts: self.config.attempts,
        })
    }
}

struct AwsKms {
    client: Client,
    runtime: tokio::runtime::Handle,
    target: Target,
    retries: RetryLog,
    pacer: Arc<Pacer>,
    /// Attempts per call, the first included.
    attempts: u32,
}

/// The AWS error codes that mean "slow down".
const THROTTLING: [&str; 5] = [
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
];

/// Whether to retry (and what the failure is if the retries run out), or fail at once.
enum Verdict {
    Retry(ErrorKind, String),
    Fail(ErrorKind, String),
}

type HttpResponse = aws_smithy_runtime_api::http::Response;

fn classify<E>(err: &SdkError<E, HttpResponse>) -> Verdict
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    use ErrorKind::{Throttled, Unavailable};
    let detail = || DisplayErrorContext(err).to_string();
    match err {
        SdkError::TimeoutError(_) => Verdict::Retry(Unavailable, "timed out".into()),
        SdkError::DispatchFailure(e) => Verdict::Retry(
            Unavailable,
            match e.as_connector_error() {
                Some(c) => connection_failure(c),
                None => detail(),
            },
        ),
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            if status >= 500 {
                Verdict::Retry(Unavailable, format!("HTTP {status}"))
            } else {
                Verdict::Fail(ErrorKind::Other, detail())
            }
        }
        SdkError::ServiceError(service) => {
            let code = err.code().unwrap_or_default();
            let message = err
                .message()
                .map_or_else(|| code.to_owned(), ToOwned::to_owned);
            let status = service.raw().status().as_u16();
            let lowered = message.to_ascii_lowercase();
            if THROTTLING.contains(&code) || status == 429 {
                return Verdict::Retry(Throttled, format!("throttled ({code})"));
            }
            match code {
                "AccessDeniedException" | "AccessDenied" => {
                    Verdict::Fail(ErrorKind::Denied, message)
                }
                "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "IncompleteSignature"
                | "InvalidClientTokenId"
                | "MissingAuthenticationToken" => Verdict::Fail(ErrorKind::Rejected, message),
                "NotFoundException" => Verdict::Fail(ErrorKind::NotFound, message),
                "KMSInvalidStateException" | "DisabledException" => {
                    Verdict::Fail(ErrorKind::InvalidState, message)
                }
                "UnsupportedOperationException" => Verdict::Fail(ErrorKind::Unsupported, message),
                "ValidationException"
                | "InvalidArnException"
                | "InvalidImportTokenException"
                | "IncorrectKeyMaterialException"
                | "ExpiredImportTokenException"
                | "MalformedPolicyDocumentException"
                | "AlreadyExistsException"
                | "InvalidAliasNameException"
                | "TagException"
                | "LimitExceededException" => Verdict::Fail(ErrorKind::Invalid, message),
                // A peer that answers 5xx "not supported" will not change its mind on a retry.
                _ if status >= 500 && lowered.contains("not supported") => {
                    Verdict::Fail(ErrorKind::Unsupported, message)
                }
                "KMSInternalException" | "DependencyTimeoutException" => {
                    Verdict::Retry(Unavailable, format!("{code}: {message}"))
                }
                _ if status >= 500 => {
                    Verdict::Retry(Unavailable, format!("HTTP {status} {code}: {message}"))
                }
                _ => Verdict::Fail(
                    ErrorKind::Other,
                    if code.is_empty() {
                        message
                    } else {
                        format!("{code}: {message}")
                    },
                ),
            }
        }
        _ => Verdict::Fail(ErrorKind::Other, detail()),
    }
}

/// How long AWS's listings may take to show a key just made, between two looks.
const SETTLE: Duration = Duration::from_secs(2);

/// Whether a failed attempt may have reached AWS and taken effect: a timeout after sending, a
/// connection lost after sending, a 5xx. Not throttling, not a refused connection, not a
/// connect timeout: those never acted.
fn may_have_acted<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::TimeoutError(_) => true,
        SdkError::DispatchFailure(e) => match e.as_connector_error() {
            Some(c) => {
                let mut cause: Option<&dyn std::error::Error> = Some(c);
                while let Some(next) = cause {
                    if let Some(io) = next.downcast_ref::<std::io::Error>()
                        && io.kind() == std::io::ErrorKind::ConnectionRefused
                    {
                        return false;
                    }
                    cause = next.source();
                }
                !(c.is_timeout() && c.to_string().to_lowercase().contains("connect"))
            }
            None => true,
        },
        SdkError::ResponseError(r) => r.raw().status().as_u16() >= 500,
        SdkError::ServiceError(e) => {
            e.raw().status().as_u16() >= 500
                && !matches!(err.code(), Some(c) if THROTTLING.contains(&c))
        }
        _ => false,
    }
}

/// A connection failure in words: what kind, and the innermost cause ("connection refused
/// (os error 111)"), without the chain of wrapper types.
fn connection_failure(e: &aws_smithy_runtime_api::client::result::ConnectorError) -> String {
    let kind = if e.is_timeout() {
        "connection timed out"
    } else if e.is_io() {
        "connection failed"
    } else {
        "connection error"
    };
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    format!("{kind}: {cause}")
}

/// Full jitter: a random wait up to the exponential bound.
fn backoff(attempt: u32) -> Duration {
    let bound = BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(BACKOFF_CAP);
    let ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::rng().random_range(ms / 4..=ms))
}

impl AwsKms {
    /// Runs one AWS call with retries. `op` is the API name (`ImportKeyMaterial`); `on` names
    /// the key or alias for messages.
    fn call<T, E, F, Fut>(&self, op: &'static str, on: &str, attempt_call: F) -> CloudResult<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.call_checked(op, on, attempt_call, || Ok(None))
    }

    /// As `call`, for a call that is not idempotent: before each retry, `already_done` looks
    /// whether the failed attempt took effect after all (AWS acted, the answer was lost), and
    /// its answer is taken instead of a second call. If it cannot look, the call fails rather
    /// than risk doing the thing twice.
    fn call_checked<T, E, F, Fut>(
        &self,
        op: &'static str,
        on: &str,
        attempt_call: F,
        already_done: impl Fn() -> CloudResult<Option<T>>,
    ) -> CloudResult<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut attempt = 1;
        loop {
            let slot = self
                .pacer
                .admit(&self.target.credential, &self.target.region, op, |line| {
                    (self.retries)(line)
                });
            let result = self.runtime.block_on(attempt_call());
            drop(slot);
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            match classify(&err) {
                Verdict::Retry(_, why) if attempt < self.attempts => {
                    let wait = backoff(attempt);
                    (self.retries)(format!(
                        "kms:{op} on {on}: {why}; retry {attempt} of {} in {} ms",
                        self.attempts - 1,
                        wait.as_millis()
                    ));
                    std::thread::sleep(wait);
                    if may_have_acted(&err) {
                        // AWS may have acted and the answer was lost. Its listings are
                        // eventually consistent: look twice, a moment apart, before calling again.
                        for look in 0..2 {
                            if look > 0 {
                                std::thread::sleep(SETTLE);
                            }
                            match already_done() {
                                Ok(Some(done)) => {
                                    (self.retries)(format!(
                                        "kms:{op} on {on}: the failed attempt took effect after all; not calling again"
                                    ));
                                    return Ok(done);
                                }
                                Ok(None) => {}
                                Err(e) => {
                                    return Err(CloudError::new(
                                        e.kind,
                                        format!(
                                            "kms:{op} on {on}: {why}, and whether it took effect cannot be checked ({}), so it is not repeated blindly. 'job retry' looks for the key by its keyward:key-id tag before creating one",
                                            e.message
                                        ),
                                    ));
                                }
                            }
                        }
                    }
                    attempt += 1;
                }
                Verdict::Retry(kind, why) | Verdict::Fail(kind, why) => {
                    return Err(self.error(kind, op, on, &why, attempt));
                }
            }
        }
    }

    fn error(&self, kind: ErrorKind, op: &str, on: &str, why: &str, attempts: u32) -> CloudError {
        let t = &self.target;
        let message = match kind {
            ErrorKind::Denied => format!(
                "credential {} has no permission kms:{op} on {on} ({why}); grant it in the key policy or IAM",
                t.credential
            ),
            ErrorKind::Rejected => format!(
                "AWS did not accept credential {} for kms:{op} ({why}); check the access key id and secret, or import a new key",
                t.credential
            ),
            ErrorKind::NotFound => {
                format!(
                    "kms:{op}: {on} was not found in region {} ({why})",
                    t.region
                )
            }
            ErrorKind::InvalidState => {
                format!("kms:{op}: KMS key {on} is not in a state that allows it ({why})")
            }
            ErrorKind::Unsupported => format!(
                "kms:{op} on {on}: the KMS endpoint {} does not support it ({why})",
                t.endpoint_text()
            ),
            ErrorKind::Throttled => format!(
                "kms:{op} on {on}: AWS kept throttling after {attempts} attempts ({why}); try again later"
            ),
            ErrorKind::Unavailable => format!(
                "kms:{op} on {on}: cannot reach AWS KMS at {} after {attempts} attempts ({why})",
                t.endpoint_text()
            ),
            ErrorKind::Invalid | ErrorKind::Other => {
                format!("kms:{op} on {on} was refused: {why}")
            }
        };
        CloudError::new(kind, message)
    }
}

fn to_ms(dt: Option<&DateTime>) -> Option<u64> {
    dt.and_then(|d| d.to_millis().ok())
        .and_then(|ms| u64::try_from(ms).ok())
}

fn tags(map: &BTreeMap<String, String>) -> CloudResult<Vec<Tag>> {
    map.iter()
        .map(|(k, v)| {
            Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .map_err(|e| CloudError::new(ErrorKind::Invalid, format!("tag {k}: {e}")))
        })
        .collect()
}

fn key_from(meta: Option<&aws_sdk_kms::types::KeyMetadata>, on: &str) -> CloudResult<KmsKey> {
    let meta = meta.ok_or_else(|| {
        CloudError::new(
            ErrorKind::Other,
            format!("KMS answered about {on} without key metadata"),
        )
    })?;
    Ok(KmsKey {
        key_id: meta.key_id().to_owned(),
        arn: meta.arn().unwrap_or_default().to_owned(),
        state: AwsKeyState::parse(meta.key_state().map_or("", |s| s.as_str())),
        origin: meta
            .origin()
            .map(|o| o.as_str().to_owned())
            .unwrap_or_default(),
        valid_to_ms: to_ms(meta.valid_to()),
    })
}

impl CloudKms for AwsKms {
    fn describe_key(&self, key: &str) -> CloudResult<KmsKey> {
        let out = self.call("DescribeKey", key, || {
            self.client.describe_key().key_id(key).send()
        })?;
        key_from(out.key_metadata(), key)
    }

    fn find_key_by_tag(&self, tag_key: &str, tag_value: &str) -> CloudResult<Option<KmsKey>> {
        let mut marker: Option<String> = None;
        loop {
            let page = self.call("ListKeys", "the account", || {
                self.client
                    .list_keys()
                    .limit(1000)
                    .set_marker(marker.clone())
                    .send()
            })?;
            for entry in page.keys() {
                let Some(id) = entry.key_id() else { continue };
                let found = match self.call("ListResourceTags", id, || {
                    self.client.list_resource_tags().key_id(id).send()
                }) {
                    Ok(t) => t
                        .tags()
                        .iter()
                        .any(|t| t.tag_key() == tag_key && t.tag_value() == tag_value),
                    // AWS-managed keys and keys pending deletion may refuse; they are not ours.
                    Err(e) if matches!(e.kind, ErrorKind::Denied | ErrorKind::NotFound) => false,
                    Err(e) => return Err(e),
                };
                if found {
                    let key = self.describe_key(id)?;
                    if key.state != AwsKeyState::PendingDeletion {
                        return Ok(Some(key));
                    }
                }
            }
            match (page.truncated(), page.next_marker()) {
                (true, Some(next)) => marker = Some(next.to_owned()),
                _ => return Ok(None),
            }
        }
    }

    fn create_key(
        &self,
        description: &str,
        tag_map: &BTreeMap<String, String>,
    ) -> CloudResult<KmsKey> {
        let tag_list = tags(tag_map)?;
        let marker = tag_map.get(TAG_KEY_ID);
        self.call_checked(
            "CreateKey",
            "a new key",
            || async {
                let out = self
                    .client
                    .create_key()
                    .origin(OriginType::External)
                    .key_spec(KeySpec::SymmetricDefault)
                    .key_usage(KeyUsageType::EncryptDecrypt)
                    .description(description)
                    .set_tags(Some(tag_list.clone()))
                    .send()
                    .await?;
                Ok(key_from(out.key_metadata(), "the new key"))
            },
            // A key is created with its Keyward tag in the same call: find it by that.
            || match marker {
                Some(value) => self.find_key_by_tag(TAG_KEY_ID, value).map(|k| k.map(Ok)),
                None => Ok(None),
            },
        )?
    }

    fn tag_key(&self, key: &str, tag_map: &BTreeMap<String, String>) -> CloudResult<()> {
        let tag_list = tags(tag_map)?;
        self.call("TagResource", key, || {
            self.client
                .tag_resource()
                .key_id(key)
                .set_tags(Some(tag_list.clone()))
                .send()
        })?;
        Ok(())
    }

    fn get_parameters_for_import(
        &self,
        key: &str,
        algorithm: WrapAlgorithm,
    ) -> CloudResult<ImportParameters> {
        let out = self.call("GetParametersForImport", key, || {
            self.client
                .get_parameters_for_import()
                .key_id(key)
                .wrapping_algorithm(AlgorithmSpec::from(algorithm.aws_name()))
                .wrapping_key_spec(WrappingKeySpec::Rsa3072)
                .send()
        })?;
        let missing = |what: &str| {
            CloudError::new(
                ErrorKind::Other,
                format!("kms:GetParametersForImport on {key} answered without {what}"),
            )
        };
        Ok(ImportParameters {
            algorithm,
            public_key: out
                .public_key()
                .ok_or_else(|| missing("a public key"))?
                .as_ref()
                .to_vec(),
            import_token: out
                .import_token()
                .ok_or_else(|| missing("an import token"))?
                .as_ref()
                .to_vec(),
            valid_to_ms: to_ms(out.parameters_valid_to()),
        })
    }

    fn import_key_material(
        &self,
        key: &str,
        import_token: &[u8],
        wrapped: &[u8],
        valid_to_ms: Option<u64>,
        new_material: bool,
    ) -> CloudResult<()> {
        self.call("ImportKeyMaterial", key, || {
            let mut request = self
                .client
                .import_key_material()
                .key_id(key)
                .import_token(Blob::new(import_token))
                .encrypted_key_material(Blob::new(wrapped));
            request = match valid_to_ms {
                Some(ms) => request
                    .expiration_model(ExpirationModelType::KeyMaterialExpires)
                    .valid_to(DateTime::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))),
                None => request.expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire),
            };
            if new_material {
                request = request.import_type(ImportType::NewKeyMaterial);
            }
            request.send()
        })?;
        Ok(())
    }

    fn put_key_policy(&self, key: &str, policy: &str) -> CloudResult<()> {
        self.call("PutKeyPolicy", key, || {
            self.client
                .put_key_policy()
                .key_id(key)
                .policy_name("default")
                .policy(policy)
                .send()
        })?;
        Ok(())
    }

    fn alias_target(&self, alias: &str) -> CloudResult<Option<String>> {
        let mut marker: Option<String> = None;
        loop {
            let page = self.call("ListAliases", alias, || {
                self.client
                    .list_aliases()
                    .limit(100)
                    .set_marker(marker.clone())
                    .send()
            })?;
            if let Some(found) = page
                .aliases()
                .iter()
                .find(|a| a.alias_name() == Some(alias))
            {
                return Ok(found.target_key_id().map(ToOwned::to_owned));
            }
            match (page.truncated(), page.next_marker()) {
                (true, Some(next)) => marker = Some(next.to_owned()),
                _ => return Ok(None),
            }
        }
    }

    fn set_alias(&self, alias: &str, key: &str, exists: bool) -> CloudResult<()> {
        if exists {
            self.call("UpdateAlias", alias, || {
                self.client
                    .update_alias()
                    .alias_name(alias)
                    .target_key_id(key)
                    .send()
            })?;
        } else {
            self.call("CreateAlias", alias, || {
                self.client
                    .create_alias()
                    .alias_name(alias)
                    .target_key_id(key)
                    .send()
            })?;
        }
        Ok(())
    }

    fn disable_key(&self, key: &str) -> CloudResult<()> {
        self.call("DisableKey", key, || {
            self.client.disable_key().key_id(key).send()
        })?;
        Ok(())
    }

    fn delete_imported_key_material(&self, key: &str) -> CloudResult<()> {
        self.call("DeleteImportedKeyMaterial", key, || {
            self.client
                .delete_imported_key_material()
                .key_id(key)
                .send()
        })?;
        Ok(())
    }

    fn rotate_key_on_demand(&self, key: &str) -> CloudResult<()> {
        self.call("RotateKeyOnDemand", key, || {
            self.client.rotate_key_on_demand().key_id(key).send()
        })?;
        Ok(())
    }

    fn list_keys_probe(&self) -> CloudResult<usize> {
        let out = self.call("ListKeys", "the account", || {
            self.client.list_keys().limit(1).send()
        })?;
        Ok(out.keys().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        for attempt in 1..12 {
            let d = backoff(attempt);
            assert!(d <= BACKOFF_CAP, "{attempt}: {d:?}");
            assert!(d >= Duration::from_millis(50), "{attempt}: {d:?}");
        }
        assert!(backoff(1) <= BACKOFF_BASE);
    }
}
