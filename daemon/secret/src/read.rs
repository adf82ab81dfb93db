//! Reading: a secret comes only from a regular file that group and others cannot read, and is
//! held in memory that is wiped when dropped.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::SecretFileError;

/// Secret files are short; anything larger is a mistake (the wrong file named).
pub const MAX_SECRET_FILE: u64 = 4096;

/// Refuses a file that group or others can read, or that is not a regular file.
pub fn check_private(path: &Path, what: &'static str) -> Result<(), SecretFileError> {
    let meta = fs::metadata(path).map_err(|source| SecretFileError::Io {
        what,
        path: path.display().to_string(),
        source,
    })?;
    check_meta(&meta, path, what)?;
    check_mode(&meta, path, what)
}

fn check_meta(meta: &fs::Metadata, path: &Path, what: &'static str) -> Result<(), SecretFileError> {
    if meta.is_file() {
        Ok(())
    } else {
        Err(SecretFileError::NotAFile {
            what,
            path: path.display().to_string(),
        })
    }
}

fn check_mode(meta: &fs::Metadata, path: &Path, what: &'static str) -> Result<(), SecretFileError> {
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::TooOpen {
            what,
            path: path.display().to_string(),
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
    // The path is checked first, so a file that cannot be opened still gets the advice to
    // chmod it; then the open file itself, so a file swapped in between is caught too.
    check_private(path, what)?;
    let (file, meta) = open_regular(path, what)?;
    check_mode(&meta, path, what)?;
    read_bounded(file, path, what, MAX_SECRET_FILE)
}

/// Reads a small file an operator named (a credentials CSV, a key policy), which may sit on a
/// USB stick and so need not be owner-only: a regular file, at most `limit` bytes, into memory
/// that is wiped when dropped.
pub fn read_limited(
    path: &Path,
    what: &'static str,
    limit: u64,
) -> Result<Zeroizing<Vec<u8>>, SecretFileError> {
    let (file, _) = open_regular(path, what)?;
    read_bounded(file, path, what, limit)
}

/// Opens `path` and checks, on the open file, that it is a regular file. `O_NONBLOCK` keeps a
/// FIFO named by mistake from hanging the reader until someone writes to it; it changes nothing
/// for a regular file.
fn open_regular(
    path: &Path,
    what: &'static str,
) -> Result<(fs::File, fs::Metadata), SecretFileError> {
    let io = |source| SecretFileError::Io {
        what,
        path: path.display().to_string(),
        source,
    };
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    check_meta(&meta, path, what)?;
    Ok((file, meta))
}

fn read_bounded(
    file: fs::File,
    path: &Path,
    what: &'static str,
    limit: u64,
) -> Result<Zeroizing<Vec<u8>>, SecretFileError> {
    let mut raw = Zeroizing::new(Vec::new());
    file.take(limit.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(|source| SecretFileError::Io {
            what,
            path: path.display().to_string(),
            source,
        })?;
    if raw.len() as u64 > limit {
        return Err(SecretFileError::TooLarge {
            what,
            path: path.display().to_string(),
            limit,
        });
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::os::unix::fs::PermissionsExt;

    /// `dir/name` holding `contents`, with `mode`.
    fn file(dir: &tempfile::TempDir, name: &str, contents: &[u8], mode: u32) -> std::path::PathBuf {
        let path = dir.path().join(name);
        fs::write(&path, contents).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn group_readable_file_is_refused_and_private_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir, "pin", b"1234abcd\n", 0o640);
        let err = read_secret(&path, "PIN file").unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(!err.to_string().contains("1234abcd"));
        assert!(matches!(
            check_private(&path, "PIN file"),
            Err(SecretFileError::TooOpen { mode: 0o640, .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_secret(&path, "PIN file").unwrap().expose_secret(),
            "1234abcd"
        );
        check_private(&path, "PIN file").unwrap();
    }

    #[test]
    fn empty_and_binary_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir, "pw", b"\n", 0o600);
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

    #[test]
    fn a_file_over_the_limit_is_refused_and_one_at_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir, "key", &[7u8; 4097], 0o600);
        let err = read_secret_bytes(&path, "signing key").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "signing key {} is larger than 4096 bytes; is it the right file?",
                path.display()
            )
        );
        fs::write(&path, vec![7u8; 4096]).unwrap();
        assert_eq!(read_secret_bytes(&path, "signing key").unwrap().len(), 4096);
        assert!(matches!(
            read_limited(&path, "policy_file", 4095),
            Err(SecretFileError::TooLarge { limit: 4095, .. })
        ));
        assert_eq!(
            read_limited(&path, "policy_file", 4096).unwrap().len(),
            4096
        );
    }

    #[test]
    fn read_limited_takes_a_readable_file_but_no_directory_or_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let csv = file(
            &dir,
            "prod_accessKeys.csv",
            b"Access key ID,Secret access key\n",
            0o644,
        );
        assert_eq!(
            &read_limited(&csv, "credentials file", 1024).unwrap()[..],
            b"Access key ID,Secret access key\n"
        );
        let err = read_limited(dir.path(), "credentials file", 1024).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "credentials file {} is not a regular file",
                dir.path().display()
            )
        );
        // Without O_NONBLOCK this open would wait for a writer forever.
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(matches!(
            read_limited(&fifo, "credentials file", 1024),
            Err(SecretFileError::NotAFile { .. })
        ));
        assert!(matches!(
            read_secret(&fifo, "PIN file"),
            Err(SecretFileError::NotAFile { .. })
        ));
        let missing = dir.path().join("missing.csv");
        let err = read_limited(&missing, "credentials file", 1024).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("credentials file {}: ", missing.display())),
            "{err}"
        );
    }
}
