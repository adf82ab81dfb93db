#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark: a failed step ends it"
)]
//! Start-up reconciliation of the key database with a real SoftHSMv2 token, at growing key
//! counts: `appliance::reconcile` (one listing of the token, the sets compared) beside what it
//! replaced (one search per key, each of which reads every object on SoftHSM). Prints the time
//! and the object searches of each; no pass or fail on speed.
//!
//! `cargo bench -p keyward-daemon --bench reconcile`. KEYWARD_BENCH_KEY_COUNTS (default
//! `10,200,1000`) sets the key counts; KEYWARD_BENCH_RUNS (default 3) the runs of each, of
//! which the median is shown.

use std::time::{Duration, Instant};

use keyward_daemon::appliance::reconcile;
use keyward_daemon::domain::keys::{KeyPurpose, KeyRecord, KeySource};
use keyward_daemon::domain::now_ms;
use keyward_daemon::hsm::Hsm;
use keyward_daemon::hsm::pkcs11::Pkcs11Hsm;
use keyward_daemon::store::Store;

/// The token the HSM conformance suite provisions (one per process, `sessions = 1`).
#[path = "../tests/common/mod.rs"]
mod common;

/// The median time of `runs` runs of `f`, and the object searches of one run.
fn measure(hsm: &Pkcs11Hsm, runs: usize, mut f: impl FnMut()) -> (Duration, u64) {
    let mut times = Vec::with_capacity(runs);
    let mut searches = 0;
    for _ in 0..runs {
        hsm.forget_handles();
        let before = hsm.object_searches();
        let start = Instant::now();
        f();
        times.push(start.elapsed());
        searches = hsm.object_searches() - before;
    }
    times.sort();
    (times[times.len() / 2], searches)
}

fn main() {
    let counts: Vec<usize> = std::env::var("KEYWARD_BENCH_KEY_COUNTS")
        .unwrap_or_else(|_| "10,200,1000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let runs = std::env::var("KEYWARD_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3usize)
        .max(1);
    let shared = common::token();
    let (hsm, label) = (shared.hsm.as_ref(), &shared.provisioned.label);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();

    println!("reconcile: key database against a SoftHSMv2 token (sessions = 1), median of {runs}");
    println!(
        "  {:>6}  {:>22}  {:>30}",
        "keys", "one listing (now)", "a search per key (before)"
    );
    let mut made = 0;
    for count in counts {
        while made < count {
            let key = hsm
                .generate_key(KeyPurpose::Customer, &format!("bench-{made}"))
                .unwrap();
            store
                .put_key(&KeyRecord {
                    id: key.id,
                    label: format!("bench-{made}"),
                    purpose: KeyPurpose::Customer,
                    fingerprint: key.fingerprint,
                    created_ms: now_ms(),
                    source: KeySource::Hsm,
                    tokens: vec![label.clone()],
                    cloud: None,
                })
                .unwrap();
            made += 1;
        }
        let (now, now_searches) = measure(hsm, runs, || {
            let missing = reconcile(&store, hsm, label).unwrap();
            assert!(missing.is_empty());
        });
        let (before, before_searches) = measure(hsm, runs, || {
            for key in store.list_keys().unwrap() {
                assert!(hsm.find_key(&key.id).unwrap().is_some());
            }
        });
        println!(
            "  {count:>6}  {:>9.1} ms {:>4} search  {:>11.1} ms {:>6} searches",
            now.as_secs_f64() * 1e3,
            now_searches,
            before.as_secs_f64() * 1e3,
            before_searches
        );
    }
}
