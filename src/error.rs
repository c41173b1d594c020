//! The facade's one error type.

use std::path::PathBuf;

use sandguard_audit::AuditError;
use sandguard_policy::Denial;

/// Why the facade refused or failed an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The policy, the rate limit or the lockout refused the operation. It was recorded.
    #[error("{}: {}", .0.code(), .0.message())]
    Denied(#[from] Denial),
    /// The decision could not be recorded, so the operation was refused: sandguard never acts
    /// without a record of it.
    #[error("audit log failure, operation refused: {0}")]
    Audit(#[from] AuditError),
    /// The executor failed (the sandbox could not be built, a command could not start, ...).
    #[error(transparent)]
    Exec(#[from] sandguard_exec::Error),
    /// An audit key file could not be used.
    #[error("audit key file {}: {reason}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A keys file (bearer tokens of the service) could not be used.
    #[error("keys file {}: {reason}", path.display())]
    KeysFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (never a token).
        reason: String,
    },
}

impl Error {
    /// A stable code: the denial's own code, `AUDIT_FAILURE`, `EXEC_FAILED`, `INVALID_KEY_FILE`
    /// or `INVALID_KEYS_FILE`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Denied(denial) => denial.code(),
            Self::Audit(_) => "AUDIT_FAILURE",
            Self::Exec(_) => "EXEC_FAILED",
            Self::KeyFile { .. } => "INVALID_KEY_FILE",
            Self::KeysFile { .. } => "INVALID_KEYS_FILE",
        }
    }
}
