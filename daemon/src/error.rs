//! The daemon's one error type. Each variant says what went wrong and what to do; front ends
//! show it with a stable code from [`keyward_proto::ErrorCode`].

use keyward_proto::{ApiError, ErrorCode};

use crate::audit::AuditError;
use crate::config::ConfigError;
use crate::hsm::HsmError;
use crate::secret_file::SecretFileError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    SecretFile(#[from] SecretFileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Auth(String),
    #[error("{0}")]
    Locked(String),
    #[error("{0}")]
    DualControl(String),
    #[error("{0}")]
    Permission(String),
    #[error("{0}")]
    NotFound(String),
    #[error(
        "this appliance is already initialised (database {0}); 'keywardd init' runs once, on first boot"
    )]
    AlreadyInitialised(String),
    #[error("this appliance is not initialised (database {0}); run 'keywardd init' first")]
    NotInitialised(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Cloud(#[from] crate::cloud::CloudError),
    /// `job wait` on a job that failed.
    #[error("{0}")]
    JobFailed(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Config(_)
            | Self::SecretFile(_)
            | Self::Invalid(_)
            | Self::AlreadyInitialised(_)
            | Self::NotInitialised(_) => ErrorCode::Invalid,
            Self::Auth(_) => ErrorCode::Auth,
            Self::Locked(_) => ErrorCode::Locked,
            Self::DualControl(_) => ErrorCode::DualControl,
            Self::Permission(_) => ErrorCode::Permission,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Store(_) => ErrorCode::Store,
            Self::Hsm(HsmError::KeyNotFound { .. }) => ErrorCode::NotFound,
            Self::Hsm(_) => ErrorCode::Hsm,
            Self::Audit(_) => ErrorCode::Audit,
            Self::Internal(_) => ErrorCode::Internal,
            Self::Cloud(_) => ErrorCode::Cloud,
            Self::JobFailed(_) => ErrorCode::JobFailed,
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}
