//! Line framing for the console socket (and the serial port's JSON mode): one JSON object per
//! line, at most [`MAX_LINE`] bytes, and every buffer that may hold a password wiped.

use serde::Serialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::{Zeroize, Zeroizing};

/// The largest line either side accepts; longer input is an error, not a buffer to grow.
pub const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("line is not valid UTF-8")]
    NotUtf8,
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
}

/// Appends `more`, moving to a larger buffer when needed: the smaller one is wiped as it is
/// dropped, so a line holding a password leaves no copy behind in freed memory.
fn extend_wiping(buf: &mut Zeroizing<Vec<u8>>, more: &[u8]) {
    if buf.capacity() - buf.len() < more.len() {
        let want = (buf.len() + more.len()).max(buf.capacity() * 2);
        let mut bigger = Zeroizing::new(Vec::with_capacity(want));
        bigger.extend_from_slice(buf);
        *buf = bigger;
    }
    buf.extend_from_slice(more);
}

/// Reads one line of at most [`MAX_LINE`] bytes. `Ok(None)` at end of stream. The line (which
/// may hold a password or a one-time password) is wiped when the caller drops it.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Result<Option<Zeroizing<String>>, FrameError> {
    let mut buf = Zeroizing::new(Vec::new());
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()))
            };
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if buf.len() + chunk.len() > MAX_LINE {
            return Err(FrameError::TooLong);
        }
        extend_wiping(&mut buf, chunk);
        let used = done.unwrap_or(available.len());
        reader.consume(used);
        if done.is_some() {
            return match String::from_utf8(std::mem::take(&mut *buf)) {
                Ok(line) => Ok(Some(Zeroizing::new(line))),
                Err(e) => {
                    e.into_bytes().zeroize();
                    Err(FrameError::NotUtf8)
                }
            };
        }
    }
}

/// A `Write` into a buffer that is wiped, growing as [`extend_wiping`] does.
struct WipingWriter(Zeroizing<Vec<u8>>);

impl std::io::Write for WipingWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        extend_wiping(&mut self.0, bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes `value` as one JSON line and flushes. The serialised line (a login or `passwd`
/// carries passwords) is wiped once written.
pub async fn write_json<W: AsyncWrite + Unpin, T: Serialize>(
    writer: &mut W,
    value: &T,
) -> Result<(), FrameError> {
    let mut line = WipingWriter(Zeroizing::new(Vec::with_capacity(1024)));
    serde_json::to_writer(&mut line, value)?;
    extend_wiping(&mut line.0, b"\n");
    writer.write_all(&line.0).await?;
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Password, Request};

    #[tokio::test]
    async fn oversized_and_non_utf8_lines_are_refused() {
        let long = vec![b'a'; MAX_LINE + 10];
        let mut r = tokio::io::BufReader::new(&long[..]);
        assert!(matches!(read_line(&mut r).await, Err(FrameError::TooLong)));
        let bad: &[u8] = b"\xff\xfe\n";
        let mut r = tokio::io::BufReader::new(bad);
        assert!(matches!(read_line(&mut r).await, Err(FrameError::NotUtf8)));
        let good: &[u8] = b"{\"op\":\"status\"}\nnext\n";
        let mut r = tokio::io::BufReader::new(good);
        let line = |l: Option<Zeroizing<String>>| l.map(|l| l.as_str().to_owned());
        assert_eq!(
            line(read_line(&mut r).await.unwrap()).as_deref(),
            Some("{\"op\":\"status\"}")
        );
        assert_eq!(
            line(read_line(&mut r).await.unwrap()).as_deref(),
            Some("next")
        );
        assert_eq!(line(read_line(&mut r).await.unwrap()), None);
        // A line longer than the first buffer grows (wiping the smaller one) and arrives whole.
        let long = format!("{}\n", "x".repeat(20_000));
        let mut r = tokio::io::BufReader::with_capacity(100, long.as_bytes());
        assert_eq!(
            line(read_line(&mut r).await.unwrap()).map(|l| l.len()),
            Some(20_000)
        );
    }

    #[tokio::test]
    async fn write_json_writes_one_line() {
        let mut out = Vec::new();
        let request = Request::Login {
            user: "alice".into(),
            password: Password::new("p".repeat(3000).as_str()),
        };
        write_json(&mut out, &request).await.unwrap();
        assert_eq!(out.last(), Some(&b'\n'));
        let back: Request = serde_json::from_slice(&out[..out.len() - 1]).unwrap();
        assert_eq!(back, request);
    }
}
