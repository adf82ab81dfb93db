#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark: a failed step ends it"
)]
//! The HSM handle cache on a real SoftHSMv2 token: AES-GCM encrypt with the key's handle cached
//! against the same encrypt after the cache was emptied, so the call first searches the token
//! (C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal). The two run interleaved, pair by
//! pair, on the same keys, session and token, so a noisy machine slows both alike. Prints
//! per-operation figures and their ratio; no pass or fail on speed.
//!
//! `cargo bench -p keyward-daemon --bench hsm`. KEYWARD_BENCH_OPS (default 2000) sets the pairs,
//! KEYWARD_BENCH_KEYS (default 100) the keys on the token besides the system ones.

use std::time::{Duration, Instant};

use keyward_daemon::domain::keys::KeyPurpose;
use keyward_daemon::hsm::Hsm;
use keyward_daemon::hsm::pkcs11::{Pkcs11Hsm, Pkcs11Settings};
use keyward_daemon::secret_file::read_secret;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Mean and median of `samples`, in microseconds.
fn summary(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>().as_secs_f64() / samples.len() as f64;
    let median = samples[samples.len() / 2].as_secs_f64();
    (mean * 1e6, median * 1e6)
}

fn main() {
    let ops = env_or("KEYWARD_BENCH_OPS", 2000).max(1);
    let key_count = env_or("KEYWARD_BENCH_KEYS", 100).max(1);
    let dir = tempfile::tempdir().unwrap();
    let token = keyward_hsm_sim::provision(&keyward_hsm_sim::ProvisionOptions::new(
        dir.path().join("hsm"),
    ))
    .unwrap();
    let hsm = Pkcs11Hsm::open(Pkcs11Settings {
        module: token.module.clone(),
        token_label: token.label.clone(),
        pin: read_secret(&token.user_pin_file, "PIN").unwrap(),
        sessions: 1,
    })
    .unwrap();
    let keys: Vec<_> = (0..key_count)
        .map(|i| {
            hsm.generate_key(KeyPurpose::Customer, &format!("bench-{i}"))
                .unwrap()
                .id
        })
        .collect();
    let plaintext = [0x5au8; 32];
    // Warm up: every key used once, so both sides start from a token that has read them.
    for id in &keys {
        hsm.encrypt(id, &plaintext, b"bench").unwrap();
    }

    let mut uncached = Vec::with_capacity(ops);
    let mut cached = Vec::with_capacity(ops);
    let mut searches = (0, 0);
    for i in 0..ops {
        let id = &keys[i % keys.len()];
        hsm.forget_handles();
        let before = hsm.object_searches();
        let start = Instant::now();
        hsm.encrypt(id, &plaintext, b"bench").unwrap();
        uncached.push(start.elapsed());
        let between = hsm.object_searches();
        let start = Instant::now();
        hsm.encrypt(id, &plaintext, b"bench").unwrap();
        cached.push(start.elapsed());
        searches.0 += between - before;
        searches.1 += hsm.object_searches() - between;
    }
    assert_eq!(
        searches,
        (ops as u64, 0),
        "one search per uncached encrypt, none cached"
    );

    let (u_mean, u_median) = summary(&mut uncached);
    let (c_mean, c_median) = summary(&mut cached);
    println!(
        "hsm: AES-256-GCM encrypt of {} bytes on SoftHSMv2 (sessions = 1), {ops} pairs over {key_count} keys",
        plaintext.len()
    );
    println!(
        "  uncached (searches first): {u_mean:>8.1} µs mean, {u_median:>8.1} µs median ({} searches)",
        searches.0
    );
    println!(
        "  cached handle:             {c_mean:>8.1} µs mean, {c_median:>8.1} µs median ({} searches)",
        searches.1
    );
    println!(
        "  uncached / cached:         {:>8.2}x mean, {:>8.2}x median; the search costs {:.1} µs (median)",
        u_mean / c_mean,
        u_median / c_median,
        u_median - c_median
    );
}
