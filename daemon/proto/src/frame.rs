//! Line framing for the console socket (and the serial port's JSON mode): one JSON object per
//! line, at most [`MAX_LINE`] bytes, and every buffer that may hold a password wiped.

use std::pin::Pin;
use std::task::{Context, Poll};

use serde::Serialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
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

/// A byte buffer that leaves no copy of what it held: it is wiped when cleared or dropped, and
/// growing moves to a larger buffer, wiping the smaller one. Lines, echo and answers that may
/// hold a password go through one.
#[derive(Default)]
pub struct WipingBuf(Zeroizing<Vec<u8>>);

impl WipingBuf {
    pub fn new() -> Self {
        Self::default()
    }

    /// A buffer that holds `capacity` bytes before it first has to grow.
    pub fn with_capacity(capacity: usize) -> Self {
        Self(Zeroizing::new(Vec::with_capacity(capacity)))
    }

    pub fn extend(&mut self, more: &[u8]) {
        let buf = &mut self.0;
        if buf.capacity() - buf.len() < more.len() {
            let want = (buf.len() + more.len()).max(buf.capacity() * 2);
            let mut bigger = Zeroizing::new(Vec::with_capacity(want));
            bigger.extend_from_slice(buf);
            *buf = bigger;
        }
        buf.extend_from_slice(more);
    }

    pub fn push(&mut self, byte: u8) {
        self.extend(&[byte]);
    }

    /// Removes the last byte, wiping where it was.
    pub fn pop(&mut self) -> Option<u8> {
        let last = self.0.last_mut()?;
        let byte = std::mem::take(last);
        self.0.pop();
        Some(byte)
    }

    /// Empties the buffer and wipes all of it, keeping its capacity.
    pub fn clear(&mut self) {
        self.0.zeroize();
    }

    /// The bytes as text, moved out without a copy, or `None` (and wiped) if they are not
    /// UTF-8. The buffer is left empty.
    pub fn take_string(&mut self) -> Option<Zeroizing<String>> {
        match String::from_utf8(std::mem::take(&mut *self.0)) {
            Ok(text) => Some(Zeroizing::new(text)),
            Err(e) => {
                e.into_bytes().zeroize();
                None
            }
        }
    }
}

impl std::ops::Deref for WipingBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::io::Write for WipingBuf {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.extend(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A buffered reader whose buffer is wiped as it is consumed and when dropped. A request line
/// (which may hold a password) leaves nothing behind in it, as it would in a plain
/// `tokio::io::BufReader`, whose buffer keeps each byte until it happens to be overwritten.
pub struct WipingReader<R> {
    inner: R,
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
    filled: usize,
}

impl<R> WipingReader<R> {
    /// The buffer's size, as `tokio::io::BufReader`'s.
    const CAPACITY: usize = 8 * 1024;

    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: Zeroizing::new(vec![0; Self::CAPACITY]),
            pos: 0,
            filled: 0,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncBufRead for WipingReader<R> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<&[u8]>> {
        let this = self.get_mut();
        if this.pos == this.filled {
            let mut read = ReadBuf::new(&mut this.buf[..]);
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            this.filled = read.filled().len();
            this.pos = 0;
        }
        Poll::Ready(Ok(&this.buf[this.pos..this.filled]))
    }

    fn consume(self: Pin<&mut Self>, amount: usize) {
        let this = self.get_mut();
        let end = (this.pos + amount).min(this.filled);
        this.buf[this.pos..end].zeroize();
        this.pos = end;
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for WipingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let available = std::task::ready!(self.as_mut().poll_fill_buf(cx))?;
        let n = available.len().min(out.remaining());
        out.put_slice(&available[..n]);
        self.consume(n);
        Poll::Ready(Ok(()))
    }
}

/// Reads one line of at most [`MAX_LINE`] bytes. `Ok(None)` at end of stream. The line (which
/// may hold a password or a one-time password) is wiped when the caller drops it; so is every
/// buffer it passed through here.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Result<Option<Zeroizing<String>>, FrameError> {
    let mut buf = WipingBuf::new();
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
        buf.extend(chunk);
        let used = done.unwrap_or(available.len());
        reader.consume(used);
        if done.is_some() {
            return buf.take_string().map(Some).ok_or(FrameError::NotUtf8);
        }
    }
}

/// `value` as one JSON line, in a buffer that is wiped when dropped (a login or `passwd`
/// carries passwords, a `user add` answer a one-time password).
pub fn encode_json<T: Serialize>(value: &T) -> Result<WipingBuf, FrameError> {
    let mut line = WipingBuf::with_capacity(1024);
    serde_json::to_writer(&mut line, value)?;
    line.push(b'\n');
    Ok(line)
}

/// Writes `value` as one JSON line and flushes. The serialised line is wiped once written.
pub async fn write_json<W: AsyncWrite + Unpin, T: Serialize>(
    writer: &mut W,
    value: &T,
) -> Result<(), FrameError> {
    let line = encode_json(value)?;
    writer.write_all(&line).await?;
    writer.flush().await?;
    Ok(())
}

/// Wipes every string in a JSON value: what an answer carried (a one-time password) does not
/// stay behind in freed memory once it has been shown.
pub fn wipe_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => text.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(wipe_json),
        _ => {}
    }
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
    async fn a_wiping_reader_keeps_nothing_it_handed_out() {
        let input: &[u8] =
            b"{\"op\":\"login\",\"user\":\"alice\",\"password\":\"hunter2-hunter2\"}\nrest";
        let mut reader = WipingReader::new(input);
        let line = read_line(&mut reader).await.unwrap().unwrap();
        assert!(line.contains("hunter2-hunter2"));
        let held = &reader.buf[..];
        assert!(
            !held.windows(7).any(|w| w == b"hunter2"),
            "the consumed line is wiped from the buffer"
        );
        assert_eq!(
            &held[reader.pos..reader.filled],
            b"rest",
            "what is not consumed stays"
        );
        let mut rest = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut reader, &mut rest)
            .await
            .unwrap();
        assert_eq!(rest, "rest");
    }

    #[test]
    fn a_wiping_buffer_wipes_what_it_gives_back() {
        let mut buf = WipingBuf::with_capacity(4);
        buf.extend(b"secret");
        assert_eq!(&*buf, b"secret");
        assert_eq!(buf.pop(), Some(b't'));
        assert_eq!(&*buf, b"secre");
        buf.clear();
        assert!(buf.is_empty());
        buf.extend(b"\xff");
        assert!(buf.take_string().is_none(), "not UTF-8");
        buf.extend("é".as_bytes());
        assert_eq!(buf.take_string().as_deref().map(String::as_str), Some("é"));
        let mut value =
            serde_json::json!({"name": "carol", "one_time_password": "otp-123", "n": [1, "x"]});
        wipe_json(&mut value);
        assert_eq!(
            value,
            serde_json::json!({"name": "", "one_time_password": "", "n": [1, ""]})
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
