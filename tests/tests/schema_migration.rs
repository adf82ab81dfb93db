#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration test: a failed step is a failed test"
)]
//! Today's daemon on a database the schema-1 firmware wrote (`tests/fixtures/schema-v1`, made
//! by the firmware of commit 9e8d150 with its own token): it migrates the key database to the
//! current schema and finds every key, group, job, credential and user as that firmware showed
//! them, the token's keys all present, and the audit trail intact across the migration.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use keyward_daemon::domain::keys::{KeyPurpose, KeySource};
use keyward_daemon::store::{SCHEMA_VERSION, Store};
use keyward_proto::Request;
use keyward_tests::Fixture;
use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/schema-v1");

/// Copies a tree, owner-only (git keeps no modes; the daemon refuses readable PIN files).
fn copy_private(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_private(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}

/// The schema-1 appliance in a fresh directory, with a config that points at it.
fn schema_1_appliance() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    copy_private(Path::new(FIXTURE), dir.path());
    let hsm_dir = dir.path().join("hsm");
    let data_dir = dir.path().join("data");
    // The copied token is pointed at anew, and the config written as hsm-sim writes it.
    let token = keyward_hsm_sim::Provisioned {
        dir: hsm_dir.clone(),
        module: keyward_hsm_sim::find_module().unwrap(),
        conf: hsm_dir.join("softhsm2.conf"),
        label: "keyward".into(),
        user_pin_file: hsm_dir.join("user.pin"),
        so_pin_file: hsm_dir.join("so.pin"),
    };
    keyward_hsm_sim::write_conf(&token.conf, &hsm_dir.join("tokens")).unwrap();
    let config = dir.path().join("keyward.toml");
    let text = format!(
        "data_dir = {:?}\n\n{}",
        data_dir.display().to_string(),
        token.hsm_table()
    );
    keyward_secret_file::write_private(&config, text.as_bytes(), "config").unwrap();
    Fixture {
        dir,
        config,
        hsm_dir,
        data_dir,
    }
}

fn expected() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(Path::new(FIXTURE).join("expected.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn a_schema_1_database_is_migrated_and_everything_in_it_is_found_intact() {
    let appliance = schema_1_appliance();
    let expected = expected();
    assert_eq!(
        expected["store"]["schema_version"], 1,
        "the fixture is schema 1"
    );

    let daemon = appliance.start();
    let status = daemon.status();
    assert_eq!(status.store.schema_version, SCHEMA_VERSION);
    assert_eq!(
        status.hsm.missing_keys,
        Vec::<String>::new(),
        "a key left the token"
    );
    assert_eq!(
        status.store.keys, 5,
        "storage, audit and three customer keys"
    );

    let mut console = daemon.console();
    for (op, request) in [
        ("keys", Request::KeyList { group: None }),
        ("groups", Request::GroupList),
        ("jobs", Request::JobList),
        ("credentials", Request::CredentialList),
    ] {
        assert_eq!(
            console.ok(&request),
            expected[op],
            "{op} differ from what the schema-1 firmware showed"
        );
    }
    // Users: the same accounts in the same state (the logins made since do not lock anyone).
    let users = console.ok(&Request::UserList);
    assert_eq!(users, expected["users"]);
    drop(console);
    daemon.stop();

    // The trail verifies across the migration, from the first record the old firmware wrote.
    let (code, out) = appliance.verify();
    assert_eq!(code, Some(0), "audit verify after the migration: {out}");

    // What the new schema adds: where the material is, which token holds it, AWS bindings.
    let store = Store::open(&appliance.data_dir).unwrap();
    let keys = store.list_keys().unwrap();
    assert_eq!(keys.len(), 5);
    for key in &keys {
        assert_eq!(key.source, KeySource::Hsm, "{}", key.id);
        assert_eq!(key.tokens, ["keyward"], "{}: token not recorded", key.id);
    }
    let customer: Vec<_> = keys
        .iter()
        .filter(|k| k.purpose == KeyPurpose::Customer)
        .collect();
    assert_eq!(customer.len(), 3);
    for key in customer {
        let cloud = key.cloud.as_ref().unwrap();
        assert_eq!(cloud.aws.len(), 1, "{}: one AWS binding", key.id);
        assert_eq!(cloud.aws[0].region, "eu-west-1");
        let shown = expected["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == key.id.to_string())
            .unwrap();
        assert_eq!(shown["aws_key_id"], cloud.aws[0].key_id.as_str());
        assert_eq!(shown["aws_arn"], cloud.aws[0].arn.clone().unwrap().as_str());
    }
}

#[test]
fn migrating_twice_changes_nothing() {
    // Opening twice migrates once: the second open finds the current schema and rewrites
    // nothing (the migration is idempotent, so a crash half-way is also safe).
    let appliance = schema_1_appliance();
    let first = {
        let store = Store::open(&appliance.data_dir).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        store.list_keys().unwrap()
    };
    let store = Store::open(&appliance.data_dir).unwrap();
    assert_eq!(store.list_keys().unwrap(), first);
    assert!(
        first.iter().all(|k| k.tokens.is_empty()),
        "tokens are the daemon's to record"
    );
}
