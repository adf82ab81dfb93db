#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "tests: a step that fails is a failed test, reported where it happened"
)]
//! AWS KMS integration against a real KMS peer (LocalStack's KMS on loopback), with a real
//! SoftHSMv2 token. What AWS holds is checked through aws-sdk-kms directly, never through
//! Keyward's own bookkeeping. Each test works in its own region, so tests never see each
//! other's keys.

use keyward_proto::Request;
use keyward_tests::{Appliance, fields, write_private};

const POLICY: &str = r#"{"Version":"2012-10-17","Id":"keyward-test","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"}]}"#;

type Setup = Appliance;

/// This file's payments group on the shared [`Appliance`].
trait Payments {
    fn policy_file(&self) -> String;
    fn create_payments(&mut self, name: &str, extra: &[(&str, &str)]);
    fn rotate_ok(&mut self, group: &str) -> serde_json::Value;
}

impl Payments for Appliance {
    fn policy_file(&self) -> String {
        let path = self.fx.dir.path().join("policy.json");
        write_private(&path, POLICY);
        path.display().to_string()
    }

    /// A group with alias/payments and the description "Payments key".
    fn create_payments(&mut self, name: &str, extra: &[(&str, &str)]) {
        let mut f = vec![("description", "Payments key")];
        f.extend_from_slice(extra);
        self.create_group(name, "alias/payments", &f);
    }

    fn rotate_ok(&mut self, group: &str) -> serde_json::Value {
        let job = self.console().rotate(group);
        self.wait_ok(job, group)
    }
}

/// The material was imported with an expiry: ExpirationModel KEY_MATERIAL_EXPIRES, and ValidTo
/// about 30 days out where the peer reports it (LocalStack 4.10 records the model but does not
/// echo ValidTo; AWS does).
fn assert_expires_in_30_days(meta: &aws_sdk_kms::types::KeyMetadata) {
    assert_eq!(
        meta.expiration_model().map(|m| m.as_str()),
        Some("KEY_MATERIAL_EXPIRES"),
        "{meta:?}"
    );
    if let Some(valid_to) = meta.valid_to() {
        let in_30d = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap()
            + 30 * 86_400;
        assert!(
            (valid_to.secs() - in_30d).abs() < 3600,
            "ValidTo {valid_to} is about 30 days out"
        );
    }
}

#[test]
fn first_rotation_fills_the_active_key_then_the_next_makes_a_new_key_and_moves_the_alias() {
    let mut s = Setup::new("us-east-1", "");
    let active = s.kms.create_external_key();
    let policy = s.policy_file();
    s.create_payments(
        "payments",
        &[
            ("active_key_id", &active),
            ("policy_file", &policy),
            ("disable_previous", "yes"),
            ("valid_for", "30d"),
            ("tags", "env=test"),
        ],
    );
    let shown = s.console().ok(&Request::GroupShow {
        name: "payments".into(),
    });
    keyward_tests::assert_fields(&shown, &keyward_tests::GROUP_FIELDS, "group show");
    assert!(!shown.to_string().contains("wJalrXUtnFEMI"));

    // First rotation: the material goes into the operator's PendingImport key.
    let before = s.kms.key_ids().len();
    s.rotate_ok("payments");
    let first = s.kms.describe(&active);
    assert_eq!(first.key_state().unwrap().as_str(), "Enabled");
    assert_eq!(
        s.kms.alias_target("alias/payments").as_deref(),
        Some(active.as_str())
    );
    assert_eq!(
        s.kms.key_ids().len(),
        before,
        "no key is created beside active_key_id"
    );
    assert_eq!(
        s.kms.policy(&active),
        serde_json::from_str::<serde_json::Value>(POLICY).unwrap()
    );
    assert_expires_in_30_days(&first);

    // Second rotation: a new EXTERNAL key, Enabled, with the alias; the previous is Disabled.
    s.rotate_ok("payments");
    let ids = s.kms.key_ids();
    assert_eq!(ids.len(), before + 1, "exactly one new KMS key");
    let new = s.kms.alias_target("alias/payments").expect("alias");
    assert_ne!(new, active, "the alias moved");
    let meta = s.kms.describe(&new);
    assert_eq!(meta.origin().unwrap().as_str(), "EXTERNAL");
    assert_eq!(meta.key_state().unwrap().as_str(), "Enabled");
    assert_eq!(meta.description(), Some("Payments key"));
    assert_expires_in_30_days(&meta);
    assert_eq!(
        s.kms.policy(&new),
        serde_json::from_str::<serde_json::Value>(POLICY).unwrap()
    );
    assert_eq!(
        s.kms.describe(&active).key_state().unwrap().as_str(),
        "Disabled"
    );
    let tags = s
        .kms
        .run(s.kms.client.list_resource_tags().key_id(&new).send())
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.tag_key() == "env" && t.tag_value() == "test")
    );
    assert!(tags.tags().iter().any(|t| t.tag_key() == "keyward:key-id"));

    // key list: the documented JSON shape, and the state Keyward keeps.
    let keys = s.keys("payments");
    assert_eq!(keys.len(), 2);
    for k in &keys {
        keyward_tests::assert_fields(k, &keyward_tests::KEY_FIELDS, "key list");
    }
    assert_eq!(keys[0]["aws_key_id"], active.as_str());
    assert_eq!(keys[0]["state"], "disabled");
    assert_eq!(keys[1]["aws_key_id"], new.as_str());
    assert_eq!(keys[1]["state"], "active");
    assert_eq!(keys[1]["alias"], "alias/payments");
    assert_ne!(
        keys[1]["valid_to"], "forever",
        "Keyward records the expiry it asked for"
    );

    // Every AWS call is in the audit trail, and the trail verifies.
    let verify = s.console().ok(&Request::AuditVerify);
    assert_eq!(verify["intact"], true, "{verify}");
    let records = s.console().audit_records();
    let actions: Vec<&str> = records
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    for action in [
        "kms.CreateKey",
        "kms.ImportKeyMaterial",
        "kms.UpdateAlias",
        "kms.DisableKey",
        "kms.PutKeyPolicy",
    ] {
        assert!(actions.contains(&action), "no {action} in the audit trail");
    }
}

#[test]
fn new_material_mode_keeps_the_key_id_and_the_alias() {
    let mut s = Setup::new("us-west-2", "");
    s.create_payments(
        "ledger",
        &[("rotation_mode", "new-material"), ("alias", "alias/ledger")],
    );
    s.rotate_ok("ledger");
    let key = s
        .kms
        .alias_target("alias/ledger")
        .expect("alias after the first rotation");
    let before = s.kms.key_ids().len();
    let job = s.console().rotate("ledger");
    let outcome = s.console().wait(job);
    assert_eq!(
        s.kms.key_ids().len(),
        before,
        "new-material makes no new KMS key"
    );
    assert_eq!(
        s.kms.alias_target("alias/ledger").as_deref(),
        Some(key.as_str())
    );
    let rotations = s
        .kms
        .run(s.kms.client.list_key_rotations().key_id(&key).send());
    match outcome {
        Ok(_) => {
            let rotations = rotations.expect("ListKeyRotations");
            assert!(!rotations.rotations().is_empty(), "a rotation is listed");
        }
        Err(e) => {
            // The peer does not support on-demand rotation of imported material: the job says
            // so plainly and leaves the key where it was.
            assert_eq!(e.code, keyward_proto::ErrorCode::JobFailed);
            assert!(e.message.contains("RotateKeyOnDemand"), "{e}");
            assert!(e.message.contains("does not support"), "{e}");
            assert_eq!(
                s.kms.describe(&key).key_state().unwrap().as_str(),
                "Enabled"
            );
        }
    }
}

#[test]
fn synchronize_deletes_and_reimports_the_same_material_from_the_hsm() {
    let mut s = Setup::new("eu-west-1", "");
    let policy = s.policy_file();
    s.create_payments("sync", &[("alias", "alias/sync"), ("policy_file", &policy)]);
    s.rotate_ok("sync");
    let key = s.keys("sync")[0].clone();
    let keyward_id = key["id"].as_str().unwrap().to_owned();
    let aws_id = key["aws_key_id"].as_str().unwrap().to_owned();

    let plaintext = b"card 4111 1111 1111 1111".to_vec();
    let ciphertext = s
        .kms
        .run(
            s.kms
                .client
                .encrypt()
                .key_id("alias/sync")
                .plaintext(aws_sdk_kms::primitives::Blob::new(plaintext.clone()))
                .send(),
        )
        .expect("Encrypt")
        .ciphertext_blob
        .expect("ciphertext");
    let decrypt = |s: &Setup| -> Result<Vec<u8>, String> {
        s.kms
            .run(
                s.kms
                    .client
                    .decrypt()
                    .ciphertext_blob(ciphertext.clone())
                    .send(),
            )
            .map(|out| out.plaintext.map(|p| p.into_inner()).unwrap_or_default())
            .map_err(|e| e.to_string())
    };

    let job = s.console().ok(&Request::KeySync {
        key: keyward_id.clone(),
        delete_material: true,
        update_policy: true,
        import_material: false,
    })["job"]
        .as_u64()
        .unwrap();
    s.console().wait(job).expect("delete-material job");
    assert_eq!(
        s.kms.describe(&aws_id).key_state().unwrap().as_str(),
        "PendingImport"
    );
    assert!(
        decrypt(&s).is_err(),
        "without its material the key cannot decrypt"
    );

    let job = s.console().ok(&Request::KeySync {
        key: keyward_id.clone(),
        delete_material: false,
        update_policy: false,
        import_material: true,
    })["job"]
        .as_u64()
        .unwrap();
    s.console().wait(job).expect("import-material job");
    assert_eq!(
        s.kms.describe(&aws_id).key_state().unwrap().as_str(),
        "Enabled"
    );
    let back = decrypt(&s).expect("the old ciphertext decrypts again");
    assert_eq!(back, plaintext);

    let shown = s.console().ok(&Request::KeyShow { key: keyward_id });
    assert_eq!(shown["aws_key_state"], "Enabled", "{shown}");
}

#[test]
fn group_test_reports_connected_or_why_not() {
    let mut s = Setup::new("eu-central-1", "");
    s.create_payments("probe", &[("alias", "alias/probe")]);
    let report = s.console().ok(&Request::GroupTest {
        name: "probe".into(),
    });
    assert_eq!(report["connection"], "Connected", "{report}");
    // A closed port: not connected, and the error says where it tried.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    s.console().ok(&Request::GroupSet {
        name: "probe".into(),
        fields: fields(&[("endpoint", &format!("http://127.0.0.1:{port}"))]),
    });
    let report = s.console().ok(&Request::GroupTest {
        name: "probe".into(),
    });
    assert_eq!(report["connection"], "Not connected", "{report}");
    let detail = report["checks"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("cannot reach AWS KMS"), "{detail}");
    assert!(detail.contains(&port.to_string()), "{detail}");
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let mut s = Setup::new("ca-central-1", "");
    let dir = s.fx.dir.path().to_path_buf();
    let bad_csv = dir.join("bad.csv");
    write_private(
        &bad_csv,
        "Access key ID,Secret access key\nAKIAIOSFODNN7EXAMPLE\n",
    );
    let bad_policy = dir.join("bad-policy.json");
    write_private(
        &bad_policy,
        "{\"Version\": \"2012-10-17\", \"Statement\": [",
    );
    let before = (
        s.console().ok(&Request::CredentialList),
        s.console().ok(&Request::GroupList),
    );

    let e = s.console().fails(&Request::CredentialImport {
        name: "other".into(),
        path: bad_csv.display().to_string(),
    });
    assert!(e.message.contains("line 2"), "{e}");
    let e = s.console().fails(&Request::GroupCreate {
        name: "g".into(),
        fields: fields(&[
            ("credential", "prod"),
            ("region", "ca-central-1"),
            ("alias", "alias/g"),
            ("policy_file", &bad_policy.display().to_string()),
        ]),
    });
    assert!(e.message.contains("not valid JSON"), "{e}");
    let e = s.console().fails(&Request::GroupCreate {
        name: "g".into(),
        fields: fields(&[
            ("credential", "nobody"),
            ("region", "ca-central-1"),
            ("alias", "alias/g"),
        ]),
    });
    assert_eq!(e.code, keyward_proto::ErrorCode::NotFound);
    assert!(e.message.contains("no credential nobody"), "{e}");
    let e = s.console().fails(&Request::GroupRotate {
        name: "ghost".into(),
    });
    assert!(e.message.contains("no key group ghost"), "{e}");
    let e = s.console().fails(&Request::GroupCreate {
        name: "g".into(),
        fields: fields(&[("credential", "prod"), ("colour", "blue")]),
    });
    assert!(e.message.contains("unknown group field 'colour'"), "{e}");
    let e = s.console().fails(&Request::KeySync {
        key: "00".repeat(16),
        delete_material: true,
        update_policy: false,
        import_material: false,
    });
    assert_eq!(e.code, keyward_proto::ErrorCode::NotFound);

    let after = (
        s.console().ok(&Request::CredentialList),
        s.console().ok(&Request::GroupList),
    );
    assert_eq!(before, after, "nothing changed");
    assert!(s.kms.key_ids().is_empty(), "nothing reached AWS");

    // A credential in use is not removed.
    s.create_payments("inuse", &[("alias", "alias/inuse")]);
    let e = s.console().fails(&Request::CredentialRemove {
        name: "prod".into(),
    });
    assert!(e.message.contains("used by group inuse"), "{e}");
}

#[test]
fn the_secret_is_stored_only_sealed_and_never_shown() {
    let mut s = Setup::new("sa-east-1", "");
    let list = s.console().ok(&Request::CredentialList);
    assert_eq!(list[0]["name"], "prod");
    assert_eq!(list[0]["last_used"], "never");
    assert!(!list.to_string().contains(keyward_tests::SECRET_ACCESS_KEY));
    s.console = None;
    s.daemon.take().unwrap().stop();
    for file in keyward_tests::files_under(&s.fx.data_dir) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let secret = keyward_tests::SECRET_ACCESS_KEY.as_bytes();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "{} holds the secret in the clear",
            file.display()
        );
    }
}
