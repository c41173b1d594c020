//! The executor's one error type.

/// Why the executor could not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A cgroup operation failed.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    /// Hardening a process (seccomp, Landlock, capabilities, rlimits) could not be prepared.
    #[error("cannot prepare process hardening: {0}")]
    Hardening(String),
}
