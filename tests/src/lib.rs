#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "test harness: a step that fails is a failed test, reported where it happened"
)]
//! The end-to-end harness: real `keyward-hsm-sim` and `keywardd` processes, a real SoftHSMv2
//! token in a private temporary directory per test, the real console socket. One module per
//! thing a test drives; everything is re-exported here, so a test names `keyward_tests::X`.

pub mod appliance;
pub mod console;
pub mod daemon;
pub mod fixture;
pub mod kms;
pub mod memory;
pub mod proxy;
pub mod serial;
pub mod tmux;

pub use appliance::Appliance;
pub use console::{
    Console, GROUP_FIELDS, KEY_FIELDS, assert_fields, fields, poll, read_response, request_on,
    rfc3339_ms,
};
pub use daemon::Daemon;
pub use fixture::{ADMINS, Fixture, bin, files_under, hsm_sim, write_private};
pub use kms::{ACCESS_KEY_ID, Kms, SECRET_ACCESS_KEY, group_fields, kms_endpoint};
pub use memory::secrets_in_memory;
pub use serial::{SerialLine, approval_id, one_time_password};
