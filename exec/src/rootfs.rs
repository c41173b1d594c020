//! The sandbox's private root filesystem, built inside its new mount namespace.
//!
//! Layout; nothing of it can be changed by the host's other processes or by another sandbox:
//!
//! | path | what |
//! |---|---|
//! | `/` | a read-only skeleton of directories, links, mount points and `/etc`'s files, shared by sandboxes (see [`skeleton`]) |
//! | `/usr`, `/bin`, `/sbin`, `/lib*` | read-only binds of the host's (links kept as links) |
//! | `/etc` | in the skeleton: a handful of files copied from the host (loader cache, name-service config) and fresh `passwd`, `group`, `resolv.conf`; the sandbox's own `hosts` and `hostname` bound over it; the host's TLS roots and alternatives bound read-only; never `shadow` or host secrets |
//! | `/workspace`, `/tmp`, `/home` | one size-limited tmpfs (the disk limit), shared by the three |
//! | `/proc` | a fresh procfs of the sandbox's PID namespace; `/proc/sys` read-only |
//! | `/dev` | in the skeleton: `null zero full random urandom tty` bound from the host, a private `devpts`, a `shm` tmpfs |

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::statvfs::{FsFlags, statvfs};
use nix::unistd::{Gid, Uid, chown, pivot_root};

pub(crate) mod skeleton;

/// The user commands run as inside the sandbox.
pub(crate) const SANDBOX_UID: u32 = 1000;
/// Its group.
pub(crate) const SANDBOX_GID: u32 = 1000;

/// Read-only system directories bound from the host when they exist.
const SYSTEM_DIRS: &[&str] = &["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];
/// Host files under `/etc` a program commonly needs, copied (not bound) so a host change
/// never shows up inside a running sandbox.
const ETC_FILES: &[&str] = &[
    "ld.so.cache",
    "ld.so.conf",
    "nsswitch.conf",
    "host.conf",
    "protocols",
    "services",
    "mime.types",
    "localtime",
    "debian_version",
    "os-release",
];
/// Host directories under `/etc` bound read-only: program alternatives and TLS roots.
const ETC_DIRS: &[&str] = &["alternatives", "ssl", "ca-certificates", "ld.so.conf.d", "python3", "python3.11"];
/// Devices bound from the host.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];
/// Directories the sandbox may write, all on the one size-limited tmpfs.
pub(crate) const WRITABLE_DIRS: &[&str] = &["/workspace", "/tmp", "/home"];

/// What the root is built from.
pub(crate) struct RootSpec<'a> {
    /// Bytes the writable tmpfs may hold.
    pub(crate) disk_bytes: u64,
    /// Host name inside the sandbox.
    pub(crate) hostname: &'a str,
    /// The host's shared skeleton of the root (see [`skeleton`]); without one, the init writes
    /// its own.
    pub(crate) skeleton: Option<&'a Path>,
}

/// A failure, with the step that failed.
#[derive(Debug)]
pub(crate) struct RootError {
    pub(crate) stage: String,
    pub(crate) error: String,
}

type Step<T = ()> = Result<T, RootError>;

fn fail(stage: impl Into<String>) -> impl FnOnce(nix::errno::Errno) -> RootError {
    let stage = stage.into();
    move |errno| RootError { stage, error: errno.desc().to_owned() }
}

fn io_fail(stage: impl Into<String>) -> impl FnOnce(std::io::Error) -> RootError {
    let stage = stage.into();
    move |error| RootError { stage, error: error.to_string() }
}

const NONE: Option<&str> = None;

/// Builds the root and pivots into it. Runs in the sandbox's init, inside its new user and
/// mount namespaces, before any untrusted code exists.
pub(crate) fn build_and_enter(spec: &RootSpec<'_>) -> Step {
    // Every directory and file below is created with exactly its mode (/tmp's sticky 1777
    // included), without a chmod after each; the umask comes back before anything runs.
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let built = build_and_pivot(spec);
    nix::sys::stat::umask(umask);
    built
}

fn build_and_pivot(spec: &RootSpec<'_>) -> Step {
    // Nothing we mount may propagate back to the host.
    mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE).map_err(fail("make / private"))?;

    // A scratch tmpfs to build in; it hides the host's /tmp in this namespace only.
    let scratch = Path::new("/tmp");
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(Some("sandguard"), scratch, Some("tmpfs"), flags, Some("mode=0700,size=2m"))
        .map_err(fail("mount scratch tmpfs"))?;
    let own_skeleton;
    let skeleton = match spec.skeleton {
        Some(shared) => shared,
        None => {
            own_skeleton = scratch.join("skeleton");
            skeleton::fill(Path::new("/"), &own_skeleton).map_err(io_fail("write the root's skeleton"))?;
            &own_skeleton
        }
    };
    let new_root = scratch.join("root");
    make_dir(&new_root, 0o755)?;
    let mut read_only = ReadOnlyBinds::default();
    read_only.bind(skeleton, &new_root)?;
    let data = scratch.join("data");
    make_dir(&data, 0o755)?;
    let size = format!("mode=0755,size={}", spec.disk_bytes.max(4096));
    mount(Some("sandbox-data"), &data, Some("tmpfs"), flags, Some(size.as_str())).map_err(fail("mount data tmpfs"))?;

    bind_system_dirs(&new_root, &mut read_only)?;
    bind_etc(&new_root, spec.hostname, scratch, &mut read_only)?;
    read_only.seal(&new_root)?;
    bind_writable(&new_root, &data)?;
    mount_dev(&new_root)?;
    // The kernel lets a user namespace mount procfs only while a fully visible procfs is still
    // mounted in the namespace: before the old root goes.
    mount_proc(&new_root.join("proc"))?;

    // pivot_root(".", "."): the old root ends up stacked on the new one and is detached at once,
    // so the read-only root needs no directory to hold it.
    std::env::set_current_dir(&new_root).map_err(io_fail("chdir to the new root"))?;
    pivot_root(".", ".").map_err(fail("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(fail("detach the old root"))?;
    std::env::set_current_dir("/").map_err(io_fail("chdir /"))?;
    nix::unistd::sethostname(spec.hostname).map_err(fail("sethostname"))?;
    Ok(())
}

/// Creates a directory with exactly `mode` (the umask is 0 while the root is built).
fn make_dir(path: &Path, mode: u32) -> Step {
    fs::DirBuilder::new().mode(mode).create(path).map_err(io_fail(format!("mkdir {}", path.display())))
}

/// The host's system directories, to be read-only, where the skeleton has a directory for them
/// (it has links where the host has links).
fn bind_system_dirs(new_root: &Path, read_only: &mut ReadOnlyBinds) -> Step {
    for name in SYSTEM_DIRS {
        let (host, inside) = (Path::new("/").join(name), new_root.join(name));
        let is_dir = |path: &Path| fs::symlink_metadata(path).is_ok_and(|meta| meta.is_dir());
        if is_dir(&host) && is_dir(&inside) {
            read_only.bind(&host, &inside)?;
        }
    }
    Ok(())
}

/// Over the skeleton's /etc: this sandbox's `hosts` and `hostname` (written on `scratch`), and
/// [`ETC_DIRS`], all to be read-only.
fn bind_etc(new_root: &Path, hostname: &str, scratch: &Path, read_only: &mut ReadOnlyBinds) -> Step {
    let etc = new_root.join("etc");
    let hosts = format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n");
    let [hostname_file, hosts_file] = skeleton::PER_SANDBOX_FILES;
    for (name, contents) in [(hostname_file, format!("{hostname}\n")), (hosts_file, hosts)] {
        let own = scratch.join(name);
        write_file(&own, contents.as_bytes(), 0o644)?;
        read_only.bind(&own, &etc.join(name))?;
    }
    for name in ETC_DIRS {
        let (host, inside) = (Path::new("/etc").join(name), etc.join(name));
        if host.is_dir() && inside.is_dir() {
            read_only.bind(&host, &inside)?;
        }
    }
    Ok(())
}

/// [`WRITABLE_DIRS`]: directories of the size-limited `data` tmpfs, bound over the skeleton's.
fn bind_writable(new_root: &Path, data: &Path) -> Step {
    let owner = (Some(Uid::from_raw(SANDBOX_UID)), Some(Gid::from_raw(SANDBOX_GID)));
    for dir in WRITABLE_DIRS {
        let name = dir.trim_start_matches('/');
        let backing = data.join(name);
        let mode = if name == "tmp" { 0o1777 } else { 0o755 };
        make_dir(&backing, mode)?;
        mount(Some(&backing), &new_root.join(name), NONE, MsFlags::MS_BIND, NONE)
            .map_err(fail(format!("bind {dir}")))?;
    }
    chown(&data.join("workspace"), owner.0, owner.1).map_err(fail("chown /workspace"))?;
    let home = data.join("home").join("sandbox");
    make_dir(&home, 0o750)?;
    chown(&home, owner.0, owner.1).map_err(fail("chown /home/sandbox"))
}

/// Over the skeleton's /dev: the host's [`DEVICES`] (bound as they are: the nodes keep their host
/// ownership), a private devpts, and a shm tmpfs.
fn mount_dev(new_root: &Path) -> Step {
    let dev = new_root.join("dev");
    for name in DEVICES {
        let (host, inside) = (Path::new("/dev").join(name), dev.join(name));
        if fs::metadata(&host).is_ok() && inside.is_file() {
            mount(Some(&host), &inside, NONE, MsFlags::MS_BIND, NONE).map_err(fail(format!("bind /dev/{name}")))?;
        }
    }
    mount(
        Some("devpts"),
        &dev.join("pts"),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(fail("mount devpts"))?;
    mount(
        Some("sandbox-shm"),
        &dev.join("shm"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777,size=64m"),
    )
    .map_err(fail("mount /dev/shm"))
}

/// Binds (with the mounts below them) made read-only together once all are in place: one
/// `mount_setattr` over the whole tree, or where the kernel predates it (Linux 5.12) a remount of
/// each bind (then the mounts below a bound directory, if it has any, stay as they were).
#[derive(Default)]
struct ReadOnlyBinds {
    targets: Vec<PathBuf>,
}

impl ReadOnlyBinds {
    fn bind(&mut self, source: &Path, target: &Path) -> Step {
        mount(Some(source), target, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)
            .map_err(fail(format!("bind {}", source.display())))?;
        self.targets.push(target.to_owned());
        Ok(())
    }

    /// Makes `root` and every mount below it read-only and nosuid: at least all the binds made.
    fn seal(self, root: &Path) -> Step {
        match crate::sys::mount::make_read_only(root, true) {
            Ok(()) => Ok(()),
            Err(nix::errno::Errno::ENOSYS) => self.targets.iter().try_for_each(|target| remount_read_only(target)),
            Err(errno) => Err(fail(format!("make {} read-only", root.display()))(errno)),
        }
    }
}

/// Binds `source` on `target`, read-only.
fn bind_read_only(source: &Path, target: &Path) -> Step {
    let mut bind = ReadOnlyBinds::default();
    bind.bind(source, target)?;
    bind.seal(target)
}

/// Remounts the bind at `target` read-only and nosuid, keeping the flags the kernel locks on
/// mounts inherited from a more privileged namespace (nodev, noexec, atime).
fn remount_read_only(target: &Path) -> Step {
    let stage = format!("make {} read-only", target.display());
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID;
    if let Ok(stats) = statvfs(target) {
        let inherited = stats.flags();
        if inherited.contains(FsFlags::ST_NODEV) {
            flags |= MsFlags::MS_NODEV;
        }
        if inherited.contains(FsFlags::ST_NOEXEC) {
            flags |= MsFlags::MS_NOEXEC;
        }
        if inherited.contains(FsFlags::ST_NOATIME) {
            flags |= MsFlags::MS_NOATIME;
        }
        if inherited.contains(FsFlags::ST_NODIRATIME) {
            flags |= MsFlags::MS_NODIRATIME;
        }
        if inherited.contains(FsFlags::ST_RELATIME) {
            flags |= MsFlags::MS_RELATIME;
        }
    }
    mount(NONE, target, NONE, flags, NONE).map_err(fail(stage))
}

/// Creates a file with exactly `mode` (the umask is 0 while the root is built).
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Step {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_fail(format!("create {}", path.display())))?;
    file.write_all(contents).map_err(io_fail(format!("write {}", path.display())))
}

fn mount_proc(target: &Path) -> Step {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), target, Some("proc"), flags, NONE).map_err(fail("mount /proc"))?;
    // Kernel knobs stay out of reach even where the user namespace would allow a write.
    for name in ["sys", "sysrq-trigger", "irq", "bus", "fs"] {
        let path = target.join(name);
        if fs::symlink_metadata(&path).is_ok() {
            bind_read_only(&path, &path)?;
        }
    }
    Ok(())
}

/// The path of a sandbox's root as seen from the host: the init's `/proc/PID/root`.
pub(crate) fn host_view(init_pid: i32) -> PathBuf {
    PathBuf::from(format!("/proc/{init_pid}/root"))
}

/// Turns bytes into a C string, refusing interior NUL.
pub(crate) fn c_string(bytes: &[u8]) -> Option<CString> {
    CString::new(bytes).ok()
}
