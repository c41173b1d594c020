//! What a caller asks to do ([`Action`]), and the policy's answer ([`Permit`] or [`Denial`]).

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::egress::EgressTarget;
use crate::limits::ResourceLimits;

/// Why a command was refused before any guard of its own looked at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The command is empty. Code `EMPTY_COMMAND`.
    #[error("the command is empty")]
    Empty,
}

impl ExecError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "EMPTY_COMMAND",
        }
    }
}

/// How a command is given: as a shell string, or as an argument vector that needs no shell.
#[derive(Debug, Clone, Copy)]
pub enum CommandSpec<'a> {
    /// A command line for `/bin/sh -c`.
    Shell(&'a str),
    /// A program and its arguments, run without a shell.
    Argv(&'a [OsString]),
}

/// A request to run a command.
#[derive(Debug, Clone, Copy)]
pub struct ExecRequest<'a> {
    /// The command.
    pub command: CommandSpec<'a>,
    /// Working directory inside the sandbox.
    pub cwd: Option<&'a OsStr>,
    /// Environment variables to set.
    pub env: &'a [(String, String)],
    /// Limits the caller asks for; each must be within the policy's.
    pub limits: Option<&'a ResourceLimits>,
}

/// One operation a caller asks the policy about.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Action<'a> {
    /// Run a command.
    Exec(ExecRequest<'a>),
    /// Read a file.
    ReadFile {
        /// Path inside the sandbox.
        path: &'a OsStr,
    },
    /// Write a file.
    WriteFile {
        /// Path inside the sandbox.
        path: &'a OsStr,
        /// Bytes to write.
        len: u64,
    },
    /// Expose a port of the sandbox.
    ExposePort {
        /// The port.
        port: u16,
    },
    /// Open an outbound connection.
    Connect {
        /// Where to.
        url: &'a str,
    },
}

/// What an allowed action may do, with every value normalised by its guard.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Grant {
    /// Run a command under these limits, in this directory.
    Exec {
        /// The limits that apply.
        limits: ResourceLimits,
        /// The canonical working directory, if one was asked for.
        cwd: Option<PathBuf>,
    },
    /// Read this canonical path.
    ReadFile {
        /// Canonical path.
        path: PathBuf,
    },
    /// Write this canonical path.
    WriteFile {
        /// Canonical path.
        path: PathBuf,
    },
    /// Expose this port.
    ExposePort {
        /// The port.
        port: u16,
    },
    /// Connect here.
    Connect {
        /// The target.
        target: EgressTarget,
    },
}

/// Proof that the policy allowed an action. Only [`Policy::authorize`](crate::Policy::authorize) makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct Permit {
    grant: Grant,
}

impl Permit {
    pub(crate) fn new(grant: Grant) -> Self {
        Self { grant }
    }
    /// What the permit allows.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }
}

/// The policy's refusal: a stable code and a message that says what was wrong and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct Denial {
    error: crate::Error,
}

impl Denial {
    /// The stable code, e.g. `PATH_OUTSIDE_ROOTS`.
    pub fn code(&self) -> &'static str {
        self.error.code()
    }
    /// The human message.
    pub fn message(&self) -> String {
        self.error.to_string()
    }
    /// The guard error behind the denial.
    pub fn error(&self) -> &crate::Error {
        &self.error
    }
}

impl<E: Into<crate::Error>> From<E> for Denial {
    fn from(error: E) -> Self {
        Self { error: error.into() }
    }
}
