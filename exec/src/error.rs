//! The executor's one error type.

/// Why the executor could not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A cgroup operation failed (or the cgroup controllers the sandbox needs are missing).
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    /// A file operation inside the sandbox failed or was refused.
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    /// Waiting on a background process failed (timed out, it ended first, ...).
    #[error(transparent)]
    Wait(#[from] crate::process::WaitError),
    /// Hardening a process (seccomp, Landlock, capabilities, rlimits) could not be prepared.
    #[error("cannot prepare process hardening: {0}")]
    Hardening(String),
    /// Creating the sandbox failed at `stage`; nothing was left behind.
    #[error("sandbox setup failed at {stage}: {error}")]
    Setup {
        /// The step that failed, e.g. `create namespaces (unshare)` or `pivot_root`.
        stage: String,
        /// The system's error.
        error: String,
    },
    /// A sandbox name must be 1 to 63 bytes of `[a-z0-9-]`.
    #[error("invalid sandbox name {0:?}: names are 1 to 63 bytes of [a-z0-9-]")]
    InvalidName(String),
    /// The sandbox runs without a cgroup (weaker mode), so there is no usage to report.
    #[error("the sandbox has no cgroup")]
    NoCgroup,
    /// The command could not be started inside the sandbox.
    #[error("cannot start the command: {0}")]
    Spawn(String),
    /// Talking to the sandbox failed.
    #[error("exec failed: {0}")]
    Exec(String),
    /// The sandbox is destroyed or its init has died.
    #[error("the sandbox is gone")]
    Gone,
}
