#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "tests: a step that fails is a failed test, reported where it happened"
)]
//! AWS KMS faults: throttling and 5xx answers are retried with backoff, and each retry shows in
//! the job log. The daemon talks to a small fault-injecting HTTP proxy on loopback, written
//! here with std::net only. It forwards every request to the real KMS peer (LocalStack's KMS)
//! except the ones a rule picks; those it answers itself with the fault, because the real peer
//! cannot be made to throttle or to fail on demand. What AWS holds is checked through
//! aws-sdk-kms directly against the real peer, never through the proxy or Keyward's own
//! bookkeeping. Each test works in its own region, so tests never see each other's keys.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keyward_proto::{ErrorCode, Request};
use keyward_tests::{Console, Daemon, Fixture, Kms, fields, kms_endpoint};

// ---- the fault-injecting proxy ----

/// A fault the proxy answers with instead of forwarding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// `400 Bad Request` with `ThrottlingException`, as AWS answers over a rate limit.
    Throttle,
    /// `503 Service Unavailable` with `ServiceUnavailableException`.
    Unavailable,
}

impl Fault {
    fn response(self) -> Vec<u8> {
        let (status, body) = match self {
            Self::Throttle => (
                "400 Bad Request",
                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            ),
            Self::Unavailable => (
                "503 Service Unavailable",
                r#"{"__type":"ServiceUnavailableException","message":"try later"}"#,
            ),
        };
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nx-amzn-RequestId: keyward-fault-proxy\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

/// Answer requests whose `X-Amz-Target` is `target` with `fault`, `times` times (`None`:
/// always); a rule used up forwards again.
struct Rule {
    target: &'static str,
    fault: Fault,
    times: Option<usize>,
}

/// One request the proxy received.
#[derive(Clone, Debug)]
struct Seen {
    /// `X-Amz-Target`, e.g. `TrentService.CreateKey`.
    target: String,
    /// When its headers had arrived.
    at: Instant,
    /// The fault it was answered with; `None`: forwarded to the peer.
    fault: Option<Fault>,
}

#[derive(Default)]
struct ProxyState {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
}

/// An HTTP/1.1 proxy on 127.0.0.1: one request per connection (every answer says
/// `Connection: close`), a thread per connection.
struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy in front of `peer` (`http://127.0.0.1:PORT`).
    fn start(peer: &str, rules: Vec<Rule>) -> Self {
        let peer = peer
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the KMS peer {peer} is not an http:// URL"))
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(Mutex::new(ProxyState {
            rules,
            seen: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopped) = (state.clone(), stop.clone());
        let acceptor = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                for client in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let (peer, state) = (peer.clone(), shared.clone());
                    let _ = std::thread::Builder::new()
                        .name("fault-proxy-conn".into())
                        .spawn(move || {
                            if let Err(e) = serve(client, &peer, &state) {
                                eprintln!("fault proxy: {e}");
                            }
                        });
                }
            })
            .expect("proxy thread");
        Self {
            addr,
            state,
            stop,
            acceptor: Some(acceptor),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request with this target so far, in arrival order.
    fn seen(&self, target: &str) -> Vec<Seen> {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.target == target)
            .cloned()
            .collect()
    }

    /// Every request so far, as `target (fault)` lines, for failure messages.
    fn summary(&self) -> String {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .map(|s| format!("{} {:?}", s.target, s.fault))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// An HTTP/1.1 message head: the start line and the header lines, without line ends.
struct Head {
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    /// Reads up to the blank line; `None` if the stream ended before a start line.
    fn read(reader: &mut impl BufRead) -> std::io::Result<Option<Self>> {
        let mut start = String::new();
        if reader.read_line(&mut start)? == 0 {
            return Ok(None);
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the stream ended inside the headers",
                ));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("bad header line {line:?}"),
                )
            })?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        Ok(Some(Self {
            start: start.trim_end_matches(['\r', '\n']).to_owned(),
            headers,
        }))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> std::io::Result<Option<usize>> {
        self.get("Content-Length")
            .map(|v| {
                v.parse().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("bad Content-Length {v:?}"),
                    )
                })
            })
            .transpose()
    }

    /// The head as sent on, with `Connection: close` in place of the connection headers.
    fn closing(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.start);
        for (name, value) in &self.headers {
            if ["connection", "keep-alive", "proxy-connection"]
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
            {
                continue;
            }
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("Connection: close\r\n\r\n");
        out.into_bytes()
    }
}

/// One client connection: one request, answered with a fault or relayed from the peer.
fn serve(client: TcpStream, peer: &str, state: &Mutex<ProxyState>) -> std::io::Result<()> {
    let timeout = Some(Duration::from_secs(60));
    client.set_read_timeout(timeout)?;
    client.set_write_timeout(timeout)?;
    let mut reader = BufReader::new(client.try_clone()?);
    let Some(head) = Head::read(&mut reader)? else {
        return Ok(());
    };
    let mut body = vec![0; head.content_length()?.unwrap_or(0)];
    reader.read_exact(&mut body)?;
    let target = head.get("X-Amz-Target").unwrap_or_default().to_owned();

    let fault = {
        let mut state = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fault = state
            .rules
            .iter_mut()
            .find(|r| r.target == target && r.times != Some(0))
            .map(|r| {
                if let Some(n) = r.times.as_mut() {
                    *n -= 1;
                }
                r.fault
            });
        state.seen.push(Seen {
            target,
            at: Instant::now(),
            fault,
        });
        fault
    };

    let mut client = client;
    let answer = match fault {
        Some(fault) => fault.response(),
        None => forward(peer, &head, &body)?,
    };
    client.write_all(&answer)?;
    client.flush()?;
    let _ = client.shutdown(Shutdown::Write);
    Ok(())
}

/// Sends the request to the peer on a new connection and returns its whole response, with
/// `Connection: close`.
fn forward(peer: &str, head: &Head, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut upstream = TcpStream::connect(peer)?;
    let timeout = Some(Duration::from_secs(60));
    upstream.set_read_timeout(timeout)?;
    upstream.set_write_timeout(timeout)?;
    let mut request = head.closing();
    request.extend_from_slice(body);
    upstream.write_all(&request)?;
    upstream.flush()?;

    let mut reader = BufReader::new(upstream);
    let response = Head::read(&mut reader)?.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the KMS peer closed without answering",
        )
    })?;
    let mut answer = response.closing();
    match response.content_length()? {
        Some(n) => {
            let mut rest = vec![0; n];
            reader.read_exact(&mut rest)?;
            answer.extend_from_slice(&rest);
        }
        // Chunked or delimited by the close: relayed as it comes, until the peer closes.
        None => {
            reader.read_to_end(&mut answer)?;
        }
    }
    Ok(answer)
}

// ---- the appliance ----

struct Setup {
    _fx: Fixture,
    _daemon: Daemon,
    console: Console,
    kms: Kms,
    region: &'static str,
    proxy: FaultProxy,
}

impl Setup {
    /// An initialised appliance, running, with credential `prod` imported, and a proxy with
    /// these rules in front of the KMS peer.
    fn new(region: &'static str, rules: Vec<Rule>) -> Self {
        let kms = Kms::new(region);
        let proxy = FaultProxy::start(&kms_endpoint(), rules);
        let fx = Fixture::new();
        fx.init_ok();
        let daemon = fx.start();
        let mut console = daemon.admins();
        let csv = fx.credentials_csv();
        console.ok(&Request::CredentialImport {
            name: "prod".into(),
            path: csv.display().to_string(),
        });
        Self {
            _fx: fx,
            _daemon: daemon,
            console,
            kms,
            region,
            proxy,
        }
    }

    /// A group whose KMS endpoint is the proxy.
    fn create_group(&mut self, name: &str, alias: &str) {
        let endpoint = self.proxy.url();
        self.console.ok(&Request::GroupCreate {
            name: name.into(),
            fields: fields(&[
                ("credential", "prod"),
                ("region", self.region),
                ("endpoint", &endpoint),
                ("alias", alias),
            ]),
        });
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

/// Each retry waited on the wire at least the time its log line announced: request N+1
/// reached the proxy at least `wait_ms` after request N.
fn assert_backoff_on_the_wire(seen: &[Seen], retries: &[RetryLine]) {
    assert_eq!(seen.len(), retries.len() + 1, "{seen:?}\n{retries:?}");
    for (pair, retry) in seen.windows(2).zip(retries) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            retry.wait_ms > 0,
            "a retry without backoff: {:?}",
            retry.line
        );
        assert!(
            gap >= Duration::from_millis(retry.wait_ms),
            "retry {} came {gap:?} after the previous attempt, but the log says it waited {} ms",
            retry.number,
            retry.wait_ms
        );
    }
}

/// The `keyward:key-id` tag of a KMS key (the Keyward key it holds), read from the peer.
fn keyward_tag(kms: &Kms, key: &str) -> Option<String> {
    kms.run(kms.client.list_resource_tags().key_id(key).send())
        .expect("ListResourceTags")
        .tags()
        .iter()
        .find(|t| t.tag_key() == "keyward:key-id")
        .map(|t| t.tag_value().to_owned())
}

/// The keys in the region that were not there before, each with its Keyward tag; the job's
/// Keyward key (`job_key`) must be on exactly one of them and on no older key.
fn new_keys_of_job(kms: &Kms, before: &[String], job_key: &str) -> Vec<(String, Option<String>)> {
    let after = kms.key_ids();
    let new: Vec<(String, Option<String>)> = after
        .iter()
        .filter(|k| !before.contains(k))
        .map(|k| (k.clone(), keyward_tag(kms, k)))
        .collect();
    let of_job = new
        .iter()
        .filter(|(_, tag)| tag.as_deref() == Some(job_key))
        .count();
    assert_eq!(
        of_job, 1,
        "exactly one KMS key holds the job's key {job_key}; new keys: {new:?}"
    );
    for old in before {
        assert_ne!(keyward_tag(kms, old).as_deref(), Some(job_key), "{old}");
    }
    new
}

/// Index of the first log line containing `needle`.
fn position(log: &[String], needle: &str) -> usize {
    log.iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in the job log:\n{}", log.join("\n")))
}

// ---- tests ----

#[test]
fn throttling_that_eases_is_retried_with_backoff_and_the_rotation_makes_one_key() {
    let mut s = Setup::new(
        "us-east-2",
        vec![Rule {
            target: "TrentService.CreateKey",
            fault: Fault::Throttle,
            times: Some(2),
        }],
    );
    s.create_group("throttled", "alias/throttled");
    let before = s.kms.key_ids();

    let job = s.console.rotate("throttled");
    let started = Instant::now();
    let outcome = s.console.wait(job);
    let took = started.elapsed();
    let log = s.console.job_log(job);
    let view = outcome.unwrap_or_else(|e| {
        panic!(
            "job {job} failed: {e}\n{}\nproxy saw:\n{}",
            log.join("\n"),
            s.proxy.summary()
        )
    });

    // The job log: two throttled CreateKey calls, retried as 1 and 2 of 5, inside the
    // create-key step; nothing else was retried.
    let retries = retry_lines(&log);
    assert_eq!(retries.len(), 2, "two retries:\n{}", log.join("\n"));
    for (i, r) in retries.iter().enumerate() {
        assert_eq!(r.op, "CreateKey", "{}", r.line);
        assert!(
            r.line.contains("throttled (ThrottlingException)"),
            "{}",
            r.line
        );
        assert_eq!(r.number, u32::try_from(i).unwrap() + 1, "{}", r.line);
        assert_eq!(r.of, 5, "{}", r.line);
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
    let creates = s.proxy.seen("TrentService.CreateKey");
    let faults: Vec<Option<Fault>> = creates.iter().map(|c| c.fault).collect();
    assert_eq!(
        faults,
        [Some(Fault::Throttle), Some(Fault::Throttle), None],
        "proxy saw:\n{}",
        s.proxy.summary()
    );
    assert_backoff_on_the_wire(&creates, &retries);
    let backoff: u64 = retries.iter().map(|r| r.wait_ms).sum();
    assert!(
        took >= Duration::from_millis(backoff),
        "the job took {took:?}, less than its {backoff} ms of backoff"
    );

    // AWS holds exactly one new key, Enabled, with the alias; it is the job's key. (A new
    // key of another Keyward key means some other test works in this region.)
    let job_key = view["key"].as_str().expect("the job's key").to_owned();
    let new = new_keys_of_job(&s.kms, &before, &job_key);
    assert_eq!(
        new.len(),
        1,
        "exactly one new KMS key in the region: {new:?}"
    );
    let new = new[0].0.clone();
    assert_eq!(
        s.kms.alias_target("alias/throttled").as_deref(),
        Some(new.as_str()),
        "the alias points at the new key"
    );
    assert_eq!(view["aws_key_id"], new.as_str(), "{view}");
    let meta = s.kms.describe(&new);
    assert_eq!(meta.key_state().unwrap().as_str(), "Enabled");
    assert_eq!(meta.origin().unwrap().as_str(), "EXTERNAL");

    // One audited CreateKey call (its retries are not separate calls), and it succeeded.
    assert_eq!(
        s.console.audit_outcomes("kms.CreateKey", job),
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
    let mut s = Setup::new(
        "ap-south-1",
        vec![Rule {
            target: "TrentService.GetParametersForImport",
            fault: Fault::Unavailable,
            times: None,
        }],
    );
    s.create_group("outage", "alias/outage");
    let before = s.kms.key_ids();

    let job = s.console.rotate("outage");
    let started = Instant::now();
    let outcome = s.console.wait(job);
    let took = started.elapsed();
    let log = s.console.job_log(job);
    let Err(e) = outcome else {
        panic!(
            "job {job} should have failed:\n{}\nproxy saw:\n{}",
            log.join("\n"),
            s.proxy.summary()
        );
    };

    // The failure: job-failed, naming the call, what went wrong, where, and the attempts.
    assert_eq!(e.code, ErrorCode::JobFailed, "{e}");
    for needle in [
        "GetParametersForImport",
        "cannot reach AWS KMS",
        s.proxy.url().as_str(),
        "after 6 attempts",
        "HTTP 503",
    ] {
        assert!(e.message.contains(needle), "no {needle:?} in: {e}");
    }

    // The job log: five retries of GetParametersForImport, 1 to 5 of 5, then the failure.
    let retries = retry_lines(&log);
    assert_eq!(retries.len(), 5, "five retries:\n{}", log.join("\n"));
    for (i, r) in retries.iter().enumerate() {
        assert_eq!(r.op, "GetParametersForImport", "{}", r.line);
        assert!(r.line.contains("HTTP 503"), "{}", r.line);
        assert_eq!(r.number, u32::try_from(i).unwrap() + 1, "{}", r.line);
        assert_eq!(r.of, 5, "{}", r.line);
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
    let params = s.proxy.seen("TrentService.GetParametersForImport");
    assert!(
        params.iter().all(|p| p.fault == Some(Fault::Unavailable)),
        "{params:?}"
    );
    assert_backoff_on_the_wire(&params, &retries);
    for later in ["TrentService.ImportKeyMaterial", "TrentService.CreateAlias"] {
        assert!(s.proxy.seen(later).is_empty(), "{later} after the failure");
    }
    let backoff: u64 = retries.iter().map(|r| r.wait_ms).sum();
    assert!(
        took >= Duration::from_millis(backoff),
        "the job took {took:?}, less than its {backoff} ms of backoff"
    );

    // AWS: the one key the job created waits without material, and no alias was made.
    let shown = s.console.ok(&Request::JobShow { id: job });
    assert_eq!(shown["state"], "failed", "{shown}");
    let job_key = shown["key"].as_str().expect("the job's key").to_owned();
    let new = new_keys_of_job(&s.kms, &before, &job_key);
    assert_eq!(
        new.len(),
        1,
        "exactly one new KMS key in the region: {new:?}"
    );
    let new = new[0].0.clone();
    assert_eq!(shown["aws_key_id"], new.as_str(), "{shown}");
    assert_eq!(
        s.kms.describe(&new).key_state().unwrap().as_str(),
        "PendingImport"
    );
    assert_eq!(s.kms.alias_target("alias/outage"), None);
    eprintln!(
        "5xx: job {job} failed after {took:?} with {backoff} ms of backoff: {:?}",
        retries.iter().map(|r| r.wait_ms).collect::<Vec<_>>()
    );
}
