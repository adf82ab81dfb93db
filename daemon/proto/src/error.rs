//! The error every front end shows: a stable code and a message that names the thing, the
//! cause and the fix.

use serde::{Deserialize, Serialize};

/// Stable error codes; front ends show them beside the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    Auth,
    Locked,
    DualControl,
    Permission,
    Invalid,
    NotFound,
    Hsm,
    Store,
    Audit,
    Internal,
    JobFailed,
    /// AWS KMS refused or could not be reached; the message says why.
    Cloud,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Locked => "locked",
            Self::DualControl => "dual-control",
            Self::Permission => "permission",
            Self::Invalid => "invalid",
            Self::NotFound => "not-found",
            Self::Hsm => "hsm",
            Self::Store => "store",
            Self::Audit => "audit",
            Self::Internal => "internal",
            Self::JobFailed => "job-failed",
            Self::Cloud => "cloud",
        }
    }

    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 12] = [
        Self::Auth,
        Self::Locked,
        Self::DualControl,
        Self::Permission,
        Self::Invalid,
        Self::NotFound,
        Self::Hsm,
        Self::Store,
        Self::Audit,
        Self::Internal,
        Self::JobFailed,
        Self::Cloud,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{} {message}", code.as_str())]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
