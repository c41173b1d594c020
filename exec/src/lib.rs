//! The bundled Linux container executor of sandguard.
//!
//! A [`Sandbox`] is a long-lived init process in new user, PID, mount, network, UTS, IPC and
//! cgroup namespaces, pivoted into a private root (see [`rootfs`](crate) docs); every command runs
//! as its child with no capabilities, `no_new_privs`, a seccomp filter, Landlock, rlimits and the
//! sandbox's cgroup. The host talks to the init over a socket pair; a command's standard streams
//! are pipes the host reads directly.
//!
//! How a sandbox starts (see `start`): a single-threaded host forks the init straight into new
//! namespaces (all but the network and cgroup ones); a multi-threaded one forks a monitor that
//! makes them and forks the init as the host's own child (`CLONE_PARENT`). While the host writes
//! the uid and gid maps, that first child resets signal dispositions and empties the capability
//! bounding set, for every process of the sandbox to inherit. The init builds its root on the
//! host's shared read-only skeleton while a thread of it makes the network namespace (with loopback
//! up) and the host makes the sandbox's cgroup; then the init enters the network namespace, joins
//! the cgroup, makes its cgroup namespace, prepares Landlock, installs the seccomp filter (which
//! every command inherits) and reports ready. Destroying it kills the init, which takes every
//! process of its PID namespace along; once the host has reaped it, the cgroup is empty and
//! removed. [`Sandbox::run_once`] hands the init its one command before it is ready, and the init
//! ends itself once that command has ended.

// `unsafe` lives in `sys/` only (each block with a `// SAFETY:` comment); `deny` rather than
// `forbid` so that module alone can allow it.
#![deny(unsafe_code)]

pub mod cgroup;
pub mod error;
pub mod files;
mod init;
pub mod process;
mod protocol;
mod rootfs;
mod sandbox;
pub mod session;
mod start;
#[allow(unsafe_code)]
mod sys;

pub use error::Error;
pub use sandbox::{Command, Output, RunOnce, Sandbox, SandboxConfig, Stream, default_env};
