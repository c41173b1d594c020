//! What a caller asks to do ([`Action`]), and the policy's answer ([`Permit`] or [`Denial`]).

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::egress::EgressTarget;
use crate::limits::ResourceLimits;

/// Why an action was refused by the policy's own rules (rather than by one of the value guards).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    /// The command is empty. Code `EMPTY_COMMAND`.
    #[error("the command is empty")]
    EmptyCommand,
    /// A shell command line was given but the policy allows argument vectors only.
    /// Code `SHELL_NOT_ALLOWED`.
    #[error("shell command lines are disabled by the policy ([exec] shell = false); pass an argument vector")]
    ShellNotAllowed,
    /// The command is longer than the policy allows. Code `COMMAND_TOO_LONG`.
    #[error("the command is {len} bytes; the policy allows at most {max}")]
    CommandTooLong {
        /// Length of the command in bytes (all arguments together).
        len: usize,
        /// The policy's maximum.
        max: usize,
    },
    /// A command argument holds a NUL byte, which no `execve` argument can carry.
    /// Code `COMMAND_CONTAINS_NUL`.
    #[error("argument {index} of the command contains a NUL byte")]
    CommandContainsNul {
        /// Which argument (0 is the program, or the shell string).
        index: usize,
    },
    /// An environment variable name is not `[A-Za-z_][A-Za-z0-9_]*`. Code `INVALID_ENV_NAME`.
    #[error("environment variable name {name:?} is invalid: names match [A-Za-z_][A-Za-z0-9_]*")]
    InvalidEnvName {
        /// The refused name.
        name: String,
    },
    /// An environment variable value holds a NUL byte. Code `ENV_CONTAINS_NUL`.
    #[error("the value of environment variable {name} contains a NUL byte")]
    EnvContainsNul {
        /// The variable's name.
        name: String,
    },
    /// The policy forbids setting this variable (e.g. `LD_PRELOAD`). Code `ENV_NOT_ALLOWED`.
    #[error("setting environment variable {name} is not allowed by the policy")]
    EnvNotAllowed {
        /// The variable's name.
        name: String,
    },
    /// Too many environment variables. Code `TOO_MANY_ENV_VARS`.
    #[error("{count} environment variables given; the policy allows at most {max}")]
    TooManyEnvVars {
        /// How many were given.
        count: usize,
        /// The policy's maximum.
        max: usize,
    },
    /// A file write is larger than the policy's file size limit. Code `FILE_TOO_LARGE`.
    #[error("writing {len} bytes exceeds the policy's file size limit of {max} bytes")]
    FileTooLarge {
        /// Bytes to write.
        len: u64,
        /// The limit.
        max: u64,
    },
}

impl ActionError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyCommand => "EMPTY_COMMAND",
            Self::ShellNotAllowed => "SHELL_NOT_ALLOWED",
            Self::CommandTooLong { .. } => "COMMAND_TOO_LONG",
            Self::CommandContainsNul { .. } => "COMMAND_CONTAINS_NUL",
            Self::InvalidEnvName { .. } => "INVALID_ENV_NAME",
            Self::EnvContainsNul { .. } => "ENV_CONTAINS_NUL",
            Self::EnvNotAllowed { .. } => "ENV_NOT_ALLOWED",
            Self::TooManyEnvVars { .. } => "TOO_MANY_ENV_VARS",
            Self::FileTooLarge { .. } => "FILE_TOO_LARGE",
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
    /// List a directory (granted as a [`Grant::ReadFile`] of the directory).
    ListDir {
        /// Path inside the sandbox.
        path: &'a OsStr,
    },
    /// Create a directory (granted as a [`Grant::WriteFile`] of the directory).
    MakeDir {
        /// Path inside the sandbox.
        path: &'a OsStr,
    },
    /// Remove a file or directory (granted as a [`Grant::WriteFile`] of the path).
    Remove {
        /// Path inside the sandbox.
        path: &'a OsStr,
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

impl Action<'_> {
    /// The action's name as recorded in audit events: `exec`, `file.read`, `file.write`,
    /// `file.list`, `file.mkdir`, `file.remove`, `port.expose`, `egress.connect`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Exec(_) => "exec",
            Self::ReadFile { .. } => "file.read",
            Self::WriteFile { .. } => "file.write",
            Self::ListDir { .. } => "file.list",
            Self::MakeDir { .. } => "file.mkdir",
            Self::Remove { .. } => "file.remove",
            Self::ExposePort { .. } => "port.expose",
            Self::Connect { .. } => "egress.connect",
        }
    }
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
