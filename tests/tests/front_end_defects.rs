#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration test: a failed step is a failed test"
)]
//! Issue 14's front-end defects, as an attacker or an unlucky operator meets them: clients
//! that stop reading their answers (a stop must still be clean), and silent or half-written
//! console connections (the console must still answer).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keyward_proto::Request;
use keyward_tests::{ADMINS, Daemon, Fixture, bin, poll};

/// What a client sends that expects 500 answers and reads none of them: a login, then
/// `count` status requests.
fn unread_requests(count: usize) -> Vec<u8> {
    let mut batch = Vec::new();
    let login = Request::Login {
        user: ADMINS[0].0.into(),
        password: keyward_proto::Password::new(ADMINS[0].1),
    };
    batch.extend(serde_json::to_vec(&login).unwrap());
    batch.push(b'\n');
    for _ in 0..count {
        batch.extend(serde_json::to_vec(&Request::Status).unwrap());
        batch.push(b'\n');
    }
    batch
}

/// How long systemd waits after SIGTERM before it sends SIGKILL (the shipped unit's
/// `TimeoutStopSec`).
fn stop_grace() -> Duration {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../image/rootfs/etc/systemd/system/keywardd.service"
    ))
    .expect("the shipped systemd unit");
    let value = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .expect("TimeoutStopSec in the unit");
    humantime::parse_duration(value.trim()).expect("a duration")
}

/// The audit records of `action`, each as (target, reason), read on a fresh connection.
fn logouts(daemon: &Daemon) -> Vec<(String, String)> {
    daemon
        .console()
        .audit_records()
        .iter()
        .filter(|r| r["action"] == "auth.logout")
        .map(|r| {
            (
                r["target"].as_str().unwrap_or_default().to_owned(),
                r["details"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn clients_that_stop_reading_do_not_hold_up_a_stop() {
    let fx = Fixture::new();
    let (line, daemon) = fx.init_and_start_with_serial_line("stalled");
    // A console client that sends 500 requests and reads none of the answers.
    let mut console = UnixStream::connect(&daemon.socket).unwrap();
    console.write_all(&unread_requests(500)).unwrap();
    // A serial terminal that hung: 500 `help`s (the command table each) it never reads.
    line.stop_reading();
    line.send(&b"help\r".repeat(500));
    // Both peers' buffers fill within moments; then every write the daemon makes waits.
    std::thread::sleep(Duration::from_secs(3));
    let log = daemon.log.clone();
    let grace = stop_grace();
    let asked = Instant::now();
    let status = daemon.stop_within(grace);
    eprintln!("stopped {:?} after SIGTERM", asked.elapsed());
    assert!(status.success(), "SIGTERM stops cleanly: {status}");
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("stopped cleanly; everything flushed"),
        "the stop ran to its end: {log}"
    );
    let (code, out) = fx.verify();
    assert_eq!(code, Some(0), "the trail verifies: {out}");
    // The stop is in the trail: the record before the next start's is `daemon.stop`.
    let daemon = fx.start();
    let records = daemon.console().audit_records();
    let starts: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r["action"] == "daemon.start")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(starts.len(), 2, "two starts");
    assert_eq!(
        records[starts[1] - 1]["action"],
        "daemon.stop",
        "the stop was audited before the next start"
    );
    drop(console);
    assert!(daemon.stop().success());
}

#[test]
fn a_client_that_stops_reading_is_let_go_after_the_write_timeout() {
    let fx = Fixture::new();
    let (line, daemon) = fx.init_and_start_with_serial_line("stalled");
    // bob logs in on the serial line, alice on a console connection; neither reads again.
    line.login(ADMINS[1].0, ADMINS[1].1);
    line.stop_reading();
    line.send(&b"help\r".repeat(500));
    let mut console = UnixStream::connect(&daemon.socket).unwrap();
    console.write_all(&unread_requests(500)).unwrap();
    // The daemon gives up on each once it could send nothing for the write timeout, and logs
    // their users out.
    let found = poll(
        "both stalled sessions to be logged out",
        Duration::from_secs(60),
        || {
            let logouts = logouts(&daemon);
            let bob = logouts
                .iter()
                .find(|(who, _)| who == ADMINS[1].0)
                .map(|(_, why)| why.clone());
            let alice = logouts
                .iter()
                .find(|(who, why)| who == ADMINS[0].0 && why.contains("stalled"))
                .map(|(_, why)| why.clone());
            match (bob, alice) {
                (Some(b), Some(a)) => Ok((b, a)),
                other => Err(format!("{other:?} in {logouts:?}")),
            }
        },
    );
    assert!(found.0.contains("stalled"), "serial: {}", found.0);
    assert!(found.1.contains("stalled"), "console: {}", found.1);
    // The next person at the serial line gets a fresh port: what the line held is discarded
    // (a pty's own line discipline keeps up to 4 KiB of it beyond the daemon's reach; a UART
    // keeps at most its FIFO), and the commands typed ahead do not run.
    std::thread::sleep(Duration::from_secs(3));
    let held = String::from_utf8_lossy(&line.read_held(Duration::from_millis(500))).into_owned();
    assert!(
        held.len() < 8 * 1024 && held.ends_with("'help' lists the commands.\r\nkeyward> "),
        "what the line held after the stall: {} bytes, ending {:?}",
        held.len(),
        &held[held.len().saturating_sub(200)..]
    );
    // The console connection was closed: reading it ends (after what was in flight).
    console
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut sink = Vec::new();
    assert!(
        console.read_to_end(&mut sink).is_ok(),
        "the stalled console connection was closed"
    );
    assert!(daemon.stop().success());
}

/// `keyward-console status` run as an operator runs it; its output, or why it failed, within
/// `within`.
fn console_status(fx: &Fixture, daemon: &Daemon, within: Duration) -> Result<String, String> {
    let mut child = Command::new(bin("keyward-console"))
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["status", "--user", ADMINS[0].0, "--password-file"])
        .arg(fx.password_file(ADMINS[0].0))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run keyward-console");
    let started = Instant::now();
    let deadline = started + within;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "keyward-console status did not answer within {within:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    eprintln!("keyward-console status answered in {:?}", started.elapsed());
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn silent_and_half_written_connections_leave_room_for_the_console() {
    let fx = Fixture::new();
    fx.init_ok();
    let daemon = fx.start();
    // An operator logged in before the flood keeps the session.
    let mut operator = daemon.console();
    // 16 connections that say nothing, then 16 that send half a request and stop.
    let silent: Vec<UnixStream> = (0..16)
        .map(|_| UnixStream::connect(&daemon.socket).unwrap())
        .collect();
    let half: Vec<UnixStream> = (0..16)
        .map(|_| {
            let mut s = UnixStream::connect(&daemon.socket).unwrap();
            s.write_all(br#"{"op":"sta"#).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let out = console_status(&fx, &daemon, Duration::from_secs(2)).unwrap();
    assert!(out.contains("Keyward") && out.contains("HSM"), "{out}");
    // The flood again, larger than every slot: the operator's session is never the one to go.
    let more: Vec<UnixStream> = (0..40)
        .map(|_| UnixStream::connect(&daemon.socket).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        operator.request(&Request::Whoami).ok,
        "the logged-in operator's connection still answers"
    );
    assert_eq!(
        operator.ok(&Request::Whoami)["users"][0]["name"],
        ADMINS[0].0,
        "and alice is still logged in on it"
    );
    console_status(&fx, &daemon, Duration::from_secs(2)).unwrap();
    drop((silent, half, more));
    assert!(daemon.stop().success());
}

#[test]
fn silent_and_half_written_connections_are_closed_after_their_timeouts() {
    let fx = Fixture::new();
    fx.append_config("[console]\nidle_timeout = \"2s\"\nline_timeout = \"2s\"\n");
    fx.init_ok();
    let daemon = fx.start();
    let mut operator = daemon.console();
    let mut silent = UnixStream::connect(&daemon.socket).unwrap();
    let mut half = UnixStream::connect(&daemon.socket).unwrap();
    half.write_all(br#"{"op":"sta"#).unwrap();
    let started = Instant::now();
    for s in [&silent, &half] {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    }
    // The silent one is closed without a word.
    let mut said = Vec::new();
    silent.read_to_end(&mut said).unwrap();
    assert!(said.is_empty(), "{}", String::from_utf8_lossy(&said));
    // The half-written request gets an answer that says why, then the connection closes.
    let mut said = String::new();
    half.read_to_string(&mut said).unwrap();
    let answer: keyward_proto::Response = serde_json::from_str(said.trim()).unwrap();
    let error = answer.error.expect("an error");
    assert_eq!(error.code, keyward_proto::ErrorCode::Invalid);
    assert!(error.message.contains("2s"), "{}", error.message);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "not before the timeout"
    );
    // A logged-in connection is not closed for its silence (its users have auth.idle_timeout).
    std::thread::sleep(Duration::from_secs(3));
    assert!(operator.request(&Request::Whoami).ok);
    assert!(daemon.stop().success());
}

#[test]
fn a_job_wait_in_progress_does_not_hold_up_a_stop() {
    // A rotation that never ends: its thread stops at a test fault point before its first
    // step (nothing reaches AWS).
    let mut s = keyward_tests::Appliance::new("ap-southeast-7", "");
    s.restart_with_env(&[(keyward_daemon::jobs::CRASH_ENV, "before:generate-key")]);
    s.create_group("stuck", "alias/stuck", &[]);
    let job = s.console().rotate("stuck");
    poll(
        "the job to stop at its fault point",
        Duration::from_secs(30),
        || {
            let log = s.daemon().log_text();
            if log.contains(keyward_daemon::jobs::FAULT_REACHED) {
                Ok(())
            } else {
                Err("not yet".into())
            }
        },
    );
    // An operator waits for it on the console, as long as `job wait` may (an hour).
    let mut waiting = UnixStream::connect(&s.daemon().socket).unwrap();
    let mut batch = unread_requests(0);
    batch.extend(
        serde_json::to_vec(&Request::JobWait {
            id: job,
            timeout_ms: Some(3_600_000),
        })
        .unwrap(),
    );
    batch.push(b'\n');
    waiting.write_all(&batch).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    s.console = None;
    let daemon = s.daemon.take().unwrap();
    let log = daemon.log.clone();
    let asked = Instant::now();
    let status = daemon.stop_within(stop_grace());
    eprintln!("stopped {:?} after SIGTERM", asked.elapsed());
    assert!(status.success(), "SIGTERM stops cleanly: {status}");
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("stopped cleanly; everything flushed"), "{log}");
    drop(waiting);
}
