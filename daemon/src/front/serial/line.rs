//! The serial line editor: bytes in, lines out, as screen, minicom and picocom send them.
//! CR or LF ends a line (CR LF counts once), backspace and DEL erase, Ctrl-U clears, Ctrl-C
//! cancels. Lines over [`MAX_LINE`] bytes and lines that are not UTF-8 are reported and
//! discarded. Echo is off while a password is typed.

/// The longest line accepted, in bytes.
pub const MAX_LINE: usize = 4096;

/// No `Debug` outside tests: a line may be a password typed at a prompt.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub enum Input {
    Line(String),
    TooLong,
    NotUtf8,
    Cancelled,
}

/// No `Debug`: the buffer may hold a password being typed.
#[derive(Default)]
pub struct LineEditor {
    buf: Vec<u8>,
    overflow: bool,
    after_cr: bool,
    /// Echo typed characters back (off for passwords).
    pub echo: bool,
}

impl LineEditor {
    pub fn new() -> Self {
        Self {
            echo: true,
            ..Self::default()
        }
    }

    fn finish(&mut self) -> Input {
        let raw = std::mem::take(&mut self.buf);
        if std::mem::take(&mut self.overflow) {
            return Input::TooLong;
        }
        String::from_utf8(raw)
            .map(Input::Line)
            .unwrap_or(Input::NotUtf8)
    }

    /// Feeds one byte. What should be echoed is appended to `echo`.
    pub fn feed(&mut self, byte: u8, echo: &mut Vec<u8>) -> Option<Input> {
        let after_cr = std::mem::take(&mut self.after_cr);
        match byte {
            b'\n' if after_cr => None,
            b'\r' | b'\n' => {
                self.after_cr = byte == b'\r';
                echo.extend_from_slice(b"\r\n");
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
                        echo.extend_from_slice(b"\x08 \x08");
                    }
                }
                None
            }
            0x15 => {
                self.buf.clear();
                self.overflow = false;
                if self.echo {
                    echo.extend_from_slice(b"\r\n");
                }
                None
            }
            0x03 => {
                self.buf.clear();
                self.overflow = false;
                echo.extend_from_slice(b"^C\r\n");
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
        let mut echo = Vec::new();
        let inputs = bytes
            .iter()
            .filter_map(|b| editor.feed(*b, &mut echo))
            .collect();
        (inputs, echo)
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
        assert_eq!(inputs, [Input::Line("status ".into())]);
        assert!(echo.windows(3).any(|w| w == b"\x08 \x08"));
    }

    #[test]
    fn passwords_are_not_echoed() {
        let mut e = LineEditor::new();
        e.echo = false;
        let (inputs, echo) = feed_all(&mut e, b"s3cret\r");
        assert_eq!(inputs, [Input::Line("s3cret".into())]);
        assert_eq!(echo, b"\r\n", "only the line end is echoed");
    }

    #[test]
    fn long_and_non_utf8_lines_are_reported_and_the_next_line_works() {
        let mut e = LineEditor::new();
        let mut bytes = vec![b'x'; MAX_LINE + 1];
        bytes.extend_from_slice(b"\r\xff\xfe\rok\r");
        let (inputs, _) = feed_all(&mut e, &bytes);
        assert_eq!(
            inputs,
            [Input::TooLong, Input::NotUtf8, Input::Line("ok".into())]
        );
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic_and_never_exceed_the_limit(bytes in proptest::collection::vec(any::<u8>(), 0..12_000)) {
            let mut e = LineEditor::new();
            let mut echo = Vec::new();
            for b in bytes {
                if let Some(Input::Line(l)) = e.feed(b, &mut echo) {
                    prop_assert!(l.len() <= MAX_LINE);
                    prop_assert!(!l.contains('\r') && !l.contains('\n'));
                }
            }
        }
    }
}
