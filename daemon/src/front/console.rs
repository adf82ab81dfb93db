//! The local console socket: a Unix socket, mode 0600, that only allowed uids may use. One JSON
//! request per line, one JSON response per line.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use keyward_proto::{ApiError, ErrorCode, FrameError, Request, Response, read_line, write_json};
use tokio::io::BufReader;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::api::Api;
use crate::api::session::Session;
use crate::domain::audit::Channel;
use crate::error::{Error, Result};

/// More simultaneous console connections than this wait for a free one.
const MAX_CONNECTIONS: usize = 16;

/// Binds the console socket with mode 0600, replacing a stale socket file but never a live one.
pub fn bind(path: &Path) -> Result<UnixListener> {
    let shown = path.display();
    if let Some(parent) = path.parent() {
        if !parent.exists() {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::Invalid(format!(
                    "console socket directory {}: {e}",
                    parent.display()
                ))
            })?;
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700)).map_err(
                |e| {
                    Error::Invalid(format!(
                        "console socket directory {}: {e}",
                        parent.display()
                    ))
                },
            )?;
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

/// Serves console connections until `shutdown` turns true, then waits for them to finish.
pub async fn serve(
    listener: UnixListener,
    api: Api,
    allowed_uids: Vec<u32>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => { warn!(error = %e, "console accept failed"); continue; }
                };
                let Ok(permit) = permits.clone().acquire_owned().await else { break };
                let (api, allowed, shutdown) = (api.clone(), allowed_uids.clone(), shutdown.clone());
                connections.spawn(async move {
                    connection(stream, api, &allowed, shutdown).await;
                    drop(permit);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    while connections.join_next().await.is_some() {}
}

async fn connection(
    stream: UnixStream,
    api: Api,
    allowed: &[u32],
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
        let _ = write_json(&mut write, &Response::err(refusal)).await;
        return;
    }
    debug!(uid, "console connected");
    let mut session = Session::new(Channel::Console, format!("console uid {uid}"));
    let mut reader = BufReader::new(read);
    loop {
        let line = tokio::select! {
            _ = shutdown.changed() => break,
            line = read_line(&mut reader) => line,
        };
        let (response, close) = match line {
            Ok(None) => break,
            Ok(Some(text)) => match serde_json::from_str::<Request>(&text) {
                Ok(request) => (api.handle(&mut session, request).await, false),
                Err(e) => (
                    Response::err(ApiError::new(
                        ErrorCode::Invalid,
                        format!("malformed request: {e}"),
                    )),
                    false,
                ),
            },
            // The rest of an oversized line is still in the stream: answer, then hang up.
            Err(e @ (FrameError::TooLong | FrameError::NotUtf8)) => (
                Response::err(ApiError::new(ErrorCode::Invalid, e.to_string())),
                true,
            ),
            Err(e) => {
                debug!(error = %e, "console connection ended");
                break;
            }
        };
        if write_json(&mut write, &response).await.is_err() || close {
            break;
        }
    }
    let _ = tokio::task::spawn_blocking(move || {
        api.logout_all(&mut session, "console connection closed")
    })
    .await;
    info!(uid, "console disconnected");
}
