//! The read-only skeleton of a sandbox's root: its directories, links, mount points and the
//! files of its `/etc`, everything of the root that is not a mount of its own.
//!
//! Writing that tree into every sandbox's root took about half a millisecond of its start (a
//! directory or file on tmpfs costs 10–20 µs on the machine measured, and there are forty). So the
//! host writes it once, under `/run/sandguard/root`, into a directory named by a hash of what it
//! depends on (the host's files copied into `/etc`, the layout of its system directories and
//! devices, and what sandguard writes), and every sandbox binds it read-only as its `/`. A change
//! to a host file (its size, times or inode) names a new skeleton; a running sandbox keeps the one
//! it started with, as it kept its own copies before. sandguard never removes a skeleton, since a
//! running sandbox may use it: each is a few hundred KiB, on `/run`, gone at reboot.
//!
//! The skeleton and the two directories above it must belong to this process's user and be
//! writable by nobody else. When they are not, or cannot be made (no writable `/run`), the init
//! writes a skeleton of its own on its scratch tmpfs with the same [`fill`], and binds that.
//!
//! | path | in the skeleton |
//! |---|---|
//! | `usr`, `lib`, ... | empty directories where the host has directories (bound over), links where it has links |
//! | `etc` | copies of [`ETC_FILES`], the sandbox's `passwd`, `group` and an empty `resolv.conf`; empty `hostname` and `hosts`, each sandbox's own bound over them; directories to bind [`ETC_DIRS`] over |
//! | `dev` | empty files to bind the host's [`DEVICES`] over, `pts` and `shm` for their mounts, `ptmx`, `fd` and `std*` links |
//! | `proc`, `root`, `workspace`, `tmp`, `home` | empty directories |

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use super::{DEVICES, ETC_DIRS, ETC_FILES, SANDBOX_GID, SANDBOX_UID, SYSTEM_DIRS, WRITABLE_DIRS};

/// Where the host keeps the skeletons.
pub(crate) const SKELETONS: &str = "/run/sandguard/root";
/// Files of `/etc` that name the sandbox: empty in a skeleton, each sandbox binds its own.
pub(crate) const PER_SANDBOX_FILES: [&str; 2] = ["hostname", "hosts"];
/// Bumped whenever what a skeleton holds changes, so an old one is never taken for a new one.
const FORMAT: &str = "sandguard-root-v1";

/// The shared skeleton for a sandbox started now, made if it does not exist yet; `None` when it
/// cannot be made or trusted.
pub(crate) fn shared() -> Option<PathBuf> {
    shared_in(Path::new("/"), Path::new(SKELETONS))
}

/// [`shared`], for the host whose root is `host`, kept under `skeletons`.
pub(crate) fn shared_in(host: &Path, skeletons: &Path) -> Option<PathBuf> {
    let dir = skeletons.join(key(host));
    if !trusted(&dir) {
        let parent = skeletons.parent()?;
        for level in [parent, skeletons] {
            if !trusted(level) {
                make_dir_if_missing(level).ok()?;
            }
        }
        if !trusted(parent) || !trusted(skeletons) {
            return None;
        }
        // Written aside and renamed into place: whoever renames first wins, and a loser's copy,
        // or one that could not be finished, is removed.
        remove_abandoned_staging(skeletons);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let staging = skeletons.join(format!(".new-{}-{nanos}", std::process::id()));
        if fill(host, &staging).is_err() || fs::rename(&staging, &dir).is_err() {
            let _ = fs::remove_dir_all(&staging);
        }
    }
    trusted(&dir).then_some(dir)
}

/// Removes the staging directories (`.new-PID-N`) of processes that ended while writing one.
fn remove_abandoned_staging(skeletons: &Path) {
    for entry in fs::read_dir(skeletons).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) =
            name.to_str().and_then(|name| name.strip_prefix(".new-")?.split('-').next()?.parse::<i32>().ok())
        else {
            continue;
        };
        let ended = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH);
        if pid > 0 && ended {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether `dir` is a directory (not a link to one) of this process's user that nobody else
/// may write.
fn trusted(dir: &Path) -> bool {
    fs::symlink_metadata(dir)
        .is_ok_and(|meta| meta.is_dir() && meta.uid() == nix::unistd::geteuid().as_raw() && meta.mode() & 0o022 == 0)
}

/// Creates `dir` with mode 0755, or leaves an existing one for [`trusted`] to judge.
fn make_dir_if_missing(dir: &Path) -> io::Result<()> {
    match make_dir(dir, 0o755) {
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// The skeleton's name: an FNV-1a hash of everything its contents depend on.
fn key(host: &Path) -> String {
    let mut described = format!("{FORMAT} {SANDBOX_UID} {SANDBOX_GID}\n");
    for name in SYSTEM_DIRS {
        // sandguard:allow(path-traversal) -- the joined name is one of our constants, never a user's
        let on_host = host.join(name);
        let kind = match fs::symlink_metadata(&on_host) {
            Ok(meta) if meta.file_type().is_symlink() => format!("-> {:?}", fs::read_link(&on_host).ok()),
            Ok(meta) => format!("dir {}", meta.is_dir()),
            Err(_) => "-".to_owned(),
        };
        described.push_str(&format!("/{name} {kind}\n"));
    }
    for name in ETC_FILES {
        // Following links, as the copy does (localtime -> /usr/share/zoneinfo/...).
        // sandguard:allow(path-traversal) -- the joined name is one of our constants, never a user's
        match fs::metadata(host.join("etc").join(name)) {
            Ok(meta) => described.push_str(&format!(
                "/etc/{name} {} {} {} {}.{} {}.{} {:o}\n",
                meta.dev(),
                meta.ino(),
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec(),
                meta.mode()
            )),
            Err(_) => described.push_str(&format!("/etc/{name} -\n")),
        }
    }
    for (dir, names) in [("etc", ETC_DIRS), ("dev", DEVICES)] {
        for name in names {
            // sandguard:allow(path-traversal) -- the joined names are our constants, never a user's
            let present = fs::metadata(host.join(dir).join(name)).is_ok();
            described.push_str(&format!("/{dir}/{name} {present}\n"));
        }
    }
    let hash = described
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

/// Writes the skeleton for the host whose root is `host` into the new directory `dir`. Modes are
/// exact whatever the umask.
pub(crate) fn fill(host: &Path, dir: &Path) -> io::Result<()> {
    make_dir(dir, 0o755)?;
    for name in SYSTEM_DIRS {
        // sandguard:allow(path-traversal) -- the joined name is one of our constants, never a user's
        let on_host = host.join(name);
        let Ok(meta) = fs::symlink_metadata(&on_host) else { continue };
        if meta.file_type().is_symlink() {
            // Merged-/usr systems: /bin -> usr/bin. The link stays a link, served by the bind of /usr.
            symlink(fs::read_link(&on_host)?, dir.join(name))?;
        } else if meta.is_dir() {
            make_dir(&dir.join(name), 0o755)?;
        }
    }

    let etc = dir.join("etc");
    make_dir(&etc, 0o755)?;
    for name in ETC_FILES {
        // sandguard:allow(path-traversal) -- the joined name is one of our constants, never a user's
        if let Ok(mut source) = fs::File::open(host.join("etc").join(name)) {
            io::copy(&mut source, &mut new_file(&etc.join(name), 0o644)?)?;
        }
    }
    let passwd = format!(
        "root:x:0:0:root:/root:/bin/sh\nsandbox:x:{SANDBOX_UID}:{SANDBOX_GID}:sandbox:/home/sandbox:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    );
    let group = format!("root:x:0:\nsandbox:x:{SANDBOX_GID}:\nnogroup:x:65534:\n");
    // No name servers: the sandbox has no network unless the policy routes it through a proxy.
    for (name, contents) in [("passwd", passwd), ("group", group), ("resolv.conf", String::new())] {
        io::Write::write_all(&mut new_file(&etc.join(name), 0o644)?, contents.as_bytes())?;
    }
    for name in PER_SANDBOX_FILES {
        new_file(&etc.join(name), 0o644)?;
    }
    for name in ETC_DIRS {
        // sandguard:allow(path-traversal) -- the joined name is one of our constants, never a user's
        if fs::metadata(host.join("etc").join(name)).is_ok_and(|meta| meta.is_dir()) {
            make_dir(&etc.join(name), 0o755)?;
        }
    }

    let dev = dir.join("dev");
    make_dir(&dev, 0o755)?;
    for name in DEVICES {
        // sandguard:allow(path-traversal) -- the joined name is one of our constants, never a user's
        if fs::metadata(host.join("dev").join(name)).is_ok() {
            new_file(&dev.join(name), 0o666)?;
        }
    }
    make_dir(&dev.join("pts"), 0o755)?;
    make_dir(&dev.join("shm"), 0o1777)?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dev.join(link))?;
    }

    make_dir(&dir.join("proc"), 0o555)?;
    make_dir(&dir.join("root"), 0o700)?;
    for writable in WRITABLE_DIRS {
        make_dir(&dir.join(writable.trim_start_matches('/')), 0o755)?;
    }
    Ok(())
}

/// A new directory with exactly `mode`.
fn make_dir(path: &Path, mode: u32) -> io::Result<()> {
    fs::create_dir(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// A new, empty file with exactly `mode`.
fn new_file(path: &Path, mode: u32) -> io::Result<fs::File> {
    let file = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small host: a merged /usr, two /etc files, one /etc directory, two devices.
    fn host() -> tempfile::TempDir {
        let host = tempfile::tempdir().unwrap();
        let path = host.path();
        for dir in ["usr/bin", "etc/ssl", "dev"] {
            fs::create_dir_all(path.join(dir)).unwrap();
        }
        symlink("usr/bin", path.join("bin")).unwrap();
        fs::write(path.join("etc/nsswitch.conf"), "hosts: files\n").unwrap();
        fs::write(path.join("etc/os-release"), "ID=test\n").unwrap();
        fs::write(path.join("etc/shadow"), "root:secret\n").unwrap();
        fs::write(path.join("dev/null"), "").unwrap();
        fs::write(path.join("dev/zero"), "").unwrap();
        host
    }

    fn skeletons(base: &tempfile::TempDir) -> PathBuf {
        base.path().join("sandguard").join("root")
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_skeleton_holds_the_layout_the_copies_and_the_mount_points() {
        let (host, base) = (host(), tempfile::tempdir().unwrap());
        let dir = shared_in(host.path(), &skeletons(&base)).expect("a skeleton");
        assert!(dir.join("usr").is_dir() && !dir.join("lib").exists());
        assert_eq!(fs::read_link(dir.join("bin")).unwrap(), Path::new("usr/bin"));
        assert_eq!(fs::read_to_string(dir.join("etc/nsswitch.conf")).unwrap(), "hosts: files\n");
        assert!(fs::read_to_string(dir.join("etc/passwd")).unwrap().contains("sandbox:x:1000:1000:"));
        assert!(!dir.join("etc/shadow").exists() && !dir.join("etc/mime.types").exists());
        assert!(dir.join("etc/ssl").is_dir() && !dir.join("etc/python3").exists());
        for name in PER_SANDBOX_FILES {
            assert_eq!(fs::read(dir.join("etc").join(name)).unwrap(), b"", "{name} is a placeholder");
        }
        assert!(dir.join("dev/null").is_file() && !dir.join("dev/tty").exists());
        assert_eq!(fs::read_link(dir.join("dev/ptmx")).unwrap(), Path::new("pts/ptmx"));
        let modes = [
            ("", 0o755),
            ("etc/passwd", 0o644),
            ("dev/null", 0o666),
            ("dev/shm", 0o1777),
            ("proc", 0o555),
            ("root", 0o700),
            ("tmp", 0o755),
        ];
        for (path, expected) in modes {
            assert_eq!(mode(&dir.join(path)), expected, "/{path}");
        }
    }

    #[test]
    fn the_same_host_gives_the_same_skeleton_and_a_change_a_new_one() {
        let (host, base) = (host(), tempfile::tempdir().unwrap());
        let first = shared_in(host.path(), &skeletons(&base)).unwrap();
        assert_eq!(shared_in(host.path(), &skeletons(&base)).unwrap(), first);
        fs::write(host.path().join("etc/os-release"), "ID=changed\n").unwrap();
        let second = shared_in(host.path(), &skeletons(&base)).unwrap();
        assert_ne!(second, first);
        assert_eq!(fs::read_to_string(second.join("etc/os-release")).unwrap(), "ID=changed\n");
        assert_eq!(fs::read_to_string(first.join("etc/os-release")).unwrap(), "ID=test\n", "the old one is untouched");
        fs::remove_file(host.path().join("dev/zero")).unwrap();
        let third = shared_in(host.path(), &skeletons(&base)).unwrap();
        assert!(third != second && !third.join("dev/zero").exists());
        // No staging directory is left behind.
        assert_eq!(fs::read_dir(skeletons(&base)).unwrap().count(), 3);
    }

    #[test]
    fn a_staging_directory_left_by_an_ended_process_is_removed_and_a_live_ones_kept() {
        let (host, base) = (host(), tempfile::tempdir().unwrap());
        fs::create_dir_all(skeletons(&base)).unwrap();
        // PIDs above the kernel's maximum (4194304) never name a process.
        let abandoned = skeletons(&base).join(".new-99999999-1");
        let live = skeletons(&base).join(format!(".new-{}-1", std::process::id()));
        for dir in [&abandoned, &live] {
            fs::create_dir(dir).unwrap();
        }
        shared_in(host.path(), &skeletons(&base)).unwrap();
        assert!(!abandoned.exists() && live.exists());
    }

    #[test]
    fn a_directory_others_may_write_is_not_trusted() {
        let (host, base) = (host(), tempfile::tempdir().unwrap());
        let dir = shared_in(host.path(), &skeletons(&base)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        // The skeleton itself: not used, and not replaced (its name is taken).
        assert_eq!(shared_in(host.path(), &skeletons(&base)), None);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        // Or a directory above it.
        fs::set_permissions(skeletons(&base), fs::Permissions::from_mode(0o777)).unwrap();
        fs::write(host.path().join("etc/os-release"), "ID=other\n").unwrap();
        assert_eq!(shared_in(host.path(), &skeletons(&base)), None);
    }

    #[test]
    fn a_symlink_in_place_of_the_skeletons_is_not_followed() {
        let (host, base, elsewhere) = (host(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        fs::create_dir(base.path().join("sandguard")).unwrap();
        symlink(elsewhere.path(), skeletons(&base)).unwrap();
        assert_eq!(shared_in(host.path(), &skeletons(&base)), None);
        assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0, "nothing was written through the link");
    }
}
