#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration test: a failed step is a failed test"
)]
//! What the appliance does with its token at start-up, against a real SoftHSMv2 token:
//! reconciling the key database with it in one search, and clearing what an interrupted write
//! left there.

mod common;

use std::sync::Arc;

use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use keyward_daemon::appliance::{Appliance, reconcile};
use keyward_daemon::config::Config;
use keyward_daemon::domain::keys::{KeyId, KeyPurpose, KeyRecord, KeySource};
use keyward_daemon::domain::now_ms;
use keyward_daemon::hsm::Hsm;
use keyward_daemon::store::Store;
use keyward_daemon::store::settings::{AUDIT_KEY, STORAGE_KEY};

use common::{raw_session, token};

fn label() -> String {
    token().provisioned.label.clone()
}

/// A record for a key the HSM made, as the appliance keeps it.
fn record(id: KeyId, purpose: KeyPurpose, label: &str) -> KeyRecord {
    KeyRecord {
        id,
        label: label.to_owned(),
        purpose,
        fingerprint: token().hsm.fingerprint(&id).unwrap(),
        created_ms: now_ms(),
        source: KeySource::Hsm,
        tokens: vec![self::label()],
        cloud: None,
    }
}

/// Generates `n` customer keys on the token and records them.
fn add_keys(store: &Store, n: usize) {
    for i in 0..n {
        let key = token()
            .hsm
            .generate_key(KeyPurpose::Customer, &format!("test-reconcile-{i}"))
            .unwrap();
        store
            .put_key(&record(key.id, KeyPurpose::Customer, "test-reconcile"))
            .unwrap();
    }
}

#[test]
fn reconciliation_searches_the_token_once_whatever_the_key_count() {
    let _token = common::exclusive();
    let hsm = token().hsm.clone();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();

    // A key the token lacks, and a key from schema 1 (which did not say which token holds it).
    let ghost = KeyRecord {
        id: KeyId([0x6d; 16]),
        ..record(
            hsm.generate_key(KeyPurpose::Customer, "test-ghost")
                .unwrap()
                .id,
            KeyPurpose::Customer,
            "test-ghost",
        )
    };
    store.put_key(&ghost).unwrap();
    let old = hsm
        .generate_key(KeyPurpose::Customer, "test-schema-1")
        .unwrap();
    store
        .put_key(&KeyRecord {
            tokens: Vec::new(),
            ..record(old.id, KeyPurpose::Customer, "test-schema-1")
        })
        .unwrap();

    let mut searches = Vec::new();
    for n in [3, 60] {
        add_keys(&store, n);
        hsm.forget_handles();
        let before = hsm.object_searches();
        let missing = reconcile(&store, hsm.as_ref(), &label()).unwrap();
        searches.push(hsm.object_searches() - before);
        // Reported, never dropped.
        assert_eq!(
            missing.iter().map(|k| k.id).collect::<Vec<_>>(),
            vec![ghost.id]
        );
        assert!(store.get_key(&ghost.id).unwrap().is_some());
    }
    assert_eq!(
        store.get_key(&old.id).unwrap().unwrap().tokens,
        vec![label()],
        "the schema-1 key has its token recorded"
    );
    assert!(
        searches.iter().all(|s| *s <= 1),
        "one search for the whole token, whatever the key count: {searches:?}"
    );
    assert_eq!(searches[0], searches[1], "{searches:?}");
}

/// A fresh appliance database on the shared token: its storage and audit keys and their
/// records, as `init` leaves them (without administrators, which `open` does not need).
fn appliance_config(dir: &std::path::Path) -> Config {
    let hsm = token().hsm.clone();
    let store = Store::open(dir).unwrap();
    for (purpose, setting) in [
        (KeyPurpose::Storage, STORAGE_KEY),
        (KeyPurpose::Audit, AUDIT_KEY),
    ] {
        let key = hsm.generate_key(purpose, "test-start-up").unwrap();
        store
            .put_key(&record(key.id, purpose, "test-start-up"))
            .unwrap();
        store.put_key_setting(setting, &key.id).unwrap();
    }
    store.flush().unwrap();
    let text = format!(
        "data_dir = {:?}\n\n[hsm]\nmodule = {:?}\ntoken_label = {:?}\npin_file = \"/nonexistent\"\n",
        dir.display().to_string(),
        token().provisioned.module.display().to_string(),
        label()
    );
    Config::parse(&text, &dir.join("keyward.toml")).unwrap()
}

/// Data objects with nothing in them: what a kill inside C_CreateObject leaves on SoftHSM.
fn empty_data_objects(s: &cryptoki::session::Session) -> usize {
    s.find_objects(&[Attribute::Class(ObjectClass::DATA)])
        .unwrap()
        .into_iter()
        .filter(|h| {
            s.get_attributes(
                *h,
                &[
                    AttributeType::Label,
                    AttributeType::Application,
                    AttributeType::Value,
                ],
            )
            .unwrap()
            .iter()
            .all(|a| match a {
                Attribute::Label(v) | Attribute::Application(v) | Attribute::Value(v) => {
                    v.is_empty()
                }
                _ => false,
            })
        })
        .count()
}

#[test]
fn a_torn_data_object_is_found_removed_audited_and_reported_at_start() {
    let _token = common::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let config = appliance_config(dir.path());

    // As a kill inside the C_CreateObject of an audit-head update leaves it.
    let s = raw_session();
    common::create_torn_object(&s);
    // Someone else's data object (it has content): not ours to touch.
    let theirs = s
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Application(b"another-application".to_vec()),
            Attribute::Value(b"their data".to_vec()),
        ])
        .unwrap();
    assert_eq!(empty_data_objects(&s), 1);

    let hsm: Arc<dyn Hsm> = token().hsm.clone();
    let appliance = Appliance::open(&config, hsm).unwrap();
    assert_eq!(empty_data_objects(&s), 0, "the torn object was removed");
    assert!(
        s.get_attributes(theirs, &[AttributeType::Value]).is_ok(),
        "a data object with content stays"
    );

    let records: Vec<_> = appliance
        .store
        .audit_range(1, usize::MAX)
        .map(|(_, r)| r.unwrap().body.entry)
        .filter(|e| e.action == "hsm.torn-object")
        .collect();
    assert_eq!(
        records
            .iter()
            .map(|e| e.outcome.as_str())
            .collect::<Vec<_>>(),
        ["attempt", "success"],
        "audited before and after: {records:?}"
    );
    let status = appliance.status().unwrap();
    assert_eq!(status.hsm.torn_objects.len(), 1, "{:?}", status.hsm);
    assert!(
        status.hsm.torn_objects[0].contains("removed"),
        "{:?}",
        status.hsm.torn_objects
    );
    assert!(appliance.audit.verify().is_ok());
    s.destroy_object(theirs).unwrap();
}
