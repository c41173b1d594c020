//! Resource limits with human units (`30s`, `512MiB`).
//!
//! OWNER: helper C.

use std::time::Duration;

/// Why a limit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitsError {
    /// A size could not be parsed. Code `INVALID_SIZE`.
    #[error("invalid size {input:?}: expected e.g. 512MiB, 64KiB, 1GB or a number of bytes")]
    Size {
        /// The refused text.
        input: String,
    },
}

impl LimitsError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        todo!()
    }
}

/// A number of bytes, written in TOML and on the command line as `512MiB`, `1GB`, `4096`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

/// A duration, written `30s`, `500ms`, `5m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

/// Limits on what one sandbox or one command may consume.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceLimits {
    /// Wall-clock time one command may run.
    pub timeout: Duration,
    /// Memory of the sandbox's cgroup, in bytes.
    pub memory: u64,
    /// Processes and threads in the sandbox.
    pub pids: u32,
    /// CPU bandwidth in cores (`1.5` = one and a half cores).
    pub cpus: f64,
    /// Largest file a process may write, in bytes (RLIMIT_FSIZE).
    pub file_size: u64,
    /// Size of the writable filesystems, in bytes.
    pub disk: u64,
    /// Bytes of stdout plus stderr kept per command; the rest is dropped and flagged truncated.
    pub output: u64,
    /// Open files per process (RLIMIT_NOFILE).
    pub open_files: u32,
}
