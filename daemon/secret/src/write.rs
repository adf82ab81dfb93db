//! Writing: a file is created fresh (never through a symlink, never over another file) with
//! exactly the mode asked for, whatever the umask, and fsynced. A file that is replaced is
//! written beside itself and renamed over the old one, and the directory is fsynced, so a crash
//! leaves the old contents or the new ones and the new name survives.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::SecretFileError;

/// A file only its owner may read and write.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// A directory only its owner may list and enter.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

fn failed(
    what: &'static str,
    path: &Path,
    step: &'static str,
) -> impl FnOnce(io::Error) -> SecretFileError {
    let path = path.display().to_string();
    move |source| SecretFileError::Write {
        what,
        path,
        step,
        source,
    }
}

/// Creates `path`, which must not exist, with exactly `mode`. `O_EXCL` and `O_NOFOLLOW`: an
/// existing file or a symlink (even a dangling one) in its place is refused, never followed.
pub fn create_new(path: &Path, mode: u32, what: &'static str) -> Result<File, SecretFileError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(failed(what, path, "create"))?;
    // The mode exactly, whatever the creating process's umask (keywardd's is 077).
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(failed(what, path, "set the mode of"))?;
    Ok(file)
}

/// Creates `path` as [`create_new`] does, writes `bytes` and fsyncs the file. The caller
/// fsyncs the directory once it has written all it writes there.
pub fn write_new(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    what: &'static str,
) -> Result<(), SecretFileError> {
    let mut file = create_new(path, mode, what)?;
    file.write_all(bytes).map_err(failed(what, path, "write"))?;
    file.sync_all().map_err(failed(what, path, "sync"))
}

/// Writes a secret (or anything only its owner may read) to `path`, mode 0600, replacing what
/// was there atomically, as [`replace`] does.
pub fn write_private(path: &Path, bytes: &[u8], what: &'static str) -> Result<(), SecretFileError> {
    replace(path, bytes, PRIVATE_FILE_MODE, what)
}

/// Replaces `path` atomically with `bytes`, in a file of exactly `mode`: see [`replace_with`].
pub fn replace(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    what: &'static str,
) -> Result<(), SecretFileError> {
    replace_with(path, mode, what, |file| {
        file.write_all(bytes).map_err(failed(what, path, "write"))
    })
}

/// Replaces `path` atomically with what `fill` writes: into `.NAME.partial` beside it (created
/// as [`create_new`] does, after a stale one from a crash is removed), fsynced, renamed over
/// `path`, and the directory fsynced. A symlink at `path` is replaced, not followed. If any step
/// fails, the partial file is removed and `path` is left as it was.
pub fn replace_with<E: From<SecretFileError>>(
    path: &Path,
    mode: u32,
    what: &'static str,
    fill: impl FnOnce(&mut File) -> Result<(), E>,
) -> Result<(), E> {
    let partial = partial_path(path, what)?;
    // Only a stale partial file can be in the way; if it cannot be removed, creating it fails
    // and says why.
    let _ = fs::remove_file(&partial);
    let mut file = create_new(&partial, mode, what)?;
    let written = fill(&mut file).and_then(|()| {
        file.sync_all().map_err(failed(what, path, "sync"))?;
        drop(file);
        fs::rename(&partial, path).map_err(failed(what, path, "move into place"))?;
        Ok(())
    });
    if written.is_err() {
        let _ = fs::remove_file(&partial);
    }
    written?;
    fsync_dir(&parent(path)).map_err(failed(what, path, "sync its directory"))?;
    Ok(())
}

/// Fsyncs a directory, so that the entries created, renamed or removed in it are durable.
pub fn sync_dir(dir: &Path, what: &'static str) -> Result<(), SecretFileError> {
    fsync_dir(dir).map_err(failed(what, dir, "sync"))
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY)
        .open(dir)?
        .sync_all()
}

/// Creates `dir` (and its parents) if it is missing and makes it owner-only (0700), also when
/// it existed already.
pub fn create_private_dir(dir: &Path, what: &'static str) -> Result<(), SecretFileError> {
    let io = |source| SecretFileError::Io {
        what,
        path: dir.display().to_string(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR_MODE)).map_err(io)
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn partial_path(path: &Path, what: &'static str) -> Result<PathBuf, SecretFileError> {
    let name = path
        .file_name()
        .ok_or_else(|| SecretFileError::NoFileName {
            what,
            path: path.display().to_string(),
        })?;
    let mut partial = std::ffi::OsString::from(".");
    partial.push(name);
    partial.push(".partial");
    Ok(parent(path).join(partial))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn write_private_makes_an_owner_only_file_and_replaces_an_open_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("user.pin");
        write_private(&path, b"0123abcd", "PIN file").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"0123abcd");
        assert_eq!(mode(&path), 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"4567", "PIN file").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"4567");
        assert_eq!(mode(&path), 0o600, "the replacement is owner-only again");
        assert_eq!(names(dir.path()), ["user.pin"], "no partial file is left");
    }

    #[test]
    fn a_relative_path_in_the_current_directory_has_a_parent() {
        assert_eq!(parent(Path::new("pin")), Path::new("."));
        assert_eq!(
            partial_path(Path::new("/a/b/user.pin"), "PIN file").unwrap(),
            Path::new("/a/b/.user.pin.partial")
        );
        assert!(matches!(
            write_private(Path::new("/"), b"x", "PIN file"),
            Err(SecretFileError::NoFileName { .. })
        ));
    }

    #[test]
    fn a_symlink_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "untouched").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();

        for path in [&link, &dangling] {
            let err = write_new(path, b"evil", 0o600, "signing key").unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("signing key {}: cannot create: ", path.display())),
                "{err}"
            );
        }
        assert!(!dir.path().join("nowhere").exists());

        // A symlink in the way of a replacement is itself replaced by the new file.
        write_private(&link, b"new", "PIN file").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_file());
        assert_eq!(fs::read(&link).unwrap(), b"new");
        assert_eq!(fs::read(&victim).unwrap(), b"untouched");

        // A symlink planted at the partial file's name is removed, not followed.
        let pin = dir.path().join("so.pin");
        std::os::unix::fs::symlink(&victim, dir.path().join(".so.pin.partial")).unwrap();
        write_private(&pin, b"pin", "PIN file").unwrap();
        assert_eq!(fs::read(&pin).unwrap(), b"pin");
        assert_eq!(fs::read(&victim).unwrap(), b"untouched");
        assert!(!dir.path().join(".so.pin.partial").exists());
    }

    #[test]
    fn write_new_refuses_an_existing_file_and_sets_the_mode_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pub");
        // 0666 survives only if the mode is set after creation, whatever the umask.
        write_new(&path, b"abcd\n", 0o666, "public key").unwrap();
        assert_eq!(mode(&path), 0o666);
        let err = write_new(&path, b"other", 0o644, "public key").unwrap_err();
        assert!(
            matches!(&err, SecretFileError::Write { step: "create", source, .. }
                if source.kind() == io::ErrorKind::AlreadyExists),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"abcd\n");
    }

    #[test]
    fn a_failed_fill_leaves_the_old_file_and_no_partial_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.kwimg");
        replace(&path, b"old", 0o644, "image").unwrap();
        let result: Result<(), SecretFileError> = replace_with(&path, 0o644, "image", |f| {
            f.write_all(b"half")
                .map_err(failed("image", Path::new("x"), "write"))?;
            Err(failed("image", Path::new("source"), "read")(
                io::Error::other("gone"),
            ))
        });
        assert!(result.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["image.kwimg"]);
    }

    #[test]
    fn sync_dir_syncs_a_directory_and_names_what_it_could_not() {
        let dir = tempfile::tempdir().unwrap();
        sync_dir(dir.path(), "token directory").unwrap();
        let missing = dir.path().join("gone");
        let err = sync_dir(&missing, "token directory").unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "token directory {}: cannot sync: ",
                missing.display()
            )),
            "{err}"
        );
        let file = dir.path().join("file");
        fs::write(&file, "x").unwrap();
        assert!(
            sync_dir(&file, "token directory").is_err(),
            "a file is not a directory"
        );
    }

    #[test]
    fn create_private_dir_creates_parents_and_tightens_an_open_directory() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/data");
        create_private_dir(&nested, "data_dir").unwrap();
        assert_eq!(mode(&nested), 0o700);
        fs::set_permissions(&nested, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&nested, "data_dir").unwrap();
        assert_eq!(mode(&nested), 0o700);
        let file = dir.path().join("file");
        fs::write(&file, "x").unwrap();
        let err = create_private_dir(&file, "data_dir").unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("data_dir {}: ", file.display())),
            "{err}"
        );
    }
}
