//! cgroups v1 and v2 (OWNER: helper X).

/// Why a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgroupError {
    /// Placeholder.
    #[error("cgroup: {0}")]
    Io(String),
}
