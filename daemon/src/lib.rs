//! keywardd: the Keyward appliance daemon, as a library so tests drive the real code.
//! See ARCHITECTURE.md for the map and each module's invariant.

pub mod api;
pub mod appliance;
pub mod audit;
pub mod cloud;
pub mod config;
pub mod domain;
pub mod error;
pub mod front;
pub mod hardening;
pub mod hsm;
pub mod jobs;
pub mod kms;
pub use keyward_secret_file as secret_file;
pub mod server;
pub mod store;
