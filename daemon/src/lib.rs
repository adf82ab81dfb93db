//! keywardd: the Keyward appliance daemon, as a library so tests drive the real code.

pub mod config;
pub mod domain;
pub mod hsm;
pub mod secret_file;
