#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration test: a failed step is a failed test"
)]
//! Storage under SIGKILL: the daemon is killed with a real SIGKILL while several console
//! connections write as fast as they can (users added and removed, key groups created, changed
//! and removed, rotation jobs against the KMS peer), round after round, on the same sled
//! database. After every kill the database must open, the audit trail must verify (offline, on
//! the state the kill left, and online after the restart), every write the daemon acknowledged
//! must still be there with its audit record, and the jobs the kill interrupted must resume and
//! finish. The figures (acknowledged writes, audit records, write rate, restart time) are
//! printed; run with `--nocapture` to see them.
//!
//! What a kill can leave undecided is only the one request each connection had in flight: it
//! may or may not have taken effect, and either is accepted (and counted).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use keyward_proto::{ApiError, Request, Response, Role};
use keyward_tests::{ADMINS, Console, Fixture, fields, kms_endpoint};
use serde_json::Value;

/// No other test uses this region, so its keys are this test's alone.
const REGION: &str = "il-central-1";
/// When each round's SIGKILL comes, counted from the moment the writers start writing.
const KILL_AFTER_MS: [u64; 10] = [50, 1900, 400, 1200, 150, 2000, 700, 90, 1500, 600];
/// Each user added costs a PBKDF2 hash (600 000 rounds): one writer is enough to mix them in
/// without starving the cheap writes of CPU.
const USER_WRITERS: usize = 1;
const GROUP_WRITERS: usize = 4;
const ROTATION_GROUPS: [&str; 3] = ["rot-a", "rot-b", "rot-c"];
/// What a restarted daemon logs when a kill fell between the sled flush of an audit record and
/// the move of the head in the HSM.
const REANCHOR: &str = "re-anchoring";

// ---- a console connection that survives the daemon dying under it ----

/// How a request ended.
#[derive(Debug, Clone)]
enum Answer {
    /// The daemon said ok: an acknowledged write.
    Ok(Value),
    /// The daemon answered with an error.
    Refused(ApiError),
    /// No answer: the connection died (the kill) with the request in flight. A response cut
    /// off by the kill is no acknowledgement either.
    Lost,
}

/// One console connection of a writer. Unlike the harness's `Console`, a dead daemon is an
/// answer here, not a panic.
struct Link {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Link {
    fn open(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket).expect("connect console socket");
        stream
            .set_read_timeout(Some(Duration::from_secs(150)))
            .expect("timeout");
        Self {
            writer: stream.try_clone().expect("clone"),
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, request: &Request) -> Answer {
        let mut line = serde_json::to_vec(request).expect("encode");
        line.push(b'\n');
        if self.writer.write_all(&line).is_err() {
            return Answer::Lost;
        }
        let mut text = String::new();
        match self.reader.read_line(&mut text) {
            Ok(0) | Err(_) => Answer::Lost,
            Ok(_) => match serde_json::from_str::<Response>(&text) {
                Ok(response) => match response.into_result() {
                    Ok(data) => Answer::Ok(data),
                    Err(e) => Answer::Refused(e),
                },
                Err(_) => Answer::Lost,
            },
        }
    }
}

// ---- what the writers did ----

#[derive(Debug, Clone)]
enum Op {
    UserAdd(String),
    UserRemove(String),
    GroupCreate(String),
    GroupSet {
        name: String,
        description: String,
    },
    GroupRemove(String),
    Rotate(String),
    /// `job wait` answered: the job had succeeded (a read, but it acknowledges the job's end).
    JobWait(u64),
}

impl Op {
    /// The audit action and target an acknowledged write must have a success record for.
    fn audited_as(&self) -> Option<(&'static str, String)> {
        match self {
            Self::UserAdd(n) => Some(("user.add", n.clone())),
            Self::UserRemove(n) => Some(("user.remove", n.clone())),
            Self::GroupCreate(n) => Some(("group.create", n.clone())),
            Self::GroupSet { name, .. } => Some(("group.set", name.clone())),
            Self::GroupRemove(n) => Some(("group.remove", n.clone())),
            Self::Rotate(g) => Some(("group.rotate", g.clone())),
            Self::JobWait(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Sent {
    op: Op,
    answer: Answer,
}

/// Sends `op`'s request and logs how it ended; returns the data of an ok answer.
fn send_logged(link: &mut Link, log: &mut Vec<Sent>, op: Op, request: &Request) -> Option<Value> {
    let answer = link.send(request);
    let data = match &answer {
        Answer::Ok(data) => Some(data.clone()),
        _ => None,
    };
    log.push(Sent { op, answer });
    data
}

/// Whether the writer's connection is still up (its last request was answered).
fn alive(log: &[Sent]) -> bool {
    !matches!(log.last().map(|s| &s.answer), Some(Answer::Lost))
}

/// Logs both administrators in, reports ready, waits for the start signal.
fn writer_link(socket: &Path, ready: &mpsc::Sender<()>, go: &AtomicBool) -> Link {
    let mut link = Link::open(socket);
    for (user, password) in ADMINS {
        match link.send(&Request::Login {
            user: user.into(),
            password: keyward_proto::Password::new(password),
        }) {
            Answer::Ok(_) => {}
            other => panic!("writer login as {user}: {other:?}"),
        }
    }
    ready.send(()).expect("ready");
    while !go.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    link
}

/// Adds users (auditors, each a PBKDF2 hash and two audit records) and removes every other one.
fn user_writer(mut link: Link, round: usize, w: usize) -> Vec<Sent> {
    let mut log = Vec::new();
    for i in 0.. {
        let name = format!("s{round}w{w}u{i}");
        send_logged(
            &mut link,
            &mut log,
            Op::UserAdd(name.clone()),
            &Request::UserAdd {
                name: name.clone(),
                role: Role::Auditor,
            },
        );
        if !alive(&log) {
            break;
        }
        if i % 2 == 0 {
            send_logged(
                &mut link,
                &mut log,
                Op::UserRemove(name.clone()),
                &Request::UserRemove { name },
            );
            if !alive(&log) {
                break;
            }
        }
    }
    log
}

/// Creates key groups, changes each one's description, and removes every other one.
fn group_writer(mut link: Link, round: usize, w: usize, endpoint: &str) -> Vec<Sent> {
    let mut log = Vec::new();
    for i in 0.. {
        let name = format!("s{round}w{w}g{i}");
        let alias = format!("alias/storage-{name}");
        let create = Request::GroupCreate {
            name: name.clone(),
            fields: fields(&[
                ("credential", "prod"),
                ("region", REGION),
                ("endpoint", endpoint),
                ("alias", &alias),
                ("description", "created"),
            ]),
        };
        send_logged(&mut link, &mut log, Op::GroupCreate(name.clone()), &create);
        if !alive(&log) {
            break;
        }
        let description = format!("changed by writer {w} step {i}");
        send_logged(
            &mut link,
            &mut log,
            Op::GroupSet {
                name: name.clone(),
                description: description.clone(),
            },
            &Request::GroupSet {
                name: name.clone(),
                fields: fields(&[("description", &description)]),
            },
        );
        if !alive(&log) {
            break;
        }
        if i % 2 == 0 {
            send_logged(
                &mut link,
                &mut log,
                Op::GroupRemove(name.clone()),
                &Request::GroupRemove { name },
            );
            if !alive(&log) {
                break;
            }
        }
    }
    log
}

/// Rotates every rotation group, waits for the jobs, and again: up to three jobs run at once
/// beside the other writers (each step is a flushed job record, each AWS call two audit
/// records).
fn rotation_writer(mut link: Link) -> Vec<Sent> {
    let mut log = Vec::new();
    loop {
        let mut queued = Vec::new();
        for group in ROTATION_GROUPS {
            let rotated = send_logged(
                &mut link,
                &mut log,
                Op::Rotate(group.into()),
                &Request::GroupRotate { name: group.into() },
            );
            if !alive(&log) {
                return log;
            }
            queued.extend(rotated.and_then(|d| d["job"].as_u64()));
        }
        if queued.is_empty() {
            std::thread::sleep(Duration::from_millis(100));
        }
        for id in queued {
            send_logged(
                &mut link,
                &mut log,
                Op::JobWait(id),
                &Request::JobWait {
                    id,
                    timeout_ms: Some(120_000),
                },
            );
            if !alive(&log) {
                return log;
            }
        }
    }
}

// ---- what must be in the database ----

/// What the acknowledged writes say about one user or group.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// Present; for a group, with this description if it is known.
    Present(Option<String>),
    Absent,
    /// The request in flight at the kill decides; either is right.
    Undecided,
}

#[derive(Default)]
struct Model {
    users: BTreeMap<String, Expect>,
    groups: BTreeMap<String, Expect>,
    /// Rotation jobs whose id the daemon returned.
    jobs: BTreeSet<u64>,
    /// Jobs `job wait` reported succeeded.
    succeeded: BTreeSet<u64>,
}

/// Counts of one round's requests.
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    acked: usize,
    refused: usize,
    in_flight: usize,
}

impl Model {
    /// Folds one writer's log (in its order) into the expectations.
    fn apply(&mut self, log: &[Sent], round: usize, findings: &mut Vec<String>) -> Tally {
        let mut tally = Tally::default();
        for sent in log {
            let acked = match &sent.answer {
                Answer::Ok(_) => {
                    if !matches!(sent.op, Op::JobWait(_)) {
                        tally.acked += 1;
                    }
                    true
                }
                Answer::Refused(e) => {
                    tally.refused += 1;
                    findings.push(format!(
                        "round {round}: {:?} was refused while the daemon was healthy: {e}",
                        sent.op
                    ));
                    continue;
                }
                Answer::Lost => {
                    tally.in_flight += 1;
                    false
                }
            };
            let (table, name, after) = match &sent.op {
                Op::UserAdd(n) => (&mut self.users, n, Expect::Present(None)),
                Op::UserRemove(n) => (&mut self.users, n, Expect::Absent),
                Op::GroupCreate(n) => {
                    (&mut self.groups, n, Expect::Present(Some("created".into())))
                }
                Op::GroupSet { name, description } => (
                    &mut self.groups,
                    name,
                    Expect::Present(Some(description.clone())),
                ),
                Op::GroupRemove(n) => (&mut self.groups, n, Expect::Absent),
                Op::Rotate(_) => {
                    if let (true, Answer::Ok(data)) = (acked, &sent.answer) {
                        self.jobs.insert(data["job"].as_u64().expect("job id"));
                    }
                    continue;
                }
                Op::JobWait(id) => {
                    if acked {
                        self.succeeded.insert(*id);
                    }
                    continue;
                }
            };
            let before = table.get(name).cloned().unwrap_or(Expect::Absent);
            let now = match (acked, &sent.op, before) {
                (true, _, _) => after,
                // A change of description in flight: present either way, description unknown.
                (false, Op::GroupSet { .. }, Expect::Present(_)) => Expect::Present(None),
                (false, _, _) => Expect::Undecided,
            };
            table.insert(name.clone(), now);
        }
        tally
    }
}

/// Compares one table (users or groups) with what the daemon lists, then settles each entry
/// the kill left undecided to what the database holds. Returns how many undecided entries
/// turned out to have taken effect, and how many not.
fn check_table(
    what: &str,
    model: &mut BTreeMap<String, Expect>,
    actual: &BTreeMap<String, String>,
    after: &str,
    findings: &mut Vec<String>,
) -> (usize, usize) {
    let (mut took_effect, mut did_not) = (0, 0);
    for (name, expect) in model.iter_mut() {
        match (&*expect, actual.get(name)) {
            (Expect::Present(_), None) => findings.push(format!(
                "{after}: acknowledged {what} {name} is MISSING from the database"
            )),
            (Expect::Present(Some(want)), Some(got)) if want != got => findings.push(format!(
                "{after}: {what} {name} has description {got:?}; the acknowledged change set {want:?}"
            )),
            (Expect::Absent, Some(_)) => findings.push(format!(
                "{after}: {what} {name} is present, but its removal was acknowledged"
            )),
            (Expect::Undecided | Expect::Present(None), Some(got)) => {
                if *expect == Expect::Undecided {
                    took_effect += 1;
                }
                *expect = Expect::Present(Some(got.clone()));
            }
            (Expect::Undecided, None) => {
                did_not += 1;
                *expect = Expect::Absent;
            }
            _ => {}
        }
    }
    (took_effect, did_not)
}

/// Audit records by (action, target, outcome).
type AuditCounts = BTreeMap<(String, String, String), usize>;

/// Every audit record from `from` on: (action, target, outcome) counts, and the ids of jobs
/// with a `job.rotate` success record.
fn audit_since(console: &mut Console, from: u64) -> (AuditCounts, BTreeSet<u64>) {
    let mut counts = BTreeMap::new();
    let mut jobs = BTreeSet::new();
    for r in console.audit_records_from(from) {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
        *counts
            .entry((s("action"), s("target"), s("outcome")))
            .or_insert(0) += 1;
        if r["action"] == "job.rotate" && r["outcome"] == "success" {
            if let Some(id) = r["details"]["job"].as_str().and_then(|j| j.parse().ok()) {
                jobs.insert(id);
            }
        }
    }
    (counts, jobs)
}

fn names(list: &Value, value_of: impl Fn(&Value) -> String) -> BTreeMap<String, String> {
    list.as_array()
        .expect("list")
        .iter()
        .map(|item| {
            (
                item["name"].as_str().expect("name").to_owned(),
                value_of(item),
            )
        })
        .collect()
}

/// The record trees of the daemon's database (see `daemon/src/store`); every value is JSON.
const TREES: [&str; 7] = [
    "settings",
    "users",
    "credentials",
    "groups",
    "keys",
    "jobs",
    "audit",
];

/// Opens the database with sled directly, as the kill left it (the daemon is not running), and
/// reads every record of every tree: an error from sled or a value that is not JSON is a
/// finding. Returns the number of records read.
fn scan_database(fx: &Fixture, after: &str, findings: &mut Vec<String>) -> usize {
    let db = match sled::open(fx.data_dir.join("db")) {
        Ok(db) => db,
        Err(e) => {
            findings.push(format!("{after}: sled cannot open the database: {e}"));
            return 0;
        }
    };
    let mut records = 0;
    for name in TREES {
        let tree = match db.open_tree(name) {
            Ok(tree) => tree,
            Err(e) => {
                findings.push(format!("{after}: sled cannot open tree {name}: {e}"));
                continue;
            }
        };
        for item in tree.iter() {
            match item {
                Ok((key, value)) => {
                    records += 1;
                    if serde_json::from_slice::<Value>(&value).is_err() {
                        findings.push(format!(
                            "{after}: tree {name}, key {key:?}: the value is not JSON: {:?}",
                            String::from_utf8_lossy(&value[..value.len().min(300)])
                        ));
                    }
                }
                Err(e) => findings.push(format!("{after}: sled fails reading tree {name}: {e}")),
            }
        }
    }
    records
}

/// The last lines of a log, for evidence.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `audit trail intact: N records, head …` → N.
fn offline_records(out: &str) -> Option<u64> {
    out.split("intact: ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One round's figures.
#[derive(Debug, Default)]
struct RoundFigures {
    kill_after_ms: u64,
    window_ms: u128,
    tally: Tally,
    /// The head of the trail when the writers started.
    records_before: u64,
    /// The records the offline verify counted on the database the kill left.
    records_after_kill: u64,
    /// Records in all trees, read with sled directly after the kill.
    sled_records: usize,
    /// The offline verify found records beyond the head kept in the HSM.
    beyond_anchor: bool,
    /// The restarted daemon re-anchored the trail.
    reanchored: bool,
    restart_ms: u128,
    resumed_jobs: usize,
    undecided_took_effect: usize,
    undecided_did_not: usize,
    db_bytes: u64,
}

fn summary(figures: &[RoundFigures]) -> String {
    let mut out = format!(
        "storage under SIGKILL (sled), {} kill(s):\n\
         round kill@ms window_ms acked refused in_flight records rec/s beyond_anchor reanchored restart_ms resumed_jobs in_flight_took_effect/not sled_records db_bytes\n",
        figures.len()
    );
    for (i, f) in figures.iter().enumerate() {
        let written = f.records_after_kill.saturating_sub(f.records_before);
        let rate = u128::from(written) * 1000 / f.window_ms.max(1);
        out += &format!(
            "{i:>5} {:>7} {:>9} {:>5} {:>7} {:>9} {written:>7} {rate:>5} {:>13} {:>10} {:>10} {:>12} {:>21}/{:<3} {:>12} {:>8}\n",
            f.kill_after_ms,
            f.window_ms,
            f.tally.acked,
            f.tally.refused,
            f.tally.in_flight,
            f.beyond_anchor,
            f.reanchored,
            f.restart_ms,
            f.resumed_jobs,
            f.undecided_took_effect,
            f.undecided_did_not,
            f.sled_records,
            f.db_bytes,
        );
    }
    out += "(acked: writes the daemon answered ok; in_flight: requests unanswered at the kill; \
            records: audit records between the start signal and the kill; beyond_anchor / \
            reanchored: the kill fell between a record's flush and the move of the head in the \
            HSM; in_flight_took_effect/not: how the unanswered user and group changes turned out; \
            sled_records: records in all trees read with sled after the kill; db_bytes: sled's \
            size before the round)\n";
    out
}

/// Copies the appliance's directory (database, token, daemon logs) somewhere that outlives the
/// test, so a failure can be examined.
fn keep_evidence(fx: &Fixture) -> PathBuf {
    let to = std::env::temp_dir().join(format!(
        "keyward-storage-crash-evidence-{}",
        std::process::id()
    ));
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(fx.dir.path())
        .arg(&to)
        .status()
        .expect("cp");
    assert!(status.success(), "copy evidence to {}", to.display());
    to
}

/// Fails the test with everything found, the figures so far and a copy of the appliance.
fn fail(fx: &Fixture, figures: &[RoundFigures], findings: &[String]) -> ! {
    let kept = keep_evidence(fx);
    panic!(
        "{}\n{}\nthe appliance directory is kept in {}",
        findings.join("\n"),
        summary(figures),
        kept.display()
    );
}

#[test]
fn sigkill_during_heavy_writes_leaves_a_database_that_opens_and_an_audit_trail_that_verifies() {
    let started = Instant::now();
    let endpoint = kms_endpoint();
    let fx = Fixture::new();
    fx.init_ok();

    // Setup: the credential and the groups the rotation writers use, then a clean stop.
    {
        let daemon = fx.start();
        let mut console = daemon.admins();
        console.ok(&Request::CredentialImport {
            name: "prod".into(),
            path: fx.credentials_csv().display().to_string(),
        });
        for group in ROTATION_GROUPS {
            let alias = format!("alias/storage-{group}");
            console.ok(&Request::GroupCreate {
                name: group.into(),
                fields: fields(&[
                    ("credential", "prod"),
                    ("region", REGION),
                    ("endpoint", &endpoint),
                    ("alias", &alias),
                    ("description", "rotated under SIGKILL"),
                ]),
            });
        }
        drop(console);
        assert!(daemon.stop().success());
    }

    let mut model = Model::default();
    for group in ROTATION_GROUPS {
        model.groups.insert(
            group.into(),
            Expect::Present(Some("rotated under SIGKILL".into())),
        );
    }
    let mut findings: Vec<String> = Vec::new();
    let mut figures: Vec<RoundFigures> = Vec::new();
    // The killed daemon's log, the first audit sequence number of its round, and the writes it
    // acknowledged in that round.
    let mut last_kill: Option<(PathBuf, u64, Vec<Op>)> = None;

    for round in 0..=KILL_AFTER_MS.len() {
        let after = match round {
            0 => "after setup".to_owned(),
            r => format!("after the kill in round {}", r - 1),
        };

        // 1. Offline, on the database exactly as the kill (or the clean setup stop) left it.
        let (code, out) = fx.verify();
        if code != Some(0) {
            findings.push(format!(
                "{after}: offline 'keywardd audit verify' exit {code:?}: {out}"
            ));
        }
        let records_after_kill = offline_records(&out).unwrap_or(0);
        let beyond_anchor = out.contains("beyond the head");
        let sled_records = scan_database(&fx, &after, &mut findings);

        // 2. Restart: the database must open, and the trail must match its head in the HSM.
        let t = Instant::now();
        let daemon = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fx.start())) {
            Ok(daemon) => daemon,
            Err(_) => {
                findings.push(format!(
                    "{after}: keywardd did not start (see the panic above)"
                ));
                fail(&fx, &figures, &findings);
            }
        };
        let restart_ms = t.elapsed().as_millis();
        let reanchored = daemon.log_text().contains(REANCHOR);
        let mut console = daemon.admins();
        match console.request(&Request::AuditVerify).into_result() {
            Ok(report) if report["intact"] == true => {}
            other => findings.push(format!("{after}: online audit verify: {other:?}")),
        }

        // 3. Every acknowledged write, from every round so far, is there.
        let users = names(&console.ok(&Request::UserList), |_| String::new());
        let groups = names(&console.ok(&Request::GroupList), |g| {
            g["description"].as_str().unwrap_or_default().to_owned()
        });
        let (u_yes, u_no) = check_table("user", &mut model.users, &users, &after, &mut findings);
        let (g_yes, g_no) = check_table("group", &mut model.groups, &groups, &after, &mut findings);
        let jobs: BTreeMap<u64, String> = console
            .ok(&Request::JobList)
            .as_array()
            .expect("jobs")
            .iter()
            .map(|j| {
                (
                    j["id"].as_u64().expect("id"),
                    j["state"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        for id in &model.jobs {
            if !jobs.contains_key(id) {
                findings.push(format!(
                    "{after}: acknowledged rotation job {id} is MISSING from 'job list'"
                ));
            }
        }
        for id in &model.succeeded {
            if jobs.get(id).map(String::as_str) != Some("succeeded") {
                findings.push(format!(
                    "{after}: job {id} was reported succeeded before the kill, now {:?}",
                    jobs.get(id)
                ));
            }
        }

        // 4. Each write acknowledged in the killed round has its success record in the trail.
        if let Some((_, from, acknowledged)) = &last_kill {
            let (counts, done_jobs) = audit_since(&mut console, *from);
            let mut wanted: BTreeMap<(String, String), usize> = BTreeMap::new();
            for op in acknowledged {
                if let Some((action, target)) = op.audited_as() {
                    *wanted.entry((action.into(), target)).or_insert(0) += 1;
                }
                if let Op::JobWait(id) = op {
                    if !done_jobs.contains(id) {
                        findings.push(format!(
                            "{after}: job {id} was reported succeeded, but its job.rotate success record is missing"
                        ));
                    }
                }
            }
            for ((action, target), n) in wanted {
                let have = counts
                    .get(&(action.clone(), target.clone(), "success".into()))
                    .copied()
                    .unwrap_or(0);
                if have < n {
                    findings.push(format!(
                        "{after}: {n} acknowledged {action} {target}, but {have} success record(s) in the trail"
                    ));
                }
            }
        }

        // 5. Jobs the kill interrupted resume and finish.
        let unfinished: Vec<u64> = jobs
            .iter()
            .filter(|(_, state)| !matches!(state.as_str(), "succeeded" | "failed"))
            .map(|(id, _)| *id)
            .collect();
        for id in &unfinished {
            if let Err(e) = console.wait(*id) {
                findings.push(format!(
                    "{after}: resumed job {id} did not succeed: {e}\n{}",
                    console.job_log(*id).join("\n")
                ));
            }
        }
        if let Some(previous) = figures.last_mut() {
            previous.records_after_kill = records_after_kill;
            previous.sled_records = sled_records;
            previous.beyond_anchor = beyond_anchor;
            previous.reanchored = reanchored;
            previous.restart_ms = restart_ms;
            previous.resumed_jobs = unfinished.len();
            previous.undecided_took_effect = u_yes + g_yes;
            previous.undecided_did_not = u_no + g_no;
        }
        if !findings.is_empty() {
            if let Some((killed_log, _, _)) = &last_kill {
                findings.push(format!(
                    "the log of the daemon killed, last lines:\n{}\nthe log of the restarted daemon, last lines:\n{}",
                    tail(killed_log, 30),
                    tail(&daemon.log, 30)
                ));
            }
            drop(console);
            drop(daemon);
            fail(&fx, &figures, &findings);
        }
        let Some(&kill_after_ms) = KILL_AFTER_MS.get(round) else {
            drop(console);
            assert!(daemon.stop().success(), "the last restart stops cleanly");
            break;
        };

        // 6. Heavy writes, and a SIGKILL in the middle of them. The checking console stays
        // open (idle) until the kill, so that the trail's head read just before the start
        // signal counts exactly the records written under load.
        let go = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut writers = Vec::new();
        for w in 0..=USER_WRITERS + GROUP_WRITERS {
            let (socket, go, ready, endpoint) =
                (fx.socket(), go.clone(), ready_tx.clone(), endpoint.clone());
            writers.push(std::thread::spawn(move || {
                let link = writer_link(&socket, &ready, &go);
                if w < USER_WRITERS {
                    user_writer(link, round, w)
                } else if w < USER_WRITERS + GROUP_WRITERS {
                    group_writer(link, round, w, &endpoint)
                } else {
                    rotation_writer(link)
                }
            }));
        }
        for _ in 0..writers.len() {
            ready_rx
                .recv_timeout(Duration::from_secs(120))
                .expect("every writer logged in");
        }
        let records_before = console.ok(&Request::AuditVerify)["head_seq"]
            .as_u64()
            .expect("head_seq");
        let db_bytes = console.ok(&Request::Status)["store"]["size_bytes"]
            .as_u64()
            .expect("size_bytes");
        go.store(true, Ordering::SeqCst);
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        let killed_log = daemon.log.clone();
        daemon.kill9();
        let window_ms = t0.elapsed().as_millis();
        drop(console);
        let mut tally = Tally::default();
        let mut acknowledged = Vec::new();
        for writer in writers {
            let log = writer.join().expect("writer thread");
            let t = model.apply(&log, round, &mut findings);
            tally.acked += t.acked;
            tally.refused += t.refused;
            tally.in_flight += t.in_flight;
            acknowledged.extend(
                log.into_iter()
                    .filter(|s| matches!(s.answer, Answer::Ok(_)))
                    .map(|s| s.op),
            );
        }
        figures.push(RoundFigures {
            kill_after_ms,
            window_ms,
            tally,
            records_before,
            db_bytes,
            ..RoundFigures::default()
        });
        last_kill = Some((killed_log, records_before + 1, acknowledged));
    }

    let (code, out) = fx.verify();
    assert_eq!(code, Some(0), "final offline verify: {out}");

    let acked: usize = figures.iter().map(|f| f.tally.acked).sum();
    let in_flight: usize = figures.iter().map(|f| f.tally.in_flight).sum();
    let records: u64 = figures
        .iter()
        .map(|f| f.records_after_kill.saturating_sub(f.records_before))
        .sum();
    let window_ms: u128 = figures.iter().map(|f| f.window_ms).sum();
    println!("\n{}", summary(&figures));
    println!(
        "total: {acked} acknowledged writes and {records} audit records in {window_ms} ms of writing \
         ({} records/s); {in_flight} requests in flight at the kills; {} users, {} groups and {} rotation \
         jobs checked after every restart; nothing acknowledged was lost, no trail failed to verify; \
         the final trail holds {} records; {:.1} s in all",
        u128::from(records) * 1000 / window_ms.max(1),
        model.users.len(),
        model.groups.len(),
        model.jobs.len(),
        offline_records(&out).unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
}
