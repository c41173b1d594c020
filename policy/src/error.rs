//! The crate's one error type, nesting a precise error per guard.

use thiserror::Error as ThisError;

/// Every way a guard of this crate can refuse a value.
///
/// Each variant nests the guard's own error, whose [`code`](Error::code) is a stable,
/// `SCREAMING_SNAKE_CASE` identifier that appears in CLI output, audit events and docs alike.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum Error {
    /// A sandbox ID was refused.
    #[error(transparent)]
    SandboxId(#[from] crate::id::IdError),
    /// A shell argument could not be quoted.
    #[error(transparent)]
    Quote(#[from] crate::shell::QuoteError),
    /// A path was refused.
    #[error(transparent)]
    Path(#[from] crate::path::PathError),
    /// A port was refused.
    #[error(transparent)]
    Port(#[from] crate::port::PortError),
    /// An outbound connection was refused.
    #[error(transparent)]
    Egress(#[from] crate::egress::EgressError),
    /// A resource limit was malformed or exceeds the policy.
    #[error(transparent)]
    Limits(#[from] crate::limits::LimitsError),
    /// A secret could not be registered with the redactor.
    #[error(transparent)]
    Redact(#[from] crate::redact::RedactError),
    /// A key is rate limited.
    #[error(transparent)]
    RateLimited(#[from] crate::rate::RateLimited),
    /// A key is locked out after repeated failures.
    #[error(transparent)]
    Locked(#[from] crate::lockout::Locked),
    /// An action was refused for a reason of its own (NUL byte in a command, bad environment
    /// name, file too large, ...).
    #[error(transparent)]
    Action(#[from] crate::action::ActionError),
}

impl Error {
    /// The stable code of this error, e.g. `INVALID_SANDBOX_ID_CHARS`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SandboxId(e) => e.code(),
            Self::Quote(e) => e.code(),
            Self::Path(e) => e.code(),
            Self::Port(e) => e.code(),
            Self::Egress(e) => e.code(),
            Self::Limits(e) => e.code(),
            Self::Redact(e) => e.code(),
            Self::RateLimited(e) => e.code(),
            Self::Locked(e) => e.code(),
            Self::Action(e) => e.code(),
        }
    }
}
