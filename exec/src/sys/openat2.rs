//! `openat2(2)` and `renameat2(2)`: the path-resolution system calls the host-side file API is
//! built on.
//!
//! `openat2` is what makes a sandbox's root a real boundary for the host: with `RESOLVE_IN_ROOT`
//! the kernel resolves every `..` and every absolute symlink as if the directory fd were `/`, in
//! one atomic walk, so no rename race in the sandbox can make the walk leave it. It is a raw
//! system call (Linux 5.6+); libc has no wrapper. `renameat2` is called raw too, because libc's
//! wrapper exists only in glibc 2.28+ and we want `RENAME_NOREPLACE` on every libc.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

#[cfg(test)]
pub(crate) use libc::RENAME_EXCHANGE;
pub(crate) use libc::{
    RENAME_NOREPLACE, RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV,
};

/// How many times a resolution is retried when the kernel reports `EAGAIN`.
///
/// With `RESOLVE_IN_ROOT` (and `RESOLVE_BENEATH`) the kernel refuses, with `EAGAIN`, a walk that
/// went through `..` while a rename or mount happened anywhere on the system: it cannot then
/// prove the walk stayed inside. Retrying is the documented answer; an attacker in the sandbox
/// who renames in a tight loop can only make us fail, never escape.
const EAGAIN_RETRIES: u32 = 128;

/// `struct open_how` (linux/openat2.h), version 0: 24 bytes.
///
/// Our own definition rather than `libc::open_how`, which is `#[non_exhaustive]` and so cannot
/// be built without `unsafe` zeroing. Extra fields in a later kernel ABI stay unused: the kernel
/// treats a shorter struct as having zeroes there.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(dirfd, path, {flags | O_CLOEXEC, mode, resolve})`, retried on `EINTR` and (a bounded
/// number of times) on `EAGAIN`.
///
/// `mode` must be 0 unless `flags` has `O_CREAT` or `O_TMPFILE` (the kernel says `EINVAL`).
/// `ENOSYS` means the kernel (or a seccomp filter around this process) has no `openat2`: callers
/// must fail closed, never fall back to `openat`.
pub(crate) fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    // `flags` is a C int holding bit flags; the kernel takes it zero-extended to 64 bits (a
    // sign-extended negative int would set unknown high bits and fail with EINVAL).
    let flags = u64::from(u32::from_ne_bytes((flags | libc::O_CLOEXEC).to_ne_bytes()));
    let how = OpenHow { flags, mode: u64::from(mode), resolve };
    let mut attempts = 0;
    loop {
        // SAFETY: `path` is a valid NUL-terminated string and `how` a live, initialised
        // `open_how` of the size we pass; the kernel only reads both during the call. `dirfd` is
        // a borrowed, open descriptor. On success the return value is a new descriptor that
        // nothing else owns.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                path.as_ptr(),
                &raw const how,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if ret >= 0 {
            let Ok(fd) = RawFd::try_from(ret) else {
                // A descriptor that does not fit an int cannot happen; refuse rather than guess.
                return Err(Errno::EOVERFLOW);
            };
            // SAFETY: the kernel returned a fresh descriptor, owned by nobody else.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        match Errno::last() {
            Errno::EINTR => {}
            Errno::EAGAIN if attempts < EAGAIN_RETRIES => attempts += 1,
            errno => return Err(errno),
        }
    }
}

/// `renameat2(olddirfd, old, newdirfd, new, flags)`, retried on `EINTR`.
pub(crate) fn renameat2(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
    flags: libc::c_uint,
) -> Result<(), Errno> {
    loop {
        // SAFETY: both names are valid NUL-terminated strings and both descriptors are borrowed
        // and open for the duration of the call; the kernel keeps no pointer after it returns.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                old_dir.as_raw_fd(),
                old.as_ptr(),
                new_dir.as_raw_fd(),
                new.as_ptr(),
                flags,
            )
        };
        if ret == 0 {
            return Ok(());
        }
        match Errno::last() {
            Errno::EINTR => {}
            errno => return Err(errno),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn in_root_clamps_dotdot_and_absolute_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("inner")).unwrap();
        std::fs::write(dir.path().join("inner/marker"), b"in").unwrap();
        let root = nix::fcntl::open(
            &dir.path().join("inner"),
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        for path in [c"marker", c"/marker", c"../../../marker", c"/../marker"] {
            let fd = openat2(root.as_fd(), path, libc::O_RDONLY, 0, RESOLVE_IN_ROOT).unwrap();
            let mut content = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut content).unwrap();
            assert_eq!(content, "in", "{path:?}");
        }
        // Without IN_ROOT, BENEATH refuses the same walk outright.
        assert_eq!(
            openat2(root.as_fd(), c"../inner/marker", libc::O_RDONLY, 0, RESOLVE_BENEATH).unwrap_err(),
            Errno::EXDEV
        );
    }

    #[test]
    fn mode_without_create_is_rejected_by_the_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let root = nix::fcntl::open(dir.path(), nix::fcntl::OFlag::O_PATH, nix::sys::stat::Mode::empty()).unwrap();
        assert_eq!(openat2(root.as_fd(), c".", libc::O_RDONLY, 0o644, 0).unwrap_err(), Errno::EINVAL);
    }

    #[test]
    fn renameat2_noreplace_refuses_to_clobber() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"a").unwrap();
        std::fs::write(dir.path().join("b"), b"b").unwrap();
        let fd = nix::fcntl::open(dir.path(), nix::fcntl::OFlag::O_PATH, nix::sys::stat::Mode::empty()).unwrap();
        assert_eq!(renameat2(fd.as_fd(), c"a", fd.as_fd(), c"b", RENAME_NOREPLACE).unwrap_err(), Errno::EEXIST);
        renameat2(fd.as_fd(), c"a", fd.as_fd(), c"b", RENAME_EXCHANGE).unwrap();
        assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), b"a");
    }

    /// Makes `openat2` fail with `errno` in the calling thread only (a seccomp filter without
    /// TSYNC), as a kernel without it or a container runtime's seccomp profile would.
    fn deny_openat2_in_this_thread(errno: u32) {
        let nr = u32::try_from(libc::SYS_openat2).unwrap();
        let filter = [
            libc::sock_filter { code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, jt: 0, jf: 0, k: 0 },
            libc::sock_filter { code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16, jt: 0, jf: 1, k: nr },
            libc::sock_filter { code: libc::BPF_RET as u16, jt: 0, jf: 0, k: libc::SECCOMP_RET_ERRNO | errno },
            libc::sock_filter { code: libc::BPF_RET as u16, jt: 0, jf: 0, k: libc::SECCOMP_RET_ALLOW },
        ];
        let program = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr().cast_mut() };
        // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integers; it only affects this thread.
        assert_eq!(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }, 0);
        // SAFETY: `program` points at `filter`, both live for the call; the kernel copies them.
        let ret = unsafe { libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &raw const program) };
        assert_eq!(ret, 0, "{}", std::io::Error::last_os_error());
    }

    #[test]
    fn file_operations_fail_closed_without_openat2() {
        let dir = tempfile::tempdir().unwrap();
        for errno in [libc::ENOSYS, libc::EPERM] {
            let root = dir.path().to_path_buf();
            let code = std::thread::spawn(move || {
                deny_openat2_in_this_thread(u32::try_from(errno).unwrap());
                crate::files::FileOps::open(&root, 1000, 1000).unwrap_err().code()
            })
            .join()
            .unwrap();
            assert_eq!(code, "OPENAT2_UNSUPPORTED", "errno {errno}");
        }
    }
}
