#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "tests: a step that fails is a failed test, reported where it happened"
)]
//! Crash at any point: for every step of the rotation and synchronize jobs, before it and after
//! it, the daemon is stopped dead by a test-only fault point (`KEYWARD_JOB_CRASH_AT`), killed
//! with a real SIGKILL of the real process, and started again without the fault point. The job
//! then resumes and finishes, and what it left behind is checked where it lives: AWS through
//! aws-sdk-kms against the real KMS peer (LocalStack's KMS on loopback), the HSM through the
//! daemon's token check, the token's own object count and material re-imported from it, and
//! the audit trail through its records and its verification.
//!
//! A rotation ends with exactly one new KMS key, which works (it encrypts and decrypts), one
//! alias move to it, its policy set, the previous KMS key disabled, one new HSM key whose
//! fingerprint is the one it had before the crash and whose material is the one AWS got, one
//! active key, and no duplicate records. A synchronisation ends with the same KMS key (no new
//! key, the alias where it was), enabled again with the same material re-imported from the HSM:
//! ciphertexts made before the crash still decrypt. Each test works in its own region, so
//! tests never see each other's keys.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use keyward_daemon::domain::groups::RotationMode;
use keyward_daemon::domain::jobs::{JobKind, Step};
use keyward_daemon::domain::keys::KeyId;
use keyward_proto::Request;
use keyward_tests::{Appliance, write_private};
use serde_json::Value;

const POLICY: &str = r#"{"Version":"2012-10-17","Id":"keyward-crash-test","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"}]}"#;

type Setup = Appliance;

/// Crashing and checking the shared [`Appliance`].
trait Crashes {
    fn create_crash_group(&mut self, name: &str, alias: &str);
    fn crash_and_resume(
        &mut self,
        point: &str,
        group: &str,
        request: &Request,
    ) -> (u64, Vec<Value>);
    fn audit(&mut self) -> Vec<Value>;
    fn job_audit(&mut self, job: u64, point: &str) -> BTreeMap<(String, String), usize>;
    fn state(&self, key: &str) -> String;
    fn policy(&self, key: &str) -> Value;
    fn assert_no_missing_hsm_keys(&self, point: &str);
    fn assert_token_objects(self, customer_keys: usize);
}

impl Crashes for Appliance {
    /// A group with the crash test's policy, disabling the previous key.
    fn create_crash_group(&mut self, name: &str, alias: &str) {
        let policy = self.fx.dir.path().join("policy.json");
        write_private(&policy, POLICY);
        let policy = policy.display().to_string();
        self.create_group(
            name,
            alias,
            &[
                ("description", "Crash recovery key"),
                ("policy_file", &policy),
                ("disable_previous", "yes"),
            ],
        );
    }

    /// Restarts armed with the fault point, submits the job, waits until it stands at the
    /// point, lists the group's keys as they are there, SIGKILLs the daemon, starts it again
    /// unarmed and waits for the resumed job. Returns the job id and the keys at the crash.
    fn crash_and_resume(
        &mut self,
        point: &str,
        group: &str,
        request: &Request,
    ) -> (u64, Vec<Value>) {
        self.restart_with_env(&[(keyward_daemon::jobs::CRASH_ENV, point)]);
        let job = self.console().ok(request)["job"].as_u64().expect("job id");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self
            .daemon()
            .log_text()
            .contains(keyward_daemon::jobs::FAULT_REACHED)
        {
            let view = self.job(job);
            if view["state"] == "succeeded" || view["state"] == "failed" {
                panic!(
                    "{point}: job {job} ended ({}) without reaching the fault point: {view}\n{}",
                    view["state"],
                    self.console().job_log(job).join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "{point}: the fault point was not reached within 120 s: {}",
                self.daemon().log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The job thread stands still at the point; the console still answers.
        let at_crash = self.keys(group);
        // The console stays connected through the kill, so that the only work in flight is the
        // job's: closing it first would have the daemon write logout records to the audit
        // trail, and the kill would land in those at random.
        let console = self.console.take();
        self.daemon.take().expect("daemon").kill9();
        drop(console);
        self.restart_with_env(&[]);
        self.wait_ok(job, point);
        (job, at_crash)
    }

    /// Every audit record.
    fn audit(&mut self) -> Vec<Value> {
        self.console().audit_records()
    }

    /// The job's audit records, counted by (action, outcome). Also checks the whole trail for
    /// duplicate records (a sequence number twice, or one out of order) and that it verifies.
    fn job_audit(&mut self, job: u64, point: &str) -> BTreeMap<(String, String), usize> {
        let records = self.audit();
        let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "{point}: audit sequence numbers are consecutive, none twice"
        );
        let hashes: BTreeSet<&str> = records.iter().filter_map(|r| r["hash"].as_str()).collect();
        assert_eq!(
            hashes.len(),
            records.len(),
            "{point}: no audit record twice"
        );
        let verify = self.console().ok(&Request::AuditVerify);
        assert_eq!(verify["intact"], true, "{point}: {verify}");
        assert_eq!(
            verify["records"].as_u64(),
            Some(records.len() as u64),
            "{point}: {verify}"
        );
        let job = job.to_string();
        let mut counts = BTreeMap::new();
        for r in &records {
            if r["details"]["job"].as_str() == Some(job.as_str()) {
                let key = (
                    r["action"].as_str().unwrap().to_owned(),
                    r["outcome"].as_str().unwrap().to_owned(),
                );
                *counts.entry(key).or_insert(0) += 1;
            }
        }
        counts
    }

    fn state(&self, key: &str) -> String {
        self.kms
            .describe(key)
            .key_state()
            .unwrap()
            .as_str()
            .to_owned()
    }

    fn policy(&self, key: &str) -> Value {
        self.kms.policy(key)
    }

    /// The HSM held every key the database knew when the daemon started (after the crash).
    fn assert_no_missing_hsm_keys(&self, point: &str) {
        let status = self.daemon().status();
        assert!(
            status.hsm.missing_keys.is_empty(),
            "{point}: keys missing from the token: {:?}",
            status.hsm
        );
    }

    /// Stops the daemon, verifies the audit trail offline (every record against the head kept
    /// in the HSM), and checks the token holds one object per customer key beside the system
    /// objects: no orphan from a key generated twice.
    fn assert_token_objects(mut self, customer_keys: usize) {
        self.console = None;
        let status = self.daemon.take().expect("daemon").stop();
        assert!(status.success(), "SIGTERM stops cleanly: {status}");
        let (code, out) = self.fx.verify();
        assert_eq!(code, Some(0), "offline audit verify: {out}");
        assert_eq!(
            self.fx.token_objects(),
            self.token_objects + customer_keys,
            "one token object per customer key, no more"
        );
    }
}

fn count(audit: &BTreeMap<(String, String), usize>, action: &str, outcome: &str) -> usize {
    audit
        .get(&(action.to_owned(), outcome.to_owned()))
        .copied()
        .unwrap_or(0)
}

/// Every step's `done` line is in the job log exactly once, every step started once except
/// the one the crash stopped (started twice: before the crash and on resuming), and the job
/// succeeded once.
fn assert_log_resumed_at(log: &[String], steps: &[&str], crashed: &str, point: &str) {
    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        let prefix = format!("step {}/{total} {step}: ", i + 1);
        let started = log
            .iter()
            .filter(|l| l.ends_with(&format!("{prefix}started")))
            .count();
        let done = log
            .iter()
            .filter(|l| l.contains(&format!("{prefix}done")))
            .count();
        let expected_starts = if *step == crashed { 2 } else { 1 };
        assert_eq!(
            started,
            expected_starts,
            "{point}: '{step}' started {started} times\n{}",
            log.join("\n")
        );
        assert_eq!(
            done,
            1,
            "{point}: '{step}' done {done} times\n{}",
            log.join("\n")
        );
    }
    assert_eq!(
        log.iter().filter(|l| l.ends_with("job succeeded")).count(),
        1,
        "{point}\n{}",
        log.join("\n")
    );
    assert!(
        !log.iter().any(|l| l.contains("failed")),
        "{point}: nothing failed\n{}",
        log.join("\n")
    );
}

/// Every AWS call the job audited has exactly one outcome for its attempt, and none failed.
fn assert_calls_complete(audit: &BTreeMap<(String, String), usize>, point: &str) {
    let actions: BTreeSet<&str> = audit.keys().map(|(a, _)| a.as_str()).collect();
    for action in actions {
        assert_eq!(
            count(audit, action, "failure"),
            0,
            "{point}: {action} failed: {audit:?}"
        );
        if action.starts_with("kms.") {
            assert_eq!(
                count(audit, action, "attempt"),
                count(audit, action, "success"),
                "{point}: every {action} attempt has its outcome: {audit:?}"
            );
        }
    }
}

fn by_id(keys: &[Value]) -> BTreeMap<String, Value> {
    keys.iter()
        .map(|k| (k["id"].as_str().unwrap().to_owned(), k.clone()))
        .collect()
}

#[test]
fn rotation_survives_sigkill_before_and_after_every_step() {
    let started = Instant::now();
    let mut s = Setup::new("me-south-1", "");
    // Keys an earlier run against the same peer left in the region (none on a fresh peer).
    let earlier: BTreeSet<String> = s.kms.key_ids().into_iter().collect();
    s.create_crash_group("crash", "alias/crash");
    let job = s.console().rotate("crash");
    s.wait_ok(job, "first rotation");
    let policy: Value = serde_json::from_str(POLICY).unwrap();

    // The plan of a new-key rotation of a group with an active key, as the daemon makes it.
    let plan: Vec<&str> = JobKind::Rotate {
        group: "crash".into(),
        mode: RotationMode::NewKey,
        has_current: true,
    }
    .plan()
    .into_iter()
    .map(Step::as_str)
    .collect();
    for step in ["create-key", "put-policy", "move-alias", "disable-previous"] {
        assert!(plan.contains(&step), "{plan:?}");
    }

    for step in &plan {
        for when in ["before", "after"] {
            let point = format!("{when}:{step}");
            let ids_before: BTreeSet<String> = s.kms.key_ids().into_iter().collect();
            let previous = s.kms.alias_target("alias/crash").expect("alias");
            assert_eq!(s.state(&previous), "Enabled", "{point}: starts enabled");
            let keys_before = s.keys("crash");

            let (job, at_crash) = s.crash_and_resume(
                &point,
                "crash",
                &Request::GroupRotate {
                    name: "crash".into(),
                },
            );
            let view = s.job(job);
            let steps: Vec<&str> = view["steps"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(steps, plan, "{point}: the job ran the plan");
            let new = view["aws_key_id"]
                .as_str()
                .expect("the job's KMS key")
                .to_owned();
            let hsm_key = view["key"].as_str().expect("the job's HSM key").to_owned();

            // AWS: exactly one new KMS key, the job's; nothing deleted.
            let ids_after: BTreeSet<String> = s.kms.key_ids().into_iter().collect();
            assert!(
                ids_after.is_superset(&ids_before),
                "{point}: no KMS key vanished"
            );
            let created: Vec<&String> = ids_after.difference(&ids_before).collect();
            assert_eq!(
                created,
                [&new],
                "{point}: exactly one new KMS key, the job's"
            );
            let meta = s.kms.describe(&new);
            assert_eq!(meta.origin().unwrap().as_str(), "EXTERNAL", "{point}");
            assert_eq!(meta.key_state().unwrap().as_str(), "Enabled", "{point}");
            assert_eq!(s.policy(&new), policy, "{point}: the group's policy is set");
            // The alias moved to it; the previous key is disabled, and only the new one is
            // enabled in the whole region.
            assert_eq!(
                s.kms.alias_target("alias/crash").as_deref(),
                Some(new.as_str()),
                "{point}: the alias points at the job's key"
            );
            assert_eq!(s.state(&previous), "Disabled", "{point}: previous disabled");
            let enabled: Vec<&String> = ids_after
                .difference(&earlier)
                .filter(|k| s.state(k) == "Enabled")
                .collect();
            assert_eq!(enabled, [&new], "{point}: one enabled KMS key of this test");
            // Its material works: what it encrypts, it decrypts.
            let plaintext = format!("crash recovery {point}").into_bytes();
            let ciphertext = s.kms.encrypt(&new, &plaintext);
            let (back, by) = s.kms.decrypt(&ciphertext).expect("Decrypt");
            assert_eq!(back, plaintext, "{point}: round trip");
            assert_eq!(by, meta.arn().unwrap(), "{point}: decrypted by the new key");

            // The audit trail: one job, one key made, one alias move, one disable; nothing twice
            // that must happen once; every call finished; the trail verifies.
            let audit = s.job_audit(job, &point);
            assert_calls_complete(&audit, &point);
            assert_eq!(
                count(&audit, "job.rotate", "attempt"),
                1,
                "{point}: {audit:?}"
            );
            assert_eq!(
                count(&audit, "job.rotate", "success"),
                1,
                "{point}: {audit:?}"
            );
            assert_eq!(
                count(&audit, "kms.CreateKey", "success"),
                1,
                "{point}: {audit:?}"
            );
            assert_eq!(
                count(&audit, "kms.UpdateAlias", "success")
                    + count(&audit, "kms.CreateAlias", "success"),
                1,
                "{point}: one alias move: {audit:?}"
            );
            assert_eq!(
                count(&audit, "kms.UpdateAlias", "success"),
                1,
                "{point}: {audit:?}"
            );
            assert_eq!(
                count(&audit, "kms.DisableKey", "success"),
                1,
                "{point}: {audit:?}"
            );
            assert_eq!(
                count(&audit, "kms.ImportKeyMaterial", "success"),
                1,
                "{point}: a re-run import sees the material and does not import again: {audit:?}"
            );
            // PutKeyPolicy is idempotent and not looked up first: it runs again only when the
            // crash came after it.
            let policies = if point == "after:put-policy" { 2 } else { 1 };
            assert_eq!(
                count(&audit, "kms.PutKeyPolicy", "success"),
                policies,
                "{point}: {audit:?}"
            );
            for action in ["kms.TagResource", "kms.DeleteImportedKeyMaterial"] {
                assert_eq!(count(&audit, action, "attempt"), 0, "{point}: {audit:?}");
            }

            // The job log: resumed at the crashed step, every step done once.
            let log = s.console().job_log(job);
            assert_log_resumed_at(&log, &plan, step, &point);

            // The database: one new key record, the job's; ids distinct; one active key; every
            // fingerprint as it was (the job's key's as it was at the crash, if it existed).
            let keys = s.keys("crash");
            let after = by_id(&keys);
            assert_eq!(
                after.len(),
                keys.len(),
                "{point}: no key id twice: {keys:?}"
            );
            assert_eq!(
                keys.len(),
                keys_before.len() + 1,
                "{point}: one new key record"
            );
            for old in &keys_before {
                let id = old["id"].as_str().unwrap();
                assert_eq!(
                    after[id]["fingerprint"], old["fingerprint"],
                    "{point}: key {id} unchanged"
                );
            }
            let mine = &after[&hsm_key];
            assert!(
                !keys_before.iter().any(|k| k["id"] == hsm_key.as_str()),
                "{point}: the job's key is new"
            );
            assert_eq!(mine["state"], "active", "{point}: {mine}");
            assert_eq!(mine["aws_key_id"], new.as_str(), "{point}: {mine}");
            assert_eq!(mine["alias"], "alias/crash", "{point}: {mine}");
            match by_id(&at_crash).get(&hsm_key) {
                Some(then) => assert_eq!(
                    mine["fingerprint"], then["fingerprint"],
                    "{point}: the HSM key is the one generated before the crash"
                ),
                None => assert!(
                    point == "before:generate-key",
                    "{point}: the job's key existed at the crash: {at_crash:?}"
                ),
            }
            assert_eq!(
                keys.iter().filter(|k| k["state"] == "active").count(),
                1,
                "{point}: one active key: {keys:?}"
            );
            let prev_record = keys
                .iter()
                .find(|k| k["aws_key_id"] == previous.as_str())
                .expect("the previous key's record");
            assert_eq!(prev_record["state"], "disabled", "{point}: {prev_record}");
            s.assert_no_missing_hsm_keys(&point);

            // The HSM key is the material AWS holds: with the material deleted from AWS and
            // imported again from the HSM, what the new key encrypted still decrypts.
            let sync = s.console().ok(&Request::KeySync {
                key: hsm_key.clone(),
                delete_material: true,
                update_policy: false,
                import_material: true,
            })["job"]
                .as_u64()
                .expect("job id");
            s.wait_ok(sync, &point);
            let (back, _) = s
                .kms
                .decrypt(&ciphertext)
                .unwrap_or_else(|e| panic!("{point}: decrypts after re-import from the HSM: {e}"));
            assert_eq!(back, plaintext, "{point}: the HSM key is the one AWS got");
        }
    }

    let customer_keys = s.keys("crash").len();
    assert_eq!(customer_keys, 1 + 2 * plan.len(), "one key per rotation");
    s.assert_token_objects(customer_keys);
    eprintln!(
        "rotation: {} crash points in {:?}",
        2 * plan.len(),
        started.elapsed()
    );
}

#[test]
fn synchronize_survives_sigkill_before_and_after_every_step() {
    let started = Instant::now();
    let mut s = Setup::new("af-south-1", "");
    // Keys an earlier run against the same peer left in the region (none on a fresh peer).
    let earlier: BTreeSet<String> = s.kms.key_ids().into_iter().collect();
    s.create_crash_group("sync", "alias/sync");
    let job = s.console().rotate("sync");
    s.wait_ok(job, "first rotation");
    let policy: Value = serde_json::from_str(POLICY).unwrap();
    let key = s.keys("sync")[0].clone();
    let keyward_id = key["id"].as_str().unwrap().to_owned();
    let fingerprint = key["fingerprint"].clone();
    let aws_id = key["aws_key_id"].as_str().unwrap().to_owned();
    let arn = s.kms.describe(&aws_id).arn().unwrap().to_owned();
    let ids: BTreeSet<String> = s.kms.key_ids().into_iter().collect();
    assert_eq!(
        ids.difference(&earlier).collect::<Vec<_>>(),
        [&aws_id],
        "the first rotation made one KMS key"
    );

    let first_plaintext = b"card 4111 1111 1111 1111".to_vec();
    let first_ciphertext = s.kms.encrypt(&aws_id, &first_plaintext);

    // The plan of a sync with every option, as the daemon makes it.
    let plan: Vec<&str> = JobKind::Sync {
        key: KeyId([0; 16]),
        delete_material: true,
        update_policy: true,
        import_material: true,
    }
    .plan()
    .into_iter()
    .map(Step::as_str)
    .collect();
    for step in ["delete-material", "put-policy", "import-material"] {
        assert!(plan.contains(&step), "{plan:?}");
    }

    for step in &plan {
        for when in ["before", "after"] {
            let point = format!("{when}:{step}");
            assert_eq!(s.state(&aws_id), "Enabled", "{point}: starts enabled");
            let plaintext = format!("made before the crash at {point}").into_bytes();
            let ciphertext = s.kms.encrypt(&aws_id, &plaintext);

            let (job, at_crash) = s.crash_and_resume(
                &point,
                "sync",
                &Request::KeySync {
                    key: keyward_id.clone(),
                    delete_material: true,
                    update_policy: true,
                    import_material: true,
                },
            );
            let view = s.job(job);
            let steps: Vec<&str> = view["steps"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(steps, plan, "{point}: the job ran the plan");
            assert_eq!(view["key"], keyward_id.as_str(), "{point}");
            assert_eq!(view["aws_key_id"], aws_id.as_str(), "{point}");

            // AWS: the same KMS key and no other, enabled with its material again; the alias
            // where it was; the policy set.
            let now: BTreeSet<String> = s.kms.key_ids().into_iter().collect();
            assert_eq!(now, ids, "{point}: no new KMS key");
            assert_eq!(s.state(&aws_id), "Enabled", "{point}: material back");
            assert_eq!(
                s.kms.alias_target("alias/sync").as_deref(),
                Some(aws_id.as_str()),
                "{point}: the alias did not move"
            );
            assert_eq!(s.policy(&aws_id), policy, "{point}: the policy is set");
            // The same material, from the HSM: what was encrypted before the crash (and before
            // every earlier sync) decrypts.
            for (c, p) in [
                (&ciphertext, &plaintext),
                (&first_ciphertext, &first_plaintext),
            ] {
                let (back, by) = s
                    .kms
                    .decrypt(c)
                    .unwrap_or_else(|e| panic!("{point}: an old ciphertext decrypts: {e}"));
                assert_eq!(&back, p, "{point}: the same material");
                assert_eq!(by, arn, "{point}: decrypted by the same key");
            }

            // The audit trail: one job; the material deleted once (a re-run sees it gone);
            // no key made, no alias moved, nothing disabled; every call finished.
            let audit = s.job_audit(job, &point);
            assert_calls_complete(&audit, &point);
            assert_eq!(
                count(&audit, "job.sync", "attempt"),
                1,
                "{point}: {audit:?}"
            );
            assert_eq!(
                count(&audit, "job.sync", "success"),
                1,
                "{point}: {audit:?}"
            );
            assert_eq!(
                count(&audit, "kms.DeleteImportedKeyMaterial", "success"),
                1,
                "{point}: {audit:?}"
            );
            for action in [
                "kms.CreateKey",
                "kms.TagResource",
                "kms.CreateAlias",
                "kms.UpdateAlias",
                "kms.DisableKey",
            ] {
                assert_eq!(count(&audit, action, "attempt"), 0, "{point}: {audit:?}");
            }
            // PutKeyPolicy and a sync's ImportKeyMaterial are idempotent (the same policy, the
            // same material) and run again only when the crash came after them.
            for (action, at) in [
                ("kms.PutKeyPolicy", "after:put-policy"),
                ("kms.ImportKeyMaterial", "after:import-material"),
            ] {
                let expected = if point == at { 2 } else { 1 };
                assert_eq!(
                    count(&audit, action, "success"),
                    expected,
                    "{point}: {action}: {audit:?}"
                );
            }

            // The job log: resumed at the crashed step, every step done once.
            let log = s.console().job_log(job);
            assert_log_resumed_at(&log, &plan, step, &point);

            // The database and the HSM: the one key, unchanged, still active.
            let keys = s.keys("sync");
            assert_eq!(keys.len(), 1, "{point}: no new key record: {keys:?}");
            assert_eq!(at_crash.len(), 1, "{point}: {at_crash:?}");
            assert_eq!(keys[0]["id"], keyward_id.as_str(), "{point}");
            assert_eq!(
                keys[0]["fingerprint"], fingerprint,
                "{point}: HSM key unchanged"
            );
            assert_eq!(at_crash[0]["fingerprint"], fingerprint, "{point}");
            assert_eq!(keys[0]["state"], "active", "{point}");
            assert_eq!(keys[0]["aws_key_id"], aws_id.as_str(), "{point}");
            let shown = s.console().ok(&Request::KeyShow {
                key: keyward_id.clone(),
            });
            assert_eq!(shown["aws_key_state"], "Enabled", "{point}: {shown}");
            s.assert_no_missing_hsm_keys(&point);
        }
    }

    s.assert_token_objects(1);
    eprintln!(
        "synchronize: {} crash points in {:?}",
        2 * plan.len(),
        started.elapsed()
    );
}
