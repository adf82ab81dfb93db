//! Wire types shared by `keywardd` and its front ends: the typed contract between the daemon and
//! every client. The console socket carries one JSON object per line each way; the serial port
//! (JSON mode) uses the same response shape. See docs/console-protocol.md.
//!
//! - [`request`]: what a front end asks ([`Request`], one variant per operation);
//! - [`reply`]: what it gets back ([`Reply`], tied to each request by [`Op`]), in a [`Response`];
//! - [`views`]: the shapes replies are made of; [`state`]: states as enums;
//! - [`error`]: stable error codes; [`secret`]: passwords; [`frame`]: line framing;
//! - [`fields`] and [`duration`]: the key-group field grammar, one definition for the daemon,
//!   the serial parser and the console's editor.
//!
//! This crate links no AWS SDK and no PKCS#11, so the console stays small.

pub mod duration;
pub mod error;
pub mod fields;
pub mod frame;
pub mod reply;
pub mod request;
pub mod secret;
pub mod state;
pub mod views;

pub use error::{ApiError, ErrorCode};
pub use frame::{
    FrameError, MAX_LINE, WipingBuf, WipingReader, encode_json, read_line, wipe_json, write_json,
};
pub use reply::{Approved, FirmwareInstalled, JobStarted, Op, Removed, Reply, Response};
pub use request::{Request, Role};
pub use secret::Password;
pub use state::{AwsKeyState, Connection, JobKind, JobState, KeyState, SeenState};
pub use views::*;
