//! The link to `keywardd`: one connection on the console socket, requests answered in order.
//! It runs on a background tokio runtime and reports to the UI thread over a channel; when the
//! daemon goes away it says so and reconnects with backoff. Each answer is decoded here, by the
//! operation of the request it answers, so the UI only ever sees typed replies.

use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::time::Duration;

use keyward_proto::{ApiError, Reply, Request, Response, read_line, write_json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// The state of the connection, as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Up,
    /// The daemon cannot be reached; the next attempt is `retry_in` away.
    Down {
        reason: String,
        retry_in: Duration,
    },
}

/// What the link tells the UI. `T` says what a request was for, so its answer can be read.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one message per answer, moved once into an event: boxing would only add an allocation"
)]
pub enum Incoming<T> {
    Link(Link),
    /// The daemon's answer, typed (or its refusal).
    Reply {
        purpose: T,
        reply: Result<Reply, ApiError>,
    },
    /// The request could not be delivered or answered (the daemon went away).
    Unsent {
        purpose: T,
        reason: String,
    },
    /// A signal (SIGTERM, SIGHUP, SIGINT) asks the console to stop.
    Terminate,
}

/// The UI's end: queue a request; its answer arrives as [`Incoming::Reply`].
pub struct Client<T> {
    queue: UnboundedSender<(T, Request)>,
}

impl<T> Client<T> {
    /// Queues a request. It only fails when the link has stopped, which the UI sees anyway.
    pub fn send(&self, purpose: T, request: Request) -> bool {
        self.queue.send((purpose, request)).is_ok()
    }
}

/// Starts the link on `runtime`; it runs until the returned [`Client`] is dropped.
pub fn start<T: Send + 'static>(
    runtime: &tokio::runtime::Handle,
    socket: PathBuf,
    report: Sender<Incoming<T>>,
) -> Client<T> {
    let (queue, requests) = unbounded_channel();
    runtime.spawn(run(socket, requests, report));
    Client { queue }
}

/// Waits between connection attempts: 250 ms, doubling, at most 5 s.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(5);

    pub fn new() -> Self {
        Self { next: Self::FIRST }
    }
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        wait
    }
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

async fn run<T>(
    socket: PathBuf,
    mut requests: UnboundedReceiver<(T, Request)>,
    report: Sender<Incoming<T>>,
) {
    let mut backoff = Backoff::new();
    loop {
        if report.send(Incoming::Link(Link::Connecting)).is_err() {
            return;
        }
        let reason = match UnixStream::connect(&socket).await {
            Ok(stream) => {
                backoff.reset();
                if report.send(Incoming::Link(Link::Up)).is_err() {
                    return;
                }
                match serve(stream, &mut requests, &report).await {
                    Ended::UiGone => return,
                    Ended::Dropped(reason) => reason,
                }
            }
            Err(e) => format!("cannot connect to {}: {e}", socket.display()),
        };
        let retry_in = backoff.next_wait();
        let down = Link::Down {
            reason: reason.clone(),
            retry_in,
        };
        if report.send(Incoming::Link(down)).is_err() {
            return;
        }
        // While waiting, requests cannot be delivered: say so at once rather than queue them
        // for a session that no longer exists.
        let wait = tokio::time::sleep(retry_in);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                queued = requests.recv() => match queued {
                    None => return,
                    Some((purpose, _request)) => {
                        let unsent = Incoming::Unsent { purpose, reason: reason.clone() };
                        if report.send(unsent).is_err() {
                            return;
                        }
                    }
                },
            }
        }
    }
}

enum Ended {
    UiGone,
    Dropped(String),
}

async fn serve<T>(
    stream: UnixStream,
    requests: &mut UnboundedReceiver<(T, Request)>,
    report: &Sender<Incoming<T>>,
) -> Ended {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let (purpose, request) = tokio::select! {
            queued = requests.recv() => match queued {
                None => return Ended::UiGone,
                Some(next) => next,
            },
            // The daemon never speaks first: anything readable while idle is the connection
            // closing (or a broken peer). `fill_buf` consumes nothing, so it is safe to cancel.
            waiting = reader.fill_buf() => {
                return Ended::Dropped(match waiting {
                    Ok([]) => "the daemon closed the connection".to_string(),
                    Ok(_) => "the daemon sent data nobody asked for".to_string(),
                    Err(e) => format!("connection lost: {e}"),
                });
            }
        };
        let op = request.op();
        let answer = async {
            write_json(&mut write, &request)
                .await
                .map_err(|e| e.to_string())?;
            drop(request);
            let line = read_line(&mut reader)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "the daemon closed the connection".to_string())?;
            serde_json::from_str::<Response>(&line)
                .map_err(|e| format!("the daemon's reply could not be read: {e}"))
        }
        .await;
        match answer {
            Ok(response) => {
                let reply = response.decode(op);
                if report.send(Incoming::Reply { purpose, reply }).is_err() {
                    return Ended::UiGone;
                }
            }
            Err(reason) => {
                let _ = report.send(Incoming::Unsent {
                    purpose,
                    reason: reason.clone(),
                });
                return Ended::Dropped(reason);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn backoff_doubles_up_to_five_seconds_and_resets() {
        let mut b = Backoff::new();
        let waits: Vec<u64> = (0..7).map(|_| b.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_wait(), Duration::from_millis(250));
    }

    /// A fake daemon on a real socket: answers one request, then hangs up; the link reports
    /// the reply, the drop, and connects again.
    #[test]
    fn replies_in_order_then_reports_the_drop_and_reconnects() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sock");
        let listener = rt.block_on(async { tokio::net::UnixListener::bind(&path).unwrap() });
        rt.spawn(async move {
            for _ in 0..2 {
                let (stream, _) = listener.accept().await.unwrap();
                let (r, mut w) = stream.into_split();
                let mut r = BufReader::new(r);
                let line = read_line(&mut r).await.unwrap().unwrap();
                assert_eq!(line.as_str(), r#"{"op":"whoami"}"#);
                w.write_all(
                    b"{\"ok\":true,\"data\":{\"channel\":\"console\",\"users\":[],\"dual_control\":false}}\n",
                )
                .await
                .unwrap();
            }
        });
        let (tx, rx) = channel();
        let client = start(rt.handle(), path, tx);
        let wait = || rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(matches!(wait(), Incoming::Link(Link::Connecting)));
        assert!(matches!(wait(), Incoming::Link(Link::Up)));
        assert!(client.send(7u8, Request::Whoami));
        match wait() {
            Incoming::Reply { purpose, reply } => {
                assert_eq!(purpose, 7);
                assert_eq!(
                    reply,
                    Ok(Reply::Whoami(keyward_proto::SessionInfo {
                        channel: "console".into(),
                        users: Vec::new(),
                        dual_control: false,
                    }))
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(wait(), Incoming::Link(Link::Down { .. })));
        assert!(matches!(wait(), Incoming::Link(Link::Connecting)));
        assert!(matches!(wait(), Incoming::Link(Link::Up)));
    }
}
