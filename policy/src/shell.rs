//! POSIX shell quoting that round-trips through dash, bash and zsh, and an argv-first API.
//!
//! OWNER: helper A.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};

/// Why an argument could not be quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuoteError {
    /// The argument holds a NUL byte, which no shell word and no `execve` argument can carry.
    /// Code `SHELL_ARG_CONTAINS_NUL`.
    #[error("argument contains a NUL byte at offset {index}; no shell word can carry it")]
    Nul {
        /// Byte offset of the first NUL.
        index: usize,
    },
}

impl QuoteError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Nul { .. } => "SHELL_ARG_CONTAINS_NUL",
        }
    }
}

/// Quotes one argument so that any POSIX shell reads it back as exactly one word, byte for byte.
pub fn quote(arg: &OsStr) -> Result<Cow<'_, OsStr>, QuoteError> {
    let _ = arg;
    todo!()
}

/// Quotes every argument and joins them with single spaces into one command line.
pub fn join<I, S>(args: I) -> Result<OsString, QuoteError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let _ = args.into_iter();
    todo!()
}
