#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark: a failed step ends it"
)]
//! Audit trail speed on a real SoftHSMv2 token: every append is an HSM HMAC, a sled insert and
//! flush, and a rewrite of the head kept in the token; verification is an HSM MAC check per
//! record. Prints records per second; run with `cargo bench -p keyward-daemon --bench audit_trail`.

use std::sync::Arc;
use std::time::Instant;

use keyward_daemon::audit::{AuditTrail, verify};
use keyward_daemon::domain::audit::{AuditEntry, Channel, Outcome};
use keyward_daemon::domain::keys::KeyPurpose;
use keyward_daemon::hsm::Hsm;
use keyward_daemon::hsm::pkcs11::{Pkcs11Hsm, Pkcs11Settings};
use keyward_daemon::secret_file::read_secret;
use keyward_daemon::store::Store;

fn main() {
    let records: u64 = std::env::var("KEYWARD_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let token = keyward_hsm_sim::provision(&keyward_hsm_sim::ProvisionOptions::new(
        dir.path().join("hsm"),
    ))
    .unwrap();
    let hsm: Arc<dyn Hsm> = Arc::new(
        Pkcs11Hsm::open(Pkcs11Settings {
            module: token.module.clone(),
            token_label: token.label.clone(),
            pin: read_secret(&token.user_pin_file, "PIN").unwrap(),
            sessions: 1,
        })
        .unwrap(),
    );
    let key = hsm
        .generate_key(KeyPurpose::Audit, "bench-audit")
        .unwrap()
        .id;
    let store = Store::open(&dir.path().join("data")).unwrap();
    let trail = AuditTrail::open(store.clone(), hsm.clone(), key).unwrap();

    let start = Instant::now();
    for i in 0..records {
        trail
            .append(
                AuditEntry::new(
                    Channel::System,
                    "bench.append",
                    format!("record {i}"),
                    Outcome::Notice,
                )
                .actors(["bench"]),
            )
            .unwrap();
    }
    let append = start.elapsed();

    let start = Instant::now();
    let report = verify(&store, hsm.as_ref(), &key).unwrap();
    let walk = start.elapsed();
    assert_eq!(report.records, records);

    println!("audit_trail: {records} records on SoftHSMv2 (sessions = 1)");
    println!(
        "  append: {:>8.1} records/s ({:.2} ms each: HMAC in the HSM, sled insert + flush, head rewritten in the token)",
        records as f64 / append.as_secs_f64(),
        append.as_secs_f64() * 1000.0 / records as f64
    );
    println!(
        "  verify: {:>8.1} records/s ({:.2} ms each: hash chain + HMAC check in the HSM)",
        records as f64 / walk.as_secs_f64(),
        walk.as_secs_f64() * 1000.0 / records as f64
    );
    println!("  database on disk: {} KiB", store.size_on_disk() / 1024);
}
