//! The Keyward local console: a ratatui client of `keywardd` over the console socket. It holds
//! no business logic: every screen is a request and the daemon's answer, and the same
//! dual-control check applies as on the serial port.
//!
//! - [`client`]: the socket link (reconnects, tells the UI).
//! - [`app`]: the state and what input does to it (pure, unit-tested without a terminal).
//! - [`input`]: text fields (masked ones for secrets) and forms shown as dialogs.
//! - [`keys`]: keys to actions, and the key help the footer and `?` show.
//! - [`ui`]: drawing, a pure function of the state (snapshot-tested on `TestBackend`).
//! - [`theme`]: colours, or monochrome under `NO_COLOR`.
//! - [`terminal`]: raw mode in, and always back out (drop and panic hook).
//! - [`run`]: the loop that ties them together.

pub mod app;
pub mod client;
pub mod input;
pub mod keys;
pub mod run;
pub mod terminal;
pub mod theme;
pub mod ui;
