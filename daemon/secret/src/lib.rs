//! Reading secrets (PINs, passwords, signing keys) from files that only their owner may read.
//! One implementation for the daemon, the console, hsm-sim and keyward-image.
//! A secret never arrives on the command line or in the environment.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use secrecy::SecretString;
use zeroize::Zeroizing;

/// Secret files are short; anything larger is a mistake (the wrong file named).
const MAX_SECRET_FILE: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{what} {path} is readable by group or others (mode {mode:04o}); run 'chmod 600 {path}' and make sure nobody else has read it"
    )]
    TooOpen {
        what: &'static str,
        path: String,
        mode: u32,
    },
    #[error("{what} {path} is not a regular file")]
    NotAFile { what: &'static str, path: String },
    #[error("{what} {path} is larger than {MAX_SECRET_FILE} bytes; is it the right file?")]
    TooLarge { what: &'static str, path: String },
    #[error("{what} {path} is not valid UTF-8 text")]
    NotUtf8 { what: &'static str, path: String },
    #[error("{what} {path} is empty")]
    Empty { what: &'static str, path: String },
}

/// Refuses a file that group or others can read, or that is not a regular file.
pub fn check_private(path: &Path, what: &'static str) -> Result<(), SecretFileError> {
    let shown = path.display().to_string();
    let meta = fs::metadata(path).map_err(|source| SecretFileError::Io {
        what,
        path: shown.clone(),
        source,
    })?;
    if !meta.is_file() {
        return Err(SecretFileError::NotAFile { what, path: shown });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::TooOpen {
            what,
            path: shown,
            mode,
        });
    }
    Ok(())
}

/// Reads a secret from an owner-only file; one trailing newline is not part of the secret.
pub fn read_secret(path: &Path, what: &'static str) -> Result<SecretString, SecretFileError> {
    let raw = read_secret_bytes(path, what)?;
    let shown = path.display().to_string();
    let text = std::str::from_utf8(&raw).map_err(|_| SecretFileError::NotUtf8 {
        what,
        path: shown.clone(),
    })?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.is_empty() {
        return Err(SecretFileError::Empty { what, path: shown });
    }
    Ok(SecretString::from(text.to_owned()))
}

/// Reads a binary secret (a signing key) from an owner-only file, at most 4 KiB.
pub fn read_secret_bytes(
    path: &Path,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, SecretFileError> {
    check_private(path, what)?;
    let shown = path.display().to_string();
    let file = fs::File::open(path).map_err(|source| SecretFileError::Io {
        what,
        path: shown.clone(),
        source,
    })?;
    let mut raw = Zeroizing::new(Vec::new());
    file.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut raw)
        .map_err(|source| SecretFileError::Io {
            what,
            path: shown.clone(),
            source,
        })?;
    if raw.len() as u64 > MAX_SECRET_FILE {
        return Err(SecretFileError::TooLarge { what, path: shown });
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn group_readable_file_is_refused_and_private_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        fs::write(&path, "1234abcd\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_secret(&path, "PIN file").unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(!err.to_string().contains("1234abcd"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_secret(&path, "PIN file").unwrap().expose_secret(),
            "1234abcd"
        );
    }

    #[test]
    fn empty_and_binary_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        fs::write(&path, "\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            read_secret(&path, "password file"),
            Err(SecretFileError::Empty { .. })
        ));
        fs::write(&path, b"\xff\xfe").unwrap();
        assert!(matches!(
            read_secret(&path, "password file"),
            Err(SecretFileError::NotUtf8 { .. })
        ));
    }
}
