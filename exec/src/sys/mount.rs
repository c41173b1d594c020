//! `mount_setattr(2)` (Linux 5.12), which nix does not wrap.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

/// `struct mount_attr` of `<linux/mount.h>`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;

/// Makes the mount at `path` read-only and nosuid, and with `recursive` every mount below it
/// too, in one call. Its other flags, among them those the kernel locks on mounts that came from
/// a more privileged namespace (nodev, noexec, atime), stay as they are.
///
/// # Errors
/// `ENOSYS` before Linux 5.12; what the kernel refuses otherwise.
pub(crate) fn make_read_only(path: &Path, recursive: bool) -> Result<(), Errno> {
    let path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let attr = MountAttr { attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, attr_clr: 0, propagation: 0, userns_fd: 0 };
    let flags: libc::c_uint = if recursive { libc::AT_RECURSIVE as libc::c_uint } else { 0 };
    // SAFETY: `path` is NUL-terminated and `attr` a live `mount_attr` of the size passed; the
    // kernel only reads both during the call.
    let result = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            std::ptr::from_ref(&attr),
            std::mem::size_of::<MountAttr>(),
        )
    };
    if result < 0 { Err(Errno::last()) } else { Ok(()) }
}
