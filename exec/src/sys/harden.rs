//! Process hardening: what every sandboxed process gets between `fork` and `execve`.
//!
//! [`Hardening::new`] does everything that allocates or reads files, once, before any fork: it
//! takes the seccomp program and the count of the kernel's capabilities (both worked out once per
//! process). [`Hardening::prepare_landlock`]
//! creates the Landlock ruleset inside the sandbox's mount namespace. In each forked child,
//! [`Hardening::apply_in_child`] then only makes system calls on that pre-built data, in this
//! order, each step needing what the previous ones still allow:
//!
//! 1. rlimits: core 0, file size, open files (only ever lowered: a limit above the current hard
//!    limit is clamped to it, which is stricter, where raising would need `CAP_SYS_RESOURCE`);
//! 2. `setgroups([gid])`, `setresgid(gid, gid, gid)`;
//! 3. securebits `NOROOT`, `NO_CAP_AMBIENT_RAISE` set, `KEEP_CAPS` clear, all locked: uid 0 gets
//!    no capabilities from `execve` and nothing can turn that back;
//! 4. every capability dropped from the bounding set (unless [`Hardening::empty_bounding_set`]
//!    already emptied it in an ancestor: the sandbox's monitor does, once for all its processes),
//!    the ambient set cleared;
//! 5. `setresuid(uid, uid, uid)`, then `capset` to all-zero effective, permitted and inheritable
//!    (`setresuid` already cleared them unless uid is 0);
//! 6. `no_new_privs`;
//! 7. Landlock `restrict_self`, when a ruleset was prepared;
//! 8. the seccomp filter last, so that no step after it needs a call it denies.
//!
//! Steps 2 to 4 need `CAP_SETGID` and `CAP_SETPCAP` in the caller's user namespace, which the
//! sandbox's init has; a caller without them gets an error, never a weaker process.
//!
//! Decided, and why:
//! - No `PR_SET_DUMPABLE 0`: `execve` recomputes dumpability for the new program (back to 1 when
//!   uid, gid and capabilities do not change across it), so setting it here would not last; core
//!   dumps are off through `RLIMIT_CORE` 0, and Landlock keeps the process from `ptrace`-style
//!   access (`/proc/<pid>/mem`) to anything outside its domain. A test pins this.
//! - The deny list, `ptrace` refused whole and the `personality` allowlist: see [`seccomp_filter`].
//! - Landlock handles filesystem rights only; TCP and scopes are left out: see [`landlock_rules`].

mod landlock_rules;
mod seccomp_filter;
#[cfg(test)]
mod tests;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
use seccompiler::BpfProgram;

/// Whether a sandbox needs Landlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LandlockMode {
    /// Refuse to run when the kernel has no Landlock.
    Required,
    /// Use Landlock when the kernel has it; run without it otherwise (the audit event says so).
    BestEffort,
    /// Never use Landlock.
    Off,
}

/// The resource limits set on every sandboxed process (besides core dumps, always off). The
/// number of processes is the pids cgroup's job. `u64::MAX` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rlimits {
    /// `RLIMIT_FSIZE`: the largest file the process may write, in bytes (beyond it: `SIGXFSZ`,
    /// or `EFBIG` when that signal is ignored).
    pub(crate) file_size: u64,
    /// `RLIMIT_NOFILE`: one more than the highest descriptor number the process may open.
    pub(crate) open_files: u64,
}

/// What [`Hardening::new`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HardeningOptions {
    /// The uid (real, effective, saved) the process runs as, in its user namespace.
    pub(crate) uid: u32,
    /// The gid (real, effective, saved, and the only supplementary group).
    pub(crate) gid: u32,
    /// Resource limits.
    pub(crate) rlimits: Rlimits,
    /// Whether Landlock is required, wanted or off.
    pub(crate) landlock: LandlockMode,
}

/// What Landlock enforces, for the audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LandlockStatus {
    /// The Landlock ABI whose filesystem rights are enforced: the kernel's, capped at the newest
    /// one sandguard has tested; 0 when Landlock is not used.
    pub(crate) abi: u32,
    /// Whether every filesystem right sandguard knows is enforced (the kernel's ABI is at least
    /// the tested one); false when Landlock is not used.
    pub(crate) fully_enforced: bool,
}

/// A step of [`Hardening::apply_in_child`] (or of its preparation), named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Step {
    /// `setrlimit(RLIMIT_CORE)`.
    RlimitCore,
    /// `setrlimit(RLIMIT_FSIZE)`.
    RlimitFileSize,
    /// `setrlimit(RLIMIT_NOFILE)`.
    RlimitOpenFiles,
    /// `setgroups`.
    SetGroups,
    /// `setresgid`.
    SetResGid,
    /// `prctl(PR_SET_SECUREBITS)`.
    SecureBits,
    /// `prctl(PR_CAPBSET_READ)`, counting capabilities before any fork.
    ReadBoundingSet,
    /// `prctl(PR_CAPBSET_DROP)`.
    DropBoundingSet,
    /// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)`.
    ClearAmbient,
    /// `setresuid`.
    SetResUid,
    /// `capset` to all-zero.
    ClearCapabilities,
    /// `prctl(PR_SET_NO_NEW_PRIVS)`.
    NoNewPrivs,
    /// `landlock_restrict_self`.
    LandlockRestrict,
    /// `seccomp(SECCOMP_SET_MODE_FILTER)`.
    Seccomp,
}

impl Step {
    const fn name(self) -> &'static str {
        match self {
            Self::RlimitCore => "setrlimit(RLIMIT_CORE)",
            Self::RlimitFileSize => "setrlimit(RLIMIT_FSIZE)",
            Self::RlimitOpenFiles => "setrlimit(RLIMIT_NOFILE)",
            Self::SetGroups => "setgroups",
            Self::SetResGid => "setresgid",
            Self::SecureBits => "prctl(PR_SET_SECUREBITS)",
            Self::ReadBoundingSet => "prctl(PR_CAPBSET_READ)",
            Self::DropBoundingSet => "prctl(PR_CAPBSET_DROP)",
            Self::ClearAmbient => "prctl(PR_CAP_AMBIENT_CLEAR_ALL)",
            Self::SetResUid => "setresuid",
            Self::ClearCapabilities => "capset",
            Self::NoNewPrivs => "prctl(PR_SET_NO_NEW_PRIVS)",
            Self::LandlockRestrict => "landlock_restrict_self",
            Self::Seccomp => "seccomp(SECCOMP_SET_MODE_FILTER)",
        }
    }

    const fn failed(self, errno: Errno) -> HardenError {
        HardenError::Step { step: self, errno }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a process could not be hardened. The variants raised in the child ([`HardenError::Step`])
/// carry no allocation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum HardenError {
    /// No seccomp filter exists for this architecture.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    #[error("seccomp: no filter for architecture `{0}` (supported: x86_64, aarch64)")]
    UnsupportedArch(&'static str),
    /// A row of the deny list cannot be compiled: it names a system call another row names, or
    /// a number or argument value out of range.
    #[error("seccomp: the deny list's row for `{0}` cannot be compiled (a duplicate, or a value out of range)")]
    SeccompTable(&'static str),
    /// Landlock is required and the kernel cannot give it.
    #[error("Landlock is required but unavailable: {0}")]
    LandlockRequired(&'static str),
    /// Landlock is required, and a child was to be hardened before [`Hardening::prepare_landlock`].
    #[error("Landlock is required but no ruleset was prepared (call `prepare_landlock` first)")]
    LandlockNotPrepared,
    /// Landlock is unavailable where it was expected to work.
    #[error("Landlock is unavailable: {0}")]
    LandlockUnavailable(&'static str),
    /// The Landlock ruleset could not be created.
    #[error("Landlock: cannot create the ruleset: {0}")]
    Landlock(#[source] landlock::RulesetError),
    /// A path could not be added to the Landlock ruleset.
    #[error("Landlock: cannot add a rule for `{}`: {reason}", .path.display())]
    LandlockPath {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A system call of the hardening failed.
    #[error("{step}: {} ({errno:?})", .errno.desc())]
    Step {
        /// Which step.
        step: Step,
        /// The kernel's answer.
        errno: Errno,
    },
}

/// The hardening of a sandbox's processes: built once, applied in every forked child.
#[derive(Debug)]
pub(crate) struct Hardening {
    uid: Uid,
    gid: Gid,
    rlimits: [(Resource, Step, u64); 3],
    landlock: LandlockMode,
    /// The prepared ruleset (close-on-exec), applied by each child.
    landlock_ruleset: Option<OwnedFd>,
    /// The highest capability number the kernel knows.
    last_capability: libc::c_ulong,
    seccomp: BpfProgram,
    /// The filter is already installed in the calling process (the sandbox's init), so every
    /// child inherits it through `fork` and does not install it again.
    seccomp_inherited: bool,
    /// The bounding set is already empty in the calling process, and so in every child.
    bounding_set_inherited: bool,
}

/// Securebits set before the uid changes, every one of them locked.
const SECURE_BITS: libc::c_ulong = (libc::SECBIT_NOROOT
    | libc::SECBIT_NOROOT_LOCKED
    | libc::SECBIT_NO_SETUID_FIXUP_LOCKED
    | libc::SECBIT_KEEP_CAPS_LOCKED
    | libc::SECBIT_NO_CAP_AMBIENT_RAISE
    | libc::SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED) as libc::c_ulong;

impl Hardening {
    /// Compiles the seccomp filter for the running architecture and counts the kernel's
    /// capabilities; no Landlock yet (see [`Self::prepare_landlock`]).
    pub(crate) fn new(options: &HardeningOptions) -> Result<Self, HardenError> {
        Ok(Self {
            uid: Uid::from_raw(options.uid),
            gid: Gid::from_raw(options.gid),
            rlimits: [
                (Resource::RLIMIT_CORE, Step::RlimitCore, 0),
                (Resource::RLIMIT_FSIZE, Step::RlimitFileSize, options.rlimits.file_size),
                (Resource::RLIMIT_NOFILE, Step::RlimitOpenFiles, options.rlimits.open_files),
            ],
            landlock: options.landlock,
            landlock_ruleset: None,
            last_capability: last_capability()?,
            seccomp: seccomp_program()?,
            seccomp_inherited: false,
            bounding_set_inherited: false,
        })
    }

    /// Empties the bounding set of the calling process, which every process it forks inherits:
    /// they then skip that step (41 calls each). The sandbox's monitor does it, in new user
    /// namespace where it holds `CAP_SETPCAP`, while the host writes its id maps; the caller's
    /// own effective and permitted capabilities stay.
    pub(crate) fn empty_bounding_set(&mut self) -> Result<(), HardenError> {
        self.drop_bounding_set()?;
        self.bounding_set_inherited = true;
        Ok(())
    }

    fn drop_bounding_set(&self) -> Result<(), HardenError> {
        for capability in 0..=self.last_capability {
            prctl(libc::PR_CAPBSET_DROP, capability).map_err(|errno| Step::DropBoundingSet.failed(errno))?;
        }
        Ok(())
    }

    /// Installs the seccomp filter in the calling process — the sandbox's init, once its root is
    /// built and it needs none of the calls the filter refuses — so the children it forks inherit
    /// it instead of each installing (and the kernel each validating) the program again, which
    /// was a sixth of the time of a warm exec. The init is then confined like its commands.
    pub(crate) fn confine_self(&mut self) -> Result<(), HardenError> {
        self.apply_seccomp()?;
        self.seccomp_inherited = true;
        Ok(())
    }

    fn apply_seccomp(&self) -> Result<(), HardenError> {
        seccompiler::apply_filter(&self.seccomp).map_err(|error| {
            let errno = match &error {
                seccompiler::Error::Prctl(io) | seccompiler::Error::Seccomp(io) => io.raw_os_error(),
                _ => None,
            };
            Step::Seccomp.failed(errno.map_or(Errno::EINVAL, Errno::from_raw))
        })
    }

    /// Creates the Landlock ruleset that every later child applies: all of `writable` may be
    /// read, written and executed, all of `readable` read and executed, nothing else touched.
    /// Paths that do not exist are skipped. Call it inside the sandbox's mount namespace, after
    /// `pivot_root`: it opens the paths, and it only creates a ruleset descriptor, restricting
    /// nobody yet.
    ///
    /// With [`LandlockMode::Required`] and no Landlock in the kernel, an error names it; with
    /// [`LandlockMode::BestEffort`] the status then says ABI 0.
    pub(crate) fn prepare_landlock(
        &mut self,
        writable: &[&Path],
        readable: &[&Path],
    ) -> Result<LandlockStatus, HardenError> {
        self.landlock_ruleset = None;
        let not_enforced = LandlockStatus { abi: 0, fully_enforced: false };
        if self.landlock == LandlockMode::Off {
            return Ok(not_enforced);
        }
        let kernel_abi = match landlock_rules::kernel_abi() {
            Ok(abi) if abi > 0 => abi,
            result => {
                if self.landlock == LandlockMode::BestEffort {
                    return Ok(not_enforced);
                }
                return Err(HardenError::LandlockRequired(match result {
                    Err(Errno::ENOSYS) => "the kernel does not implement it (ENOSYS)",
                    Err(Errno::EOPNOTSUPP) => {
                        "the kernel has it but it is not enabled (EOPNOTSUPP: add `landlock` to the `lsm=` boot parameter)"
                    }
                    _ => "the kernel did not answer the version query",
                }));
            }
        };
        self.landlock_ruleset = Some(landlock_rules::create(kernel_abi, writable, readable)?);
        Ok(LandlockStatus {
            abi: kernel_abi.min(landlock_rules::VETTED_ABI),
            fully_enforced: kernel_abi >= landlock_rules::VETTED_ABI,
        })
    }

    /// Hardens the calling process, which must be a single-threaded child between `fork` and
    /// `execve`: makes system calls on pre-built data only (no allocation, no file opened).
    /// On error the process is half-hardened and must not `execve`: report and `_exit`.
    pub(crate) fn apply_in_child(&self) -> Result<(), HardenError> {
        for &(resource, step, limit) in &self.rlimits {
            lower_rlimit(resource, limit).map_err(|errno| step.failed(errno))?;
        }
        setgroups(&[self.gid]).map_err(|errno| Step::SetGroups.failed(errno))?;
        setresgid(self.gid, self.gid, self.gid).map_err(|errno| Step::SetResGid.failed(errno))?;
        prctl(libc::PR_SET_SECUREBITS, SECURE_BITS).map_err(|errno| Step::SecureBits.failed(errno))?;
        if !self.bounding_set_inherited {
            self.drop_bounding_set()?;
        }
        prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong)
            .map_err(|errno| Step::ClearAmbient.failed(errno))?;
        setresuid(self.uid, self.uid, self.uid).map_err(|errno| Step::SetResUid.failed(errno))?;
        clear_capabilities().map_err(|errno| Step::ClearCapabilities.failed(errno))?;
        nix::sys::prctl::set_no_new_privs().map_err(|errno| Step::NoNewPrivs.failed(errno))?;
        match &self.landlock_ruleset {
            Some(ruleset) => landlock_restrict_self(ruleset).map_err(|errno| Step::LandlockRestrict.failed(errno))?,
            None if self.landlock == LandlockMode::Required => return Err(HardenError::LandlockNotPrepared),
            None => {}
        }
        if self.seccomp_inherited { Ok(()) } else { self.apply_seccomp() }
    }
}

/// Sets both limits of `resource` to `limit`, or to the current hard limit when that is lower.
fn lower_rlimit(resource: Resource, limit: u64) -> Result<(), Errno> {
    let (_, hard) = getrlimit(resource)?;
    let limit = limit.min(hard);
    setrlimit(resource, limit, limit)
}

/// The highest capability number the kernel knows, asked of the kernel itself (as libcap does),
/// so that it works before `/proc` is mounted.
fn last_capability() -> Result<libc::c_ulong, HardenError> {
    // The kernel's, so the same for the whole life of the process: asked once.
    static LAST: OnceLock<libc::c_ulong> = OnceLock::new();
    if let Some(&last) = LAST.get() {
        return Ok(last);
    }
    let last = ask_last_capability()?;
    Ok(*LAST.get_or_init(|| last))
}

fn ask_last_capability() -> Result<libc::c_ulong, HardenError> {
    let mut last = None;
    for capability in 0..64 {
        match prctl(libc::PR_CAPBSET_READ, capability) {
            Ok(()) => last = Some(capability),
            Err(Errno::EINVAL) => break,
            Err(errno) => return Err(Step::ReadBoundingSet.failed(errno)),
        }
    }
    last.ok_or(Step::ReadBoundingSet.failed(Errno::EINVAL))
}

/// The seccomp program for the running architecture, compiled once per process.
fn seccomp_program() -> Result<BpfProgram, HardenError> {
    static PROGRAM: OnceLock<BpfProgram> = OnceLock::new();
    if let Some(program) = PROGRAM.get() {
        return Ok(program.clone());
    }
    let program = seccomp_filter::compile()?;
    Ok(PROGRAM.get_or_init(|| program).clone())
}

/// `prctl(option, arg, 0, 0, 0)`, for the options here that take integers only.
fn prctl(option: libc::c_int, arg: libc::c_ulong) -> Result<(), Errno> {
    let zero: libc::c_ulong = 0;
    // SAFETY: the options passed here (PR_CAPBSET_READ, PR_CAPBSET_DROP, PR_CAP_AMBIENT,
    // PR_SET_SECUREBITS) take integer arguments only; the kernel reads and writes no memory.
    let result = unsafe { libc::prctl(option, arg, zero, zero, zero) };
    Errno::result(result).map(drop)
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapabilityHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy)]
struct CapabilityData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets, as two data structs.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `capset` with empty effective, permitted and inheritable sets for the calling thread.
fn clear_capabilities() -> Result<(), Errno> {
    let mut header = CapabilityHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let data = [CapabilityData { effective: 0, permitted: 0, inheritable: 0 }; 2];
    // SAFETY: `header` and `data` have the kernel's layout (`repr(C)`), version 3 reads exactly
    // two data structs, and both live across the call; the kernel reads `data` and may only
    // write `header.version` (on a version mismatch).
    let result = unsafe { libc::syscall(libc::SYS_capset, std::ptr::from_mut(&mut header), data.as_ptr()) };
    Errno::result(result).map(drop)
}

/// `landlock_restrict_self(ruleset, 0)`.
fn landlock_restrict_self(ruleset: &OwnedFd) -> Result<(), Errno> {
    let flags: libc::c_uint = 0;
    // SAFETY: integer arguments only: a descriptor this value owns (open for as long as `ruleset`
    // is borrowed) and no flags.
    let result = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), flags) };
    Errno::result(result).map(drop)
}
