//! The bundled Linux container executor of sandguard.
//!
//! A sandbox is a long-lived init process in new user, PID, mount, network, UTS, IPC and cgroup
//! namespaces, pivoted into a private root; every command runs as its child with no capabilities,
//! `no_new_privs`, a seccomp filter, Landlock, rlimits and the sandbox's cgroup.

// `unsafe` lives in `sys/` only (each block with a `// SAFETY:` comment); `deny` rather than
// `forbid` so that module alone can allow it.
#![deny(unsafe_code)]

pub mod cgroup;
pub mod error;
#[allow(unsafe_code)]
mod sys;

pub use error::Error;
