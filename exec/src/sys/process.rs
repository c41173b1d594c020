//! fork, wait4, execve and the few process-level calls nix does not wrap safely.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// Which side of a fork this is.
pub(crate) enum Forked {
    /// The new process.
    Child,
    /// The old one, with the new one's PID.
    Parent(Pid),
}

/// `fork(2)`.
///
/// The child of a multi-threaded process holds only the calling thread: it must not wait on a
/// lock another thread may have held (stdout, a `Mutex`, the allocator of a non-glibc libc). The
/// callers in this crate only do system calls and small allocations in the child (glibc's `fork`
/// resets its allocator's locks), then `execve` or `_exit`.
pub(crate) fn fork() -> Result<Forked, Errno> {
    // SAFETY: see above; every caller's child path is audited for fork safety and ends in
    // `execve` or `exit_now`, never returning into code that could touch another thread's state.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
    }
}

/// `clone(2)` with `flags` and no new stack: `fork`, plus what the flags ask for, e.g. new
/// namespaces, or `CLONE_PARENT` (the monitor forks the sandbox's init as the host's child).
///
/// Only for a single-threaded caller. The raw `clone` skips glibc's fork handlers (there is no
/// other thread whose locks they would reset) and leaves glibc's cached thread id stale in the
/// child, which glibc's own `raise` and `abort` do not rely on (they ask the kernel).
pub(crate) fn fork_raw(flags: libc::c_int) -> Result<Forked, Errno> {
    let flags = flags | libc::SIGCHLD;
    // SAFETY: without CLONE_VM and without a new stack, `clone` is `fork`: the child continues
    // here on its own copy of the memory. The caller is single-threaded (see above), and its child
    // path ends in `exit_now`, never returning into code that could touch another thread's state.
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::c_long::from(flags), 0, 0, 0, 0) };
    match pid {
        0 => Ok(Forked::Child),
        pid if pid > 0 => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
        _ => Err(Errno::last()),
    }
}

/// Whether this process has one thread: procfs counts a process's threads in the link count of
/// its `task` directory (two plus one per thread). `false` when that cannot be read.
pub(crate) fn is_single_threaded() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/task").is_ok_and(|task| task.nlink() == 3)
}

/// Ends this process at once, without running destructors or atexit handlers (which would flush
/// buffers shared with the parent after a fork).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` has no preconditions; it never returns.
    unsafe { libc::_exit(code) }
}

/// A reaped child: its PID, how it ended, and its resource usage.
pub(crate) struct Reaped {
    pub(crate) pid: i32,
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<i32>,
    pub(crate) cpu_us: u64,
    pub(crate) max_rss_kib: u64,
}

/// `wait4(pid, WNOHANG)`: reaps one ended child (`pid` -1 for any), if there is one.
pub(crate) fn reap(pid: i32) -> Option<Reaped> {
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live, writable locals of the right types.
    let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
    if reaped <= 0 {
        return None;
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let signal = libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
    let micros = |tv: libc::timeval| {
        u64::try_from(tv.tv_sec)
            .unwrap_or(0)
            .saturating_mul(1_000_000)
            .saturating_add(u64::try_from(tv.tv_usec).unwrap_or(0))
    };
    Some(Reaped {
        pid: reaped,
        code,
        signal,
        cpu_us: micros(usage.ru_utime).saturating_add(micros(usage.ru_stime)),
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
    })
}

/// Restores the default disposition of every signal: no process of the sandbox may inherit the
/// host's ignored `SIGPIPE` (Rust ignores it), nor a handler of the host's.
/// Signals 32 and 33 included, which glibc's `signal` refuses to touch (it keeps them for its
/// threads) but a process may still have inherited ignored.
pub(crate) fn reset_signal_dispositions() {
    // The kernel's `struct sigaction`, all zero: SIG_DFL, no flags, no restorer, empty mask. No
    // architecture's is larger than four words.
    let default = [0u64; 4];
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `default` is a readable all-zero `struct sigaction` at least as large as the
        // kernel's; the old action is not asked for (null); the mask size is the kernel's.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                default.as_ptr(),
                std::ptr::null_mut::<libc::c_void>(),
                std::mem::size_of::<u64>(),
            );
        }
    }
}

/// Unblocks every signal: a command must not inherit the init's blocked `SIGCHLD`.
pub(crate) fn unblock_all_signals() {
    // SAFETY: an empty set is a valid mask; the old-mask pointer may be null.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Closes every descriptor from `first` up, except `keep`.
pub(crate) fn close_descriptors_from(first: RawFd, keep: RawFd) {
    let first = first.max(0) as libc::c_uint;
    let keep = keep as libc::c_uint;
    // SAFETY: close_range only closes descriptors; the caller owns every descriptor in the range
    // (it is the child of a fork about to exec).
    unsafe {
        if keep >= first {
            if keep > first {
                libc::syscall(libc::SYS_close_range, first, keep - 1, 0);
            }
            libc::syscall(libc::SYS_close_range, keep + 1, libc::c_uint::MAX, 0);
        } else {
            libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0);
        }
    }
}

/// Closes every descriptor from 3 up except those in `keep`.
pub(crate) fn close_descriptors_except(keep: &[RawFd]) {
    let mut keep: Vec<libc::c_uint> = keep.iter().filter_map(|&fd| libc::c_uint::try_from(fd).ok()).collect();
    keep.sort_unstable();
    let mut next: libc::c_uint = 3;
    for fd in keep {
        if fd > next {
            // SAFETY: closes only descriptors this (freshly forked) process owns and does not keep.
            unsafe { libc::syscall(libc::SYS_close_range, next, fd - 1, 0) };
        }
        next = next.max(fd.saturating_add(1));
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, next, libc::c_uint::MAX, 0) };
}

/// A program's argument and environment vectors as `execve` wants them, built before the
/// spawn so the child allocates nothing.
pub(crate) struct ExecArgs<'a> {
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    _strings: std::marker::PhantomData<&'a CString>,
}

impl<'a> ExecArgs<'a> {
    /// Null-terminated pointer arrays over `argv` (at least one entry) and `env`.
    pub(crate) fn new(argv: &'a [CString], env: &'a [CString]) -> Self {
        let pointers = |strings: &'a [CString]| {
            strings.iter().map(|s| s.as_ptr()).chain(std::iter::once(std::ptr::null())).collect::<Vec<_>>()
        };
        Self { argv: pointers(argv), envp: pointers(env), _strings: std::marker::PhantomData }
    }

    /// The program, for messages.
    pub(crate) fn program(&self) -> &std::ffi::CStr {
        match self.argv.first() {
            // SAFETY: a non-null entry points into a live `CString` (lifetime `'a`).
            Some(&p) if !p.is_null() => unsafe { std::ffi::CStr::from_ptr(p) },
            _ => c"",
        }
    }

    /// `execvpe(3)`: runs `argv[0]` (searched on the `PATH` of the environment), or returns
    /// the error. Allocates nothing.
    pub(crate) fn exec(&self) -> Errno {
        let Some(&program) = self.argv.first() else { return Errno::EINVAL };
        if program.is_null() {
            return Errno::EINVAL;
        }
        // SAFETY: both arrays are null-terminated and point into `CString`s that outlive `self`
        // (the lifetime `'a`); execvpe only reads them.
        unsafe { libc::execvpe(program, self.argv.as_ptr(), self.envp.as_ptr()) };
        Errno::last()
    }
}

/// Stack for a [`spawn_shared`] child: big enough for the hardening steps and an error report.
pub(crate) const CHILD_STACK_BYTES: usize = 256 * 1024;

/// Starts `child` in a new process that shares this one's memory until it calls `execve` or
/// exits (`clone(CLONE_VM | CLONE_VFORK)`, as `posix_spawn` does): no page tables are copied and
/// no page is copied on write, which makes starting a command several times cheaper than `fork`
/// in a process the size of the init. This thread is suspended meanwhile.
///
/// `child` runs on `stack` and must not allocate, take locks, or move anything out of the shared
/// memory; it returns only on failure, with the exit status to end with.
pub(crate) fn spawn_shared(stack: &mut [u8], child: &mut dyn FnMut() -> i32) -> Result<Pid, Errno> {
    extern "C" fn trampoline(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `&mut &mut dyn FnMut` passed below, alive while the parent is
        // suspended (CLONE_VFORK) and this child runs.
        let child = unsafe { &mut *arg.cast::<&mut dyn FnMut() -> i32>() };
        exit_now(child())
    }
    if stack.len() < 16 * 1024 {
        return Err(Errno::EINVAL);
    }
    // The stack grows down: hand clone its 16-byte-aligned top.
    let top = stack.as_mut_ptr().wrapping_add(stack.len());
    let top = top.wrapping_sub(top as usize % 16);
    let mut child = child;
    let arg: *mut &mut dyn FnMut() -> i32 = &mut child;
    // SAFETY: `top` is the aligned end of a live, writable buffer used by nothing else while the
    // child runs (the parent is suspended until the child execs or exits); the trampoline never
    // returns into clone's caller; without CLONE_FILES or CLONE_SIGHAND the child's descriptors
    // and signal dispositions are its own.
    let pid =
        unsafe { libc::clone(trampoline, top.cast(), libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD, arg.cast()) };
    if pid < 0 { Err(Errno::last()) } else { Ok(Pid::from_raw(pid)) }
}

/// Moves the calling thread into a new network namespace, brings its loopback interface up, and
/// returns a descriptor of the namespace, for other threads to `setns` into.
pub(crate) fn new_network_namespace() -> Result<OwnedFd, Errno> {
    /// `SIOCGSKNS` of `<linux/sockios.h>`: a descriptor of a socket's network namespace.
    const SIOCGSKNS: libc::c_ulong = 0x894C;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
    // SAFETY: a plain datagram socket, in the new namespace; the descriptor is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    let socket = crate::sys::adopt_fd(fd);
    loopback_up(&socket)?;
    // SAFETY: SIOCGSKNS takes no argument and returns a new close-on-exec descriptor or -1.
    let namespace = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCGSKNS) };
    if namespace < 0 {
        return Err(Errno::last());
    }
    Ok(crate::sys::adopt_fd(namespace))
}

/// Brings up the loopback interface of `socket`'s network namespace.
fn loopback_up(socket: &OwnedFd) -> Result<(), Errno> {
    // SAFETY: an all-zero ifreq is valid; the name fits (3 bytes + NUL of IFNAMSIZ).
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write `request`, a live ifreq.
    unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(Errno::last());
        }
        request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(Errno::last());
        }
    }
    Ok(())
}

/// Waits up to `timeout` for child `pid` to end and reaps it; `false` when it is still running.
/// Sleeps in `poll` on a pidfd, so it wakes the moment the child ends.
pub(crate) fn reap_within(pid: Pid, timeout: std::time::Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if let Ok(fd) = RawFd::try_from(fd)
        && fd >= 0
    {
        let pidfd = crate::sys::adopt_fd(fd);
        let mut fds = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&pidfd), nix::poll::PollFlags::POLLIN)];
        let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(millis));
    }
    matches!(
        nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
        Ok(status) if status != nix::sys::wait::WaitStatus::StillAlive
    )
}
