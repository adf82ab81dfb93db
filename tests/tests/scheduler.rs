#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "tests: a step that fails is a failed test, reported where it happened"
)]
//! Scheduled rotation and key expiry, end to end against a real KMS peer (LocalStack's KMS on
//! loopback) and a real SoftHSMv2 token, with the scheduler checking every second.
//!
//! What this file proves, as an operator or AWS would see it:
//! - a group with `rotate_every` rotates on its own: at once when it has no key, then one
//!   period after the last success, and the KMS alias follows the newest key;
//! - after downtime an overdue group rotates once, not once per missed period, and the next
//!   rotation is one period after that success;
//! - only the designated rotator rotates on a schedule (`settings set rotation.designated`,
//!   two administrators, audited); force rotate works everywhere; bad settings change nothing;
//! - a failed scheduled rotation is retried (the same job) with doubling, capped backoff, never
//!   beside a second job of the group, and succeeds once the group is mended;
//! - material with `valid_for` gets one expiry warning in the audit trail, shows `expires_soon`
//!   in `key list`, and is marked expired (audited once) when it passes ValidTo.

use std::time::Duration;

use keyward_daemon::domain::now_ms;
use keyward_proto::{ErrorCode, Request};
use keyward_tests::rfc3339_ms as ms;
use keyward_tests::{Appliance, Fixture, fields, kms_endpoint, poll};
use serde_json::{Value, json};

/// The scheduler wakes every second in every test here.
const FAST: &str = "[rotation]\ncheck_every = \"1s\"\n";

type Setup = Appliance;

/// What the scheduler tests read off the shared [`Appliance`].
trait Scheduled {
    fn rotations(&mut self, group: &str) -> Vec<Value>;
    fn schedule(&mut self, group: &str) -> Value;
    fn audit(&mut self) -> Vec<Value>;
    fn settings(&mut self) -> Value;
    fn designated_setting(&mut self) -> String;
}

impl Scheduled for Appliance {
    /// The rotation jobs of `group` (`job list`), oldest first.
    fn rotations(&mut self, group: &str) -> Vec<Value> {
        let mut jobs: Vec<Value> = self
            .console()
            .ok(&Request::JobList)
            .as_array()
            .expect("job list")
            .iter()
            .filter(|j| j["kind"] == "rotate" && j["target"] == group)
            .cloned()
            .collect();
        jobs.sort_by_key(|j| j["id"].as_u64());
        jobs
    }

    /// The `schedule list` entry of `group`.
    fn schedule(&mut self, group: &str) -> Value {
        self.console()
            .ok(&Request::ScheduleList)
            .as_array()
            .expect("schedule list")
            .iter()
            .find(|v| v["group"] == group)
            .unwrap_or_else(|| panic!("schedule list has no entry for {group}"))
            .clone()
    }

    /// Every audit record, paging past the per-request limit.
    fn audit(&mut self) -> Vec<Value> {
        self.console().audit_records()
    }

    fn settings(&mut self) -> Value {
        self.console().ok(&Request::SettingsShow)
    }

    fn designated_setting(&mut self) -> String {
        let settings = self.settings();
        settings
            .as_array()
            .expect("settings")
            .iter()
            .find(|s| s["name"] == "rotation.designated")
            .unwrap_or_else(|| panic!("settings show has no rotation.designated: {settings}"))["value"]
            .as_str()
            .expect("value")
            .to_owned()
    }
}

fn id_of(job: &Value) -> u64 {
    job["id"].as_u64().expect("job id")
}

#[test]
fn a_group_with_rotate_every_rotates_at_once_then_one_period_after_each_success() {
    let mut s = Setup::new("eu-south-1", FAST);
    s.create_group("auto", "alias/auto", &[("rotate_every", "8s")]);

    // No key yet: due at once, without anyone asking.
    let first = poll(
        "the first scheduled rotation",
        Duration::from_secs(30),
        || {
            s.rotations("auto")
                .first()
                .cloned()
                .ok_or_else(|| format!("{}", s.schedule("auto")))
        },
    );
    assert_eq!(first["requested_by"], json!(["scheduler"]), "{first}");
    let first = s.wait_ok(id_of(&first), "the rotation");
    let first_key = first["aws_key_id"].as_str().expect("aws key").to_owned();
    assert_eq!(
        s.kms.alias_target("alias/auto").as_deref(),
        Some(first_key.as_str()),
        "the alias points at the first key"
    );
    let first_success = ms(first["finished"].as_str().unwrap());

    // One period after that success, the next rotation.
    let second = poll(
        "the second scheduled rotation",
        Duration::from_secs(40),
        || {
            let jobs = s.rotations("auto");
            jobs.get(1)
                .cloned()
                .ok_or_else(|| format!("{} job(s); schedule {}", jobs.len(), s.schedule("auto")))
        },
    );
    assert_eq!(second["requested_by"], json!(["scheduler"]), "{second}");
    assert!(
        ms(second["created"].as_str().unwrap()) >= first_success + 8_000,
        "the second rotation waited a full period after the first success: {first} then {second}"
    );
    let second = s.wait_ok(id_of(&second), "the rotation");
    let second_key = second["aws_key_id"].as_str().expect("aws key").to_owned();
    assert_ne!(second_key, first_key, "a new KMS key");
    assert_eq!(
        s.kms.alias_target("alias/auto").as_deref(),
        Some(second_key.as_str()),
        "the alias moved to the newest key"
    );
    assert_eq!(
        s.kms.describe(&second_key).key_state().unwrap().as_str(),
        "Enabled"
    );

    // schedule list: the last success and result, and the next time one period on.
    let entry = s.schedule("auto");
    assert_eq!(entry["rotate_every"], "8s", "{entry}");
    assert_eq!(entry["last_success"], second["finished"], "{entry}");
    assert_eq!(
        entry["last_result"],
        format!("job {} succeeded", id_of(&second)),
        "{entry}"
    );
    let next_due = entry["next_due"].as_str().unwrap().to_owned();
    assert_ne!(next_due, "now", "{entry}");
    assert_eq!(
        ms(&next_due),
        ms(entry["last_success"].as_str().unwrap()) + 8_000,
        "next due is one period after the last success: {entry}"
    );

    // key list agrees: the newest key is active and is the one the alias names.
    let keys = s.keys("auto");
    assert!(keys.len() >= 2, "{keys:?}");
    assert_eq!(keys[1]["aws_key_id"], second_key.as_str(), "{keys:?}");
    assert_eq!(keys[1]["state"], "active", "{keys:?}");
    assert_ne!(keys[0]["state"], "active", "{keys:?}");

    let status = s.daemon().status().scheduler;
    assert_eq!(status.state, "running", "{status:?}");
    assert!(status.designated, "{status:?}");
    assert_eq!(status.scheduled_groups, 1, "{status:?}");
    assert!(status.next_due.is_some(), "{status:?}");
}

#[test]
fn after_downtime_an_overdue_group_rotates_once_not_once_per_missed_period() {
    let mut s = Setup::new("eu-south-2", FAST);
    s.create_group("nightly", "alias/nightly", &[("rotate_every", "8s")]);
    let first = poll(
        "the first scheduled rotation",
        Duration::from_secs(30),
        || {
            s.rotations("nightly")
                .first()
                .cloned()
                .ok_or_else(|| format!("{}", s.schedule("nightly")))
        },
    );
    let first = s.wait_ok(id_of(&first), "the rotation");
    let first_success = ms(first["finished"].as_str().unwrap());

    // Down for more than two periods.
    s.console = None;
    let status = s.daemon.take().unwrap().stop();
    assert!(status.success(), "{status}");
    std::thread::sleep(Duration::from_secs(18));
    let daemon = s.fx.start();
    s.console = Some(daemon.admins());
    s.daemon = Some(daemon);
    let restarted = now_ms();
    assert!(
        restarted >= first_success + 2 * 8_000,
        "more than two periods were missed"
    );

    let catch_up = poll(
        "the catch-up rotation after the restart",
        Duration::from_secs(30),
        || {
            s.rotations("nightly")
                .into_iter()
                .find(|j| id_of(j) > id_of(&first))
                .ok_or_else(|| format!("{}", s.schedule("nightly")))
        },
    );
    assert_eq!(catch_up["requested_by"], json!(["scheduler"]), "{catch_up}");
    let catch_up = s.wait_ok(id_of(&catch_up), "the rotation");
    let success = ms(catch_up["finished"].as_str().unwrap());

    // Watch for most of a period after that success: nothing else starts.
    let window_end = success + 5_000;
    while now_ms() < window_end {
        std::thread::sleep(Duration::from_millis(250));
    }
    let after: Vec<Value> = s
        .rotations("nightly")
        .into_iter()
        .filter(|j| id_of(j) > id_of(&first))
        .collect();
    assert_eq!(
        after.len(),
        1,
        "exactly one rotation after the downtime: {after:?}"
    );
    assert_eq!(
        s.kms.alias_target("alias/nightly").as_deref(),
        catch_up["aws_key_id"].as_str(),
        "the alias points at the catch-up key"
    );

    let entry = s.schedule("nightly");
    assert_eq!(entry["last_success"], catch_up["finished"], "{entry}");
    assert_eq!(
        ms(entry["next_due"].as_str().unwrap()),
        success + 8_000,
        "next due is one period after the catch-up success: {entry}"
    );
}

#[test]
fn only_the_designated_rotator_rotates_on_a_schedule_and_settings_set_changes_that() {
    let mut s = Setup::new("me-central-1", &format!("{FAST}designated = false\n"));
    s.create_group("standby", "alias/standby", &[("rotate_every", "8s")]);
    assert_eq!(s.designated_setting(), "false", "seeded from the config");

    // The scheduler is running its passes, and says why it does not rotate.
    let status = poll("a scheduler pass", Duration::from_secs(15), || {
        let status = s.daemon().status().scheduler;
        if status.state.is_empty() {
            Err(format!("{status:?}"))
        } else {
            Ok(status)
        }
    });
    assert!(!status.designated, "{status:?}");
    assert!(status.state.starts_with("paused"), "{status:?}");
    assert!(
        status.state.contains("not the designated rotator"),
        "{status:?}"
    );
    // Several passes with the group due: no job.
    std::thread::sleep(Duration::from_secs(4));
    assert!(s.rotations("standby").is_empty(), "no scheduled rotation");
    let entry = s.schedule("standby");
    assert_eq!(
        entry["next_due"], "now",
        "a group with no key is due: {entry}"
    );
    assert!(
        entry["delay"]
            .as_str()
            .is_some_and(|d| d.contains("not the designated rotator")),
        "{entry}"
    );

    // Force rotate works anyway.
    let forced = s.console().rotate("standby");
    let forced = s.wait_ok(forced, "the rotation");
    assert_ne!(forced["requested_by"], json!(["scheduler"]), "{forced}");
    assert_eq!(
        s.kms.alias_target("alias/standby").as_deref(),
        forced["aws_key_id"].as_str()
    );

    // Bad settings get a clear error and change nothing.
    let e = s.console().fails(&Request::SettingsSet {
        name: "rotation.designated".into(),
        value: "maybe".into(),
    });
    assert_eq!(e.code, ErrorCode::Invalid, "{e}");
    assert!(
        e.message
            .contains("'maybe' is not yes or no, true or false"),
        "{e}"
    );
    let e = s.console().fails(&Request::SettingsSet {
        name: "rotation.colour".into(),
        value: "true".into(),
    });
    assert_eq!(e.code, ErrorCode::NotFound, "{e}");
    assert!(e.message.contains("no setting 'rotation.colour'"), "{e}");
    // One administrator is not enough.
    let e = s.daemon().console().fails(&Request::SettingsSet {
        name: "rotation.designated".into(),
        value: "true".into(),
    });
    assert_eq!(e.code, ErrorCode::DualControl, "{e}");
    assert_eq!(s.designated_setting(), "false", "nothing changed");
    assert!(
        !s.audit().iter().any(|r| r["action"] == "settings.set"),
        "a refused setting leaves no settings.set record"
    );

    // Two administrators make this appliance the designated rotator.
    let shown = s.console().ok(&Request::SettingsSet {
        name: "rotation.designated".into(),
        value: "true".into(),
    });
    assert!(
        shown
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "rotation.designated" && v["value"] == "true"),
        "{shown}"
    );
    assert_eq!(s.designated_setting(), "true");
    let records: Vec<Value> = s
        .audit()
        .into_iter()
        .filter(|r| r["action"] == "settings.set" && r["outcome"] == "success")
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record["target"], "rotation.designated", "{record}");
    assert_eq!(record["details"]["old"], "false", "{record}");
    assert_eq!(record["details"]["new"], "true", "{record}");
    let actors = record["actors"].to_string();
    assert!(
        actors.contains("alice") && actors.contains("bob"),
        "{record}"
    );

    // Now the scheduler rotates the group when it is due (one period after the forced one).
    let scheduled = poll(
        "a scheduled rotation on the designated rotator",
        Duration::from_secs(40),
        || {
            s.rotations("standby")
                .into_iter()
                .find(|j| j["requested_by"] == json!(["scheduler"]))
                .ok_or_else(|| format!("{}", s.schedule("standby")))
        },
    );
    assert!(
        ms(scheduled["created"].as_str().unwrap())
            >= ms(forced["finished"].as_str().unwrap()) + 8_000,
        "measured from the forced rotation's success: {forced} then {scheduled}"
    );
    let scheduled = s.wait_ok(id_of(&scheduled), "the rotation");
    assert_eq!(
        s.kms.alias_target("alias/standby").as_deref(),
        scheduled["aws_key_id"].as_str()
    );
    let status = poll("the scheduler to run", Duration::from_secs(15), || {
        let status = s.daemon().status().scheduler;
        if status.state == "running" {
            Ok(status)
        } else {
            Err(format!("{status:?}"))
        }
    });
    assert!(status.designated, "{status:?}");
}

#[test]
fn a_failed_scheduled_rotation_retries_the_same_job_with_backoff_until_it_succeeds() {
    let mut s = Setup::new(
        "ap-south-2",
        &format!(
            "{FAST}retry_after = \"2s\"\nretry_max = \"4s\"\n\n[aws]\nattempts = 1\nconnect_timeout = \"1s\"\n"
        ),
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dead = format!("http://127.0.0.1:{port}");
    // The peer keeps its keys between runs: compare with what the region held before.
    let before = s.kms.key_ids();
    s.create_group(
        "flaky",
        "alias/flaky",
        &[("rotate_every", "1h"), ("endpoint", &dead)],
    );

    // Watch it fail three times in a row, never with a second job beside the first.
    let mut job_id = None;
    let mut seen_retrying = Vec::new();
    let entry = poll(
        "three failed attempts and a wait to retry",
        Duration::from_secs(45),
        || {
            let jobs = s.rotations("flaky");
            assert!(
                jobs.len() <= 1,
                "one job, retried, never a second: {jobs:?}"
            );
            if let Some(job) = jobs.first() {
                assert_eq!(job["requested_by"], json!(["scheduler"]), "{job}");
                job_id = Some(id_of(job));
            }
            let entry = s.schedule("flaky");
            if let Some(delay) = entry["delay"].as_str()
                && delay.starts_with("retrying after")
            {
                seen_retrying.push(entry.clone());
                if delay.starts_with("retrying after 3 failure(s)") {
                    return Ok(entry);
                }
            }
            Err(format!("{entry}"))
        },
    );
    let job = job_id.expect("a scheduled job");
    assert!(
        seen_retrying.iter().any(|e| e["delay"]
            .as_str()
            .unwrap()
            .starts_with("retrying after 1 failure(s)")),
        "{seen_retrying:?}"
    );
    let last_result = entry["last_result"].as_str().unwrap();
    assert!(
        last_result.starts_with(&format!("job {job} failed: ")),
        "{entry}"
    );
    assert!(
        last_result.contains(&port.to_string()),
        "names where it tried: {entry}"
    );
    assert_ne!(entry["next_due"], "now", "waiting, not due: {entry}");

    // The audit trail shows the backoff: each retry by the scheduler waited after the failure
    // before it (2 s, then 4 s), and the third wait is capped at retry_max (4 s, not 8 s).
    let records = s.audit();
    let job_text = job.to_string();
    let failures: Vec<u64> = records
        .iter()
        .filter(|r| {
            r["action"] == "job.rotate"
                && r["outcome"] == "failure"
                && r["details"]["job"] == job_text.as_str()
        })
        .map(|r| ms(r["time"].as_str().unwrap()))
        .collect();
    let retries: Vec<&Value> = records
        .iter()
        .filter(|r| {
            r["action"] == "job.retry"
                && r["outcome"] == "success"
                && r["target"] == job_text.as_str()
        })
        .collect();
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert_eq!(retries.len(), 2, "{retries:?}");
    for r in &retries {
        assert_eq!(r["actors"], json!(["scheduler"]), "{r}");
    }
    let retried: Vec<u64> = retries
        .iter()
        .map(|r| ms(r["time"].as_str().unwrap()))
        .collect();
    assert!(
        retried[0] >= failures[0] + 2_000 - 100,
        "{failures:?} {retried:?}"
    );
    assert!(
        retried[1] >= failures[1] + 4_000 - 100,
        "{failures:?} {retried:?}"
    );
    let delay = entry["delay"].as_str().unwrap();
    let retry_at = ms(delay.rsplit(" at ").next().unwrap());
    assert!(
        (failures[2] + 3_500..=failures[2] + 4_000).contains(&retry_at),
        "the third wait is retry_max (4s) after the third failure: {delay}; failed at {failures:?}"
    );
    assert_eq!(s.kms.key_ids(), before, "nothing reached the peer");

    // Mend the endpoint: the scheduler retries the same job, and it succeeds.
    s.console().ok(&Request::GroupSet {
        name: "flaky".into(),
        fields: fields(&[("endpoint", &kms_endpoint())]),
    });
    let done = poll(
        "the retried job to succeed",
        Duration::from_secs(40),
        || {
            let jobs = s.rotations("flaky");
            assert_eq!(jobs.len(), 1, "still the one job: {jobs:?}");
            let view = s.job(job);
            if view["state"] == "succeeded" {
                Ok(view)
            } else {
                Err(format!("{view}"))
            }
        },
    );
    assert_eq!(done["requested_by"], json!(["scheduler"]), "{done}");
    let log = s.console().job_log(job);
    assert!(
        log.iter()
            .any(|l| l.contains("retry requested by scheduler")),
        "{log:?}"
    );
    let aws_key = done["aws_key_id"].as_str().expect("aws key").to_owned();
    assert_eq!(
        s.kms.alias_target("alias/flaky").as_deref(),
        Some(aws_key.as_str()),
        "the alias points at the retried job's key"
    );
    let made: Vec<String> = s
        .kms
        .key_ids()
        .into_iter()
        .filter(|k| !before.contains(k))
        .collect();
    assert_eq!(
        made,
        vec![aws_key.clone()],
        "exactly one new KMS key: no half-made second one"
    );
    let entry = s.schedule("flaky");
    assert_eq!(
        entry["last_result"],
        format!("job {job} succeeded"),
        "{entry}"
    );
    assert!(entry["delay"].is_null(), "{entry}");
    assert_eq!(
        ms(entry["next_due"].as_str().unwrap()),
        ms(entry["last_success"].as_str().unwrap()) + 3_600_000,
        "{entry}"
    );
}

#[test]
fn expiring_material_is_warned_about_once_then_marked_expired_once() {
    // Shares me-central-1 with the designated-rotator test; neither counts the region's keys.
    let mut s = Setup::new("me-central-1", &format!("{FAST}expiry_warning = \"15s\"\n"));
    s.create_group(
        "shortlived",
        "alias/shortlived",
        &[("rotate_every", "off"), ("valid_for", "20s")],
    );
    let job = s.console().rotate("shortlived");
    let job = s.wait_ok(job, "the rotation");
    let aws_key = job["aws_key_id"].as_str().unwrap().to_owned();
    let keys = s.keys("shortlived");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let key = keys[0].clone();
    let key_id = key["id"].as_str().unwrap().to_owned();
    let valid_to_text = key["valid_to"].as_str().unwrap().to_owned();
    let valid_to = ms(&valid_to_text);
    assert!(
        valid_to >= ms(key["created"].as_str().unwrap()) + 20_000,
        "valid_for 20s: {key}"
    );
    assert_eq!(
        s.kms
            .describe(&aws_key)
            .expiration_model()
            .map(|m| m.as_str()),
        Some("KEY_MATERIAL_EXPIRES")
    );
    let entry = s.schedule("shortlived");
    assert_eq!(entry["rotate_every"], "off", "{entry}");
    assert_eq!(entry["next_due"], "-", "{entry}");

    let records_of = |s: &mut Setup, action: &str| -> Vec<Value> {
        s.audit()
            .into_iter()
            .filter(|r| r["action"] == action && r["target"] == key_id.as_str())
            .collect()
    };

    // expiry_warning (15 s) before ValidTo: one warning, and key list says so.
    let warning = poll("the expiry warning", Duration::from_secs(30), || {
        records_of(&mut s, "key.expiry-warning")
            .first()
            .cloned()
            .ok_or_else(|| format!("{}", s.keys("shortlived")[0]))
    });
    let warned_at = ms(warning["time"].as_str().unwrap());
    assert!(
        warned_at >= valid_to - 15_000,
        "not before the warning time: {warning} (valid to {valid_to_text})"
    );
    assert!(warned_at < valid_to, "before expiry: {warning}");
    assert_eq!(warning["details"]["group"], "shortlived", "{warning}");
    assert_eq!(
        warning["details"]["aws_key_id"],
        aws_key.as_str(),
        "{warning}"
    );
    assert_eq!(
        warning["details"]["valid_to"],
        valid_to_text.as_str(),
        "{warning}"
    );
    assert_eq!(warning["details"]["warning"], "15s", "{warning}");
    let listed = s.keys("shortlived")[0].clone();
    assert_eq!(listed["expires_soon"], true, "{listed}");
    assert_eq!(listed["state"], "active", "{listed}");

    // Past ValidTo: marked expired, audited once.
    let expired = poll("the key to expire", Duration::from_secs(40), || {
        let k = s.keys("shortlived")[0].clone();
        if k["state"] == "expired" {
            Ok(k)
        } else {
            Err(format!("{k}"))
        }
    });
    assert_eq!(expired["id"], key_id.as_str());
    let gone = records_of(&mut s, "key.expired");
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert!(
        ms(gone[0]["time"].as_str().unwrap()) >= valid_to,
        "not before ValidTo: {} (valid to {valid_to_text})",
        gone[0]
    );
    assert_eq!(
        gone[0]["details"]["aws_key_id"],
        aws_key.as_str(),
        "{}",
        gone[0]
    );

    // A few more scheduler passes add nothing.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(records_of(&mut s, "key.expiry-warning").len(), 1);
    assert_eq!(records_of(&mut s, "key.expired").len(), 1);
    assert_eq!(s.keys("shortlived")[0]["state"], "expired");

    let verify = s.console().ok(&Request::AuditVerify);
    assert_eq!(verify["intact"], true, "{verify}");
    s.console = None;
    let status = s.daemon.take().unwrap().stop();
    assert!(status.success(), "{status}");
    let (code, out) = s.fx.verify();
    assert_eq!(code, Some(0), "{out}");
}

/// `status` tells the scheduler's state as of now: a change of rotation.designated shows at
/// once, even when the scheduler's next pass is an hour away.
#[test]
fn status_shows_a_designation_change_at_once() {
    let fixture = Fixture::new();
    fixture.append_config("[rotation]\ncheck_every = \"1h\"\n");
    fixture.init_ok();
    let daemon = fixture.start();
    let before = daemon.status().scheduler;
    assert!(before.designated, "{before:?}");
    daemon.admins().ok(&Request::SettingsSet {
        name: "rotation.designated".into(),
        value: "false".into(),
    });
    let after = daemon.status().scheduler;
    assert!(!after.designated, "{after:?}");
    assert!(
        after.state.starts_with("paused") && after.state.contains("designated"),
        "{after:?}"
    );
    daemon.admins().ok(&Request::SettingsSet {
        name: "rotation.designated".into(),
        value: "true".into(),
    });
    let again = daemon.status().scheduler;
    assert!(again.designated && again.state == "running", "{again:?}");
}
