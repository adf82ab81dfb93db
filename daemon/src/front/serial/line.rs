//! The serial line editor: bytes in, lines out, as screen, minicom and picocom send them.
//! CR or LF ends a line (CR LF counts once), backspace and DEL erase, Ctrl-U clears, Ctrl-C
//! cancels. Lines over [`MAX_LINE`] bytes and lines that are not UTF-8 are reported and
//! discarded. Echo is off while a password is typed. A password leaves no copy behind: the
//! buffer is allocated once at its full size and wiped after every line, and a line is handed
//! out in a buffer that is wiped when dropped.

use keyward_proto::WipingBuf;
use zeroize::Zeroizing;

/// The longest line accepted, in bytes.
pub const MAX_LINE: usize = 4096;

/// No `Debug` outside tests: a line may be a password typed at a prompt.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub enum Input {
    Line(Zeroizing<String>),
    TooLong,
    NotUtf8,
    Cancelled,
}

/// No `Debug`: the buffer may hold a password being typed.
pub struct LineEditor {
    /// Never grows: it holds [`MAX_LINE`] bytes from the start, so no copy is left behind.
    buf: WipingBuf,
    overflow: bool,
    after_cr: bool,
    /// Echo typed characters back (off for passwords).
    pub echo: bool,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

impl LineEditor {
    pub fn new() -> Self {
        Self {
            buf: WipingBuf::with_capacity(MAX_LINE),
            overflow: false,
            after_cr: false,
            echo: true,
        }
    }

    fn finish(&mut self) -> Input {
        let input = if std::mem::take(&mut self.overflow) {
            Input::TooLong
        } else {
            // Copied into a buffer of its own size (it never grows), then wiped here.
            std::str::from_utf8(&self.buf)
                .map(|line| Input::Line(Zeroizing::new(line.to_owned())))
                .unwrap_or(Input::NotUtf8)
        };
        self.buf.clear();
        input
    }

    /// Forgets the line being typed (Ctrl-U, Ctrl-C), wiping it.
    fn discard(&mut self) {
        self.buf.clear();
        self.overflow = false;
    }

    /// Feeds one byte. What should be echoed is appended to `echo`.
    pub fn feed(&mut self, byte: u8, echo: &mut WipingBuf) -> Option<Input> {
        let after_cr = std::mem::take(&mut self.after_cr);
        match byte {
            b'\n' if after_cr => None,
            b'\r' | b'\n' => {
                self.after_cr = byte == b'\r';
                echo.extend(b"\r\n");
                Some(self.finish())
            }
            0x08 | 0x7f => {
                if !self.overflow && !self.buf.is_empty() {
                    // Remove one whole UTF-8 character.
                    while let Some(b) = self.buf.pop() {
                        if b & 0xC0 != 0x80 {
                            break;
                        }
                    }
                    if self.echo {
                        echo.extend(b"\x08 \x08");
                    }
                }
                None
            }
            0x15 => {
                self.discard();
                if self.echo {
                    echo.extend(b"\r\n");
                }
                None
            }
            0x03 => {
                self.discard();
                echo.extend(b"^C\r\n");
                Some(Input::Cancelled)
            }
            b'\t' | 0x20.. => {
                if self.buf.len() >= MAX_LINE {
                    self.overflow = true;
                    self.buf.clear();
                } else if !self.overflow {
                    self.buf.push(byte);
                    if self.echo {
                        echo.push(byte);
                    }
                }
                None
            }
            // Other control characters (terminal noise, escape sequences' lead) are ignored.
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed_all(editor: &mut LineEditor, bytes: &[u8]) -> (Vec<Input>, Vec<u8>) {
        let mut echo = WipingBuf::new();
        let inputs = bytes
            .iter()
            .filter_map(|b| editor.feed(*b, &mut echo))
            .collect();
        (inputs, echo.to_vec())
    }

    fn line(text: &str) -> Input {
        Input::Line(Zeroizing::new(text.to_owned()))
    }

    #[test]
    fn cr_lf_and_crlf_each_end_one_line() {
        let mut e = LineEditor::new();
        let (inputs, _) = feed_all(&mut e, b"a\rb\nc\r\nd\n\n");
        let lines: Vec<_> = inputs
            .iter()
            .map(|i| {
                if let Input::Line(l) = i {
                    l.as_str()
                } else {
                    "?"
                }
            })
            .collect();
        assert_eq!(lines, ["a", "b", "c", "d", ""]);
    }

    #[test]
    fn backspace_edits_whole_characters() {
        let mut e = LineEditor::new();
        let (inputs, echo) = feed_all(&mut e, "statz\x7fus é\x7f\r".as_bytes());
        assert_eq!(inputs, [line("status ")]);
        assert!(echo.windows(3).any(|w| w == b"\x08 \x08"));
    }

    #[test]
    fn passwords_are_not_echoed() {
        let mut e = LineEditor::new();
        e.echo = false;
        let (inputs, echo) = feed_all(&mut e, b"s3cret\r");
        assert_eq!(inputs, [line("s3cret")]);
        assert_eq!(echo, b"\r\n", "only the line end is echoed");
        assert!(e.buf.is_empty(), "the editor keeps nothing of the line");
    }

    #[test]
    fn long_and_non_utf8_lines_are_reported_and_the_next_line_works() {
        let mut e = LineEditor::new();
        let mut bytes = vec![b'x'; MAX_LINE + 1];
        bytes.extend_from_slice(b"\r\xff\xfe\rok\r");
        let (inputs, _) = feed_all(&mut e, &bytes);
        assert_eq!(inputs, [Input::TooLong, Input::NotUtf8, line("ok")]);
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic_and_never_exceed_the_limit(bytes in proptest::collection::vec(any::<u8>(), 0..12_000)) {
            let mut e = LineEditor::new();
            let mut echo = WipingBuf::new();
            for b in bytes {
                if let Some(Input::Line(l)) = e.feed(b, &mut echo) {
                    prop_assert!(l.len() <= MAX_LINE);
                    prop_assert!(!l.contains('\r') && !l.contains('\n'));
                }
            }
        }
    }
}
