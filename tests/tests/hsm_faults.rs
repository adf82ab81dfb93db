#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "tests: a step that fails is a failed test, reported where it happened"
)]
//! HSM faults while the daemon runs: the token zeroized by `keyward-hsm-sim tamper`, or unplugged
//! (`keyward-hsm-sim detach`) in the middle of a rotation. The daemon fails closed: `status`
//! shows the fault, the scheduler pauses, sensitive requests are refused with error code `hsm`
//! and change nothing, a job stops before its next step; with the audit key gone the fault
//! cannot be sealed into the trail, so the daemon logs that it could not record it. When a good
//! token is back (a byte copy restored, or the same token plugged in again) the same process
//! recovers without a restart: `status` is ok, the refused request now works, the paused job
//! finishes (the alias moves, checked through aws-sdk-kms against the real KMS peer), and the
//! trail verifies with an `hsm.recovered` record.
//!
//! The token is a real SoftHSMv2 token in the fixture's directory (`HSM_DIR/tokens`); the
//! daemon watches it with `[rotation] check_every = "1s"`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use keyward_proto::{ErrorCode, Request, Role, StatusReport};
use keyward_tests::{Console, Daemon, Fixture, Kms, fields, hsm_sim, kms_endpoint};

/// The only region these tests use on the KMS peer.
const REGION: &str = "ap-east-1";

/// A fixture whose scheduler (and with it the HSM health check) runs every second.
fn fixture() -> Fixture {
    let fx = Fixture::new();
    fx.append_config("[rotation]\ncheck_every = \"1s\"\n");
    fx.init_ok();
    fx
}

/// Copies a directory tree byte for byte (files keep their permissions).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy's directory");
    for entry in std::fs::read_dir(from).expect("read the token directory") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a token file");
        }
    }
}

/// `status` on a console that logged in before the fault: a new login needs the audit trail,
/// which a fault can take away with its key.
fn status(console: &mut Console) -> StatusReport {
    serde_json::from_value(console.ok(&Request::Status)).expect("status shape")
}

/// Polls `status` until `done` holds; returns that status.
fn wait_status(
    console: &mut Console,
    what: &str,
    done: impl Fn(&StatusReport) -> bool,
) -> StatusReport {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(console);
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "waited 30 s for {what}; status is hsm.state={:?} scheduler.state={:?}",
            s.hsm.state,
            s.scheduler.state
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn is_fault(s: &StatusReport) -> bool {
    s.hsm.state.starts_with("fault") && s.scheduler.state.starts_with("paused: HSM fault")
}

fn is_healthy(s: &StatusReport) -> bool {
    s.hsm.state == "ok" && s.scheduler.state == "running"
}

fn user_names(console: &mut Console) -> Vec<String> {
    console
        .ok(&Request::UserList)
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Every audit record's action, in order.
fn audit_actions(console: &mut Console) -> Vec<String> {
    console
        .audit_records()
        .iter()
        .map(|r| r["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The `hsm.recovered` audit record.
fn recovery_record(console: &mut Console) -> serde_json::Value {
    console
        .audit_records()
        .into_iter()
        .find(|r| r["action"] == "hsm.recovered")
        .expect("an hsm.recovered record")
}

fn count(actions: &[String], action: &str) -> usize {
    actions.iter().filter(|a| *a == action).count()
}

fn add_user(name: &str) -> Request {
    Request::UserAdd {
        name: name.into(),
        role: Role::Auditor,
    }
}

/// Asserts a request was refused because of the HSM fault.
fn assert_refused_for_hsm(console: &mut Console, request: &Request) {
    let e = console.fails(request);
    assert_eq!(e.code, ErrorCode::Hsm, "{request:?}: {e:?}");
    assert!(
        e.message.contains("refused until a good token is back"),
        "{request:?}: {}",
        e.message
    );
}

/// The trail verifies, checked by the running daemon.
fn assert_trail_intact(console: &mut Console) {
    let verify = console.ok(&Request::AuditVerify);
    assert_eq!(verify["intact"], true, "{verify}");
}

/// Stops the daemon cleanly and verifies the trail offline.
fn stop_and_verify(fx: &Fixture, daemon: Daemon) {
    let status = daemon.stop();
    assert!(status.success(), "SIGTERM stops cleanly: {status}");
    let (code, out) = fx.verify();
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn a_tampered_token_fails_the_daemon_closed_and_a_restored_token_brings_it_back_without_a_restart()
{
    let fx = fixture();
    let daemon = fx.start();
    let mut admins = daemon.admins();
    admins.ok(&add_user("carol"));
    assert!(is_healthy(&status(&mut admins)));

    // A byte copy of the good token, taken while the daemon is idle (nothing writes to the
    // token between here and the tamper: no login, no audited request).
    let tokens = fx.hsm_dir.join("tokens");
    let backup = fx.dir.path().join("tokens.backup");
    copy_tree(&tokens, &backup);

    let out = hsm_sim("tamper", &fx.hsm_dir);
    assert!(out.contains("token zeroized"), "{out}");

    wait_status(&mut admins, "the HSM fault in status", is_fault);
    assert_refused_for_hsm(&mut admins, &add_user("dave"));
    assert!(
        !user_names(&mut admins).contains(&"dave".to_owned()),
        "a refused request changes nothing"
    );
    // The audit key went with the token: the fault cannot be sealed into the trail, so the
    // daemon says so in its log.
    let log = daemon.log_text();
    assert!(
        log.contains("cannot be recorded in the audit trail"),
        "the daemon logs that the fault could not be audited: {log}"
    );
    // Later checks look at the token afresh and find none by its label: the zeroized token
    // does not come back by itself, and status says what is missing.
    wait_status(&mut admins, "status naming the missing token", |s| {
        is_fault(s) && s.hsm.state.contains("no HSM token labelled 'keyward'")
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(is_fault(&status(&mut admins)));

    // A good token comes back: the byte copy restored into the (now empty) token directory.
    copy_tree(&backup, &tokens);
    wait_status(&mut admins, "the HSM healthy again", is_healthy);

    // The same session on the same process: no restart happened.
    admins.ok(&add_user("dave"));
    assert!(user_names(&mut admins).contains(&"dave".to_owned()));
    assert_trail_intact(&mut admins);
    let actions = audit_actions(&mut admins);
    assert_eq!(count(&actions, "hsm.recovered"), 1, "{actions:?}");
    // The trail holds no hsm.fault: there was no audit key to seal it with (see the log above).
    assert_eq!(count(&actions, "hsm.fault"), 0, "{actions:?}");
    // So the recovery record names the fault it recovers from (the last one: the token gone
    // altogether), and says it went unrecorded.
    let recovered = recovery_record(&mut admins);
    assert!(
        recovered["details"]["fault"]
            .as_str()
            .is_some_and(|f| f.contains("no HSM token labelled 'keyward'")),
        "{recovered}"
    );
    assert!(
        recovered["details"]["fault_recorded"]
            .as_str()
            .is_some_and(|f| f.starts_with("no")),
        "{recovered}"
    );
    assert_eq!(
        count(&actions, "daemon.start"),
        1,
        "one daemon start: it recovered without a restart: {actions:?}"
    );
    drop(admins);
    stop_and_verify(&fx, daemon);
}

// ---- a loopback gate in front of the KMS peer ----

/// A TCP relay on 127.0.0.1 in front of the KMS peer that can hold one request: once armed,
/// the first request whose `X-Amz-Target` is the armed target waits, unsent, until released.
/// Everything else is relayed byte for byte.
struct Gate {
    addr: SocketAddr,
    state: Arc<(Mutex<GateState>, Condvar)>,
}

#[derive(Default)]
struct GateState {
    armed: Option<&'static str>,
    holding: bool,
    released: bool,
}

impl Gate {
    fn start(peer: &str) -> Self {
        let peer = peer
            .strip_prefix("http://")
            .expect("the KMS peer is an http:// URL")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the gate");
        let addr = listener.local_addr().expect("gate address");
        let state: Arc<(Mutex<GateState>, Condvar)> = Arc::default();
        let shared = state.clone();
        // The accept loop ends with the test process.
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(upstream) = TcpStream::connect(&peer) else {
                    continue;
                };
                let (c2, u2) = (
                    client.try_clone().expect("clone"),
                    upstream.try_clone().expect("clone"),
                );
                let gate = shared.clone();
                std::thread::spawn(move || relay_requests(client, upstream, &gate));
                std::thread::spawn(move || relay(u2, c2));
            }
        });
        Self { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Holds the next request to `target` (e.g. `TrentService.CreateKey`).
    fn arm(&self, target: &'static str) {
        let (lock, _) = &*self.state;
        *lock.lock().unwrap() = GateState {
            armed: Some(target),
            ..GateState::default()
        };
    }

    /// Waits until a request is being held.
    fn wait_holding(&self, timeout: Duration) {
        let (lock, changed) = &*self.state;
        let deadline = Instant::now() + timeout;
        let mut state = lock.lock().unwrap();
        while !state.holding {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no request reached the gate in {timeout:?}"
            );
            state = changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Lets the held request through.
    fn release(&self) {
        let (lock, changed) = &*self.state;
        lock.lock().unwrap().released = true;
        changed.notify_all();
    }
}

/// Client to peer, holding the armed request until it is released. The target is looked for
/// across chunk boundaries (the tail of the previous chunk is kept).
fn relay_requests(mut from: TcpStream, mut to: TcpStream, gate: &(Mutex<GateState>, Condvar)) {
    let (lock, changed) = gate;
    let mut buf = [0u8; 16 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut window = std::mem::take(&mut tail);
        window.extend_from_slice(&buf[..n]);
        {
            let mut state = lock.lock().unwrap();
            let hit = state.armed.is_some_and(|t| {
                window
                    .windows(t.len())
                    .any(|w| w.eq_ignore_ascii_case(t.as_bytes()))
            });
            if hit {
                state.armed = None;
                state.holding = true;
                changed.notify_all();
                while !state.released {
                    state = changed.wait(state).unwrap();
                }
            }
        }
        tail = window[window.len().saturating_sub(64)..].to_vec();
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn relay(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

fn job_log_text(console: &mut Console, job: u64) -> String {
    console.job_log(job).join("\n")
}

/// Waits until the job's log holds `needle`.
fn wait_job_log(console: &mut Console, job: u64, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = job_log_text(console, job);
        if log.contains(needle) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "waited 30 s for {needle:?} in the log of job {job}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_token_unplugged_mid_rotation_pauses_the_job_and_it_finishes_once_the_token_is_back() {
    let kms = Kms::new(REGION);
    let gate = Gate::start(&kms_endpoint());
    let fx = fixture();
    let daemon = fx.start();
    let mut admins = daemon.admins();
    let csv = fx.credentials_csv();
    admins.ok(&Request::CredentialImport {
        name: "prod".into(),
        path: csv.display().to_string(),
    });
    let alias = "alias/hsm-faults-unplugged";
    let endpoint = gate.url();
    admins.ok(&Request::GroupCreate {
        name: "unplugged".into(),
        fields: fields(&[
            ("credential", "prod"),
            ("region", REGION),
            ("endpoint", &endpoint),
            ("alias", alias),
            ("description", "HSM fault test key"),
        ]),
    });
    // A first rotation gives the alias a key to move from.
    let first = admins.rotate("unplugged");
    admins
        .wait(first)
        .unwrap_or_else(|e| panic!("first rotation: {e}"));
    let before = kms
        .alias_target(alias)
        .expect("the alias after the first rotation");
    let keys_before = kms.key_ids().len();

    // The second rotation is held at its CreateKey call: the job is inside a step when the
    // token is unplugged, deterministically.
    gate.arm("TrentService.CreateKey");
    let job = admins.rotate("unplugged");
    gate.wait_holding(Duration::from_secs(30));
    let out = hsm_sim("detach", &fx.hsm_dir);
    assert!(out.contains("detached"), "{out}");
    wait_status(&mut admins, "the HSM fault in status", is_fault);
    gate.release();

    // The job does not go on to its next step while the token is out.
    let log = wait_job_log(&mut admins, job, "paused: the HSM is faulted");
    let shown = admins.ok(&Request::JobShow { id: job });
    assert_eq!(shown["state"], "running", "{shown}\n{log}");
    assert_refused_for_hsm(&mut admins, &add_user("erin"));
    assert!(!user_names(&mut admins).contains(&"erin".to_owned()));
    std::thread::sleep(Duration::from_secs(2));
    let still = status(&mut admins);
    assert!(is_fault(&still), "{still:?}");
    assert_eq!(
        kms.alias_target(alias).as_deref(),
        Some(before.as_str()),
        "the alias does not move while the token is out"
    );
    assert_eq!(
        admins.ok(&Request::JobShow { id: job })["state"],
        "running",
        "the job waits; it neither fails nor finishes"
    );
    let log = daemon.log_text();
    assert!(
        log.contains("cannot be recorded in the audit trail"),
        "the audit key is on the unplugged token, so the fault is logged instead: {log}"
    );

    // The same token plugged back in: the same process recovers and the job finishes.
    let out = hsm_sim("attach", &fx.hsm_dir);
    assert!(out.contains("attached"), "{out}");
    wait_status(&mut admins, "the HSM healthy again", is_healthy);
    let view = admins.wait(job).unwrap_or_else(|e| {
        panic!(
            "the paused rotation failed: {e}\n{}",
            job_log_text(&mut admins, job)
        )
    });
    assert_eq!(view["state"], "succeeded", "{view}");
    // Nothing ran while the job was paused: the line after the pause is the resumption.
    let lines = admins.job_log(job);
    let paused = lines
        .iter()
        .position(|l| l.contains("paused: the HSM is faulted"))
        .expect("the pause in the job log");
    assert!(
        lines
            .get(paused + 1)
            .is_some_and(|l| l.contains("the HSM is healthy again: resuming")),
        "{}",
        lines.join("\n")
    );
    let after = kms.alias_target(alias).expect("alias");
    assert_ne!(after, before, "the alias moved to the new key");
    assert_eq!(
        kms.describe(&after).key_state().unwrap().as_str(),
        "Enabled"
    );
    assert_eq!(
        kms.key_ids().len(),
        keys_before + 1,
        "exactly one new KMS key: the step that ran again found the key it had made"
    );

    admins.ok(&add_user("erin"));
    assert_trail_intact(&mut admins);
    let actions = audit_actions(&mut admins);
    assert_eq!(count(&actions, "hsm.recovered"), 1, "{actions:?}");
    // The audit key was on the unplugged token, so the fault could not be sealed into the
    // trail; only the recovery is there.
    assert_eq!(count(&actions, "hsm.fault"), 0, "{actions:?}");
    assert_eq!(count(&actions, "daemon.start"), 1, "{actions:?}");
    drop(admins);
    stop_and_verify(&fx, daemon);
}
