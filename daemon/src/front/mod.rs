//! The front ends: each turns its own input into `keyward_proto::Request`s for the one admin
//! service (`crate::api::Api`) and presents its typed replies. None holds business logic or
//! decides who may do what. An HTTPS front end (the XKS proxy, for AWS) joins them here.
//!
//! - `console`: the 0600 Unix socket the local console and scripts use (JSON lines);
//! - `serial`: the operator's serial ports (the command language, text or JSON mode).

pub mod console;
pub mod serial;
