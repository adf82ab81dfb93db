#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "a benchmark: a step that fails ends the run with its message"
)]
//! `keyward-bench`: rotation figures against the KMS peer on loopback (the real daemon, a real
//! SoftHSMv2 token, LocalStack's KMS). Prints markdown tables for the README.
//!
//! ```text
//! cargo build --release --workspace --bins
//! KEYWARD_TEST_KMS_ENDPOINT=http://127.0.0.1:4566 target/release/keyward-bench [phases] [scheduler] [quotas]
//! ```
//!
//! - `phases`: one rotation end to end, per step (median of several), pacing off.
//! - `scheduler`: N groups (default 200, `KEYWARD_BENCH_GROUPS`) rotated by the scheduler at
//!   concurrency 1, 4 and 16 (`KEYWARD_BENCH_CONCURRENCY=1,4,16`), pacing off.
//! - `quotas`: 20 groups under the default pacing, through a proxy that enforces AWS's
//!   published quotas: it counts the throttling errors it had to give (the goal is zero).
//!
//! Without a `KEYWARD_TEST_KMS_ENDPOINT` a peer is started (and stopped) for the run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use keyward_proto::Request;
use keyward_tests::proxy::{FaultProxy, Quota};
use keyward_tests::rfc3339_ms as ms;
use keyward_tests::{Console, Daemon, Fixture, fields, kms_endpoint};

const REGION: &str = "us-west-1";

/// Pacing off: the bench measures the appliance and the peer, not AWS's quotas.
const NO_PACING: &str = "[aws.quotas]\nget_parameters_for_import = \"off\"\nimport_key_material = \"off\"\ncreate_key = \"off\"\nalias = \"off\"\npolicy = \"off\"\n";

/// A daemon with a credential, set up for one part of the run.
struct Bench {
    _fx: Fixture,
    daemon: Daemon,
    console: Console,
    /// Distinguishes this run's aliases on a peer that keeps state.
    run: String,
    endpoint: String,
}

impl Bench {
    fn start(config: &str, endpoint: &str) -> Self {
        let fx = Fixture::new();
        fx.init_ok();
        fx.append_config(config);
        let daemon = fx.start();
        let mut console = daemon.admins();
        let csv = fx.credentials_csv();
        console.ok(&Request::CredentialImport {
            name: "bench".into(),
            path: csv.display().to_string(),
        });
        let run = format!(
            "{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                % 1_000_000
        );
        Self {
            _fx: fx,
            daemon,
            console,
            run,
            endpoint: endpoint.to_owned(),
        }
    }

    fn group(&mut self, name: &str, extra: &[(&str, &str)]) {
        let alias = format!("alias/bench-{}-{name}", self.run);
        let mut pairs = vec![
            ("credential", "bench"),
            ("region", REGION),
            ("endpoint", self.endpoint.as_str()),
            ("alias", alias.as_str()),
        ];
        pairs.extend_from_slice(extra);
        self.console.ok(&Request::GroupCreate {
            name: name.into(),
            fields: fields(&pairs),
        });
    }

    fn jobs(&mut self) -> Vec<serde_json::Value> {
        self.console
            .ok(&Request::JobList)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Each step's time from its job log: `TIME step i/n NAME: started` to `… NAME: done; …`.
fn step_times(log: &[String]) -> Vec<(String, u64)> {
    let mut started: BTreeMap<String, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for line in log {
        let Some((time, text)) = line.split_once(' ') else {
            continue;
        };
        let Some(rest) = text.strip_prefix("step ") else {
            continue;
        };
        let Some((_, rest)) = rest.split_once(' ') else {
            continue;
        };
        let Some((step, what)) = rest.split_once(": ") else {
            continue;
        };
        if what == "started" {
            started.insert(step.to_owned(), ms(time));
        } else if what.starts_with("done")
            && let Some(t0) = started.get(step)
        {
            out.push((step.to_owned(), ms(time).saturating_sub(*t0)));
        }
    }
    out
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn percentile(values: &mut [u64], p: f64) -> u64 {
    values.sort_unstable();
    if values.is_empty() {
        return 0;
    }
    let i = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[i]
}

/// One rotation end to end, per step: the median over `runs` rotations of one group.
fn phases(endpoint: &str, runs: usize) {
    let mut b = Bench::start(NO_PACING, endpoint);
    b.group("phases", &[("disable_previous", "yes")]);
    let mut per_step: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut totals = Vec::new();
    // The first rotation of a group has no previous key; time the ones after it.
    let first = b.console.rotate("phases");
    b.console.wait(first).expect("first rotation");
    for _ in 0..runs {
        let started = Instant::now();
        let job = b.console.rotate("phases");
        b.console.wait(job).expect("rotation");
        totals.push(started.elapsed().as_millis() as u64);
        for (step, took) in step_times(&b.console.job_log(job)) {
            if !order.contains(&step) {
                order.push(step.clone());
            }
            per_step.entry(step).or_default().push(took);
        }
    }
    println!("\n### One rotation, end to end ({runs} rotations, median)\n");
    println!("| step | ms |\n|---|---:|");
    let mut sum = 0;
    for step in &order {
        let m = median(per_step.get_mut(step).unwrap());
        sum += m;
        println!("| {step} | {m} |");
    }
    println!("| sum of steps | {sum} |");
    println!(
        "| request to done (force rotate, job wait) | {} |",
        median(&mut totals)
    );
    b.daemon.stop();
}

/// `groups` groups, each due at once (no key yet), rotated by the scheduler with at most
/// `concurrency` rotations at a time. Returns (wall seconds, p50 job ms, p95 job ms).
fn scheduled(endpoint: &str, groups: usize, concurrency: usize) -> (f64, u64, u64) {
    let config = format!(
        "{NO_PACING}\n[rotation]\ndesignated = false\ncheck_every = \"1s\"\nconcurrency = {concurrency}\n"
    );
    let mut b = Bench::start(&config, endpoint);
    for i in 0..groups {
        b.group(&format!("g{i:03}"), &[("rotate_every", "1d")]);
    }
    let started = Instant::now();
    b.console.ok(&Request::SettingsSet {
        name: "rotation.designated".into(),
        value: "true".into(),
    });
    let deadline = started + Duration::from_secs(3600);
    let jobs = loop {
        let jobs = b.jobs();
        let done = jobs.iter().filter(|j| j["state"] == "succeeded").count();
        if let Some(failed) = jobs.iter().find(|j| j["state"] == "failed") {
            eprintln!("a scheduled rotation failed (the scheduler retries it): {failed}");
        }
        if done >= groups {
            break jobs;
        }
        assert!(
            Instant::now() < deadline,
            "{done} of {groups} rotations after an hour"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let wall = started.elapsed().as_secs_f64();
    let mut durations: Vec<u64> = jobs
        .iter()
        .filter(|j| j["state"] == "succeeded")
        .map(|j| {
            ms(j["finished"].as_str().unwrap()).saturating_sub(ms(j["created"].as_str().unwrap()))
        })
        .collect();
    let by_scheduler = jobs
        .iter()
        .filter(|j| j["requested_by"] == serde_json::json!(["scheduler"]))
        .count();
    assert_eq!(
        by_scheduler,
        jobs.len(),
        "every job came from the scheduler"
    );
    assert_eq!(jobs.len(), groups, "one rotation job per group, no more");
    b.daemon.stop();
    (
        wall,
        percentile(&mut durations, 0.5),
        percentile(&mut durations, 0.95),
    )
}

fn scheduler(endpoint: &str) {
    let groups: usize = std::env::var("KEYWARD_BENCH_GROUPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let levels: Vec<usize> = std::env::var("KEYWARD_BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "1,4,16".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let mut rows = Vec::new();
    for c in levels {
        eprintln!("scheduler: {groups} groups at concurrency {c} …");
        let (wall, p50, p95) = scheduled(endpoint, groups, c);
        rows.push((c, wall, p50, p95));
    }
    println!("\n### {groups} groups rotated by the scheduler (pacing off)\n");
    println!(
        "| rotation.concurrency | wall time s | rotations/s | job p50 ms (queued to done) | job p95 ms |\n|---:|---:|---:|---:|---:|"
    );
    for (c, wall, p50, p95) in rows {
        println!(
            "| {c} | {wall:.1} | {:.2} | {p50} | {p95} |",
            groups as f64 / wall
        );
    }
}

/// `groups` groups rotated by the scheduler under the default pacing, through a proxy that
/// enforces AWS's published quotas: prints the wall time, the calls forwarded, the throttling
/// errors the proxy gave (the goal is zero) and the jobs that waited for quota.
fn quotas(endpoint: &str, groups: usize) {
    let proxy = FaultProxy::start(endpoint, Vec::new());
    proxy.set_quotas(Quota::aws_published());
    let config = "[rotation]\ndesignated = false\ncheck_every = \"1s\"\n";
    let mut b = Bench::start(config, &proxy.url());
    for i in 0..groups {
        b.group(&format!("q{i:02}"), &[("rotate_every", "1d")]);
    }
    let started = Instant::now();
    b.console.ok(&Request::SettingsSet {
        name: "rotation.designated".into(),
        value: "true".into(),
    });
    let deadline = started + Duration::from_secs(1800);
    let jobs = loop {
        let jobs = b.jobs();
        if jobs.iter().filter(|j| j["state"] == "succeeded").count() >= groups {
            break jobs;
        }
        assert!(Instant::now() < deadline, "not done after 30 minutes");
        std::thread::sleep(Duration::from_millis(250));
    };
    let wall = started.elapsed().as_secs_f64();
    let mut waited = 0;
    let mut retried = 0;
    for job in &jobs {
        let log = b.console.job_log(job["id"].as_u64().unwrap());
        waited += usize::from(log.iter().any(|l| l.contains("waiting for quota")));
        retried += usize::from(log.iter().any(|l| l.contains("; retry ")));
    }
    let forwarded = proxy
        .all_seen()
        .iter()
        .filter(|s| s.fault.is_none())
        .count();
    println!(
        "\n### {groups} groups under the default quotas, through a proxy that enforces AWS's published quotas\n"
    );
    println!(
        "| wall time s | calls forwarded | throttling errors | jobs that waited for quota | jobs that retried |\n|---:|---:|---:|---:|---:|"
    );
    println!(
        "| {wall:.1} | {forwarded} | {} | {waited} | {retried} |",
        proxy.throttled()
    );
    assert_eq!(proxy.throttled(), 0, "throttled: {}", proxy.summary());
    b.daemon.stop();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let want = |part: &str| args.is_empty() || args.iter().any(|a| a == part);
    let endpoint = kms_endpoint();
    eprintln!("KMS peer: {endpoint}");
    if want("phases") {
        phases(&endpoint, 5);
    }
    if want("scheduler") {
        scheduler(&endpoint);
    }
    if want("quotas") {
        quotas(&endpoint, 20);
    }
}
