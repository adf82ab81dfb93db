//! The local console socket: a Unix socket, mode 0600, that only allowed uids may use. One JSON
//! request per line, one JSON response per line. A connection with nobody logged in that says
//! nothing is closed after `console.idle_timeout`; a request line must be complete within
//! `console.line_timeout` of its first byte; when every slot is taken, the connection that has
//! waited longest with nobody logged in gives way to a new one (`slots`). A client that reads
//! none of its answers is let go after `front::WRITE_TIMEOUT`.

mod slots;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use keyward_proto::{
    ApiError, ErrorCode, FrameError, Request, Response, WipingReader, encode_json, read_line,
    wipe_json,
};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use crate::api::Api;
use crate::api::session::Session;
use crate::domain::audit::Channel;
use crate::domain::duration;
use crate::error::{Error, Result};
use crate::front::{Unsent, WRITE_TIMEOUT, send, stopping};
use slots::{Slot, Slots};

/// Connections served at once; when all are taken, one that logs nobody in gives way.
const MAX_CONNECTIONS: usize = 16;

/// Binds the console socket with mode 0600, replacing a stale socket file but never a live one.
pub fn bind(path: &Path) -> Result<UnixListener> {
    let shown = path.display();
    if let Some(parent) = path.parent() {
        if !parent.exists() {
            crate::secret_file::create_private_dir(parent, "console socket directory")?;
        }
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(Error::Invalid(format!(
                "console socket {shown} exists and is not a socket; move it away"
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Error::Invalid(format!(
                "another keywardd is serving the console socket {shown}"
            )));
        }
        std::fs::remove_file(path)
            .map_err(|e| Error::Invalid(format!("remove stale console socket {shown}: {e}")))?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| Error::Invalid(format!("bind console socket {shown}: {e}")))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::Invalid(format!("chmod console socket {shown}: {e}")))?;
    Ok(listener)
}

/// How long the console waits for a connection's next request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A connection with nobody logged in that sends nothing this long is closed
    /// (`console.idle_timeout`).
    pub idle: Duration,
    /// A request line, once begun, must be complete within this (`console.line_timeout`).
    pub line: Duration,
    /// `auth.idle_timeout`: a logged-in connection quiet this long may give way to a new one.
    pub session_idle: Duration,
}

/// Serves console connections until `shutdown` turns true, then waits for them to finish.
pub async fn serve(
    listener: UnixListener,
    api: Api,
    allowed_uids: Vec<u32>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Slots::new(MAX_CONNECTIONS, limits.session_idle);
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            () = stopping(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => { warn!(error = %e, "console accept failed"); continue; }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let slot = tokio::select! {
            () = stopping(&mut shutdown) => break,
            slot = slots.admit() => slot,
        };
        let (api, allowed, shutdown) = (api.clone(), allowed_uids.clone(), shutdown.clone());
        connections.spawn(async move {
            connection(stream, slot, api, &allowed, limits, shutdown).await;
        });
    }
    while connections.join_next().await.is_some() {}
}

/// What came of waiting for a connection's next request.
enum Next {
    Line(std::result::Result<Option<Zeroizing<String>>, FrameError>),
    /// Nothing arrived within `console.idle_timeout`, with nobody logged in.
    Silent,
    /// A line began but was not complete within `console.line_timeout`.
    Unfinished,
}

/// Waits for the next request line: for its first byte (at most `idle`, if given), then for
/// the rest (at most `line`). Either wait may be abandoned; the connection closes then.
async fn next_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    idle: Option<Duration>,
    line: Duration,
) -> Next {
    let first = async { reader.fill_buf().await.map(|_| ()) };
    let first = match idle {
        Some(idle) => match tokio::time::timeout(idle, first).await {
            Ok(first) => first,
            Err(_) => return Next::Silent,
        },
        None => first.await,
    };
    if let Err(e) = first {
        return Next::Line(Err(e.into()));
    }
    match tokio::time::timeout(line, read_line(reader)).await {
        Ok(read) => Next::Line(read),
        Err(_) => Next::Unfinished,
    }
}

/// Why a connection ended, for the logout record.
enum Closed {
    /// The client hung up, sent what cannot be framed, or the daemon stops.
    Normally,
    /// Closed for its silence or its half-written line.
    TimedOut,
    /// It gave its slot to a new connection.
    MadeRoom,
    /// It read none of its answers for `front::WRITE_TIMEOUT`.
    Stalled,
}

async fn connection(
    stream: UnixStream,
    slot: Slot,
    api: Api,
    allowed: &[u32],
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let uid = match stream.peer_cred() {
        Ok(cred) => cred.uid(),
        Err(e) => {
            warn!(error = %e, "console peer credentials unavailable; closing");
            return;
        }
    };
    let (read, mut write) = stream.into_split();
    if !allowed.contains(&uid) {
        warn!(
            uid,
            "console connection from a uid that is not allowed; refused"
        );
        let refusal = ApiError::new(
            ErrorCode::Permission,
            format!("uid {uid} may not use the console socket; see console.allowed_uids"),
        );
        if let Ok(line) = encode_json(&Response::err(refusal)) {
            let _ = send(&mut write, &line, &mut shutdown).await;
        }
        return;
    }
    debug!(uid, "console connected");
    let mut session = Session::new(Channel::Console, format!("console uid {uid}"));
    // Wiped as it is consumed: request lines carry passwords.
    let mut reader = WipingReader::new(read);
    let closed = loop {
        let logged_in = !session.users().is_empty();
        slot.waiting(logged_in);
        // A logged-in connection is not closed for its silence: its users are logged out
        // after auth.idle_timeout, at their next request.
        let idle = (!logged_in).then_some(limits.idle);
        let next = tokio::select! {
            () = stopping(&mut shutdown) => break Closed::Normally,
            () = slot.must_leave() => break Closed::MadeRoom,
            next = next_line(&mut reader, idle, limits.line) => next,
        };
        if !slot.busy() {
            break Closed::MadeRoom;
        }
        let (response, close) = match next {
            Next::Silent => break Closed::TimedOut,
            Next::Unfinished => (
                Response::err(ApiError::new(
                    ErrorCode::Invalid,
                    format!(
                        "request line not complete within {} (console.line_timeout); connection closed",
                        duration::format(limits.line)
                    ),
                )),
                true,
            ),
            Next::Line(Ok(None)) => break Closed::Normally,
            Next::Line(Ok(Some(text))) => match serde_json::from_str::<Request>(&text) {
                // The request gives way to a stop: a `job wait` may take an hour.
                Ok(request) => tokio::select! {
                    () = stopping(&mut shutdown) => break Closed::Normally,
                    response = api.handle(&mut session, request) => (response, false),
                },
                Err(e) => (
                    Response::err(ApiError::new(
                        ErrorCode::Invalid,
                        format!("malformed request: {e}"),
                    )),
                    false,
                ),
            },
            // The rest of an oversized line is still in the stream: answer, then hang up.
            Next::Line(Err(e @ (FrameError::TooLong | FrameError::NotUtf8))) => (
                Response::err(ApiError::new(ErrorCode::Invalid, e.to_string())),
                true,
            ),
            Next::Line(Err(e)) => {
                debug!(error = %e, "console connection ended");
                break Closed::Normally;
            }
        };
        let sent = match encode_json(&response) {
            Ok(line) => send(&mut write, &line, &mut shutdown).await,
            Err(_) => Err(Unsent::Closed),
        };
        // An answer may carry a one-time password: wiped once sent.
        if let Some(mut data) = response.data {
            wipe_json(&mut data);
        }
        match sent {
            Ok(()) if close => break Closed::TimedOut,
            Ok(()) => {}
            Err(Unsent::Stalled) => break Closed::Stalled,
            Err(Unsent::Shutdown | Unsent::Closed) => break Closed::Normally,
        }
    };
    let reason = match closed {
        Closed::Stalled => format!(
            "console connection stalled: nothing could be sent for {}",
            duration::format(WRITE_TIMEOUT)
        ),
        Closed::Normally | Closed::TimedOut | Closed::MadeRoom => {
            "console connection closed".to_owned()
        }
    };
    let made_room = matches!(closed, Closed::MadeRoom);
    let _ = tokio::task::spawn_blocking(move || {
        // Users idle past auth.idle_timeout are logged out as idle, as their next request would.
        if made_room {
            api.expire_idle(&mut session);
        }
        api.logout_all(&mut session, &reason)
    })
    .await;
    drop(slot);
    match closed {
        Closed::Normally => info!(uid, "console disconnected"),
        Closed::TimedOut => info!(uid, "console connection closed: silent or half-written"),
        Closed::MadeRoom => info!(uid, "console connection closed to make room for a new one"),
        Closed::Stalled => warn!(
            uid,
            "console connection closed: the client read none of its answers"
        ),
    }
}
