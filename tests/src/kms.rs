//! The KMS peer and what AWS observes through aws-sdk-kms: keys, aliases, policies, and
//! encrypt/decrypt with a key Keyward imported.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::fields;

/// The KMS peer (LocalStack's KMS on loopback) shared by the tests of one test binary.
/// `KEYWARD_TEST_KMS_ENDPOINT` names one that is running already (scripts/test.sh starts one);
/// otherwise one is started with scripts/kms-peer.sh, and a watchdog stops it by its process id
/// when this test process ends.
pub fn kms_endpoint() -> String {
    static PEER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PEER.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("KEYWARD_TEST_KMS_ENDPOINT") {
            return endpoint;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root")
            .to_path_buf();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("keyward-kms-peer-{}", std::process::id()));
        let script = root.join("scripts/kms-peer.sh");
        let out = Command::new(&script)
            .args(["start", &port.to_string(), &dir.display().to_string()])
            .output()
            .expect("run scripts/kms-peer.sh");
        assert!(
            out.status.success(),
            "the KMS peer did not start (run scripts/kms-peer.sh install first): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Stops the peer by its pid once this test process is gone. The watchdog outlives this
        // process on purpose, so it is never waited for.
        #[allow(
            clippy::zombie_processes,
            reason = "the watchdog must outlive the test process"
        )]
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {} 2>/dev/null; do sleep 1; done; {} stop {}; rm -rf {}",
                std::process::id(),
                script.display(),
                dir.display(),
                dir.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("peer watchdog");
        format!("http://127.0.0.1:{port}")
    })
    .clone()
}

/// An aws-sdk-kms client of the peer, for checking what AWS would observe, in `region` (each
/// test uses its own region, so tests never see each other's keys).
pub struct Kms {
    pub client: aws_sdk_kms::Client,
    runtime: tokio::runtime::Runtime,
}

/// The access key the tests load into Keyward (the peer accepts any).
pub const ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

impl Kms {
    pub fn new(region: &str) -> Self {
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new(region.to_owned()))
            .endpoint_url(kms_endpoint())
            .credentials_provider(aws_sdk_kms::config::Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "tests",
            ))
            .build();
        Self {
            client: aws_sdk_kms::Client::from_conf(config),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        }
    }

    pub fn run<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    pub fn describe(&self, key: &str) -> aws_sdk_kms::types::KeyMetadata {
        self.run(self.client.describe_key().key_id(key).send())
            .expect("DescribeKey")
            .key_metadata
            .expect("metadata")
    }

    /// Every key id in the region.
    pub fn key_ids(&self) -> Vec<String> {
        self.run(self.client.list_keys().limit(1000).send())
            .expect("ListKeys")
            .keys()
            .iter()
            .filter_map(|k| k.key_id().map(str::to_owned))
            .collect()
    }

    pub fn alias_target(&self, alias: &str) -> Option<String> {
        self.run(self.client.list_aliases().limit(100).send())
            .expect("ListAliases")
            .aliases()
            .iter()
            .find(|a| a.alias_name() == Some(alias))
            .and_then(|a| a.target_key_id().map(str::to_owned))
    }

    pub fn policy(&self, key: &str) -> serde_json::Value {
        let text = self
            .run(
                self.client
                    .get_key_policy()
                    .key_id(key)
                    .policy_name("default")
                    .send(),
            )
            .expect("GetKeyPolicy")
            .policy
            .expect("policy");
        serde_json::from_str(&text).expect("policy JSON")
    }

    /// Encrypts `plaintext` under `key` (an id, ARN or alias).
    pub fn encrypt(&self, key: &str, plaintext: &[u8]) -> aws_sdk_kms::primitives::Blob {
        self.run(
            self.client
                .encrypt()
                .key_id(key)
                .plaintext(aws_sdk_kms::primitives::Blob::new(plaintext.to_vec()))
                .send(),
        )
        .expect("Encrypt")
        .ciphertext_blob
        .expect("ciphertext")
    }

    /// The plaintext and the ARN of the key that decrypted it, or AWS's error in words.
    pub fn decrypt(
        &self,
        ciphertext: &aws_sdk_kms::primitives::Blob,
    ) -> Result<(Vec<u8>, String), String> {
        self.run(
            self.client
                .decrypt()
                .ciphertext_blob(ciphertext.clone())
                .send(),
        )
        .map(|out| {
            (
                out.plaintext
                    .map(aws_sdk_kms::primitives::Blob::into_inner)
                    .unwrap_or_default(),
                out.key_id.unwrap_or_default(),
            )
        })
        .map_err(|e| format!("{:?}", aws_sdk_kms::error::DisplayErrorContext(e)))
    }

    /// A key with origin EXTERNAL and no material (PendingImport), as an operator makes one.
    pub fn create_external_key(&self) -> String {
        self.run(
            self.client
                .create_key()
                .origin(aws_sdk_kms::types::OriginType::External)
                .send(),
        )
        .expect("CreateKey")
        .key_metadata
        .expect("metadata")
        .key_id
    }
}

/// The fields of a key group on the KMS peer: credential `prod`, `region`, the peer's endpoint,
/// `alias`, and `extra` on top (which may override any of them).
pub fn group_fields(
    region: &str,
    alias: &str,
    extra: &[(&str, &str)],
) -> std::collections::BTreeMap<String, String> {
    let endpoint = kms_endpoint();
    let mut f = fields(&[
        ("credential", "prod"),
        ("region", region),
        ("endpoint", &endpoint),
        ("alias", alias),
    ]);
    for (k, v) in extra {
        f.insert((*k).to_owned(), (*v).to_owned());
    }
    f
}
