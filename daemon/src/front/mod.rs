//! The front ends: each turns its own input into `keyward_proto::Request`s for the one admin
//! service (`crate::api::Api`) and presents its typed replies. None holds business logic or
//! decides who may do what. An HTTPS front end (the XKS proxy, for AWS) joins them here.
//!
//! - `console`: the 0600 Unix socket the local console and scripts use (JSON lines);
//! - `serial`: the operator's serial ports (the command language, text or JSON mode).
//!
//! Both write through [`send`], so no peer can hold up a stop or a front end by not reading:
//! every write gives way to shutdown, and a peer that accepts nothing for [`WRITE_TIMEOUT`] is
//! let go.

pub mod console;
pub mod serial;

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// How long a peer may accept nothing of what a front end writes before it is let go. Any
/// progress counts, so a slow serial line (300 baud drains 30 bytes a second) is never cut off.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why [`send`] did not deliver everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsent {
    /// The daemon is stopping.
    Shutdown,
    /// The peer accepted nothing for [`WRITE_TIMEOUT`] (it stopped reading).
    Stalled,
    /// The connection or line is gone.
    Closed,
}

/// Completes once a stop has been asked for; at once if it already was.
pub async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which happens only after the stop.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Writes all of `bytes` and flushes, giving way to shutdown. Each write must make progress
/// within [`WRITE_TIMEOUT`].
pub async fn send<W: AsyncWrite + Unpin>(
    writer: &mut W,
    bytes: &[u8],
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), Unsent> {
    send_within(writer, bytes, shutdown, WRITE_TIMEOUT).await
}

async fn send_within<W: AsyncWrite + Unpin>(
    writer: &mut W,
    bytes: &[u8],
    shutdown: &mut watch::Receiver<bool>,
    stall: Duration,
) -> Result<(), Unsent> {
    let mut sent = 0;
    while sent < bytes.len() {
        match bounded(writer.write(&bytes[sent..]), shutdown, stall).await? {
            0 => return Err(Unsent::Closed),
            n => sent += n,
        }
    }
    bounded(writer.flush(), shutdown, stall).await
}

async fn bounded<T>(
    io: impl Future<Output = std::io::Result<T>>,
    shutdown: &mut watch::Receiver<bool>,
    stall: Duration,
) -> Result<T, Unsent> {
    tokio::select! {
        biased;
        () = stopping(shutdown) => Err(Unsent::Shutdown),
        done = tokio::time::timeout(stall, io) => match done {
            Err(_) => Err(Unsent::Stalled),
            Ok(Err(_)) => Err(Unsent::Closed),
            Ok(Ok(value)) => Ok(value),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn a_peer_that_stops_reading_is_let_go() {
        let (_stop, mut running) = watch::channel(false);
        // A pipe with room for 64 bytes whose reader never reads.
        let (mut ours, _theirs) = tokio::io::duplex(64);
        let started = std::time::Instant::now();
        let sent = send_within(&mut ours, &[b'x'; 1000], &mut running, STALL).await;
        assert_eq!(sent, Err(Unsent::Stalled));
        assert!(started.elapsed() >= STALL);
    }

    #[tokio::test]
    async fn a_write_that_waits_gives_way_to_a_stop_and_every_later_one_at_once() {
        let (stop, mut stopped) = watch::channel(false);
        let (mut ours, _theirs) = tokio::io::duplex(64);
        let ask = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = stop.send(true);
        };
        let (sent, ()) = tokio::join!(
            send_within(
                &mut ours,
                &[b'x'; 1000],
                &mut stopped,
                Duration::from_secs(60)
            ),
            ask
        );
        assert_eq!(sent, Err(Unsent::Shutdown));
        assert_eq!(
            send(&mut ours, b"x", &mut stopped).await,
            Err(Unsent::Shutdown)
        );
    }

    #[tokio::test]
    async fn a_reader_that_keeps_reading_gets_everything() {
        let (_stop, mut running) = watch::channel(false);
        let (mut ours, mut theirs) = tokio::io::duplex(64);
        let answer = vec![b'x'; 100_000];
        let writer = async {
            let sent = send_within(&mut ours, &answer, &mut running, STALL).await;
            drop(ours);
            sent
        };
        let reader = async {
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut theirs, &mut got)
                .await
                .map(|_| got)
        };
        let (sent, got) = tokio::join!(writer, reader);
        assert_eq!(sent, Ok(()));
        assert_eq!(got.unwrap(), answer);
    }
}
