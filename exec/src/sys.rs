//! The Linux system-call layer: the only place in sandguard with `unsafe`.
//!
//! Everything here is a thin, documented wrapper; the policy of what to call when lives in the
//! safe modules above (`sandbox`, `init`, `rootfs`).

pub(crate) mod harden;
pub(crate) mod mount;
pub(crate) mod openat2;
pub(crate) mod process;

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Takes ownership of a descriptor the kernel just gave this process (e.g. through
/// `SCM_RIGHTS`), so it is closed exactly once.
pub(crate) fn adopt_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass descriptors freshly installed by the kernel in this process and owned
    // by nothing else; `OwnedFd` becomes their only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
