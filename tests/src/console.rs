//! The console socket as a test drives it: connections with administrators logged in,
//! requests that must succeed or fail, waits for jobs, the audit trail page by page, and the
//! fields the protocol documents.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use keyward_proto::{Request, Response, StatusReport};

use crate::{ADMINS, Daemon};

impl Daemon {
    /// A console connection with `alice` logged in.
    pub fn console(&self) -> Console {
        let mut c = Console::connect(&self.socket);
        c.login(ADMINS[0].0, ADMINS[0].1)
            .into_result()
            .expect("alice logs in on the console");
        c
    }

    /// `status` over the console, as alice (one login record per call).
    pub fn status(&self) -> StatusReport {
        let data = self
            .console()
            .request(&Request::Status)
            .into_result()
            .expect("status ok");
        serde_json::from_value(data).expect("status shape")
    }

    /// A console connection with both standard administrators logged in: two-administrator
    /// requests run directly.
    pub fn admins(&self) -> Console {
        let mut c = self.console();
        c.login(ADMINS[1].0, ADMINS[1].1)
            .into_result()
            .expect("bob logs in on the console");
        c
    }
}

/// One console connection: one session.
pub struct Console {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Console {
    pub fn connect(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket).expect("connect console socket");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        Self {
            writer: stream.try_clone().expect("clone"),
            reader: BufReader::new(stream),
        }
    }

    pub fn request(&mut self, request: &Request) -> Response {
        let mut line = serde_json::to_vec(request).expect("encode");
        line.push(b'\n');
        self.writer.write_all(&line).expect("send");
        read_response(&mut self.reader)
    }

    pub fn login(&mut self, user: &str, password: &str) -> Response {
        self.request(&Request::Login {
            user: user.into(),
            password: keyward_proto::Password::new(password),
        })
    }
}

/// One request on a fresh console connection.
pub fn request_on(socket: &Path, request: &Request) -> Response {
    let mut stream = UnixStream::connect(socket).expect("connect console socket");
    let mut line = serde_json::to_vec(request).expect("encode");
    line.push(b'\n');
    stream.write_all(&line).expect("send");
    read_response(&mut BufReader::new(stream))
}

pub fn read_response(reader: &mut impl BufRead) -> Response {
    let mut text = String::new();
    reader.read_line(&mut text).expect("read response");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad response {text:?}: {e}"))
}

impl Console {
    /// A request that must succeed; returns its data.
    pub fn ok(&mut self, request: &Request) -> serde_json::Value {
        self.request(request)
            .into_result()
            .unwrap_or_else(|e| panic!("{request:?} failed: {e}"))
    }

    /// `group rotate`: queues a rotation and returns its job id.
    pub fn rotate(&mut self, group: &str) -> u64 {
        self.ok(&Request::GroupRotate { name: group.into() })["job"]
            .as_u64()
            .expect("job id")
    }

    /// `job wait` with a two-minute timeout.
    pub fn wait(&mut self, job: u64) -> Result<serde_json::Value, keyward_proto::ApiError> {
        self.request(&Request::JobWait {
            id: job,
            timeout_ms: Some(120_000),
        })
        .into_result()
    }

    /// Every line of a job's log.
    pub fn job_log(&mut self, job: u64) -> Vec<String> {
        self.ok(&Request::JobLog {
            id: job,
            from: None,
        })["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| l.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The outcomes of the audit records of `action` made by job `job`, in order.
    pub fn audit_outcomes(&mut self, action: &str, job: u64) -> Vec<String> {
        let job = job.to_string();
        self.audit_records()
            .iter()
            .filter(|r| r["action"] == action && r["details"]["job"].as_str() == Some(job.as_str()))
            .map(|r| r["outcome"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Every audit record (`audit list` from the first).
    pub fn audit_records(&mut self) -> Vec<serde_json::Value> {
        self.audit_records_from(1)
    }

    /// Every audit record from sequence number `from` on, page by page (the daemon answers at
    /// most 1000 at a time).
    pub fn audit_records_from(&mut self, from: u64) -> Vec<serde_json::Value> {
        let mut all: Vec<serde_json::Value> = Vec::new();
        let mut next = from;
        loop {
            let page = self.ok(&Request::AuditList {
                from: Some(next),
                limit: Some(1000),
            });
            let page = page.as_array().expect("records");
            let Some(last) = page.last() else {
                return all;
            };
            next = last["seq"].as_u64().expect("seq") + 1;
            all.extend(page.iter().cloned());
        }
    }

    /// A request that must fail; returns the error.
    pub fn fails(&mut self, request: &Request) -> keyward_proto::ApiError {
        match self.request(request).into_result() {
            Ok(data) => panic!("{request:?} should have failed, got {data}"),
            Err(e) => e,
        }
    }
}

/// Calls `check` every 200 ms until it gives a value; fails the test after `timeout` with what
/// it last said.
pub fn poll<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "waited {timeout:?} for {what}; last seen: {last}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Milliseconds since the epoch of an RFC 3339 time the daemon printed
/// (`2025-01-02T03:04:05.678Z`).
pub fn rfc3339_ms(text: &str) -> u64 {
    let t = humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    u64::try_from(
        t.duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits")
}

/// The fields issue 4 documents for `group show` / `group list` objects: every field of the
/// one group grammar (the wire test in keyward-proto pins the rest of the view).
pub const GROUP_FIELDS: [&str; 12] = keyward_proto::fields::FIELDS;

/// The fields issue 4 documents for `key list` objects.
pub const KEY_FIELDS: [&str; 10] = [
    "id",
    "group",
    "state",
    "fingerprint",
    "aws_key_id",
    "aws_arn",
    "aws_key_state",
    "alias",
    "created",
    "valid_to",
];

/// Asserts that a JSON object has every documented field (`what` names it in the failure).
pub fn assert_fields(object: &serde_json::Value, fields: &[&str], what: &str) {
    for field in fields {
        assert!(
            object.get(*field).is_some(),
            "{what} lacks {field}: {object}"
        );
    }
}

/// `key=value` pairs for `group create` and `group set`.
pub fn fields(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
