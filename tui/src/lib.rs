//! The Keyward local console: a ratatui client of `keywardd` over the console socket. It holds
//! no business logic: every screen is a request and the daemon's answer, and the same
//! dual-control check applies as on the serial port.
//!
//! - [`client`]: the socket link (reconnects, tells the UI).
//! - [`app`]: what the screens share, and what input does to the state (pure, unit-tested
//!   without a terminal).
//! - [`screens`]: one component a screen: its state, keys, replies and drawing.
//! - [`input`]: text fields (masked ones for secrets) and forms shown as dialogs.
//! - [`keys`]: keymaps (keys to actions, with the help the footer and `?` show), and the
//!   bindings every screen shares.
//! - [`ui`]: the frame, the dialogs and shared widgets (snapshot-tested on `TestBackend`).
//! - [`theme`]: colours, or monochrome under `NO_COLOR`.
//! - [`terminal`]: raw mode in, and always back out (drop and panic hook).
//! - [`run`]: the loop that ties them together.

pub mod app;
pub mod client;
pub mod input;
pub mod keys;
pub mod run;
pub mod screens;
pub mod terminal;
pub mod theme;
pub mod ui;

#[cfg(test)]
mod fixtures;
