//! The sandbox's private root filesystem, built inside its new mount namespace.
//!
//! Layout, all on fresh mounts no other sandbox and not the host can see:
//!
//! | path | what |
//! |---|---|
//! | `/` | a small tmpfs, read-only once built |
//! | `/usr`, `/bin`, `/sbin`, `/lib*` | read-only binds of the host's (symlinks kept as symlinks) |
//! | `/etc` | a handful of files copied from the host (loader cache, name-service config, TLS roots), and fresh `passwd`, `group`, `hosts`, `hostname`; never `shadow` or host secrets |
//! | `/workspace`, `/tmp`, `/home` | one size-limited tmpfs (the disk limit), shared by the three |
//! | `/proc` | a fresh procfs of the sandbox's PID namespace; `/proc/sys` read-only |
//! | `/dev` | tmpfs with `null zero full random urandom tty`, a private `devpts`, `shm` |

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

pub(crate) mod etc_snapshot;
use nix::sys::statvfs::{FsFlags, statvfs};
use nix::unistd::{Gid, Uid, chown, pivot_root};

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
    /// The host's read-only snapshot of /etc to bind (see [`etc_snapshot`]); without one, the
    /// files are written into the root.
    pub(crate) etc_snapshot: Option<&'a Path>,
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
    let base = Path::new("/tmp");
    mount(Some("sandguard"), base, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0700,size=1m"))
        .map_err(fail("mount scratch tmpfs"))?;
    let new_root = base.join("root");
    let data = base.join("data");
    make_dir(&new_root, 0o755)?;
    make_dir(&data, 0o755)?;
    mount(
        Some("sandbox-root"),
        &new_root,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755,size=4m"),
    )
    .map_err(fail("mount root tmpfs"))?;
    let size = format!("mode=0755,size={}", spec.disk_bytes.max(4096));
    mount(Some("sandbox-data"), &data, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(size.as_str()))
        .map_err(fail("mount data tmpfs"))?;

    bind_system_dirs(&new_root)?;
    build_etc(&new_root, spec.hostname, spec.etc_snapshot, base)?;
    build_writable(&new_root, &data)?;
    build_dev(&new_root)?;
    make_dir(&new_root.join("proc"), 0o555)?;
    make_dir(&new_root.join("root"), 0o700)?;
    // The kernel lets a user namespace mount procfs only while a fully visible procfs is still
    // mounted in the namespace: before the old root goes.
    mount_proc(&new_root.join("proc"))?;

    // pivot_root needs the old root somewhere below the new one; it is detached right after.
    let old_root = new_root.join(".old-root");
    make_dir(&old_root, 0o700)?;
    pivot_root(&new_root, &old_root).map_err(fail("pivot_root"))?;
    std::env::set_current_dir("/").map_err(io_fail("chdir /"))?;
    umount2("/.old-root", MntFlags::MNT_DETACH).map_err(fail("detach the old root"))?;
    fs::remove_dir("/.old-root").map_err(io_fail("remove /.old-root"))?;

    // Everything is in place: the root itself becomes read-only.
    mount(
        NONE,
        "/",
        NONE,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        NONE,
    )
    .map_err(fail("remount / read-only"))?;
    nix::unistd::sethostname(spec.hostname).map_err(fail("sethostname"))?;
    Ok(())
}

/// Creates a directory with exactly `mode` (the umask is 0 while the root is built).
fn make_dir(path: &Path, mode: u32) -> Step {
    fs::DirBuilder::new().mode(mode).create(path).map_err(io_fail(format!("mkdir {}", path.display())))
}

fn bind_system_dirs(new_root: &Path) -> Step {
    for name in SYSTEM_DIRS {
        let host = Path::new("/").join(name);
        let Ok(meta) = fs::symlink_metadata(&host) else { continue };
        let inside = new_root.join(name);
        if meta.file_type().is_symlink() {
            // Merged-/usr systems: /bin -> usr/bin. Keep the link, so the bind of /usr serves it.
            let target = fs::read_link(&host).map_err(io_fail(format!("readlink {}", host.display())))?;
            symlink(&target, &inside).map_err(io_fail(format!("symlink {}", inside.display())))?;
        } else if meta.is_dir() {
            make_dir(&inside, 0o755)?;
            bind_read_only(&host, &inside)?;
        }
    }
    Ok(())
}

/// Binds `source` on `target` and makes the bind read-only, keeping the flags the kernel locks
/// on mounts inherited from a more privileged namespace (nosuid, nodev, noexec).
fn bind_read_only(source: &Path, target: &Path) -> Step {
    let stage = format!("bind {} read-only", source.display());
    mount(Some(source), target, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE).map_err(fail(stage.clone()))?;
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

/// Copies `source` into a new file with exactly `mode`, in the kernel (`copy_file_range` or
/// `sendfile`): no buffer in this process, whose every written page would be a copy-on-write
/// fault in the freshly forked init.
fn copy_file(mut source: fs::File, path: &Path, mode: u32) -> Step {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_fail(format!("create {}", path.display())))?;
    std::io::copy(&mut source, &mut file).map(drop).map_err(io_fail(format!("copy to {}", path.display())))
}

/// The root's /etc: the host's snapshot bound read-only, with this sandbox's `hosts` and
/// `hostname` (written on the `scratch` tmpfs) bound over its placeholders; or, without a
/// snapshot, the same files written into the root. Then [`ETC_DIRS`], bound read-only.
fn build_etc(new_root: &Path, hostname: &str, snapshot: Option<&Path>, scratch: &Path) -> Step {
    let etc = new_root.join("etc");
    make_dir(&etc, 0o755)?;
    match snapshot {
        Some(snapshot) => {
            bind_read_only(snapshot, &etc)?;
            for (name, contents) in own_files(hostname) {
                let own = scratch.join(name);
                write_file(&own, contents.as_bytes(), 0o644)?;
                bind_read_only(&own, &etc.join(name))?;
            }
        }
        None => {
            for name in ETC_FILES {
                // Opening follows links (localtime -> /usr/share/zoneinfo/...): the copy is a file.
                // sandguard:allow(path-traversal) -- the joined name is a constant or our own, never a user's
                if let Ok(host) = fs::File::open(Path::new("/etc").join(name)) {
                    copy_file(host, &etc.join(name), 0o644)?;
                }
            }
            for (name, contents) in
                [("passwd", sandbox_passwd()), ("group", sandbox_group()), ("resolv.conf", String::new())]
                    .into_iter()
                    .chain(own_files(hostname))
            {
                write_file(&etc.join(name), contents.as_bytes(), 0o644)?;
            }
        }
    }
    for name in ETC_DIRS {
        let (host, inside) = (Path::new("/etc").join(name), etc.join(name));
        if !host.is_dir() {
            continue;
        }
        match snapshot {
            // A snapshot has the mount points of the directories the host had when it was made.
            Some(_) if !inside.is_dir() => continue,
            Some(_) => {}
            None => make_dir(&inside, 0o755)?,
        }
        bind_read_only(&host, &inside)?;
    }
    Ok(())
}

/// The sandbox's `/etc/passwd`: root, the sandbox's user, nobody.
fn sandbox_passwd() -> String {
    format!(
        "root:x:0:0:root:/root:/bin/sh\nsandbox:x:{SANDBOX_UID}:{SANDBOX_GID}:sandbox:/home/sandbox:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
}

/// The sandbox's `/etc/group`.
fn sandbox_group() -> String {
    format!("root:x:0:\nsandbox:x:{SANDBOX_GID}:\nnogroup:x:65534:\n")
}

/// The files of /etc that name the sandbox ([`etc_snapshot::PER_SANDBOX_FILES`]), with their
/// contents. No name servers are configured anywhere (`resolv.conf` is empty): the sandbox has no
/// network unless the policy routes it through a proxy.
fn own_files(hostname: &str) -> [(&'static str, String); 2] {
    let hosts = format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n");
    let [hostname_file, hosts_file] = etc_snapshot::PER_SANDBOX_FILES;
    [(hostname_file, format!("{hostname}\n")), (hosts_file, hosts)]
}

fn build_writable(new_root: &Path, data: &Path) -> Step {
    let owner = (Some(Uid::from_raw(SANDBOX_UID)), Some(Gid::from_raw(SANDBOX_GID)));
    for dir in WRITABLE_DIRS {
        let name = dir.trim_start_matches('/');
        let backing = data.join(name);
        let mode = if name == "tmp" { 0o1777 } else { 0o755 };
        make_dir(&backing, mode)?;
        let inside = new_root.join(name);
        make_dir(&inside, 0o755)?;
        mount(Some(&backing), &inside, NONE, MsFlags::MS_BIND, NONE).map_err(fail(format!("bind {dir}")))?;
    }
    chown(&new_root.join("workspace"), owner.0, owner.1).map_err(fail("chown /workspace"))?;
    let home = new_root.join("home").join("sandbox");
    make_dir(&home, 0o750)?;
    chown(&home, owner.0, owner.1).map_err(fail("chown /home/sandbox"))
}

fn build_dev(new_root: &Path) -> Step {
    let dev = new_root.join("dev");
    make_dir(&dev, 0o755)?;
    mount(
        Some("sandbox-dev"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=0755,size=64k"),
    )
    .map_err(fail("mount /dev tmpfs"))?;
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        if fs::metadata(&host).is_err() {
            continue;
        }
        let inside = dev.join(name);
        write_file(&inside, b"", 0o666)?;
        mount(Some(&host), &inside, NONE, MsFlags::MS_BIND, NONE).map_err(fail(format!("bind /dev/{name}")))?;
    }
    let pts = dev.join("pts");
    make_dir(&pts, 0o755)?;
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(fail("mount devpts"))?;
    symlink("pts/ptmx", dev.join("ptmx")).map_err(io_fail("symlink /dev/ptmx"))?;
    let shm = dev.join("shm");
    make_dir(&shm, 0o1777)?;
    mount(Some("sandbox-shm"), &shm, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777,size=64m"))
        .map_err(fail("mount /dev/shm"))?;
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dev.join(link)).map_err(io_fail(format!("symlink /dev/{link}")))?;
    }
    // The bind-mounted device nodes keep their host ownership; the tmpfs itself becomes read-only.
    mount(
        NONE,
        &dev,
        NONE,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=0755,size=64k"),
    )
    .map_err(fail("remount /dev read-only"))
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
