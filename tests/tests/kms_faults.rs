#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "tests: a step that fails is a failed test, reported where it happened"
)]
//! AWS KMS faults. Throttling (HTTP 400 `ThrottlingException`), HTTP 500 and 503 answers,
//! connection resets, answers stalled past `[aws] call_timeout` and refused connections are
//! retried with backoff and jitter, each retry shown in the job log; a rotation whose fault
//! eases completes with exactly one new KMS key, tagged and under the alias. A fault that never
//! eases fails the job with a reason naming the call and the attempts, leaves no untagged
//! (orphan) KMS key, and `job retry` finishes the same job once the fault is gone. Under AWS's
//! published request quotas, the daemon's default `[aws.quotas]` pacing is never throttled.
//!
//! The daemon talks to the fault-injecting proxy of `keyward_tests::proxy` on loopback, which
//! forwards to the real KMS peer (LocalStack's KMS) except what its rules or quotas answer.
//! What AWS holds is checked through aws-sdk-kms directly against the real peer, never through
//! the proxy or Keyward's own bookkeeping. Each test works in its own region, so tests never see
//! each other's keys.

use std::time::{Duration, Instant};

use keyward_proto::{ErrorCode, Request};
use keyward_tests::proxy::{Fault, FaultProxy, Quota, Rule, Seen};
use keyward_tests::{Appliance, Kms, kms_endpoint};

const CREATE_KEY: &str = "TrentService.CreateKey";
const GET_PARAMETERS: &str = "TrentService.GetParametersForImport";
const IMPORT: &str = "TrentService.ImportKeyMaterial";
const CREATE_ALIAS: &str = "TrentService.CreateAlias";

/// Short calls and few attempts, so that faults play out in seconds: a stalled answer fails
/// its attempt after 2 s; a call is tried 4 times (retries "1 of 3" to "3 of 3").
const FAST_AWS: &str = "[aws]\ncall_timeout = \"2s\"\nattempts = 4\n";

// ---- the appliance ----

/// The alias of group `group`: unique to this test run, since the KMS peer keeps its aliases
/// between runs and a test expects to create its alias.
fn alias(group: &str) -> String {
    static RUN: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    });
    format!("alias/{group}-{run}")
}

type Setup = Appliance;

/// Groups reached through a fault proxy, on the shared [`Appliance`].
trait Proxied {
    fn create_proxied_group(&mut self, name: &str, endpoint: &str);
    fn wait_through(&mut self, job: u64, proxy: &FaultProxy) -> serde_json::Value;
    fn wait_failed(&mut self, job: u64, proxy: &FaultProxy) -> keyward_proto::ApiError;
}

impl Proxied for Appliance {
    /// A group whose KMS endpoint is `endpoint` (a proxy), with alias [`alias`]`(name)`.
    fn create_proxied_group(&mut self, name: &str, endpoint: &str) {
        self.create_group(name, &alias(name), &[("endpoint", endpoint)]);
    }

    /// Waits for a job that must succeed; a failure shows its log and what the proxy saw.
    fn wait_through(&mut self, job: u64, proxy: &FaultProxy) -> serde_json::Value {
        let outcome = self.console().wait(job);
        outcome.unwrap_or_else(|e| {
            panic!(
                "job {job} failed: {e}\n{}\nproxy saw:\n{}\ndaemon log:\n{}",
                self.console().job_log(job).join("\n"),
                proxy.summary(),
                self.daemon().log_text()
            )
        })
    }

    /// Waits for a job that must fail; returns the error.
    fn wait_failed(&mut self, job: u64, proxy: &FaultProxy) -> keyward_proto::ApiError {
        match self.console().wait(job) {
            Ok(view) => panic!(
                "job {job} should have failed: {view}\n{}\nproxy saw:\n{}",
                self.console().job_log(job).join("\n"),
                proxy.summary()
            ),
            Err(e) => e,
        }
    }
}

// ---- the job log ----

/// A `kms:OP on WHAT: WHY; retry N of M in W ms` line of the job log.
#[derive(Debug)]
struct RetryLine {
    line: String,
    op: String,
    number: u32,
    of: u32,
    wait_ms: u64,
}

fn retry_lines(log: &[String]) -> Vec<RetryLine> {
    log.iter()
        .filter_map(|line| {
            let (before, after) = line.split_once("; retry ")?;
            let op = before
                .split_once("kms:")?
                .1
                .split_whitespace()
                .next()?
                .to_owned();
            let words: Vec<&str> = after.split_whitespace().collect();
            let [number, "of", of, "in", wait, "ms"] = words.as_slice() else {
                panic!("a retry line not in the documented form: {line:?}");
            };
            Some(RetryLine {
                line: line.clone(),
                op,
                number: number.parse().expect("retry number"),
                of: of.parse().expect("retry count"),
                wait_ms: wait.parse().expect("retry wait"),
            })
        })
        .collect()
}

/// The retry lines are numbered 1, 2, … of `of`, all for `op`, each with a backoff.
fn assert_retries(retries: &[RetryLine], op: &str, of: u32, log: &[String]) {
    for (i, r) in retries.iter().enumerate() {
        assert_eq!(r.op, op, "{}\n{}", r.line, log.join("\n"));
        assert_eq!(r.number, u32::try_from(i).unwrap() + 1, "{}", r.line);
        assert_eq!(r.of, of, "{}", r.line);
        assert!(r.wait_ms > 0, "a retry without backoff: {}", r.line);
    }
}

/// Each retry waited on the wire at least the time its log line announced: request N+1
/// reached the proxy at least `wait_ms` after request N.
fn assert_backoff_on_the_wire(seen: &[Seen], retries: &[RetryLine]) {
    assert_eq!(seen.len(), retries.len() + 1, "{seen:?}\n{retries:?}");
    for (pair, retry) in seen.windows(2).zip(retries) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap >= Duration::from_millis(retry.wait_ms),
            "retry {} came {gap:?} after the previous attempt, but the log says it waited {} ms",
            retry.number,
            retry.wait_ms
        );
    }
}

/// Index of the first log line containing `needle`.
fn position(log: &[String], needle: &str) -> usize {
    log.iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in the job log:\n{}", log.join("\n")))
}

// ---- what AWS holds ----

/// The `keyward:key-id` tag of a KMS key (the Keyward key it holds), read from the peer.
fn keyward_tag(kms: &Kms, key: &str) -> Option<String> {
    kms.run(kms.client.list_resource_tags().key_id(key).send())
        .expect("ListResourceTags")
        .tags()
        .iter()
        .find(|t| t.tag_key() == "keyward:key-id")
        .map(|t| t.tag_value().to_owned())
}

/// The keys that are in the region now and were not in `before` are exactly one per job, each
/// tagged with its job's Keyward key (`job_keys`); returns them in the order of `job_keys`.
/// An extra key (a duplicate, or an untagged orphan) fails. No older key holds a job's key.
fn one_new_key_per_job(kms: &Kms, before: &[String], job_keys: &[&str]) -> Vec<String> {
    let new: Vec<(String, Option<String>)> = kms
        .key_ids()
        .into_iter()
        .filter(|k| !before.contains(k))
        .map(|k| {
            let tag = keyward_tag(kms, &k);
            (k, tag)
        })
        .collect();
    assert_eq!(
        new.len(),
        job_keys.len(),
        "one new KMS key per job ({job_keys:?}); new keys with their keyward:key-id tags: {new:?}"
    );
    let found = job_keys
        .iter()
        .map(|job_key| {
            let holding: Vec<&String> = new
                .iter()
                .filter(|(_, tag)| tag.as_deref() == Some(*job_key))
                .map(|(k, _)| k)
                .collect();
            assert_eq!(
                holding.len(),
                1,
                "exactly one KMS key holds the job's key {job_key}; new keys: {new:?}"
            );
            holding[0].clone()
        })
        .collect();
    for old in before {
        let tag = keyward_tag(kms, old);
        assert!(
            !job_keys.contains(&tag.as_deref().unwrap_or_default()),
            "an older key {old} holds a job's key: {tag:?}"
        );
    }
    found
}

/// No orphan: every KMS key in the region carries a `keyward:key-id` tag.
fn assert_every_key_tagged(kms: &Kms) {
    for key in kms.key_ids() {
        assert!(
            keyward_tag(kms, &key).is_some(),
            "KMS key {key} carries no keyward:key-id tag: an orphan ({:?})",
            kms.describe(&key).key_state()
        );
    }
}

fn key_state(kms: &Kms, key: &str) -> String {
    kms.describe(key).key_state().unwrap().as_str().to_owned()
}

// ---- faults that ease ----

/// A group whose own proxy answers its first two requests to `target` with `fault`.
struct Easing {
    group: &'static str,
    target: &'static str,
    fault: Fault,
    /// What the retry lines say about the failure.
    reason: &'static str,
}

/// Rotates one group per case at once, each through its own proxy, and checks that every
/// rotation completes after two retries of the faulted call, shown in its job log and on the
/// wire, with exactly one new KMS key, tagged, Enabled and under the group's alias.
fn faults_that_ease(region: &'static str, cases: &[Easing]) {
    // GetParametersForImport unpaced: a retry takes a pacing slot like any attempt, and at
    // 1 per 4 s the retries of three groups would take half a minute. Quotas are tested below.
    let mut s = Setup::new(
        region,
        &format!("{FAST_AWS}\n[aws.quotas]\nget_parameters_for_import = \"off\"\n"),
    );
    let proxies: Vec<FaultProxy> = cases
        .iter()
        .map(|c| FaultProxy::start(&kms_endpoint(), vec![Rule::times(c.target, c.fault, 2)]))
        .collect();
    for (c, proxy) in cases.iter().zip(&proxies) {
        s.create_proxied_group(c.group, &proxy.url());
    }
    let before = s.kms.key_ids();
    let jobs: Vec<u64> = cases.iter().map(|c| s.console().rotate(c.group)).collect();
    let views: Vec<serde_json::Value> = jobs
        .iter()
        .zip(&proxies)
        .map(|(job, proxy)| s.wait_through(*job, proxy))
        .collect();

    for ((c, job), proxy) in cases.iter().zip(&jobs).zip(&proxies) {
        // The job log: two retries of the faulted call, 1 and 2 of 3, saying why.
        let log = s.console().job_log(*job);
        let retries = retry_lines(&log);
        let op = c.target.trim_start_matches("TrentService.");
        assert_eq!(
            retries.len(),
            2,
            "{}: two retries:\n{}",
            c.group,
            log.join("\n")
        );
        assert_retries(&retries, op, 3, &log);
        for r in &retries {
            assert!(
                r.line.to_lowercase().contains(c.reason),
                "{}: the retry line does not say {:?}: {}",
                c.group,
                c.reason,
                r.line
            );
        }
        // On the wire: the first two requests got the fault, the third was forwarded, each
        // retry after its backoff.
        let seen = proxy.seen(c.target);
        let faults: Vec<Option<Fault>> = seen.iter().map(|r| r.fault).collect();
        assert_eq!(
            faults,
            [Some(c.fault), Some(c.fault), None],
            "{}: proxy saw:\n{}",
            c.group,
            proxy.summary()
        );
        assert_backoff_on_the_wire(&seen, &retries);
        eprintln!(
            "{}: job {job} retried:\n  {}",
            c.group,
            retries
                .iter()
                .map(|r| r.line.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }

    // AWS: one new key per job, tagged with its Keyward key, Enabled, under the alias.
    let job_keys: Vec<&str> = views
        .iter()
        .map(|v| v["key"].as_str().expect("the job's key"))
        .collect();
    let new = one_new_key_per_job(&s.kms, &before, &job_keys);
    for ((c, view), key) in cases.iter().zip(&views).zip(&new) {
        assert_eq!(view["aws_key_id"], key.as_str(), "{view}");
        assert_eq!(key_state(&s.kms, key), "Enabled", "{}", c.group);
        assert_eq!(
            s.kms.alias_target(&alias(c.group)).as_deref(),
            Some(key.as_str()),
            "{}: the alias points at the new key",
            c.group
        );
    }
    assert_every_key_tagged(&s.kms);
}

// ---- tests ----

#[test]
fn throttling_that_eases_is_retried_with_backoff_and_the_rotation_makes_one_key() {
    let proxy = FaultProxy::start(
        &kms_endpoint(),
        vec![Rule::times(CREATE_KEY, Fault::Throttle, 2)],
    );
    let mut s = Setup::new("us-east-2", "");
    s.create_proxied_group("throttled", &proxy.url());
    let before = s.kms.key_ids();

    let job = s.console().rotate("throttled");
    let started = Instant::now();
    let view = s.wait_through(job, &proxy);
    let took = started.elapsed();
    let log = s.console().job_log(job);

    // The job log: two throttled CreateKey calls, retried as 1 and 2 of 5, inside the
    // create-key step; nothing else was retried.
    let retries = retry_lines(&log);
    assert_eq!(retries.len(), 2, "two retries:\n{}", log.join("\n"));
    assert_retries(&retries, "CreateKey", 5, &log);
    for r in &retries {
        assert!(
            r.line.contains("throttled (ThrottlingException)"),
            "{}",
            r.line
        );
    }
    let (step_started, step_done) = (
        position(&log, "create-key: started"),
        position(&log, "create-key: done"),
    );
    let first_retry = position(&log, &retries[0].line);
    let last_retry = position(&log, &retries[1].line);
    assert!(
        step_started < first_retry && last_retry < step_done,
        "the retries are logged inside the create-key step:\n{}",
        log.join("\n")
    );

    // On the wire: three CreateKey requests, the first two throttled by the proxy, the third
    // forwarded; each retry came after its backoff.
    let creates = proxy.seen(CREATE_KEY);
    let faults: Vec<Option<Fault>> = creates.iter().map(|c| c.fault).collect();
    assert_eq!(
        faults,
        [Some(Fault::Throttle), Some(Fault::Throttle), None],
        "proxy saw:\n{}",
        proxy.summary()
    );
    assert_backoff_on_the_wire(&creates, &retries);
    let backoff: u64 = retries.iter().map(|r| r.wait_ms).sum();
    assert!(
        took >= Duration::from_millis(backoff),
        "the job took {took:?}, less than its {backoff} ms of backoff"
    );

    // AWS holds exactly one new key, Enabled, with the alias; it is the job's key. (A new
    // key of another Keyward key means some other test works in this region.)
    let job_key = view["key"].as_str().expect("the job's key");
    let [new] = one_new_key_per_job(&s.kms, &before, &[job_key])
        .try_into()
        .unwrap();
    assert_eq!(
        s.kms.alias_target(&alias("throttled")).as_deref(),
        Some(new.as_str()),
        "the alias points at the new key"
    );
    assert_eq!(view["aws_key_id"], new.as_str(), "{view}");
    let meta = s.kms.describe(&new);
    assert_eq!(meta.key_state().unwrap().as_str(), "Enabled");
    assert_eq!(meta.origin().unwrap().as_str(), "EXTERNAL");

    // One audited CreateKey call (its retries are not separate calls), and it succeeded.
    assert_eq!(
        s.console().audit_outcomes("kms.CreateKey", job),
        ["attempt", "success"],
        "one CreateKey call in the audit trail"
    );
    eprintln!(
        "throttling: job {job} took {took:?} with {backoff} ms of backoff: {:?}",
        retries.iter().map(|r| r.wait_ms).collect::<Vec<_>>()
    );
}

#[test]
fn a_5xx_that_never_eases_fails_the_job_after_five_retries_and_says_why() {
    let proxy = FaultProxy::start(
        &kms_endpoint(),
        vec![Rule::always(GET_PARAMETERS, Fault::Unavailable)],
    );
    let mut s = Setup::new("ap-south-1", "");
    s.create_proxied_group("outage", &proxy.url());
    let before = s.kms.key_ids();

    let job = s.console().rotate("outage");
    let started = Instant::now();
    let e = s.wait_failed(job, &proxy);
    let took = started.elapsed();
    let log = s.console().job_log(job);

    // The failure: job-failed, naming the call, what went wrong, where, and the attempts.
    assert_eq!(e.code, ErrorCode::JobFailed, "{e}");
    for needle in [
        "GetParametersForImport",
        "cannot reach AWS KMS",
        proxy.url().as_str(),
        "after 6 attempts",
        "HTTP 503",
    ] {
        assert!(e.message.contains(needle), "no {needle:?} in: {e}");
    }

    // The job log: five retries of GetParametersForImport, 1 to 5 of 5, then the failure.
    let retries = retry_lines(&log);
    assert_eq!(retries.len(), 5, "five retries:\n{}", log.join("\n"));
    assert_retries(&retries, "GetParametersForImport", 5, &log);
    for r in &retries {
        assert!(r.line.contains("HTTP 503"), "{}", r.line);
    }
    let step_failed = position(&log, "get-import-parameters: failed");
    assert!(
        position(&log, &retries[4].line) < step_failed,
        "the retries come before the step's failure:\n{}",
        log.join("\n")
    );
    assert!(
        step_failed < position(&log, "job failed"),
        "{}",
        log.join("\n")
    );

    // On the wire: six GetParametersForImport requests, all answered 503 by the proxy, each
    // retry after its backoff; nothing after them.
    let params = proxy.seen(GET_PARAMETERS);
    assert!(
        params.iter().all(|p| p.fault == Some(Fault::Unavailable)),
        "{params:?}"
    );
    assert_backoff_on_the_wire(&params, &retries);
    for later in [IMPORT, CREATE_ALIAS] {
        assert!(proxy.seen(later).is_empty(), "{later} after the failure");
    }
    let backoff: u64 = retries.iter().map(|r| r.wait_ms).sum();
    assert!(
        took >= Duration::from_millis(backoff),
        "the job took {took:?}, less than its {backoff} ms of backoff"
    );

    // AWS: the one key the job created waits without material, and no alias was made.
    let shown = s.console().ok(&Request::JobShow { id: job });
    assert_eq!(shown["state"], "failed", "{shown}");
    let job_key = shown["key"].as_str().expect("the job's key");
    let [new] = one_new_key_per_job(&s.kms, &before, &[job_key])
        .try_into()
        .unwrap();
    assert_eq!(shown["aws_key_id"], new.as_str(), "{shown}");
    assert_eq!(key_state(&s.kms, &new), "PendingImport");
    assert_eq!(s.kms.alias_target(&alias("outage")), None);
    eprintln!(
        "5xx: job {job} failed after {took:?} with {backoff} ms of backoff: {:?}",
        retries.iter().map(|r| r.wait_ms).collect::<Vec<_>>()
    );
}

#[test]
fn http_faults_that_ease_500_503_and_throttling_are_retried_and_each_rotation_makes_one_key() {
    faults_that_ease(
        "ap-southeast-1",
        &[
            Easing {
                group: "internal-error",
                target: IMPORT,
                fault: Fault::InternalError,
                reason: "kmsinternalexception",
            },
            Easing {
                group: "unavailable",
                target: CREATE_ALIAS,
                fault: Fault::Unavailable,
                reason: "http 503",
            },
            Easing {
                group: "throttled",
                target: GET_PARAMETERS,
                fault: Fault::Throttle,
                reason: "throttled (throttlingexception)",
            },
        ],
    );
}

#[test]
fn connection_faults_that_ease_reset_and_stall_are_retried_and_each_rotation_makes_one_key() {
    faults_that_ease(
        "ap-southeast-3",
        &[
            Easing {
                group: "reset",
                target: CREATE_KEY,
                fault: Fault::Reset,
                reason: "reset",
            },
            Easing {
                group: "stalled",
                target: IMPORT,
                // Past the 2 s call timeout: the daemon gives up on the attempt first.
                fault: Fault::Stall(Duration::from_secs(4)),
                reason: "timed out",
            },
        ],
    );
}

#[test]
fn a_503_that_never_eases_fails_with_no_orphan_key_and_job_retry_finishes_the_same_job() {
    let proxy = FaultProxy::start(
        &kms_endpoint(),
        vec![Rule::always(IMPORT, Fault::Unavailable)],
    );
    let mut s = Setup::new("ap-northeast-3", FAST_AWS);
    s.create_proxied_group("outage", &proxy.url());
    let before = s.kms.key_ids();

    let job = s.console().rotate("outage");
    let e = s.wait_failed(job, &proxy);
    let log = s.console().job_log(job);

    // The reason names the call, the key, the endpoint, the attempts and the last answer.
    assert_eq!(e.code, ErrorCode::JobFailed, "{e}");
    let shown = s.console().ok(&Request::JobShow { id: job });
    let aws_key = shown["aws_key_id"].as_str().expect("a KMS key").to_owned();
    for needle in [
        "kms:ImportKeyMaterial",
        aws_key.as_str(),
        proxy.url().as_str(),
        "after 4 attempts",
        "HTTP 503",
    ] {
        assert!(e.message.contains(needle), "no {needle:?} in: {e}");
    }
    assert_eq!(shown["state"], "failed", "{shown}");
    assert!(
        shown["error"]
            .as_str()
            .is_some_and(|m| m.contains("after 4 attempts")),
        "{shown}"
    );
    let retries = retry_lines(&log);
    assert_eq!(retries.len(), 3, "three retries:\n{}", log.join("\n"));
    assert_retries(&retries, "ImportKeyMaterial", 3, &log);
    assert!(
        position(&log, &retries[2].line) < position(&log, "import-material: failed"),
        "{}",
        log.join("\n")
    );
    assert_eq!(proxy.seen(IMPORT).len(), 4, "{}", proxy.summary());

    // AWS: the job's one key, tagged, without material; no untagged key; no alias.
    let job_key = shown["key"].as_str().expect("the job's key").to_owned();
    let [new] = one_new_key_per_job(&s.kms, &before, &[&job_key])
        .try_into()
        .unwrap();
    assert_eq!(new, aws_key);
    assert_eq!(key_state(&s.kms, &new), "PendingImport");
    assert_every_key_tagged(&s.kms);
    assert_eq!(s.kms.alias_target(&alias("outage")), None);

    // The outage ends; two administrators retry the job, and the same job finishes with the
    // same KMS key.
    proxy.set_rules(Vec::new());
    let retried = s.console().ok(&Request::JobRetry { id: job });
    assert_eq!(retried["id"], job, "{retried}");
    let view = s.wait_through(job, &proxy);
    assert_eq!(view["key"], job_key.as_str(), "{view}");
    let log = s.console().job_log(job);
    assert!(
        position(&log, "retry requested by alice and bob") > position(&log, "job failed"),
        "{}",
        log.join("\n")
    );
    let [after] = one_new_key_per_job(&s.kms, &before, &[&job_key])
        .try_into()
        .unwrap();
    assert_eq!(after, aws_key, "the retried job used the key it had made");
    assert_eq!(key_state(&s.kms, &after), "Enabled");
    assert_eq!(
        s.kms.alias_target(&alias("outage")).as_deref(),
        Some(after.as_str())
    );
    assert_every_key_tagged(&s.kms);
    // The failed call and the one that finally went through are both in the audit trail.
    assert_eq!(
        s.console().audit_outcomes("kms.ImportKeyMaterial", job),
        ["attempt", "failure", "attempt", "success"]
    );
}

#[test]
fn a_refused_connection_fails_with_no_orphan_key_and_job_retry_finishes_the_same_job() {
    // The first CreateAlias is held past the call timeout; while it is held the proxy stops
    // listening, so every retry is refused: the network to KMS went down after the key was
    // made and its material imported.
    let proxy = FaultProxy::start(
        &kms_endpoint(),
        vec![Rule::times(
            CREATE_ALIAS,
            Fault::Stall(Duration::from_secs(3)),
            1,
        )],
    );
    let mut s = Setup::new("ca-west-1", FAST_AWS);
    s.create_proxied_group("cut-off", &proxy.url());
    let before = s.kms.key_ids();

    let job = s.console().rotate("cut-off");
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.seen(CREATE_ALIAS).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no CreateAlias within 60 s:\n{}\n{}",
            s.console().job_log(job).join("\n"),
            proxy.summary()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    proxy.refuse();
    let e = s.wait_failed(job, &proxy);
    let log = s.console().job_log(job);

    assert_eq!(e.code, ErrorCode::JobFailed, "{e}");
    for needle in [
        "kms:CreateAlias",
        alias("cut-off").as_str(),
        "cannot reach AWS KMS",
        proxy.url().as_str(),
        "after 4 attempts",
    ] {
        assert!(e.message.contains(needle), "no {needle:?} in: {e}");
    }
    assert!(
        e.message.to_lowercase().contains("refused"),
        "the reason says the connection was refused: {e}"
    );
    // The log: the stalled attempt timed out, the next ones were refused.
    let retries = retry_lines(&log);
    assert_eq!(retries.len(), 3, "three retries:\n{}", log.join("\n"));
    assert_retries(&retries, "CreateAlias", 3, &log);
    assert!(retries[0].line.contains("timed out"), "{}", retries[0].line);
    for r in &retries[1..] {
        assert!(r.line.to_lowercase().contains("refused"), "{}", r.line);
    }
    eprintln!("refused: job {job} failed: {e}");
    assert_eq!(
        proxy.seen(CREATE_ALIAS).len(),
        1,
        "refused attempts never arrive:\n{}",
        proxy.summary()
    );

    // AWS: the key is made, tagged, with its material; the alias is not; no orphan.
    let shown = s.console().ok(&Request::JobShow { id: job });
    let job_key = shown["key"].as_str().expect("the job's key").to_owned();
    let [new] = one_new_key_per_job(&s.kms, &before, &[&job_key])
        .try_into()
        .unwrap();
    assert_eq!(shown["aws_key_id"], new.as_str(), "{shown}");
    assert_every_key_tagged(&s.kms);
    assert_eq!(s.kms.alias_target(&alias("cut-off")), None);

    // The network is back; `job retry` finishes the same job, with the same key.
    proxy.reopen();
    s.console().ok(&Request::JobRetry { id: job });
    let view = s.wait_through(job, &proxy);
    let [after] = one_new_key_per_job(&s.kms, &before, &[&job_key])
        .try_into()
        .unwrap();
    assert_eq!(after, new);
    assert_eq!(view["aws_key_id"], after.as_str(), "{view}");
    assert_eq!(key_state(&s.kms, &after), "Enabled");
    assert_eq!(
        s.kms.alias_target(&alias("cut-off")).as_deref(),
        Some(after.as_str())
    );
    assert_every_key_tagged(&s.kms);
}

/// Three groups through one proxy that enforces AWS's published quotas.
/// Returns the keys the region held before, and the three rotation jobs, started at once.
fn quota_setup(region: &'static str, config: &str) -> (Setup, FaultProxy, Vec<String>, Vec<u64>) {
    let proxy = FaultProxy::start(&kms_endpoint(), Vec::new());
    proxy.set_quotas(Quota::aws_published());
    let mut s = Setup::new(region, config);
    let groups = ["north", "south", "west"];
    for g in groups {
        s.create_proxied_group(g, &proxy.url());
    }
    let before = s.kms.key_ids();
    let jobs = groups.iter().map(|g| s.console().rotate(g)).collect();
    (s, proxy, before, jobs)
}

#[test]
fn under_aws_quotas_the_default_pacing_is_never_throttled() {
    let (mut s, proxy, before, jobs) = quota_setup("mx-central-1", "");
    let mut keys = Vec::new();
    let mut waited = false;
    for job in &jobs {
        let view = s.wait_through(*job, &proxy);
        keys.push(view["key"].as_str().expect("key").to_owned());
        let log = s.console().job_log(*job);
        waited |= log.iter().any(|l| {
            l.contains("kms:GetParametersForImport: waiting for quota")
                && l.contains("aws.quotas.get_parameters_for_import = 1/4s")
        });
        assert!(
            retry_lines(&log).is_empty(),
            "job {job} had to retry:\n{}",
            log.join("\n")
        );
    }
    assert_eq!(
        proxy.throttled(),
        0,
        "the proxy throttled requests:\n{}",
        proxy.summary()
    );
    assert_eq!(proxy.seen(GET_PARAMETERS).len(), 3, "{}", proxy.summary());
    assert!(
        waited,
        "three imports at once: some job waits for the GetParametersForImport quota"
    );
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let new = one_new_key_per_job(&s.kms, &before, &keys);
    for (g, key) in ["north", "south", "west"].iter().zip(&new) {
        assert_eq!(s.kms.alias_target(&alias(g)).as_deref(), Some(key.as_str()));
    }
}

#[test]
fn without_pacing_the_same_rotations_are_throttled() {
    // The counter-check: with `[aws.quotas]` off, the proxy does throttle, so the test above
    // can fail.
    let (mut s, proxy, _, jobs) = quota_setup(
        "eu-central-2",
        "[aws]\nattempts = 4\n\n[aws.quotas]\nget_parameters_for_import = \"off\"\nimport_key_material = \"off\"\ncreate_key = \"off\"\nalias = \"off\"\npolicy = \"off\"\n",
    );
    let mut logs = Vec::new();
    for job in &jobs {
        // Succeeded or failed: either way it is done.
        let _ = s.console().wait(*job);
        logs.extend(s.console().job_log(*job));
    }
    assert!(proxy.throttled() > 0, "{}", proxy.summary());
    eprintln!(
        "without pacing: the proxy throttled {} requests",
        proxy.throttled()
    );
    assert!(
        retry_lines(&logs)
            .iter()
            .any(|r| r.line.contains("throttled (ThrottlingException)")),
        "a job retried a throttled call:\n{}",
        logs.join("\n")
    );
    assert!(
        !logs.iter().any(|l| l.contains("waiting for quota")),
        "{}",
        logs.join("\n")
    );
}

#[test]
fn a_create_key_whose_answer_is_lost_leaves_no_second_key() {
    // AWS creates the key, but its answer never reaches the daemon: the attempt times out.
    let proxy = FaultProxy::start(
        &kms_endpoint(),
        vec![Rule::times(
            CREATE_KEY,
            Fault::LostAnswer(Duration::from_secs(4)),
            1,
        )],
    );
    let mut s = Setup::new("ap-southeast-3", FAST_AWS);
    s.create_proxied_group("lost-answer", &proxy.url());
    let job = s.console().rotate("lost-answer");
    let view = s.wait_through(job, &proxy);
    let job_key = view["key"].as_str().expect("the job's key");
    // Every live KMS key holding the job's key: only the one the rotation uses (a duplicate
    // scheduled for deletion would do).
    let holding: Vec<(String, String)> = s
        .kms
        .key_ids()
        .into_iter()
        .filter(|k| keyward_tag(&s.kms, k).as_deref() == Some(job_key))
        .map(|k| {
            let state = key_state(&s.kms, &k);
            (k, state)
        })
        .filter(|(_, state)| state != "PendingDeletion")
        .collect();
    assert_eq!(
        holding,
        [(
            view["aws_key_id"].as_str().unwrap_or_default().to_owned(),
            "Enabled".to_owned()
        )],
        "the live KMS keys tagged keyward:key-id={job_key}; proxy saw:\n{}\njob log:\n{}",
        proxy.summary(),
        s.console().job_log(job).join("\n")
    );
}
