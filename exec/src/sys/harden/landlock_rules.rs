//! The Landlock ruleset: which paths a sandboxed process may write, and which it may only read.
//!
//! Every filesystem right of the Landlock ABI in use is handled, so whatever is not granted below
//! is denied: a path in neither list cannot even be listed, and nothing outside the writable
//! paths can be created, written, truncated, renamed or removed, whatever the mount says.
//!
//! The ABI in use is the kernel's, capped at [`VETTED_ABI`]: rights that a newer kernel would add
//! change what programs may do (ABI 9 restricts connecting to pathname UNIX sockets), so they are
//! taken on only once tested here, as the `landlock` crate advises.
//!
//! Not restricted, on purpose:
//! - TCP `bind`/`connect` (ABI 4): the sandbox's network namespace already has only loopback,
//!   and servers inside the sandbox (background processes, exposed ports) and the egress proxy
//!   need both.
//! - Scopes (ABI 6: abstract UNIX sockets, signals): each command gets its own Landlock domain,
//!   so scoping would stop `kill` between two commands of one sandbox, while the PID and network
//!   namespaces already keep the host's processes and sockets out of reach.

use std::os::fd::OwnedFd;
use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, PathFdError, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr,
};
use nix::errno::Errno;

use super::HardenError;

/// The newest Landlock ABI whose rights sandguard has tested (on Linux 6.18).
pub(super) const VETTED_ABI: u32 = 7;

/// `LANDLOCK_CREATE_RULESET_VERSION` from `<linux/landlock.h>`.
const CREATE_RULESET_VERSION: libc::c_uint = 1;

/// The kernel's Landlock ABI version: `Err(ENOSYS)` when it is not built in, `Err(EOPNOTSUPP)`
/// when it is built in but not enabled at boot.
pub(super) fn kernel_abi() -> Result<u32, Errno> {
    // SAFETY: with a null attribute pointer, size 0 and the VERSION flag the call reads and writes
    // no memory; it only returns the ABI version (or -1 with errno).
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    if version < 0 { Err(Errno::last()) } else { Ok(u32::try_from(version).unwrap_or(u32::MAX)) }
}

/// Creates the ruleset for `abi` (at most [`VETTED_ABI`]) and returns its descriptor
/// (close-on-exec, as the kernel makes it). Missing paths are skipped: no rule is less access.
pub(super) fn create(abi: u32, writable: &[&Path], readable: &[&Path]) -> Result<OwnedFd, HardenError> {
    let abi = ABI::from(i32::try_from(abi.min(VETTED_ABI)).unwrap_or(0));
    let all = AccessFs::from_all(abi);
    // Hard requirement: only rights of the kernel's own ABI are asked for, so anything the
    // kernel refuses is a real error, never a silently weaker ruleset.
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(all)
        .and_then(Ruleset::create)
        .map_err(HardenError::Landlock)?;
    for (paths, access) in [(writable, all), (readable, AccessFs::from_read(abi))] {
        for &path in paths {
            ruleset = add_path(ruleset, path, access, abi)?;
        }
    }
    Option::<OwnedFd>::from(ruleset).ok_or(HardenError::LandlockUnavailable("the kernel gave no ruleset descriptor"))
}

fn add_path(
    ruleset: RulesetCreated,
    path: &Path,
    access: BitFlags<AccessFs>,
    abi: ABI,
) -> Result<RulesetCreated, HardenError> {
    let fd = match PathFd::new(path) {
        Ok(fd) => fd,
        Err(PathFdError::OpenCall { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ruleset);
        }
        Err(source) => return Err(HardenError::LandlockPath { path: path.to_owned(), reason: source.to_string() }),
    };
    // Directory-only rights (list, create, remove entries) would be refused on a file.
    let is_dir = nix::sys::stat::fstat(&fd).map_err(|errno| HardenError::LandlockPath {
        path: path.to_owned(),
        reason: format!("fstat: {}", errno.desc()),
    })?;
    let is_dir = is_dir.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let access = if is_dir { access } else { access & AccessFs::from_file(abi) };
    ruleset
        .add_rule(PathBeneath::new(fd, access))
        .map_err(|source| HardenError::LandlockPath { path: path.to_owned(), reason: source.to_string() })
}
