//! Secrets on the wire: zeroized on drop, never printed by `Debug`.

use serde::{Deserialize, Serialize};

/// A password or one-time password on the wire: zeroized on drop, never printed by `Debug`.
/// Reading it is a named, greppable call: [`Password::expose`].
#[derive(
    Clone, PartialEq, Eq, Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop,
)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}
