#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration test: a failed step is a failed test"
)]
//! Each kind of tampering with the audit trail on disk is caught by `keywardd audit verify`,
//! which names the first bad record. The attacker here has the disk but not the HSM.

use keyward_tests::Fixture;
use serde_json::Value;

/// An appliance with a 6-record trail (init, start, settings.seed, stop, start, stop), stopped.
fn appliance_with_trail() -> Fixture {
    let fx = Fixture::new();
    fx.init_ok();
    for _ in 0..2 {
        assert!(fx.start().stop().success());
    }
    let (code, out) = fx.verify();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("6 records"), "{out}");
    fx
}

fn with_audit_tree(fx: &Fixture, f: impl FnOnce(&sled::Tree)) {
    let db = fx.open_db();
    let tree = db.open_tree("audit").unwrap();
    f(&tree);
    db.flush().unwrap();
}

fn record(tree: &sled::Tree, seq: u64) -> Value {
    serde_json::from_slice(&tree.get(seq.to_be_bytes()).unwrap().unwrap()).unwrap()
}

fn put(tree: &sled::Tree, seq: u64, value: &Value) {
    tree.insert(seq.to_be_bytes(), serde_json::to_vec(value).unwrap())
        .unwrap();
}

fn assert_broken_at(fx: &Fixture, seq: u64, words: &str) {
    let (code, out) = fx.verify();
    assert_eq!(code, Some(3), "verify must fail: {out}");
    assert!(
        out.contains(&format!("BROKEN at record {seq}:")),
        "expected record {seq}: {out}"
    );
    assert!(out.contains(words), "expected {words:?}: {out}");
}

#[test]
fn modified_record_is_detected() {
    let fx = appliance_with_trail();
    with_audit_tree(&fx, |t| {
        let mut r = record(t, 3);
        r["actors"] = serde_json::json!(["mallory"]);
        put(t, 3, &r);
    });
    assert_broken_at(&fx, 3, "modified");
}

#[test]
fn deleted_record_is_detected() {
    let fx = appliance_with_trail();
    with_audit_tree(&fx, |t| {
        t.remove(2u64.to_be_bytes()).unwrap();
    });
    assert_broken_at(&fx, 2, "missing");
}

#[test]
fn reordered_records_are_detected() {
    let fx = appliance_with_trail();
    with_audit_tree(&fx, |t| {
        let (two, three) = (record(t, 2), record(t, 3));
        put(t, 2, &three);
        put(t, 3, &two);
    });
    assert_broken_at(&fx, 2, "reordered");
}

#[test]
fn truncated_tail_is_detected_against_the_head_in_the_hsm() {
    let fx = appliance_with_trail();
    with_audit_tree(&fx, |t| {
        t.remove(6u64.to_be_bytes()).unwrap();
    });
    assert_broken_at(&fx, 6, "truncated");
    let (status, stderr) = fx.run_refused();
    assert!(
        !status.success(),
        "the daemon will not append to a truncated trail"
    );
    assert!(stderr.contains("truncated"), "{stderr}");
}

#[test]
fn record_forged_without_the_hsm_is_detected() {
    let fx = appliance_with_trail();
    with_audit_tree(&fx, |t| {
        // Rewrite record 3 and re-chain 3..=6 with correct SHA-256 hashes: everything an
        // attacker can do without the HSM audit key. The MACs cannot be made.
        let mut prev = record(t, 2)["hash"].as_str().unwrap().to_owned();
        for seq in 3..=6 {
            let mut r = record(t, seq);
            if seq == 3 {
                r["target"] = Value::String("forged".into());
            }
            r["prev_hash"] = Value::String(prev.clone());
            let body: keyward_daemon::domain::audit::RecordBody =
                serde_json::from_value(r.clone()).unwrap();
            let hash = hex_of(&body.compute_hash());
            r["hash"] = Value::String(hash.clone());
            r["mac"] = Value::String("00".repeat(32));
            put(t, seq, &r);
            prev = hash;
        }
    });
    assert_broken_at(&fx, 3, "forged");
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
