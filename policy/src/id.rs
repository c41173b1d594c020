//! Sandbox IDs: DNS labels that double as access tokens.
//!
//! OWNER: helper A. API below is the contract the rest of the workspace codes against.

use std::fmt;

/// Names no sandbox may take, whatever the policy says.
pub const BUILTIN_RESERVED: &[&str] =
    &["www", "api", "admin", "root", "system", "localhost", "metadata", "internal", "default"];

/// Why a sandbox ID was refused. Every variant has a stable [`code`](IdError::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Empty, or longer than 63 bytes. Code `INVALID_SANDBOX_ID_LENGTH`.
    #[error("sandbox ID must be 1 to 63 bytes long, got {len}")]
    Length {
        /// Length in bytes of the refused input.
        len: usize,
    },
}

impl IdError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        todo!()
    }
}

/// A valid sandbox ID. One that exists is valid: the only constructors validate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SandboxId(String);

impl SandboxId {
    /// Validates `input` against the built-in rules ([`BUILTIN_RESERVED`] only).
    pub fn parse(input: &str) -> Result<Self, IdError> {
        let _ = input;
        todo!()
    }

    /// A fresh, unpredictable ID: `prefix-` followed by at least 128 bits of OS randomness.
    pub fn generate(prefix: &str) -> Result<Self, IdError> {
        let _ = prefix;
        todo!()
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SandboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The ID rules of one policy: the built-in reserved names plus the policy's own, compiled once.
#[derive(Debug, Clone, Default)]
pub struct IdRules {
    extra_reserved: Vec<String>,
}

impl IdRules {
    /// Rules with `extra_reserved` names refused on top of [`BUILTIN_RESERVED`].
    pub fn new<I, S>(extra_reserved: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self { extra_reserved: extra_reserved.into_iter().map(|s| s.as_ref().to_ascii_lowercase()).collect() }
    }

    /// Validates `input`.
    pub fn check(&self, input: &str) -> Result<SandboxId, IdError> {
        let _ = (input, &self.extra_reserved);
        todo!()
    }
}
