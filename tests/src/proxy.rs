//! A fault-injecting HTTP proxy for AWS KMS, on loopback, written with std::net only.
//!
//! It forwards every request to a real KMS peer (LocalStack's KMS) except the ones a [`Rule`]
//! picks by `X-Amz-Target`; those it answers itself with a [`Fault`], because the real peer
//! cannot be made to throttle, fail or stall on demand. It can also enforce AWS's published
//! request quotas ([`Quota`]), answering `ThrottlingException` to whatever exceeds them, the
//! way AWS would: a client that paces itself correctly is never throttled.
//!
//! Every request it received is kept as a [`Seen`], for asserting what reached the wire and
//! when. Each connection carries one request (every answer says `Connection: close`); each
//! has its own thread.
//!
//! ```no_run
//! use keyward_tests::proxy::{Fault, FaultProxy, Quota, Rule};
//! let proxy = FaultProxy::start(
//!     "http://127.0.0.1:4566",
//!     vec![Rule::times("TrentService.CreateKey", Fault::Throttle, 2)],
//! );
//! let endpoint = proxy.url(); // give this to the client as its KMS endpoint
//! // ... later: no more faults, but AWS's quotas enforced.
//! proxy.set_rules(Vec::new());
//! proxy.set_quotas(Quota::aws_published());
//! assert_eq!(proxy.throttled(), 0, "{}", proxy.summary());
//! ```

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the proxy waits on a client or the peer before giving up on a connection.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest request head the proxy accepts.
const MAX_HEAD: usize = 64 * 1024;

/// What the proxy does instead of forwarding a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `400 Bad Request` with `{"__type":"ThrottlingException",…}`: AWS's answer over a
    /// request quota.
    Throttle,
    /// `500 Internal Server Error` with `KMSInternalException`, KMS's own 500.
    InternalError,
    /// `503 Service Unavailable` with `ServiceUnavailableException`.
    Unavailable,
    /// The request is not read and the socket is closed: with unread data in its receive
    /// queue, the kernel answers with a TCP RST (connection reset by peer), not a FIN. The
    /// request never reaches the peer.
    Reset,
    /// The request is read and held this long without an answer, then the connection is
    /// closed. Longer than the client's call timeout, the client gives up first. The request
    /// never reaches the peer.
    Stall(Duration),
    /// The request is forwarded (the peer acts on it), but the peer's answer is held this
    /// long and then dropped with the connection: AWS did the work and the client never
    /// heard. Longer than the client's call timeout, the client gives up first.
    LostAnswer(Duration),
}

impl Fault {
    /// The HTTP answer, for the faults that have one.
    fn response(self) -> Option<Vec<u8>> {
        let (status, body) = match self {
            Self::Throttle => (
                "400 Bad Request",
                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            ),
            Self::InternalError => (
                "500 Internal Server Error",
                r#"{"__type":"KMSInternalException","message":"internal error (fault proxy)"}"#,
            ),
            Self::Unavailable => (
                "503 Service Unavailable",
                r#"{"__type":"ServiceUnavailableException","message":"try later"}"#,
            ),
            Self::Reset | Self::Stall(_) | Self::LostAnswer(_) => return None,
        };
        Some(
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nx-amzn-RequestId: keyward-fault-proxy\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }
}

/// Answer requests whose `X-Amz-Target` is `target` (e.g. `TrentService.CreateKey`) with
/// `fault`, `times` times (`None`: always). A rule that is used up lets requests through
/// again; the first rule that matches and is not used up applies.
#[derive(Clone, Debug)]
pub struct Rule {
    pub target: String,
    pub fault: Fault,
    pub times: Option<usize>,
}

impl Rule {
    /// The first `n` requests to `target` get `fault`; later ones go through.
    pub fn times(target: impl Into<String>, fault: Fault, n: usize) -> Self {
        Self {
            target: target.into(),
            fault,
            times: Some(n),
        }
    }

    /// Every request to `target` gets `fault`, until the rules change.
    pub fn always(target: impl Into<String>, fault: Fault) -> Self {
        Self {
            target: target.into(),
            fault,
            times: None,
        }
    }
}

/// A request quota AWS enforces per account and region: at most `calls` requests to any of
/// `targets` per `per`.
#[derive(Clone, Debug)]
pub struct Quota {
    /// For messages, e.g. `GetParametersForImport`.
    pub name: String,
    /// The `X-Amz-Target`s that share this quota.
    pub targets: Vec<String>,
    pub calls: usize,
    pub per: Duration,
}

/// A request counts against an earlier one in its quota's window only if it arrived less than
/// this fraction of the period after it. AWS counts arrivals at its end, after network and
/// scheduling jitter; a client that spaced its requests exactly one period apart may see two
/// of them arrive a few milliseconds closer than that. The 5 % slack (200 ms of a 4 s window,
/// 50 ms of a 1 s one) keeps such jitter from being read as a quota breach, while a client
/// that does not pace at all (requests milliseconds apart) is still throttled.
pub const QUOTA_TOLERANCE: f64 = 0.95;

impl Quota {
    fn new(name: &str, targets: &[&str], calls: usize, per: Duration) -> Self {
        Self {
            name: name.to_owned(),
            targets: targets
                .iter()
                .map(|op| format!("TrentService.{op}"))
                .collect(),
            calls,
            per,
        }
    }

    /// AWS's published KMS request quotas for the calls a rotation makes:
    /// GetParametersForImport 1 per 4 s; ImportKeyMaterial, CreateKey, the alias calls
    /// (CreateAlias, UpdateAlias and DeleteAlias, counted together) and PutKeyPolicy 5 per
    /// second each.
    pub fn aws_published() -> Vec<Self> {
        let second = Duration::from_secs(1);
        vec![
            Self::new(
                "GetParametersForImport",
                &["GetParametersForImport"],
                1,
                Duration::from_secs(4),
            ),
            Self::new("ImportKeyMaterial", &["ImportKeyMaterial"], 5, second),
            Self::new("CreateKey", &["CreateKey"], 5, second),
            Self::new(
                "alias",
                &["CreateAlias", "UpdateAlias", "DeleteAlias"],
                5,
                second,
            ),
            Self::new("PutKeyPolicy", &["PutKeyPolicy"], 5, second),
        ]
    }
}

/// One request the proxy received.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `X-Amz-Target`, e.g. `TrentService.CreateKey`.
    pub target: String,
    /// When its headers had arrived.
    pub at: Instant,
    /// The fault it was answered with; `None`: forwarded to the peer.
    pub fault: Option<Fault>,
    /// It was throttled because it exceeded a [`Quota`] (`fault` is then `Throttle`).
    pub over_quota: bool,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    quotas: Vec<Quota>,
    /// Admitted arrivals per (access key and region, quota index), oldest first.
    windows: HashMap<(String, usize), VecDeque<Instant>>,
    throttled: usize,
    seen: Vec<Seen>,
}

impl State {
    /// The fault for a request that arrived `now`, if any; records it as seen.
    fn decide(&mut self, target: &str, scope: &str, now: Instant) -> Option<Fault> {
        let ruled = self
            .rules
            .iter_mut()
            .find(|r| r.target == target && r.times != Some(0))
            .map(|r| {
                if let Some(n) = r.times.as_mut() {
                    *n -= 1;
                }
                r.fault
            });
        let over_quota = ruled.is_none() && !self.admit(target, scope, now);
        if over_quota {
            self.throttled += 1;
        }
        let fault = if over_quota {
            Some(Fault::Throttle)
        } else {
            ruled
        };
        self.seen.push(Seen {
            target: target.to_owned(),
            at: now,
            fault,
            over_quota,
        });
        fault
    }

    /// Whether the quotas let this request through; an admitted one takes its slot.
    fn admit(&mut self, target: &str, scope: &str, now: Instant) -> bool {
        let Some((index, quota)) = self
            .quotas
            .iter()
            .enumerate()
            .find(|(_, q)| q.targets.iter().any(|t| t == target))
        else {
            return true;
        };
        let window = quota.per.mul_f64(QUOTA_TOLERANCE);
        let arrivals = self.windows.entry((scope.to_owned(), index)).or_default();
        while arrivals
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            arrivals.pop_front();
        }
        if arrivals.len() >= quota.calls {
            return false;
        }
        arrivals.push_back(now);
        true
    }
}

/// The listener and the thread accepting on it.
struct Acceptor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// An HTTP/1.1 proxy on 127.0.0.1 in front of a KMS peer. Dropping it stops the listener;
/// connections being served finish on their own threads.
pub struct FaultProxy {
    addr: SocketAddr,
    peer: String,
    state: Arc<Mutex<State>>,
    acceptor: Mutex<Option<Acceptor>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FaultProxy {
    /// A proxy on a free loopback port in front of `peer_url` (`http://127.0.0.1:PORT`), with
    /// these rules and no quotas.
    pub fn start(peer_url: &str, rules: Vec<Rule>) -> Self {
        let peer = peer_url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the KMS peer {peer_url} is not an http:// URL"))
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(Mutex::new(State {
            rules,
            ..State::default()
        }));
        let acceptor = accept_on(listener, peer.clone(), state.clone());
        Self {
            addr,
            peer,
            state,
            acceptor: Mutex::new(Some(acceptor)),
        }
    }

    /// `http://127.0.0.1:PORT`: the KMS endpoint to give the client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the rules (used-up counts start afresh). Requests already being answered
    /// keep the answer they got.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        lock(&self.state).rules = rules;
    }

    /// Enforces these quotas from now on (an empty list: none), per access key and region
    /// (read from the request's SigV4 credential scope). Rules apply first: a request a rule
    /// answers does not count against a quota. Only admitted requests take a slot.
    pub fn set_quotas(&self, quotas: Vec<Quota>) {
        let mut state = lock(&self.state);
        state.quotas = quotas;
        state.windows.clear();
    }

    /// How many requests were throttled for exceeding a quota (rule faults not included).
    pub fn throttled(&self) -> usize {
        lock(&self.state).throttled
    }

    /// Every request with this `X-Amz-Target` so far, in arrival order.
    pub fn seen(&self, target: &str) -> Vec<Seen> {
        lock(&self.state)
            .seen
            .iter()
            .filter(|s| s.target == target)
            .cloned()
            .collect()
    }

    /// Every request so far, in arrival order.
    pub fn all_seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }

    /// Every request so far, one `target fault` line each (`over quota` marked), for failure
    /// messages.
    pub fn summary(&self) -> String {
        let state = lock(&self.state);
        let Some(first) = state.seen.first().map(|s| s.at) else {
            return "(no requests)".into();
        };
        state
            .seen
            .iter()
            .map(|s| {
                format!(
                    "+{:>6} ms {} {}{}",
                    s.at.duration_since(first).as_millis(),
                    s.target,
                    s.fault
                        .map_or_else(|| "forwarded".to_owned(), |f| format!("{f:?}")),
                    if s.over_quota { " (over quota)" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Closes the listening socket: from now on connections to [`Self::url`] are refused
    /// (the kernel answers their SYN with a RST), until [`Self::reopen`].
    pub fn refuse(&self) {
        if let Some(acceptor) = lock(&self.acceptor).take() {
            acceptor.stop.store(true, Ordering::SeqCst);
            // Wakes the accept loop so that it sees the flag and drops the listener.
            let _ = TcpStream::connect(self.addr);
            let _ = acceptor.thread.join();
        }
    }

    /// Listens again on the same port after [`Self::refuse`].
    pub fn reopen(&self) {
        let mut acceptor = lock(&self.acceptor);
        if acceptor.is_none() {
            let listener = TcpListener::bind(self.addr)
                .unwrap_or_else(|e| panic!("listen again on {}: {e}", self.addr));
            *acceptor = Some(accept_on(listener, self.peer.clone(), self.state.clone()));
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.refuse();
    }
}

fn accept_on(listener: TcpListener, peer: String, state: Arc<Mutex<State>>) -> Acceptor {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::Builder::new()
        .name("fault-proxy".into())
        .spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let (peer, state) = (peer.clone(), state.clone());
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
    Acceptor { stop, thread }
}

/// An HTTP/1.1 message head: the start line and the header lines, without line ends.
struct Head {
    start: String,
    headers: Vec<(String, String)>,
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
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
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        Ok(Some(Self {
            start: start.trim_end_matches(['\r', '\n']).to_owned(),
            headers,
        }))
    }

    /// Looks at the request head without taking it off the socket (so that closing the
    /// socket then resets the connection); `None` if the client closed first.
    fn peek(client: &TcpStream) -> std::io::Result<Option<Self>> {
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut buf = vec![0; 4096];
        loop {
            let n = client.peek(&mut buf)?;
            if n == 0 {
                return Ok(None);
            }
            if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
                return Self::read(&mut Cursor::new(&buf[..end + 4]));
            }
            if n == buf.len() {
                if n >= MAX_HEAD {
                    return Err(invalid(format!("a request head over {MAX_HEAD} bytes")));
                }
                buf.resize(n * 2, 0);
            } else if Instant::now() > deadline {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request head did not arrive",
                ));
            } else {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
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
                v.parse()
                    .map_err(|_| invalid(format!("bad Content-Length {v:?}")))
            })
            .transpose()
    }

    /// The SigV4 credential scope's access key and region (`AKID/region`), which AWS's
    /// quotas are counted per; empty if unsigned.
    fn quota_scope(&self) -> String {
        let Some(credential) = self
            .get("Authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split(',').next())
        else {
            return String::new();
        };
        let parts: Vec<&str> = credential.split('/').collect();
        match parts.as_slice() {
            [key, _date, region, ..] => format!("{key}/{region}"),
            _ => credential.to_owned(),
        }
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
fn serve(client: TcpStream, peer: &str, state: &Mutex<State>) -> std::io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let Some(peeked) = Head::peek(&client)? else {
        return Ok(());
    };
    let target = peeked.get("X-Amz-Target").unwrap_or_default().to_owned();
    let fault = lock(state).decide(&target, &peeked.quota_scope(), Instant::now());
    if fault == Some(Fault::Reset) {
        // Nothing was read: closing with the request unread makes the kernel send a RST.
        drop(client);
        return Ok(());
    }

    let mut reader = BufReader::new(client.try_clone()?);
    let Some(head) = Head::read(&mut reader)? else {
        return Ok(());
    };
    let mut body = vec![0; head.content_length()?.unwrap_or(0)];
    reader.read_exact(&mut body)?;

    let answer = match fault {
        Some(Fault::Stall(hold)) => {
            std::thread::sleep(hold);
            return Ok(());
        }
        Some(Fault::LostAnswer(hold)) => {
            forward(peer, &head, &body)?;
            std::thread::sleep(hold);
            return Ok(());
        }
        Some(fault) => fault.response().unwrap_or_default(),
        None => forward(peer, &head, &body)?,
    };
    let mut client = client;
    client.write_all(&answer)?;
    client.flush()?;
    let _ = client.shutdown(Shutdown::Write);
    Ok(())
}

/// Sends the request to the peer on a new connection and returns its whole response, with
/// `Connection: close`.
fn forward(peer: &str, head: &Head, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut upstream = TcpStream::connect(peer)?;
    upstream.set_read_timeout(Some(IO_TIMEOUT))?;
    upstream.set_write_timeout(Some(IO_TIMEOUT))?;
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
