//! AWS credentials: the stored record (the secret only as ciphertext under the HSM storage key)
//! and the parser for the CSV file the AWS console gives out.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A stored credential. `sealed_secret` is AES-256-GCM under the HSM storage key, bound to the
/// credential's name; nothing else here is secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub name: String,
    pub access_key_id: String,
    /// Hex of `iv || ciphertext || tag`.
    pub sealed_secret: String,
    pub created_ms: u64,
    #[serde(default)]
    pub last_used_ms: Option<u64>,
}

impl Credential {
    /// The additional data the secret is sealed with: moving a ciphertext to another
    /// credential's record makes it fail to open.
    pub fn aad(name: &str) -> Vec<u8> {
        format!("keyward credential {name}").into_bytes()
    }

    /// The access key id with all but its last 4 characters masked.
    pub fn masked_access_key_id(&self) -> String {
        mask(&self.access_key_id)
    }
}

pub fn mask(text: &str) -> String {
    let n = text.chars().count();
    let keep = n.min(4);
    let mut out: String = "*".repeat(n - keep);
    out.extend(text.chars().skip(n - keep));
    out
}

/// An access key id as AWS issues them: 16-128 letters and digits.
pub fn validate_access_key_id(id: &str) -> Result<(), String> {
    if id.len() < 16 || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(
            "the access key id is not an AWS access key id (16-128 letters and digits, e.g. AKIA…)"
                .into(),
        );
    }
    Ok(())
}

/// A secret access key: 16-128 printable ASCII characters, no spaces.
pub fn validate_secret(secret: &SecretString) -> Result<(), String> {
    let s = secret.expose_secret();
    if s.len() < 16 || s.len() > 128 || !s.chars().all(|c| c.is_ascii_graphic()) {
        return Err(
            "the secret access key is not an AWS secret (16-128 printable characters, no spaces)"
                .into(),
        );
    }
    Ok(())
}

/// The largest credentials file accepted.
pub const MAX_CSV: usize = 16 * 1024;

/// Splits one CSV line into fields; double quotes may enclose a field (with `""` for a quote).
/// The fields may hold the secret: they are zeroized on drop, and each is allocated once at the
/// line's length so no copy is left behind by a reallocation.
fn split_csv(line: &str, number: usize) -> Result<Zeroizing<Vec<String>>, String> {
    let mut fields = Zeroizing::new(Vec::with_capacity(line.matches(',').count() + 1));
    let mut field = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) => return Err(format!("line {number}: a stray quote inside a field")),
            (',', false) => {
                fields.push(std::mem::replace(
                    &mut field,
                    String::with_capacity(line.len()),
                ));
                was_quoted = false;
            }
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err(format!("line {number}: a quoted field is not closed"));
    }
    fields.push(field);
    Ok(fields)
}

/// Parses the AWS console's access key CSV: a header naming `Access key ID` and
/// `Secret access key` (other columns, such as `User name`, are ignored), then one row.
/// Tolerates a UTF-8 BOM, CRLF line ends and blank lines. Errors name the line and never
/// quote a field (it may be the secret).
pub fn parse_access_key_csv(raw: &[u8]) -> Result<(String, SecretString), String> {
    if raw.len() > MAX_CSV {
        return Err(format!(
            "the file is {} bytes; an AWS access key CSV is far smaller (limit {MAX_CSV})",
            raw.len()
        ));
    }
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    let text = std::str::from_utf8(raw).map_err(|e| {
        let line = raw[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        format!("line {line}: not UTF-8 text; is this the CSV from the AWS console?")
    })?;
    let mut rows = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((header_line, header)) = rows.next() else {
        return Err("the file is empty; expected the CSV from the AWS console with a header 'Access key ID,Secret access key'".into());
    };
    let header = split_csv(header, header_line)?;
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let (Some(id_col), Some(secret_col)) = (column("Access key ID"), column("Secret access key"))
    else {
        return Err(format!(
            "line {header_line}: the header must name 'Access key ID' and 'Secret access key' (the CSV the AWS console gives out)"
        ));
    };
    let Some((row_line, row)) = rows.next() else {
        return Err(format!(
            "line {}: the header is there but no access key row follows",
            header_line + 1
        ));
    };
    if let Some((extra, _)) = rows.next() {
        return Err(format!(
            "line {extra}: more than one access key in the file; import one credential per file"
        ));
    }
    let fields = split_csv(row, row_line)?;
    if fields.len() != header.len() {
        return Err(format!(
            "line {row_line}: {} fields, but the header has {}",
            fields.len(),
            header.len()
        ));
    }
    let id = fields[id_col].trim().to_owned();
    validate_access_key_id(&id).map_err(|e| format!("line {row_line}: {e}"))?;
    let secret = SecretString::from(fields[secret_col].trim().to_owned());
    validate_secret(&secret).map_err(|e| format!("line {row_line}: {e}"))?;
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn the_console_formats_parse() {
        for text in [
            format!("Access key ID,Secret access key\nAKIAIOSFODNN7EXAMPLE,{SECRET}\n"),
            format!("\u{feff}Access key ID,Secret access key\r\nAKIAIOSFODNN7EXAMPLE,{SECRET}\r\n"),
            format!(
                "User name,Access key ID,Secret access key\r\n\r\nops,AKIAIOSFODNN7EXAMPLE,\"{SECRET}\"\r\n"
            ),
        ] {
            let (id, secret) = parse_access_key_csv(text.as_bytes()).unwrap();
            assert_eq!(id, "AKIAIOSFODNN7EXAMPLE");
            assert_eq!(secret.expose_secret(), SECRET);
        }
    }

    #[test]
    fn bad_files_name_the_line_and_never_echo_the_secret() {
        for (text, want) in [
            ("".to_owned(), "empty"),
            ("Key,Value\nA,B\n".to_owned(), "line 1: the header"),
            ("Access key ID,Secret access key\n".to_owned(), "line 2"),
            (
                format!("Access key ID,Secret access key\nAKIAIOSFODNN7EXAMPLE,{SECRET},x\n"),
                "line 2: 3 fields",
            ),
            (
                format!("Access key ID,Secret access key\nAKIA!,{SECRET}\n"),
                "line 2: the access key id",
            ),
            (
                format!(
                    "Access key ID,Secret access key\nAKIAIOSFODNN7EXAMPLE,{SECRET}\nAKIAIOSFODNN7EXAMPLF,{SECRET}\n"
                ),
                "line 3: more than one",
            ),
            (
                "Access key ID,Secret access key\nAKIAIOSFODNN7EXAMPLE,\"open\n".to_owned(),
                "line 2: a quoted field",
            ),
        ] {
            let err = parse_access_key_csv(text.as_bytes()).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(!err.contains(SECRET));
        }
        let err = parse_access_key_csv(b"Access key ID,Secret\n\xff\xfe\n").unwrap_err();
        assert!(err.contains("line 2: not UTF-8"), "{err}");
    }

    #[test]
    fn masking_keeps_the_last_four() {
        assert_eq!(mask("AKIAIOSFODNN7EXAMPLE"), "****************MPLE");
        assert_eq!(mask("ab"), "ab");
    }
}
