//! Host-side file operations inside a sandbox's root that neither symlinks nor `..` can leave.
//!
//! The host reaches a sandbox's filesystem through `/proc/<init-pid>/root`, as host root. That
//! tree belongs to the attacker: any name in it may be a symlink to `/etc/shadow`, a `..` chain,
//! a FIFO that blocks a writer forever, or a directory that becomes a symlink between two system
//! calls. [`FileOps`] opens the root once and then does every operation relative to that
//! descriptor:
//!
//! - **Resolution** of a user path is one `openat2(2)` call with `RESOLVE_IN_ROOT |
//!   RESOLVE_NO_MAGICLINKS`: `..` and absolute symlinks are clamped to the sandbox root by the
//!   kernel in a single walk, so `/workspace/link -> /etc/passwd` is the *sandbox's*
//!   `/etc/passwd`, and no rename race can move the walk outside. `RESOLVE_NO_XDEV` is not used
//!   for that walk: `/workspace`, `/tmp` and `/home` are mounts and must be reachable.
//! - **Changes** (write, mkdir, remove, rename) resolve the *parent* that way, then act on the last
//!   component with a `*at()` call that never follows it (`O_NOFOLLOW`, `RESOLVE_NO_SYMLINKS`,
//!   `AT_SYMLINK_NOFOLLOW`, `unlinkat`, `renameat2`): a write to a symlink fails with
//!   [`FileError::SymlinkRefused`] instead of writing through it; a remove or rename of a symlink
//!   acts on the link itself.
//! - **Reads** follow symlinks, but only inside the root (the clamped walk above): reading
//!   through a link that stays inside is what a user expects and cannot leave the root.
//! - **Only regular files** are read or written (a FIFO, socket or device is refused before it
//!   is read, written or truncated), and **never on a pseudo filesystem** (`proc`, `sysfs`,
//!   `cgroup`, `debugfs`, ...): host root writing the sandbox's `/proc/sysrq-trigger`, reading its
//!   `/proc/kcore` or making a directory in a cgroupfs would act on the host kernel with host
//!   privileges, whatever the sandbox's own mounts say.
//! - **Ownership**: what the host writes or creates is `fchown`ed to the sandbox user's host
//!   uid/gid, and modes are masked to `0o777` (never setuid, setgid or sticky) and set exactly
//!   (the host's umask does not apply).
//! - **Bounded**: reads refuse files over a caller-given size without reading them; recursive
//!   walks stop at [`MAX_DEPTH`] levels and listings at [`MAX_LIST_ENTRIES`] entries, with typed
//!   errors rather than truncation.
//!
//! `openat2` needs Linux 5.6. Without it [`FileOps::open`] fails with
//! [`FileError::Unsupported`]: there is no fallback to a userspace walk.
//!
//! ```no_run
//! use std::path::Path;
//! use sandguard_exec::files::FileOps;
//!
//! # fn main() -> Result<(), sandguard_exec::files::FileError> {
//! // Open once, when the sandbox is created: the descriptor pins its root.
//! let files = FileOps::open(Path::new("/proc/4242/root"), 100_000, 100_000)?;
//! files.write(Path::new("/workspace/main.py"), b"print(42)\n", None)?;
//! assert_eq!(files.read(Path::new("/workspace/main.py"), 1 << 20)?, b"print(42)\n");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::{File, Permissions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode};
use nix::unistd::UnlinkatFlags;

use crate::sys::openat2::{
    RENAME_NOREPLACE, RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV,
    openat2, renameat2,
};

/// Mode of a file created without an explicit mode.
pub const DEFAULT_FILE_MODE: u32 = 0o644;
/// Mode of a directory created without an explicit mode.
pub const DEFAULT_DIR_MODE: u32 = 0o755;
/// Deepest directory nesting a recursive list or remove descends (each level holds a descriptor).
pub const MAX_DEPTH: usize = 256;
/// Most entries one [`FileOps::list`] returns.
pub const MAX_LIST_ENTRIES: usize = 100_000;
/// Most entries one recursive [`FileOps::remove`] deletes (a sandbox creating files as fast as we
/// delete them must not keep a host thread busy forever).
pub const MAX_REMOVE_ENTRIES: u64 = 1_000_000;

/// `PATH_MAX`: longer paths are refused before any system call.
const PATH_MAX: usize = 4096;
/// Names read from a directory per pass of a recursive remove, to bound memory.
const REMOVE_BATCH: usize = 1024;
/// Resolution of the user's path: inside the root, `..` and absolute links clamped to it.
const IN_ROOT: u64 = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
/// Resolution of one last component relative to its parent: no symlink (which implies no magic
/// link) and no mount crossing.
const LAST_COMPONENT: u64 = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV;
/// Descending a recursive listing: no symlink, but mounts (a bind under `/`) are listed.
const DESCEND_FOR_LIST: u64 = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;

/// Filesystems the host never reads or writes through, by `statfs` magic: their files are
/// windows onto the (host) kernel, and the host acts with host privileges.
const PSEUDO_FILESYSTEMS: &[(u64, &str)] = &[
    (0x9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0xcafe_4a11, "bpf"),
    (0x1cd1, "devpts"),
    (0x6165_676c, "pstore"),
    (0xde5e_81e4, "efivarfs"),
    (0x6265_6570, "configfs"),
    (0xf97c_ff8c, "selinuxfs"),
    (0x4341_5d53, "smackfs"),
    (0x4249_4e4d, "binfmt_misc"),
    (0x6573_5543, "fusectl"),
    (0x6e73_6673, "nsfs"),
];

/// Why a file operation failed. [`FileError::code`] gives a stable code for each variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The path, or a directory on it, does not exist (inside the sandbox).
    #[error("{}: no such file or directory", path.display())]
    NotFound {
        /// The path as the caller gave it.
        path: PathBuf,
    },
    /// The path already exists (mkdir, rename onto an existing name).
    #[error("{}: already exists", path.display())]
    Exists {
        /// The path as the caller gave it.
        path: PathBuf,
    },
    /// A component of the path that must be a directory is not one.
    #[error("{}: not a directory", path.display())]
    NotADirectory {
        /// The path as the caller gave it.
        path: PathBuf,
    },
    /// The path is a directory where a file is needed.
    #[error("{}: is a directory", path.display())]
    IsADirectory {
        /// The path as the caller gave it.
        path: PathBuf,
    },
    /// The last component is a symlink, and this operation never follows one (write, mkdir).
    #[error("{}: is a symbolic link; writes never follow the last component", path.display())]
    SymlinkRefused {
        /// The path as the caller gave it.
        path: PathBuf,
    },
    /// The file is larger than the caller's limit; nothing was read.
    #[error("{}: {size} bytes, over the limit of {max}", path.display())]
    TooLarge {
        /// The path as the caller gave it.
        path: PathBuf,
        /// The file's size (at least `max + 1` when it grew while being read).
        size: u64,
        /// The caller's limit.
        max: u64,
    },
    /// The path is not acceptable: relative, contains NUL, too long, or ends in `.`, `..` or
    /// the root where a name is needed.
    #[error("{}: invalid path: {reason}", path.display())]
    InvalidPath {
        /// The path as the caller gave it.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The kernel lacks a system call this API relies on; it fails closed rather than fall back
    /// to a resolution symlinks could escape.
    #[error("host file operations unavailable: {reason}")]
    Unsupported {
        /// What is missing.
        reason: &'static str,
    },
    /// The path is a FIFO, socket or device, which the host neither reads nor writes.
    #[error("{}: not a regular file (FIFOs, sockets and devices are refused)", path.display())]
    NotRegularFile {
        /// The path as the caller gave it.
        path: PathBuf,
    },
    /// The path lies on a kernel pseudo filesystem (`proc`, `sysfs`, `cgroup`, ...).
    #[error("{}: on a {fs} filesystem, which host file operations never touch", path.display())]
    PseudoFilesystem {
        /// The path as the caller gave it.
        path: PathBuf,
        /// The filesystem's name.
        fs: &'static str,
    },
    /// A directory that must be empty is not (non-recursive remove).
    #[error("{}: directory not empty", path.display())]
    DirectoryNotEmpty {
        /// The path as the caller gave it.
        path: PathBuf,
    },
    /// A recursive walk hit one of the limits ([`MAX_DEPTH`], [`MAX_LIST_ENTRIES`],
    /// [`MAX_REMOVE_ENTRIES`]).
    #[error("{}: more than {max} {what}", path.display())]
    LimitExceeded {
        /// The path as the caller gave it.
        path: PathBuf,
        /// Which limit: "levels of nesting", "entries".
        what: &'static str,
        /// The limit.
        max: u64,
    },
    /// Any other failure of a system call.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The operation that failed.
        op: &'static str,
        /// The path as the caller gave it.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}

impl FileError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "FILE_NOT_FOUND",
            Self::Exists { .. } => "FILE_EXISTS",
            Self::NotADirectory { .. } => "NOT_A_DIRECTORY",
            Self::IsADirectory { .. } => "IS_A_DIRECTORY",
            Self::SymlinkRefused { .. } => "SYMLINK_REFUSED",
            Self::TooLarge { .. } => "FILE_TOO_LARGE",
            Self::InvalidPath { .. } => "INVALID_PATH",
            Self::Unsupported { .. } => "OPENAT2_UNSUPPORTED",
            Self::NotRegularFile { .. } => "NOT_A_REGULAR_FILE",
            Self::PseudoFilesystem { .. } => "PSEUDO_FILESYSTEM",
            Self::DirectoryNotEmpty { .. } => "DIRECTORY_NOT_EMPTY",
            Self::LimitExceeded { .. } => "LIMIT_EXCEEDED",
            Self::Io { .. } => "FILE_IO",
        }
    }
}

/// What a directory entry is (never followed: a symlink is reported as [`EntryKind::Symlink`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A FIFO, socket or device.
    Other,
}

/// One entry of [`FileOps::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name; for a recursive listing, its path relative to the listed directory
    /// (`sub/file`).
    pub name: OsString,
    /// What it is.
    pub kind: EntryKind,
    /// Its size in bytes (for a symlink, the length of its target).
    pub size: u64,
    /// Its permission bits (`st_mode & 0o7777`).
    pub mode: u32,
}

/// File operations confined to one sandbox's root. See the [module docs](self).
///
/// Cheap to share: every method takes `&self` and the type is `Send + Sync`.
#[derive(Debug)]
pub struct FileOps {
    root: OwnedFd,
    owner_uid: u32,
    owner_gid: u32,
    /// Run each operation with the owner's filesystem identity (see [`FileOps::open_as_owner`]).
    act_as_owner: bool,
}

impl FileOps {
    /// Opens `root` (normally `/proc/<init-pid>/root`) as the boundary of every later operation.
    /// Files and directories the host creates are given to `owner_uid`/`owner_gid` (host ids).
    ///
    /// Open it once, while the sandbox's init is known to be alive: the descriptor pins that
    /// root, whereas the path could later name a reused PID. A root that is the host's own `/`
    /// is refused, which also catches that reuse when it happens before this call.
    ///
    /// # Errors
    /// [`FileError::Unsupported`] without `openat2(2)`; [`FileError::InvalidPath`] for a relative
    /// root or the host's `/`; otherwise the error of opening `root`.
    pub fn open(root: &Path, owner_uid: u32, owner_gid: u32) -> Result<Self, FileError> {
        if !root.is_absolute() {
            return Err(invalid(root, "the sandbox root must be an absolute host path"));
        }
        let fd = nix::fcntl::open(root, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|errno| error("open root", root, errno))?;
        let this = nix::sys::stat::fstat(&fd).map_err(|errno| error("stat root", root, errno))?;
        let host = nix::sys::stat::stat("/").map_err(|errno| error("stat host root", root, errno))?;
        if (this.st_dev, this.st_ino) == (host.st_dev, host.st_ino) {
            return Err(invalid(root, "is the host's own root directory (has the sandbox's init exited?)"));
        }
        match openat2(fd.as_fd(), c"/", libc::O_PATH | libc::O_DIRECTORY, 0, IN_ROOT) {
            Ok(_) => {}
            Err(Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL | Errno::EPERM) => {
                return Err(FileError::Unsupported { reason: UNSUPPORTED });
            }
            Err(errno) => return Err(error("open root", root, errno)),
        }
        Ok(Self { root: fd, owner_uid, owner_gid, act_as_owner: false })
    }

    /// Reads a whole regular file, following symlinks inside the root, refusing one larger than
    /// `max` bytes before reading it.
    ///
    /// # Errors
    /// [`FileError::TooLarge`], [`FileError::IsADirectory`], [`FileError::NotRegularFile`],
    /// [`FileError::PseudoFilesystem`], [`FileError::NotFound`], ...
    pub fn read(&self, path: &Path, max: u64) -> Result<Vec<u8>, FileError> {
        let _as_owner = self.as_owner();
        let c_path = sandbox_path(path)?;
        // Look before opening, through an O_PATH descriptor that opens nothing: a FIFO or a
        // device is refused without the side effects of opening it.
        let probe = self.resolve(&c_path, libc::O_PATH).map_err(|errno| error("open", path, errno))?;
        check_readable(probe.as_fd(), path, max)?;
        let fd = self
            .resolve(&c_path, libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK)
            .map_err(|errno| error("open", path, errno))?;
        // The name may have been swapped since the probe: judge what was actually opened.
        let size = check_readable(fd.as_fd(), path, max)?;
        let file = File::from(fd);
        let mut data = Vec::new();
        // A hint only: the file may shrink or grow while we read.
        let _ = data.try_reserve(usize::try_from(size.min(max).min(64 << 20)).unwrap_or(0));
        file.take(max.saturating_add(1)).read_to_end(&mut data).map_err(|source| FileError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        })?;
        let read = u64::try_from(data.len()).unwrap_or(u64::MAX);
        if read > max {
            return Err(FileError::TooLarge { path: path.to_path_buf(), size: read.max(size), max });
        }
        Ok(data)
    }

    /// Writes `data` to a regular file, creating it (mode `mode`, default
    /// [`DEFAULT_FILE_MODE`]) or truncating it in place. A symlink as last component is refused,
    /// never written through. The file ends owned by the sandbox user; `mode`, when given, is
    /// applied to an existing file too.
    ///
    /// Not atomic: a reader may see a partial file, and a failure (disk full) leaves one. See
    /// [`FileOps::write_atomic`].
    ///
    /// # Errors
    /// [`FileError::SymlinkRefused`], [`FileError::IsADirectory`], [`FileError::NotRegularFile`],
    /// [`FileError::NotFound`] (parent missing), [`FileError::InvalidPath`], ...
    pub fn write(&self, path: &Path, data: &[u8], mode: Option<u32>) -> Result<(), FileError> {
        let _as_owner = self.as_owner();
        let target = self.file_target(path)?;
        check_replaceable(&target, path)?;
        let (file, created) = open_for_write(&target, path, mode)?;
        check_regular(file.as_fd(), path)?;
        check_filesystem(file.as_fd(), path)?;
        let io = |op| move |source| FileError::Io { op, path: path.to_path_buf(), source };
        file.set_len(0).map_err(io("truncate"))?;
        (&file).write_all(data).map_err(io("write"))?;
        let mode = if created { Some(mode.unwrap_or(DEFAULT_FILE_MODE)) } else { mode };
        self.hand_over(&file, mode, path)
    }

    /// Writes `data` to a temporary file beside `path`, then renames it over `path`: readers
    /// see the old content or the new, never a mix, and a failure leaves the old file as it was.
    /// The new file replaces the old inode (hard links to the old file keep the old content).
    /// Without `mode`, an existing file's permission bits are kept.
    ///
    /// # Errors
    /// As [`FileOps::write`].
    pub fn write_atomic(&self, path: &Path, data: &[u8], mode: Option<u32>) -> Result<(), FileError> {
        let _as_owner = self.as_owner();
        let target = self.file_target(path)?;
        let existing = check_replaceable(&target, path)?;
        let mode = mode.or(existing.map(|stat| stat.st_mode & 0o777)).unwrap_or(DEFAULT_FILE_MODE);
        let (temp_name, fd) = create_temporary(&target, path, mode)?;
        let file = File::from(fd);
        let io = |op| move |source| FileError::Io { op, path: path.to_path_buf(), source };
        let result = (&file)
            .write_all(data)
            .map_err(io("write"))
            .and_then(|()| self.hand_over(&file, Some(mode), path))
            .and_then(|()| {
                // Plain rename: it replaces a symlink raced in at the name rather than
                // following it, and fails on a directory.
                renameat2(target.dir.as_fd(), &temp_name, target.dir.as_fd(), &target.name, 0)
                    .map_err(|errno| error("rename", path, errno))
            });
        if result.is_err() {
            let _ = nix::unistd::unlinkat(&target.dir, temp_name.as_c_str(), UnlinkatFlags::NoRemoveDir);
        }
        result
    }

    /// Creates a directory (mode `mode`, default [`DEFAULT_DIR_MODE`]) owned by the sandbox
    /// user. With `recursive`, missing parents are created too and an existing directory is not
    /// an error (intermediate symlinks inside the root are followed, as `mkdir -p` does).
    ///
    /// # Errors
    /// [`FileError::Exists`] (also for a symlink at the name), [`FileError::NotFound`] (parent
    /// missing, not recursive), [`FileError::NotADirectory`], ...
    pub fn mkdir(&self, path: &Path, recursive: bool, mode: Option<u32>) -> Result<(), FileError> {
        let _as_owner = self.as_owner();
        let mode = mode.unwrap_or(DEFAULT_DIR_MODE) & 0o777;
        let bytes = sandbox_path(path)?;
        if !recursive {
            let target = self.target(path)?;
            return self.mkdir_at(&target, path, mode, false);
        }
        match self.resolve(&bytes, libc::O_PATH | libc::O_DIRECTORY) {
            Ok(_) => return Ok(()),
            Err(Errno::ENOENT | Errno::ENOTDIR) => {}
            Err(errno) => return Err(error("mkdir", path, errno)),
        }
        let mut prefix = Vec::with_capacity(bytes.as_bytes().len());
        for component in bytes.as_bytes().split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".") {
            let parent_len = prefix.len();
            prefix.push(b'/');
            prefix.extend_from_slice(component);
            let c_prefix = to_cstring(&prefix, path)?;
            match self.resolve(&c_prefix, libc::O_PATH | libc::O_DIRECTORY) {
                Ok(_) => continue,
                Err(Errno::ENOENT) if component != b".." => {}
                Err(errno) => return Err(error("mkdir", path, errno)),
            }
            let parent = if parent_len == 0 { c"/".to_owned() } else { to_cstring(&prefix[..parent_len], path)? };
            let target = Target { dir: self.parent_dir(&parent, path)?, name: to_cstring(component, path)? };
            self.mkdir_at(&target, path, mode, true)?;
            // A dangling symlink at this name makes mkdirat say EEXIST and the walk still fail:
            // `mkdir -p` does not create a link's target either.
            self.resolve(&c_prefix, libc::O_PATH | libc::O_DIRECTORY).map_err(|errno| error("mkdir", path, errno))?;
        }
        Ok(())
    }

    /// Removes a file, symlink (the link itself) or empty directory; with `recursive`, a
    /// directory and everything under it. The walk never follows a symlink and never crosses
    /// into a mount point (it fails there instead).
    ///
    /// # Errors
    /// [`FileError::NotFound`], [`FileError::DirectoryNotEmpty`] (not recursive),
    /// [`FileError::InvalidPath`] for `/`, [`FileError::LimitExceeded`], ...
    pub fn remove(&self, path: &Path, recursive: bool) -> Result<(), FileError> {
        let _as_owner = self.as_owner();
        let target = self.target(path)?;
        let stat = lstat_at(target.dir.as_fd(), &target.name)
            .map_err(|errno| error("remove", path, errno))?
            .ok_or_else(|| FileError::NotFound { path: path.to_path_buf() })?;
        if kind_of(stat.st_mode) != EntryKind::Dir {
            return unlink(target.dir.as_fd(), &target.name, UnlinkatFlags::NoRemoveDir, path);
        }
        if !recursive {
            return unlink(target.dir.as_fd(), &target.name, UnlinkatFlags::RemoveDir, path);
        }
        let mut budget = MAX_REMOVE_ENTRIES;
        remove_tree(target.dir.as_fd(), &target.name, path, 0, &mut budget)
    }

    /// Renames `from` to `to`, both resolved inside the root; a symlink is moved as a link.
    /// Never replaces: an existing `to` is [`FileError::Exists`] (`RENAME_NOREPLACE`), so a
    /// rename cannot silently destroy a file or swap a directory for another.
    ///
    /// # Errors
    /// [`FileError::NotFound`] (`from`), [`FileError::Exists`] (`to`), `EXDEV` as
    /// [`FileError::Io`] across mounts (e.g. `/tmp` to `/workspace`), ...
    pub fn rename(&self, from: &Path, to: &Path) -> Result<(), FileError> {
        let _as_owner = self.as_owner();
        let source = self.target(from)?;
        let destination = self.target(to)?;
        match renameat2(source.dir.as_fd(), &source.name, destination.dir.as_fd(), &destination.name, RENAME_NOREPLACE)
        {
            Ok(()) => Ok(()),
            Err(Errno::EEXIST | Errno::ENOTEMPTY) => Err(FileError::Exists { path: to.to_path_buf() }),
            Err(Errno::ENOENT) => Err(FileError::NotFound { path: from.to_path_buf() }),
            Err(Errno::EINVAL) => Err(FileError::Io {
                op: "rename (into itself, or RENAME_NOREPLACE unsupported by the filesystem)",
                path: from.to_path_buf(),
                source: std::io::Error::from_raw_os_error(libc::EINVAL),
            }),
            Err(errno) => Err(error("rename", from, errno)),
        }
    }

    /// Lists a directory (following symlinks inside the root to reach it), sorted by name. With
    /// `recursive`, descends into subdirectories (never through a symlink, and not into pseudo
    /// filesystems, which are listed but not entered); names are then relative to `path`.
    ///
    /// # Errors
    /// [`FileError::NotADirectory`], [`FileError::NotFound`], [`FileError::PseudoFilesystem`],
    /// [`FileError::LimitExceeded`], ...
    pub fn list(&self, path: &Path, recursive: bool) -> Result<Vec<DirEntry>, FileError> {
        let _as_owner = self.as_owner();
        let c_path = sandbox_path(path)?;
        let fd = self
            .resolve(&c_path, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NONBLOCK)
            .map_err(|errno| error("list", path, errno))?;
        check_filesystem(fd.as_fd(), path)?;
        let mut entries = Vec::new();
        list_into(fd, &PathBuf::new(), path, recursive, 0, &mut entries)?;
        Ok(entries)
    }

    /// Whether `path` resolves (inside the root, following symlinks like [`Path::exists`]) to
    /// something: a dangling symlink is `false`.
    ///
    /// # Errors
    /// [`FileError::InvalidPath`], or a resolution failure other than "not found" (a symlink
    /// loop, ...).
    pub fn exists(&self, path: &Path) -> Result<bool, FileError> {
        let _as_owner = self.as_owner();
        let c_path = sandbox_path(path)?;
        match self.resolve(&c_path, libc::O_PATH) {
            Ok(_) => Ok(true),
            Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(false),
            Err(errno) => Err(error("exists", path, errno)),
        }
    }

    /// Resolves `path` (absolute, inside the root) with `openat2(RESOLVE_IN_ROOT)`.
    fn resolve(&self, path: &CStr, flags: libc::c_int) -> Result<OwnedFd, Errno> {
        openat2(self.root.as_fd(), path, flags, 0, IN_ROOT)
    }

    /// The parent directory, as an `O_PATH` descriptor, after checking it is not on a pseudo
    /// filesystem.
    fn parent_dir(&self, parent: &CStr, path: &Path) -> Result<OwnedFd, FileError> {
        let dir = self
            .resolve(parent, libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|errno| error("open parent", path, errno))?;
        check_filesystem(dir.as_fd(), path)?;
        Ok(dir)
    }

    /// As [`FileOps::target`], for a name that must be a file: no trailing `/`.
    fn file_target(&self, path: &Path) -> Result<Target, FileError> {
        if path.as_os_str().as_bytes().ends_with(b"/") {
            return Err(invalid(path, "a file path cannot end with '/'"));
        }
        self.target(path)
    }

    /// Splits `path` into its resolved parent and a last component that is a real name.
    fn target(&self, path: &Path) -> Result<Target, FileError> {
        let bytes = sandbox_path(path)?;
        let bytes = bytes.as_bytes();
        let trimmed = match bytes.iter().rposition(|&b| b != b'/') {
            Some(last) => &bytes[..=last],
            None => return Err(invalid(path, "the sandbox root itself cannot be the target")),
        };
        let (parent, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(0) | None => (&b"/"[..], &trimmed[1..]),
            Some(slash) => (&trimmed[..slash], &trimmed[slash + 1..]),
        };
        if name == b"." || name == b".." {
            return Err(invalid(path, "the last component cannot be '.' or '..'"));
        }
        let dir = self.parent_dir(&to_cstring(parent, path)?, path)?;
        Ok(Target { dir, name: to_cstring(name, path)? })
    }

    /// `mkdirat`, then hand the new directory to the sandbox user. With `exist_ok`, an
    /// existing name is left to the caller to judge.
    fn mkdir_at(&self, target: &Target, path: &Path, mode: u32, exist_ok: bool) -> Result<(), FileError> {
        match nix::sys::stat::mkdirat(&target.dir, target.name.as_c_str(), Mode::from_bits_truncate(mode)) {
            Ok(()) => {}
            Err(Errno::EEXIST) if exist_ok => return Ok(()),
            Err(errno) => return Err(error("mkdir", path, errno)),
        }
        // Opened again by name, never following: if the sandbox swapped a symlink in, that
        // fails; if it swapped another directory in, that one is inside the sandbox anyway.
        let fd = openat2(
            target.dir.as_fd(),
            &target.name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
            LAST_COMPONENT,
        )
        .map_err(|errno| last_component_error("mkdir", path, errno))?;
        self.hand_over(&File::from(fd), Some(mode), path)
    }

    /// Gives a file the host created to the sandbox user, with exactly `mode` (when given).
    fn hand_over(&self, file: &File, mode: Option<u32>, path: &Path) -> Result<(), FileError> {
        let io = |op| move |source| FileError::Io { op, path: path.to_path_buf(), source };
        std::os::unix::fs::fchown(file, Some(self.owner_uid), Some(self.owner_gid)).map_err(io("chown"))?;
        if let Some(mode) = mode {
            // After the chown, which clears set-id bits; masked anyway.
            file.set_permissions(Permissions::from_mode(mode & 0o777)).map_err(io("chmod"))?;
        }
        Ok(())
    }
}

/// A resolved parent directory and the last component to act on in it.
struct Target {
    dir: OwnedFd,
    name: CString,
}

const UNSUPPORTED: &str = "openat2(2) is not available (Linux 5.6+ is required, or a seccomp filter denies it); \
     without it symlinks could escape the sandbox root, so file operations are refused";

/// Checks the caller's path: absolute, no NUL, not over `PATH_MAX`.
fn sandbox_path(path: &Path) -> Result<CString, FileError> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(invalid(path, "must be an absolute path inside the sandbox"));
    }
    if bytes.len() >= PATH_MAX {
        return Err(invalid(path, "longer than PATH_MAX (4096 bytes)"));
    }
    to_cstring(bytes, path)
}

fn to_cstring(bytes: &[u8], path: &Path) -> Result<CString, FileError> {
    CString::new(bytes).map_err(|_| invalid(path, "contains a NUL byte"))
}

fn invalid(path: &Path, reason: &'static str) -> FileError {
    FileError::InvalidPath { path: path.to_path_buf(), reason }
}

/// Maps an errno to the matching variant.
fn error(op: &'static str, path: &Path, errno: Errno) -> FileError {
    let path = path.to_path_buf();
    match errno {
        Errno::ENOENT => FileError::NotFound { path },
        Errno::EEXIST => FileError::Exists { path },
        Errno::ENOTDIR => FileError::NotADirectory { path },
        Errno::EISDIR => FileError::IsADirectory { path },
        Errno::ENOTEMPTY => FileError::DirectoryNotEmpty { path },
        Errno::ENAMETOOLONG => FileError::InvalidPath { path, reason: "a name in it is too long" },
        Errno::ENOSYS => FileError::Unsupported { reason: UNSUPPORTED },
        errno => FileError::Io { op, path, source: std::io::Error::from_raw_os_error(errno as i32) },
    }
}

/// As [`error`], for a last component opened with `O_NOFOLLOW | RESOLVE_NO_SYMLINKS |
/// RESOLVE_NO_XDEV`.
fn last_component_error(op: &'static str, path: &Path, errno: Errno) -> FileError {
    match errno {
        Errno::ELOOP => FileError::SymlinkRefused { path: path.to_path_buf() },
        // O_WRONLY | O_NONBLOCK on a FIFO without a reader.
        Errno::ENXIO => FileError::NotRegularFile { path: path.to_path_buf() },
        Errno::EXDEV => FileError::Io {
            op: "open (the name is a mount point, which is not crossed)",
            path: path.to_path_buf(),
            source: std::io::Error::from_raw_os_error(libc::EXDEV),
        },
        errno => error(op, path, errno),
    }
}

/// Refuses descriptors on a kernel pseudo filesystem.
fn check_filesystem(fd: BorrowedFd<'_>, path: &Path) -> Result<(), FileError> {
    let stat = nix::sys::statfs::fstatfs(fd).map_err(|errno| error("statfs", path, errno))?;
    // `f_type` is signed on some targets; the magics are 32-bit.
    #[allow(clippy::unnecessary_cast)]
    let magic = (stat.filesystem_type().0 as u64) & 0xffff_ffff;
    match PSEUDO_FILESYSTEMS.iter().find(|(known, _)| *known == magic) {
        Some(&(_, fs)) => Err(FileError::PseudoFilesystem { path: path.to_path_buf(), fs }),
        None => Ok(()),
    }
}

/// Refuses anything but a regular file on an ordinary filesystem, or one over `max` bytes;
/// returns its size.
fn check_readable(fd: BorrowedFd<'_>, path: &Path, max: u64) -> Result<u64, FileError> {
    let stat = check_regular(fd, path)?;
    check_filesystem(fd, path)?;
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    if size > max {
        return Err(FileError::TooLarge { path: path.to_path_buf(), size, max });
    }
    Ok(size)
}

fn check_regular(fd: BorrowedFd<'_>, path: &Path) -> Result<FileStat, FileError> {
    let stat = nix::sys::stat::fstat(fd).map_err(|errno| error("stat", path, errno))?;
    match kind_of(stat.st_mode) {
        EntryKind::File => Ok(stat),
        EntryKind::Dir => Err(FileError::IsADirectory { path: path.to_path_buf() }),
        EntryKind::Symlink | EntryKind::Other => Err(FileError::NotRegularFile { path: path.to_path_buf() }),
    }
}

/// What is at the name now, without following it: absent or a regular file may be written;
/// anything else is refused with its own error before any open.
fn check_replaceable(target: &Target, path: &Path) -> Result<Option<FileStat>, FileError> {
    let Some(stat) = lstat_at(target.dir.as_fd(), &target.name).map_err(|errno| error("stat", path, errno))? else {
        return Ok(None);
    };
    match kind_of(stat.st_mode) {
        EntryKind::File => Ok(Some(stat)),
        EntryKind::Symlink => Err(FileError::SymlinkRefused { path: path.to_path_buf() }),
        EntryKind::Dir => Err(FileError::IsADirectory { path: path.to_path_buf() }),
        EntryKind::Other => Err(FileError::NotRegularFile { path: path.to_path_buf() }),
    }
}

/// Opens the last component for writing without following it and without truncating (that
/// waits until the file is known to be regular). Returns whether this call created it.
fn open_for_write(target: &Target, path: &Path, mode: Option<u32>) -> Result<(File, bool), FileError> {
    let flags = libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    let create_mode = mode.unwrap_or(DEFAULT_FILE_MODE) & 0o777;
    // Create exclusively first, so that we know whether the mode is ours to set; a name that
    // appears or disappears between the two calls is retried a few times.
    for _ in 0..8 {
        match openat2(
            target.dir.as_fd(),
            &target.name,
            flags | libc::O_CREAT | libc::O_EXCL,
            create_mode,
            LAST_COMPONENT,
        ) {
            Ok(fd) => return Ok((File::from(fd), true)),
            Err(Errno::EEXIST) => {}
            Err(errno) => return Err(last_component_error("open", path, errno)),
        }
        match openat2(target.dir.as_fd(), &target.name, flags, 0, LAST_COMPONENT) {
            Ok(fd) => return Ok((File::from(fd), false)),
            Err(Errno::ENOENT) => {}
            Err(errno) => return Err(last_component_error("open", path, errno)),
        }
    }
    Err(error("open (the name kept changing)", path, Errno::EAGAIN))
}

/// Creates a fresh, exclusive temporary file in the target's directory.
fn create_temporary(target: &Target, path: &Path, mode: u32) -> Result<(CString, OwnedFd), FileError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    for _ in 0..16 {
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(".sandguard-{:x}-{nanos:x}-{count:x}.tmp", std::process::id());
        let name = to_cstring(name.as_bytes(), path)?;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        match openat2(target.dir.as_fd(), &name, flags, mode & 0o777, LAST_COMPONENT) {
            Ok(fd) => return Ok((name, fd)),
            Err(Errno::EEXIST) => {}
            Err(errno) => return Err(last_component_error("create temporary", path, errno)),
        }
    }
    Err(error("create temporary", path, Errno::EEXIST))
}

fn lstat_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<Option<FileStat>, Errno> {
    match nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(stat)),
        Err(Errno::ENOENT) => Ok(None),
        Err(errno) => Err(errno),
    }
}

fn unlink(dir: BorrowedFd<'_>, name: &CStr, flags: UnlinkatFlags, path: &Path) -> Result<(), FileError> {
    match nix::unistd::unlinkat(dir, name, flags) {
        Ok(()) => Ok(()),
        // rmdir says EEXIST or ENOTEMPTY for a non-empty directory.
        Err(Errno::EEXIST | Errno::ENOTEMPTY) => Err(FileError::DirectoryNotEmpty { path: path.to_path_buf() }),
        Err(errno) => Err(error("remove", path, errno)),
    }
}

fn kind_of(mode: libc::mode_t) -> EntryKind {
    match mode & libc::S_IFMT {
        libc::S_IFREG => EntryKind::File,
        libc::S_IFDIR => EntryKind::Dir,
        libc::S_IFLNK => EntryKind::Symlink,
        _ => EntryKind::Other,
    }
}

/// Removes directory `name` in `parent` and everything under it, descending only through
/// descriptors opened with `RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV` from the previous one, so
/// the walk cannot leave the subtree it started in, whatever the sandbox renames meanwhile.
fn remove_tree(
    parent: BorrowedFd<'_>,
    name: &CStr,
    path: &Path,
    depth: usize,
    budget: &mut u64,
) -> Result<(), FileError> {
    if depth >= MAX_DEPTH {
        return Err(FileError::LimitExceeded {
            path: path.to_path_buf(),
            what: "levels of nesting",
            max: MAX_DEPTH as u64,
        });
    }
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let fd = match openat2(parent, name, flags, 0, LAST_COMPONENT) {
        Ok(fd) => fd,
        // Swapped for a symlink or a file since it was seen: remove that, not what it names.
        Err(Errno::ELOOP | Errno::ENOTDIR) => return unlink(parent, name, UnlinkatFlags::NoRemoveDir, path),
        Err(Errno::ENOENT) => return Ok(()),
        Err(errno) => return Err(last_component_error("remove", path, errno)),
    };
    check_filesystem(fd.as_fd(), path)?;
    let mut dir = Dir::from_fd(fd).map_err(|errno| error("read directory", path, errno))?;
    loop {
        // Each pass starts again from the top (`Iter` rewinds on drop): deleting while reading
        // would skip entries.
        let batch = read_names(&mut dir, REMOVE_BATCH, path)?;
        if batch.is_empty() {
            break;
        }
        for child in &batch {
            *budget = budget.checked_sub(1).ok_or_else(|| FileError::LimitExceeded {
                path: path.to_path_buf(),
                what: "entries removed",
                max: MAX_REMOVE_ENTRIES,
            })?;
            let Some(stat) = lstat_at(dir.as_fd(), child).map_err(|errno| error("remove", path, errno))? else {
                continue;
            };
            if kind_of(stat.st_mode) == EntryKind::Dir {
                remove_tree(dir.as_fd(), child, path, depth + 1, budget)?;
            } else {
                match nix::unistd::unlinkat(dir.as_fd(), child.as_c_str(), UnlinkatFlags::NoRemoveDir) {
                    Ok(()) | Err(Errno::ENOENT) => {}
                    Err(Errno::EISDIR) => remove_tree(dir.as_fd(), child, path, depth + 1, budget)?,
                    Err(errno) => return Err(error("remove", path, errno)),
                }
            }
        }
    }
    drop(dir);
    match nix::unistd::unlinkat(parent, name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EEXIST | Errno::ENOTEMPTY) => Err(FileError::DirectoryNotEmpty { path: path.to_path_buf() }),
        Err(errno) => Err(error("remove", path, errno)),
    }
}

/// Up to `limit` names from `dir` (from its start), without `.` and `..`.
fn read_names(dir: &mut Dir, limit: usize, path: &Path) -> Result<Vec<CString>, FileError> {
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(|errno| error("read directory", path, errno))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        if names.len() == limit {
            break;
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

fn list_into(
    fd: OwnedFd,
    prefix: &Path,
    path: &Path,
    recursive: bool,
    depth: usize,
    entries: &mut Vec<DirEntry>,
) -> Result<(), FileError> {
    let too_many =
        || FileError::LimitExceeded { path: path.to_path_buf(), what: "entries", max: MAX_LIST_ENTRIES as u64 };
    let mut dir = Dir::from_fd(fd).map_err(|errno| error("read directory", path, errno))?;
    let mut names = read_names(&mut dir, MAX_LIST_ENTRIES - entries.len() + 1, path)?;
    if entries.len() + names.len() > MAX_LIST_ENTRIES {
        return Err(too_many());
    }
    names.sort();
    for name in names {
        let Some(stat) = lstat_at(dir.as_fd(), &name).map_err(|errno| error("list", path, errno))? else {
            continue; // removed since it was read
        };
        if entries.len() >= MAX_LIST_ENTRIES {
            return Err(too_many());
        }
        let relative = prefix.join(OsStr::from_bytes(name.as_bytes()));
        let kind = kind_of(stat.st_mode);
        entries.push(DirEntry {
            name: relative.clone().into_os_string(),
            kind,
            size: u64::try_from(stat.st_size).unwrap_or(0),
            mode: stat.st_mode & 0o7777,
        });
        if !recursive || kind != EntryKind::Dir {
            continue;
        }
        if depth + 1 >= MAX_DEPTH {
            return Err(FileError::LimitExceeded {
                path: path.to_path_buf(),
                what: "levels of nesting",
                max: MAX_DEPTH as u64,
            });
        }
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
        let child = match openat2(dir.as_fd(), &name, flags, 0, DESCEND_FOR_LIST) {
            Ok(child) => child,
            // Swapped or removed since it was seen: listed, not entered.
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => continue,
            Err(errno) => return Err(error("list", path, errno)),
        };
        match check_filesystem(child.as_fd(), path) {
            Ok(()) => list_into(child, &relative, path, recursive, depth + 1, entries)?,
            Err(FileError::PseudoFilesystem { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

impl FileOps {
    /// Makes this thread act as the sandbox's user until the guard drops: files it creates get
    /// an owner the sandbox's filesystems can store (they refuse owners outside the sandbox's
    /// user namespace), and permission checks are the sandbox user's, not host root's.
    fn as_owner(&self) -> Option<AsOwner> {
        if !self.act_as_owner {
            return None;
        }
        // Group first, while the thread still has the capability to change it; fsuid/fsgid are
        // per-thread, so other threads of the host are not affected.
        let gid = nix::unistd::setfsgid(nix::unistd::Gid::from_raw(self.owner_gid));
        let uid = nix::unistd::setfsuid(nix::unistd::Uid::from_raw(self.owner_uid));
        Some(AsOwner { uid, gid })
    }

    /// Like [`open`](Self::open), and every operation then runs as the owner (its filesystem
    /// uid and gid, on the calling thread only), so permission checks are the owner's and new
    /// files are born owned by it. The sandbox uses this: its filesystems belong to its user
    /// namespace and refuse files owned by host root.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_as_owner(root: &Path, owner_uid: u32, owner_gid: u32) -> Result<Self, FileError> {
        Ok(Self { act_as_owner: true, ..Self::open(root, owner_uid, owner_gid)? })
    }
}

/// Restores the thread's filesystem identity.
struct AsOwner {
    uid: nix::unistd::Uid,
    gid: nix::unistd::Gid,
}

impl Drop for AsOwner {
    fn drop(&mut self) {
        // User first: getting fsuid 0 back restores the capability to set the group back.
        nix::unistd::setfsuid(self.uid);
        nix::unistd::setfsgid(self.gid);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::{MetadataExt, symlink};
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use super::*;

    const UID: u32 = 4242;
    const GID: u32 = 4343;
    const SANDBOX_PASSWD: &[u8] = b"sandbox:x:0:0:the root's own passwd:/:/bin/sh\n";
    const SENTINEL: &[u8] = b"SENTINEL: nothing may change me";
    /// Names the tests create start with this, so that a stray file on the host is recognisable.
    const PROBE: &str = "sgprobe";

    /// What a host path looked like: kind, size, mode, owner, mtime, content or link target.
    type Snapshot = BTreeMap<PathBuf, (u32, u64, u32, u32, i64, i64, Vec<u8>)>;

    /// A fake sandbox root at `base/l1/l2/l3/root` (deep, so that a `..` chain that escaped
    /// would land in `base`, which is watched), with sentinels outside it.
    struct Fixture {
        _tmp: tempfile::TempDir,
        base: PathBuf,
        root: PathBuf,
        outside: PathBuf,
        sentinel: PathBuf,
        ops: FileOps,
        before: Snapshot,
        host_passwd: (Vec<u8>, i64, i64),
    }

    impl Fixture {
        fn new() -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let base = tmp.path().to_path_buf();
            let root = base.join("l1/l2/l3/root");
            std::fs::create_dir_all(root.join("workspace")).unwrap();
            std::fs::create_dir_all(root.join("etc")).unwrap();
            std::fs::write(root.join("etc/passwd"), SANDBOX_PASSWD).unwrap();
            let outside = base.join("outside");
            std::fs::create_dir(&outside).unwrap();
            let sentinel = outside.join("sentinel");
            std::fs::write(&sentinel, SENTINEL).unwrap();
            std::fs::write(base.join("l1/l2/l3/sentinel-near"), SENTINEL).unwrap();
            std::fs::write(base.join("sentinel-top"), SENTINEL).unwrap();
            let ops = FileOps::open(&root, UID, GID).unwrap();
            let before = snapshot(&base, &root);
            let meta = std::fs::metadata("/etc/passwd").unwrap();
            let host_passwd = (std::fs::read("/etc/passwd").unwrap(), meta.mtime(), meta.mtime_nsec());
            assert_no_probe_on_host();
            Self { _tmp: tmp, base, root, outside, sentinel, ops, before, host_passwd }
        }

        fn ws(&self, name: &str) -> PathBuf {
            self.root.join("workspace").join(name)
        }

        /// Nothing outside the root changed: every file, directory and link under `base` but
        /// outside `root` (content, size, mode, owner, mtime), the host's `/etc/passwd`, and no
        /// probe name appeared in `/`, `/tmp` or `/etc`.
        fn assert_contained(&self) {
            assert_eq!(std::fs::read(&self.sentinel).unwrap(), SENTINEL);
            let after = snapshot(&self.base, &self.root);
            assert_eq!(
                after.keys().collect::<Vec<_>>(),
                self.before.keys().collect::<Vec<_>>(),
                "paths outside the root"
            );
            assert_eq!(after, self.before, "something outside the root changed");
            let meta = std::fs::metadata("/etc/passwd").unwrap();
            let host = (std::fs::read("/etc/passwd").unwrap(), meta.mtime(), meta.mtime_nsec());
            assert_eq!(host, self.host_passwd, "the host's /etc/passwd changed");
            assert_no_probe_on_host();
        }
    }

    fn snapshot(base: &Path, skip: &Path) -> Snapshot {
        let mut out = Snapshot::new();
        let mut stack = vec![base.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path == skip {
                    continue;
                }
                let meta = std::fs::symlink_metadata(&path).unwrap();
                let content = if meta.file_type().is_symlink() {
                    std::fs::read_link(&path).unwrap().into_os_string().into_vec()
                } else if meta.is_file() {
                    std::fs::read(&path).unwrap()
                } else {
                    stack.push(path.clone());
                    Vec::new()
                };
                let record =
                    (meta.mode(), meta.len(), meta.uid(), meta.gid(), meta.mtime(), meta.mtime_nsec(), content);
                out.insert(path, record);
            }
            let meta = std::fs::symlink_metadata(&dir).unwrap();
            out.insert(dir, (meta.mode(), 0, meta.uid(), meta.gid(), meta.mtime(), meta.mtime_nsec(), Vec::new()));
        }
        out
    }

    fn assert_no_probe_on_host() {
        for dir in ["/", "/tmp", "/etc"] {
            for entry in std::fs::read_dir(dir).unwrap() {
                let name = entry.unwrap().file_name();
                assert!(!name.as_bytes().starts_with(PROBE.as_bytes()), "{dir}/{name:?} appeared on the host");
            }
        }
    }

    fn p(path: &str) -> &Path {
        Path::new(path)
    }

    fn code<T: std::fmt::Debug>(result: Result<T, FileError>) -> &'static str {
        match result {
            Ok(value) => panic!("expected an error, got {value:?}"),
            Err(err) => {
                assert!(!err.to_string().is_empty());
                err.code()
            }
        }
    }

    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn reads_through_symlinks_get_the_roots_own_files() {
        let fx = Fixture::new();
        symlink("/etc/passwd", fx.ws("abs-passwd")).unwrap();
        symlink("../../../../../../../../etc/passwd", fx.ws("rel-passwd")).unwrap();
        symlink(&fx.sentinel, fx.ws("abs-sentinel")).unwrap();
        symlink("../../../../outside/sentinel", fx.ws("rel-sentinel")).unwrap();
        symlink("../../sentinel-near", fx.ws("near")).unwrap();
        symlink("c2", fx.ws("c1")).unwrap();
        symlink("/workspace/c3", fx.ws("c2")).unwrap();
        symlink("../etc/passwd", fx.ws("c3")).unwrap();
        symlink("loop2", fx.ws("loop1")).unwrap();
        symlink("loop1", fx.ws("loop2")).unwrap();
        symlink("../../../..", fx.ws("up")).unwrap();
        symlink(&fx.outside, fx.ws("outside-dir")).unwrap();

        for path in [
            "/workspace/abs-passwd",
            "/workspace/rel-passwd",
            "/workspace/c1",
            "/workspace/up/etc/passwd",
            "/workspace/up/workspace/up/etc/passwd",
            "/workspace/../../../../etc/passwd",
            "/../etc/passwd",
            "/etc/../../etc/./passwd",
        ] {
            assert_eq!(fx.ops.read(p(path), 1 << 20).unwrap(), SANDBOX_PASSWD, "{path}");
        }
        for path in [
            "/workspace/abs-sentinel",
            "/workspace/rel-sentinel",
            "/workspace/near",
            "/workspace/outside-dir/sentinel",
            "/workspace/up/../outside/sentinel",
            "/../../../../../outside/sentinel",
        ] {
            assert_eq!(code(fx.ops.read(p(path), 1 << 20)), "FILE_NOT_FOUND", "{path}");
            assert!(!fx.ops.exists(p(path)).unwrap(), "{path}");
        }
        assert_eq!(code(fx.ops.read(p("/workspace/loop1"), 1 << 20)), "FILE_IO");
        assert_eq!(code(fx.ops.exists(p("/workspace/loop1"))), "FILE_IO");
        assert!(fx.ops.exists(p("/workspace/abs-passwd")).unwrap());
        assert_eq!(code(fx.ops.read(p("/workspace"), 1 << 20)), "IS_A_DIRECTORY");
        fx.assert_contained();
    }

    #[test]
    fn writes_never_leave_the_root_and_never_follow_the_last_component() {
        let fx = Fixture::new();
        symlink(&fx.sentinel, fx.ws("abs-sentinel")).unwrap();
        symlink("../../../../outside/sentinel", fx.ws("rel-sentinel")).unwrap();
        symlink(format!("/{PROBE}-dangling"), fx.ws("dangling")).unwrap();
        symlink("missing-inside", fx.ws("dangling-inside")).unwrap();
        symlink("../../../..", fx.ws("up")).unwrap();
        symlink(&fx.outside, fx.ws("outside-dir")).unwrap();
        symlink("../..", fx.ws("near-dir")).unwrap();

        for name in ["abs-sentinel", "rel-sentinel", "dangling", "dangling-inside"] {
            let path = PathBuf::from("/workspace").join(name);
            assert_eq!(code(fx.ops.write(&path, b"pwned", None)), "SYMLINK_REFUSED", "{name}");
            assert_eq!(code(fx.ops.write_atomic(&path, b"pwned", None)), "SYMLINK_REFUSED", "{name}");
            assert_eq!(code(fx.ops.mkdir(&path, false, None)), "FILE_EXISTS", "{name}");
        }
        assert!(!fx.ws("missing-inside").exists());
        assert!(!fx.root.join(format!("{PROBE}-dangling")).exists());

        // Symlinked parents and `..` resolve inside the root.
        fx.ops.write(p("/workspace/up/escaped"), b"1", None).unwrap();
        fx.ops.write(p("/../../../../escaped-dotdot"), b"2", None).unwrap();
        fx.ops.write(p("/workspace/near-dir/sentinel-near"), b"3", None).unwrap();
        fx.ops.write_atomic(p("/workspace/up/workspace/../escaped-atomic"), b"4", None).unwrap();
        assert_eq!(std::fs::read(fx.root.join("escaped")).unwrap(), b"1");
        assert_eq!(std::fs::read(fx.root.join("escaped-dotdot")).unwrap(), b"2");
        assert_eq!(std::fs::read(fx.root.join("sentinel-near")).unwrap(), b"3");
        assert_eq!(std::fs::read(fx.root.join("escaped-atomic")).unwrap(), b"4");
        // A parent that points outside is, inside the root, a path that does not exist.
        assert_eq!(code(fx.ops.write(p("/workspace/outside-dir/sentinel"), b"x", None)), "FILE_NOT_FOUND");
        assert_eq!(code(fx.ops.write(p("/workspace/outside-dir/new"), b"x", None)), "FILE_NOT_FOUND");
        assert_eq!(code(fx.ops.mkdir(p("/workspace/outside-dir/new"), true, None)), "FILE_NOT_FOUND");
        assert_eq!(code(fx.ops.mkdir(p("/workspace/dangling/new"), true, None)), "FILE_NOT_FOUND");
        fx.assert_contained();
    }

    #[test]
    fn remove_and_rename_act_on_links_never_on_their_targets() {
        let fx = Fixture::new();
        symlink(&fx.sentinel, fx.ws("abs-sentinel")).unwrap();
        symlink(&fx.outside, fx.ws("outside-dir")).unwrap();
        symlink("../../../../outside", fx.ws("rel-outside-dir")).unwrap();
        fx.ops.remove(p("/workspace/abs-sentinel"), false).unwrap();
        fx.ops.remove(p("/workspace/outside-dir"), true).unwrap();
        assert!(std::fs::symlink_metadata(fx.ws("outside-dir")).is_err());
        assert_eq!(code(fx.ops.remove(p("/workspace/rel-outside-dir/sentinel"), false)), "FILE_NOT_FOUND");

        // A tree full of links out: removed, targets untouched.
        std::fs::create_dir_all(fx.ws("tree/sub/deeper")).unwrap();
        std::fs::write(fx.ws("tree/a"), b"a").unwrap();
        std::fs::write(fx.ws("tree/sub/deeper/b"), b"b").unwrap();
        symlink(&fx.outside, fx.ws("tree/sub/abs-out")).unwrap();
        symlink("../../../../../../outside", fx.ws("tree/sub/rel-out")).unwrap();
        symlink("/", fx.ws("tree/sub/deeper/slash")).unwrap();
        symlink("/etc", fx.ws("tree/etc")).unwrap();
        nix::unistd::mkfifo(&fx.ws("tree/fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(code(fx.ops.remove(p("/workspace/tree"), false)), "DIRECTORY_NOT_EMPTY");
        fx.ops.remove(p("/workspace/tree/"), true).unwrap();
        assert!(!fx.ws("tree").exists());
        assert_eq!(std::fs::read(fx.root.join("etc/passwd")).unwrap(), SANDBOX_PASSWD);

        symlink(&fx.sentinel, fx.ws("link")).unwrap();
        fx.ops.rename(p("/workspace/link"), p("/workspace/moved")).unwrap();
        assert_eq!(std::fs::read_link(fx.ws("moved")).unwrap(), fx.sentinel);
        std::fs::write(fx.ws("file"), b"f").unwrap();
        assert_eq!(code(fx.ops.rename(p("/workspace/file"), p("/workspace/moved"))), "FILE_EXISTS");
        assert_eq!(code(fx.ops.rename(p("/workspace/rel-outside-dir/sentinel"), p("/workspace/x"))), "FILE_NOT_FOUND");
        assert_eq!(code(fx.ops.rename(p("/workspace/file"), p("/workspace/rel-outside-dir/x"))), "FILE_NOT_FOUND");
        fx.ops.rename(p("/workspace/file"), p("/workspace/../../../../file-at-root")).unwrap();
        assert_eq!(std::fs::read(fx.root.join("file-at-root")).unwrap(), b"f");
        assert_eq!(code(fx.ops.remove(p("/"), true)), "INVALID_PATH");
        assert_eq!(code(fx.ops.remove(p("/workspace/.."), true)), "INVALID_PATH");
        fx.assert_contained();
    }

    #[test]
    fn list_reports_symlinks_as_links_and_never_descends_through_them() {
        let fx = Fixture::new();
        std::fs::write(fx.ws("a"), b"abc").unwrap();
        std::fs::create_dir(fx.ws("sub")).unwrap();
        std::fs::write(fx.ws("sub/b"), b"").unwrap();
        symlink(&fx.outside, fx.ws("out")).unwrap();
        symlink("../../../..", fx.ws("up")).unwrap();
        let names = |entries: Vec<DirEntry>| entries.into_iter().map(|e| (e.name, e.kind)).collect::<Vec<_>>();
        let flat = fx.ops.list(p("/workspace"), false).unwrap();
        assert_eq!(flat[0].size, 3);
        assert_eq!(
            names(flat),
            [
                ("a".into(), EntryKind::File),
                ("out".into(), EntryKind::Symlink),
                ("sub".into(), EntryKind::Dir),
                ("up".into(), EntryKind::Symlink),
            ]
        );
        let deep = names(fx.ops.list(p("/workspace"), true).unwrap());
        assert!(deep.contains(&("sub/b".into(), EntryKind::File)), "{deep:?}");
        assert_eq!(deep.len(), 5, "{deep:?}");
        // A symlinked directory is followed (inside the root) when it is the path itself.
        let up = names(fx.ops.list(p("/workspace/up"), false).unwrap());
        assert_eq!(up, [("etc".into(), EntryKind::Dir), ("workspace".into(), EntryKind::Dir)]);
        assert_eq!(code(fx.ops.list(p("/workspace/out"), false)), "FILE_NOT_FOUND");
        assert_eq!(code(fx.ops.list(p("/workspace/a"), false)), "NOT_A_DIRECTORY");
        let everything = names(fx.ops.list(p("/"), true).unwrap());
        assert!(everything.iter().all(|(name, _)| !name.as_bytes().ends_with(b"sentinel")), "{everything:?}");
        fx.assert_contained();
    }

    #[test]
    fn what_the_host_writes_belongs_to_the_sandbox_user_with_exact_modes() {
        let fx = Fixture::new();
        let meta = |name: &str| std::fs::symlink_metadata(fx.ws(name)).unwrap();
        fx.ops.write(p("/workspace/setuid"), b"x", Some(0o4777)).unwrap();
        assert_eq!((meta("setuid").uid(), meta("setuid").gid(), meta("setuid").mode() & 0o7777), (UID, GID, 0o777));
        fx.ops.write(p("/workspace/default"), b"x", None).unwrap();
        assert_eq!(meta("default").mode() & 0o7777, DEFAULT_FILE_MODE);
        // Exactly the mode asked for, whatever the host's umask.
        fx.ops.write(p("/workspace/wide"), b"x", Some(0o666)).unwrap();
        assert_eq!(meta("wide").mode() & 0o7777, 0o666);
        // An existing file keeps its mode unless one is given; its content is replaced.
        fx.ops.write(p("/workspace/wide"), b"longer content", None).unwrap();
        fx.ops.write(p("/workspace/wide"), b"y", None).unwrap();
        assert_eq!((meta("wide").mode() & 0o7777, std::fs::read(fx.ws("wide")).unwrap()), (0o666, b"y".to_vec()));
        std::fs::write(fx.ws("hostowned"), b"old").unwrap();
        fx.ops.write_atomic(p("/workspace/hostowned"), b"new", Some(0o600)).unwrap();
        fx.ops.write_atomic(p("/workspace/hostowned"), b"newer", None).unwrap();
        let m = meta("hostowned");
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (UID, GID, 0o600));
        assert_eq!(std::fs::read(fx.ws("hostowned")).unwrap(), b"newer");
        fx.ops.mkdir(p("/workspace/m/n/o"), true, Some(0o700)).unwrap();
        fx.ops.mkdir(p("/workspace/m/n/o"), true, None).unwrap();
        for dir in ["m", "m/n", "m/n/o"] {
            let m = meta(dir);
            assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777, m.is_dir()), (UID, GID, 0o700, true), "{dir}");
        }
        assert_eq!(meta("").uid(), 0, "an existing parent is not re-owned");
        assert_eq!(code(fx.ops.mkdir(p("/workspace/m"), false, None)), "FILE_EXISTS");
        assert_eq!(code(fx.ops.mkdir(p("/workspace/x/y"), false, None)), "FILE_NOT_FOUND");
        assert_eq!(code(fx.ops.mkdir(p("/workspace/default/y"), true, None)), "NOT_A_DIRECTORY");
        // No temporary file left behind.
        let left = fx.ops.list(p("/workspace"), false).unwrap();
        assert!(left.iter().all(|e| !e.name.as_bytes().starts_with(b".sandguard")), "{left:?}");
        fx.assert_contained();
    }

    #[test]
    fn reads_are_bounded() {
        let fx = Fixture::new();
        std::fs::write(fx.ws("hundred"), [7u8; 100]).unwrap();
        std::fs::write(fx.ws("empty"), b"").unwrap();
        match fx.ops.read(p("/workspace/hundred"), 99) {
            Err(FileError::TooLarge { size: 100, max: 99, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(fx.ops.read(p("/workspace/hundred"), 100).unwrap().len(), 100);
        assert_eq!(fx.ops.read(p("/workspace/hundred"), u64::MAX).unwrap().len(), 100);
        assert_eq!(fx.ops.read(p("/workspace/empty"), 0).unwrap(), b"");
    }

    #[test]
    fn fifos_sockets_and_directories_are_refused_without_blocking() {
        let fx = Fixture::new();
        nix::unistd::mkfifo(&fx.ws("fifo"), Mode::from_bits_truncate(0o666)).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(fx.ws("sock")).unwrap();
        symlink("/workspace/fifo", fx.ws("to-fifo")).unwrap();
        for path in ["/workspace/fifo", "/workspace/sock", "/workspace/to-fifo"] {
            assert_eq!(code(fx.ops.read(p(path), 10)), "NOT_A_REGULAR_FILE", "{path}");
        }
        for path in ["/workspace/fifo", "/workspace/sock"] {
            assert_eq!(code(fx.ops.write(p(path), b"x", None)), "NOT_A_REGULAR_FILE", "{path}");
            assert_eq!(code(fx.ops.write_atomic(p(path), b"x", None)), "NOT_A_REGULAR_FILE", "{path}");
        }
        assert_eq!(code(fx.ops.write(p("/workspace"), b"x", None)), "IS_A_DIRECTORY");
        assert_eq!(code(fx.ops.write(p("/workspace/"), b"x", None)), "INVALID_PATH");
        assert_eq!(code(fx.ops.write(p("/workspace/a/"), b"x", None)), "INVALID_PATH");
    }

    #[test]
    fn malformed_paths_are_refused_without_panics() {
        let fx = Fixture::new();
        let long = format!("/workspace/{}", "a/".repeat(2100));
        let long_name = format!("/workspace/{}", "n".repeat(300));
        let nul = OsStr::from_bytes(b"/workspace/a\0b");
        let cases: &[(&Path, &str)] = &[
            (p(""), "INVALID_PATH"),
            (p("workspace/a"), "INVALID_PATH"),
            (p("./a"), "INVALID_PATH"),
            (Path::new(nul), "INVALID_PATH"),
            (p(&long), "INVALID_PATH"),
            (p(&long_name), "INVALID_PATH"),
        ];
        for &(path, expected) in cases {
            assert_eq!(code(fx.ops.read(path, 10)), expected, "{path:?}");
            assert_eq!(code(fx.ops.write(path, b"x", None)), expected, "{path:?}");
            assert_eq!(code(fx.ops.write_atomic(path, b"x", None)), expected, "{path:?}");
            assert_eq!(code(fx.ops.mkdir(path, true, None)), expected, "{path:?}");
            assert_eq!(code(fx.ops.remove(path, true)), expected, "{path:?}");
            assert_eq!(code(fx.ops.rename(path, p("/workspace/x"))), expected, "{path:?}");
            assert_eq!(code(fx.ops.rename(p("/workspace"), path)), expected, "{path:?}");
            assert_eq!(code(fx.ops.list(path, true)), expected, "{path:?}");
            assert_eq!(code(fx.ops.exists(path)), expected, "{path:?}");
        }
        for path in ["/", "//", "/workspace/..", "/workspace/.", "/workspace/..//", "/.."] {
            assert_eq!(code(fx.ops.write(p(path), b"x", None)), "INVALID_PATH", "{path}");
            assert_eq!(code(fx.ops.remove(p(path), true)), "INVALID_PATH", "{path}");
            assert_eq!(code(fx.ops.rename(p(path), p("/workspace/x"))), "INVALID_PATH", "{path}");
            assert_eq!(code(fx.ops.mkdir(p(path), false, None)), "INVALID_PATH", "{path}");
            fx.ops.mkdir(p(path), true, None).unwrap();
            assert!(fx.ops.exists(p(path)).unwrap());
        }
        fx.assert_contained();
    }

    #[test]
    fn the_hosts_own_root_is_refused_as_a_sandbox_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"").unwrap();
        assert_eq!(code(FileOps::open(p("/"), UID, GID)), "INVALID_PATH");
        // What `/proc/<pid>/root` becomes once the PID belongs to a host process.
        assert_eq!(code(FileOps::open(p("/proc/self/root"), UID, GID)), "INVALID_PATH");
        assert_eq!(code(FileOps::open(p("relative"), UID, GID)), "INVALID_PATH");
        assert_eq!(code(FileOps::open(&dir.path().join("missing"), UID, GID)), "FILE_NOT_FOUND");
        assert_eq!(code(FileOps::open(&dir.path().join("file"), UID, GID)), "NOT_A_DIRECTORY");
    }

    #[test]
    fn a_proc_pid_root_magic_link_is_a_working_boundary() {
        let fx = Fixture::new();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let root = fx.root.clone();
        // A thread with its own root, as a sandbox's init has: `/proc/<tid>/root` is a magic
        // link to it.
        let jailed = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).unwrap();
            nix::unistd::chroot(&root).unwrap();
            tid_tx.send(nix::unistd::gettid()).unwrap();
            done_rx.recv().unwrap();
        });
        let tid = tid_rx.recv().unwrap();
        let ops = FileOps::open(&PathBuf::from(format!("/proc/self/task/{tid}/root")), UID, GID).unwrap();
        done_tx.send(()).unwrap();
        jailed.join().unwrap();
        // The descriptor outlives the process that gave it.
        assert_eq!(ops.read(p("/etc/passwd"), 1 << 20).unwrap(), SANDBOX_PASSWD);
        symlink("/etc/passwd", fx.ws("pw")).unwrap();
        assert_eq!(ops.read(p("/workspace/pw"), 1 << 20).unwrap(), SANDBOX_PASSWD);
        ops.write(p("/workspace/via-proc"), b"ok", None).unwrap();
        assert_eq!(std::fs::read(fx.ws("via-proc")).unwrap(), b"ok");
        fx.assert_contained();
    }

    #[test]
    fn mounts_are_crossed_but_pseudo_filesystems_are_never_touched() {
        use nix::mount::{MsFlags, mount};
        let fx = Fixture::new();
        let bind_source = fx.base.join("bind-source");
        std::fs::create_dir(&bind_source).unwrap();
        std::fs::write(bind_source.join("seed"), b"seed").unwrap();
        std::fs::create_dir(fx.ws("bind")).unwrap();
        std::fs::create_dir(fx.root.join("proc")).unwrap();
        std::fs::create_dir(fx.root.join("sys")).unwrap();
        let (root, source) = (fx.root.clone(), bind_source.clone());
        // In a thread's private mount namespace: the mounts vanish with the thread.
        std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).unwrap();
            let none: Option<&str> = None;
            mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none).unwrap();
            mount(Some(&source), &root.join("workspace/bind"), none, MsFlags::MS_BIND, none).unwrap();
            mount(Some("proc"), &root.join("proc"), Some("proc"), MsFlags::empty(), none).unwrap();
            mount(Some("sysfs"), &root.join("sys"), Some("sysfs"), MsFlags::empty(), none).unwrap();
            let ops = FileOps::open(&root, UID, GID).unwrap();
            for path in ["/proc/version", "/proc/self/environ", "/proc/1/cmdline", "/sys/kernel/uevent_seqnum"] {
                assert_eq!(code(ops.read(p(path), 1 << 20)), "PSEUDO_FILESYSTEM", "{path}");
            }
            assert_eq!(code(ops.mkdir(p(&format!("/sys/fs/cgroup/{PROBE}")), true, None)), "PSEUDO_FILESYSTEM");
            assert_eq!(code(ops.list(p("/proc"), false)), "PSEUDO_FILESYSTEM");
            assert_eq!(code(ops.write(p(&format!("/proc/{PROBE}")), b"x", None)), "PSEUDO_FILESYSTEM");
            assert_eq!(code(ops.mkdir(p(&format!("/proc/{PROBE}")), false, None)), "PSEUDO_FILESYSTEM");
            assert_eq!(code(ops.remove(p("/proc/version"), false)), "PSEUDO_FILESYSTEM");
            // A recursive listing of `/` shows `proc` but does not enter it; it enters the bind.
            let all = ops.list(p("/"), true).unwrap();
            assert!(all.iter().any(|e| e.name == "proc"));
            assert!(all.iter().all(|e| !e.name.as_bytes().starts_with(b"proc/")));
            assert!(all.iter().all(|e| !e.name.as_bytes().starts_with(b"sys/")));
            assert!(all.iter().any(|e| e.name == "workspace/bind/seed"));
            // Bind mounts such as /workspace are crossed by resolution...
            ops.write(p("/workspace/bind/new"), b"via bind", None).unwrap();
            assert_eq!(ops.read(p("/workspace/bind/seed"), 100).unwrap(), b"seed");
            // ... but never removed, or renamed across.
            assert_eq!(code(ops.remove(p("/workspace/bind"), true)), "FILE_IO");
            assert_eq!(code(ops.rename(p("/workspace/bind/new"), p("/workspace/new"))), "FILE_IO");
        })
        .join()
        .unwrap();
        assert_eq!(std::fs::read(bind_source.join("new")).unwrap(), b"via bind");
        assert_eq!(std::fs::metadata(bind_source.join("new")).unwrap().uid(), UID);
        assert_eq!(std::fs::read(bind_source.join("seed")).unwrap(), b"seed");
        // The mounts went with the thread's namespace.
        assert!(std::fs::read_dir(fx.ws("bind")).unwrap().next().is_none());
        assert!(std::fs::read_dir(fx.root.join("proc")).unwrap().next().is_none());
    }

    /// Swaps `a` and `b` (in one directory, by their host paths) atomically, in a loop, until
    /// told to stop; returns how many swaps it made.
    fn swapper(
        dir: PathBuf,
        a: &'static CStr,
        b: &'static CStr,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<u64> {
        std::thread::spawn(move || {
            let dir = nix::fcntl::open(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
            let mut swaps = 0;
            while !stop.load(Ordering::Relaxed) {
                renameat2(dir.as_fd(), a, dir.as_fd(), b, crate::sys::openat2::RENAME_EXCHANGE).unwrap();
                swaps += 1;
            }
            swaps
        })
    }

    #[test]
    fn swapping_a_directory_for_a_symlink_never_lands_anything_outside() {
        let fx = Fixture::new();
        std::fs::create_dir(fx.ws("d")).unwrap();
        symlink(&fx.outside, fx.ws("evil-abs")).unwrap();
        symlink("../../../../../outside", fx.ws("evil-rel")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let swappers = [
            swapper(fx.ws(""), c"d", c"evil-abs", Arc::clone(&stop)),
            swapper(fx.ws(""), c"d", c"evil-rel", Arc::clone(&stop)),
        ];
        let mut landed = 0;
        for i in 0..5_000 {
            if i >= 400 && landed > 0 {
                break;
            }
            let f = PathBuf::from(format!("/workspace/d/f{i}"));
            landed += u32::from(fx.ops.write(&f, b"data", Some(0o600)).is_ok());
            let a = PathBuf::from(format!("/workspace/d/a{i}"));
            landed += u32::from(fx.ops.write_atomic(&a, b"data", None).is_ok());
            let _ = fx.ops.mkdir(Path::new(&format!("/workspace/d/m{i}/n")), true, None);
            let _ = fx.ops.rename(&a, Path::new(&format!("/workspace/d/r{i}")));
            let _ = fx.ops.list(p("/workspace/d"), true);
            let _ = fx.ops.read(&f, 100);
            if i % 3 == 0 {
                let _ = fx.ops.remove(&f, false);
                let _ = fx.ops.remove(Path::new(&format!("/workspace/d/m{i}")), true);
            }
        }
        stop.store(true, Ordering::Relaxed);
        let swaps: u64 = swappers.into_iter().map(|s| s.join().unwrap()).sum();
        assert!(swaps > 100, "the race did not run: {swaps} swaps");
        assert!(landed > 0, "no write succeeded, so the test proved nothing");
        fx.assert_contained();
    }

    #[test]
    fn swapping_the_last_component_for_a_symlink_never_writes_through_it() {
        let fx = Fixture::new();
        std::fs::write(fx.ws("t"), b"start").unwrap();
        symlink(&fx.sentinel, fx.ws("evil-abs")).unwrap();
        symlink("../../../../../outside/sentinel", fx.ws("evil-rel")).unwrap();
        std::fs::create_dir(fx.ws("tree")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let swappers = [
            swapper(fx.ws(""), c"t", c"evil-abs", Arc::clone(&stop)),
            swapper(fx.ws(""), c"t", c"evil-rel", Arc::clone(&stop)),
            swapper(fx.ws(""), c"tree", c"evil-abs", Arc::clone(&stop)),
        ];
        let (mut written, mut refused) = (0, 0);
        // At least 400 rounds, and on until both outcomes were seen (bounded).
        for i in 0..20_000 {
            if i >= 400 && written > 0 && refused > 0 {
                break;
            }
            match fx.ops.write(p("/workspace/t"), format!("write {i}").as_bytes(), None) {
                Ok(()) => written += 1,
                Err(FileError::SymlinkRefused { .. }) => refused += 1,
                Err(_) => {}
            }
            let _ = fx.ops.write_atomic(p("/workspace/evil-rel"), b"atomic", None);
            let _ = fx.ops.mkdir(p("/workspace/tree/sub"), true, None);
            let _ = fx.ops.write(p("/workspace/tree/sub/f"), b"x", None);
            let _ = fx.ops.remove(p("/workspace/tree/sub"), true);
        }
        stop.store(true, Ordering::Relaxed);
        for s in swappers {
            s.join().unwrap();
        }
        fx.assert_contained();
        assert!(written > 0 && refused > 0, "both outcomes must occur: {written} written, {refused} refused");
    }

    /// xorshift64*: a seeded, reproducible source for the randomized test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap()
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    #[test]
    fn random_operation_sequences_never_touch_anything_outside() {
        let seeds: Vec<u64> = match std::env::var("SANDGUARD_FILES_SEED") {
            Ok(seed) => vec![seed.parse().unwrap()],
            Err(_) => vec![1, 0x5eed, 0xdead_beef, 42],
        };
        for seed in seeds {
            let fx = Fixture::new();
            let mut rng = Rng(seed.max(1));
            let outside = fx.outside.to_str().unwrap().to_owned();
            let sentinel = fx.sentinel.to_str().unwrap().to_owned();
            let near = fx.base.join("l1/l2/l3/sentinel-near").to_str().unwrap().to_owned();
            // Few names, so that operations meet each other's files and links; `.` and `..` rarer.
            let names =
                ["a", "b", "d", "dir", "link", "a", "b", "d", "dir", "sgprobe", "sentinel", "outside", "..", "."];
            let targets = [
                outside.as_str(),
                sentinel.as_str(),
                near.as_str(),
                "../../../../../outside",
                "../../../../../outside/sentinel",
                "../../sentinel-near",
                "/",
                "..",
                "../..",
                "/workspace",
                "a",
                "link",
                "/sgprobe",
            ];
            let random_path = |rng: &mut Rng| {
                let mut path = String::from(if rng.below(4) == 0 { "" } else { "/workspace" });
                for _ in 0..=rng.below(4).saturating_sub(1) {
                    path.push('/');
                    path.push_str(rng.pick(&names));
                }
                PathBuf::from(path)
            };
            let mut successes = [0_u32; 12];
            for step in 0..3000 {
                let a = random_path(&mut rng);
                let b = random_path(&mut rng);
                let mode = [None, Some(0o600), Some(0o7777)][rng.below(3)];
                let kind = rng.below(12);
                let outcome = match kind {
                    0 => fx.ops.read(&a, 64).map(drop),
                    1 => fx.ops.write(&a, b"random", mode),
                    2 => fx.ops.write_atomic(&a, b"random atomic", mode),
                    3 => fx.ops.mkdir(&a, rng.below(2) == 0, mode),
                    4 => fx.ops.remove(&a, rng.below(2) == 0),
                    5 => fx.ops.rename(&a, &b),
                    6 => fx.ops.list(&a, rng.below(2) == 0).map(drop),
                    7 => fx.ops.exists(&a).map(drop),
                    // The sandbox's own moves: symlinks (made through a resolved parent, so
                    // that the test itself cannot escape) and atomic swaps.
                    8..=10 => attacker_symlink(&fx, &a, rng.pick(&targets)),
                    _ => attacker_swap(&fx, &a, &b),
                };
                successes[kind] += u32::from(outcome.is_ok());
                if let Err(err) = outcome {
                    assert!(!err.code().is_empty() && !err.to_string().is_empty());
                }
                assert_eq!(std::fs::read(&fx.sentinel).unwrap(), SENTINEL, "seed {seed} step {step}");
                if step % 100 == 0 {
                    fx.assert_contained();
                }
            }
            fx.assert_contained();
            // Every file operation succeeded sometimes: the sequences reached real states.
            assert!(successes[..8].iter().all(|&n| n > 0), "seed {seed}: successes per operation {successes:?}");
        }
    }

    /// Resolves `path`'s parent inside the root (as the sandbox would see it) and returns it
    /// with the last component, or `None` if there is none.
    fn attacker_parent(fx: &Fixture, path: &Path) -> Option<(OwnedFd, CString)> {
        let parent = CString::new(path.parent()?.as_os_str().as_bytes()).ok()?;
        let name = CString::new(path.file_name()?.as_bytes()).ok()?;
        let fd = openat2(fx.ops.root.as_fd(), &parent, libc::O_PATH | libc::O_DIRECTORY, 0, IN_ROOT).ok()?;
        Some((fd, name))
    }

    fn attacker_symlink(fx: &Fixture, at: &Path, target: &str) -> Result<(), FileError> {
        if let Some((dir, name)) = attacker_parent(fx, at) {
            let _ = nix::unistd::symlinkat(target, dir.as_fd(), name.as_c_str());
        }
        Ok(())
    }

    fn attacker_swap(fx: &Fixture, a: &Path, b: &Path) -> Result<(), FileError> {
        if let (Some((dir_a, a)), Some((dir_b, b))) = (attacker_parent(fx, a), attacker_parent(fx, b)) {
            let _ = renameat2(dir_a.as_fd(), &a, dir_b.as_fd(), &b, crate::sys::openat2::RENAME_EXCHANGE);
        }
        Ok(())
    }

    #[test]
    fn every_error_has_a_distinct_code() {
        let path = PathBuf::from("/x");
        let io = || std::io::Error::from_raw_os_error(libc::EIO);
        let all = [
            FileError::NotFound { path: path.clone() },
            FileError::Exists { path: path.clone() },
            FileError::NotADirectory { path: path.clone() },
            FileError::IsADirectory { path: path.clone() },
            FileError::SymlinkRefused { path: path.clone() },
            FileError::TooLarge { path: path.clone(), size: 2, max: 1 },
            FileError::InvalidPath { path: path.clone(), reason: "r" },
            FileError::Unsupported { reason: UNSUPPORTED },
            FileError::NotRegularFile { path: path.clone() },
            FileError::PseudoFilesystem { path: path.clone(), fs: "proc" },
            FileError::DirectoryNotEmpty { path: path.clone() },
            FileError::LimitExceeded { path: path.clone(), what: "entries", max: 1 },
            FileError::Io { op: "read", path, source: io() },
        ];
        let codes: std::collections::BTreeSet<_> = all.iter().map(FileError::code).collect();
        assert_eq!(codes.len(), all.len());
    }

    #[test]
    fn file_ops_can_be_shared_between_threads() {
        fn check<T: Send + Sync>() {}
        check::<FileOps>();
    }
}
