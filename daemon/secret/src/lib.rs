//! Files that only their owner may read: secrets (PINs, passwords, signing keys) read from them,
//! and files written so that a crash leaves the old version or the new one, never a mix.
//! One implementation for the daemon, the console, hsm-sim, keyward-image and the tests.
//! A secret never arrives on the command line or in the environment.

mod read;
mod write;

pub use read::{MAX_SECRET_FILE, check_private, read_limited, read_secret, read_secret_bytes};
pub use write::{
    PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, create_new, create_private_dir, replace, replace_with,
    sync_dir, write_new, write_private,
};

/// What went wrong with which file. Every variant names the file (`what` says what it is for,
/// e.g. "PIN file") and never its contents.
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
    #[error("{what} {path} is larger than {limit} bytes; is it the right file?")]
    TooLarge {
        what: &'static str,
        path: String,
        limit: u64,
    },
    #[error("{what} {path} is not valid UTF-8 text")]
    NotUtf8 { what: &'static str, path: String },
    #[error("{what} {path} is empty")]
    Empty { what: &'static str, path: String },
    /// A step of writing a file failed; `step` says which ("create", "sync", ...).
    #[error("{what} {path}: cannot {step}: {source}")]
    Write {
        what: &'static str,
        path: String,
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {path} names no file in a directory")]
    NoFileName { what: &'static str, path: String },
}
