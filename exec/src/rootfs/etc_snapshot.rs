//! The read-only snapshots of a sandbox's `/etc` that the host keeps under `/run/sandguard/etc`.
//!
//! A sandbox's `/etc` is fifteen small files: copies of the host's [`ETC_FILES`] and the
//! sandbox's own `passwd`, `group`, `resolv.conf`, `hosts` and `hostname`. Writing them into
//! every sandbox's root took 0.3–0.4 ms of its start (a file on tmpfs costs about 20 µs on the
//! machine measured). Instead the host writes them once, into a directory named by a hash of the
//! host files' metadata and of what sandguard writes, and every sandbox binds that directory
//! read-only, then binds its own `hosts` and `hostname` (which name it) over the snapshot's
//! placeholders. A change to a host file (its size, times or inode) names a new snapshot; a
//! running sandbox keeps the one it started with, as it kept its copies before. sandguard never
//! removes a snapshot, since a running sandbox may use it: each is a few hundred KiB, on `/run`,
//! gone at reboot.
//!
//! The snapshot directory and the two above it must belong to this process's user and be
//! writable by nobody else. When they are not, or cannot be made (no writable `/run`), there is no
//! snapshot, and the init writes `/etc` into the sandbox's root itself.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{ETC_DIRS, ETC_FILES, SANDBOX_GID, SANDBOX_UID, sandbox_group, sandbox_passwd};

/// Where the host keeps the snapshots.
pub(crate) const SNAPSHOTS: &str = "/run/sandguard/etc";
/// Files that name the sandbox: empty placeholders in a snapshot, each sandbox binds its own.
pub(crate) const PER_SANDBOX_FILES: [&str; 2] = ["hostname", "hosts"];
/// Bumped whenever what a snapshot holds changes, so an old one is never taken for a new one.
const FORMAT: &str = "sandguard-etc-v1";

/// The snapshot for a sandbox started now, made if it does not exist yet; `None` when it cannot
/// be made or trusted.
pub(crate) fn snapshot() -> Option<PathBuf> {
    snapshot_in(Path::new("/etc"), Path::new(SNAPSHOTS))
}

/// [`snapshot`] of the files in `host_etc`, kept under `snapshots`.
pub(crate) fn snapshot_in(host_etc: &Path, snapshots: &Path) -> Option<PathBuf> {
    let dir = snapshots.join(key(host_etc));
    if !trusted(&dir) {
        let parent = snapshots.parent()?;
        for level in [parent, snapshots] {
            if !trusted(level) {
                make_private_dir(level).ok()?;
            }
        }
        if !trusted(parent) || !trusted(snapshots) {
            return None;
        }
        build(host_etc, snapshots, &dir);
    }
    trusted(&dir).then_some(dir)
}

/// Whether `dir` is a directory (not a link to one) of this process's user that nobody else
/// may write.
fn trusted(dir: &Path) -> bool {
    fs::symlink_metadata(dir)
        .is_ok_and(|meta| meta.is_dir() && meta.uid() == nix::unistd::geteuid().as_raw() && meta.mode() & 0o022 == 0)
}

/// Creates `dir` (mode 0755 whatever the umask), or leaves an existing one for [`trusted`] to judge.
fn make_private_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(0o755)),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// The snapshot's name: an FNV-1a hash of everything its contents depend on.
fn key(host_etc: &Path) -> String {
    let mut described = format!("{FORMAT} {SANDBOX_UID} {SANDBOX_GID}\n");
    for name in ETC_FILES {
        // Following links, as the copy does (localtime -> /usr/share/zoneinfo/...).
        // sandguard:allow(path-traversal) -- the joined name is one of our constants, never a user's
        match fs::metadata(host_etc.join(name)) {
            Ok(meta) => described.push_str(&format!(
                "{name} {} {} {} {}.{} {}.{} {:o}\n",
                meta.dev(),
                meta.ino(),
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec(),
                meta.mode()
            )),
            Err(_) => described.push_str(&format!("{name} -\n")),
        }
    }
    for name in ETC_DIRS {
        // sandguard:allow(path-traversal) -- the joined name is one of our constants, never a user's
        let present = fs::metadata(host_etc.join(name)).is_ok_and(|meta| meta.is_dir());
        described.push_str(&format!("{name}/ {present}\n"));
    }
    let hash = described
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

/// Writes a snapshot into a staging directory and renames it to `dir`. Whoever renames first
/// wins; a loser's staging directory is removed, and so is one that could not be filled.
fn build(host_etc: &Path, snapshots: &Path, dir: &Path) {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let staging = snapshots.join(format!(".new-{}-{nanos}", std::process::id()));
    let filled = fs::create_dir(&staging).and_then(|()| fill(host_etc, &staging));
    if filled.is_err() || fs::rename(&staging, dir).is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
}

fn fill(host_etc: &Path, staging: &Path) -> io::Result<()> {
    for name in ETC_FILES {
        // sandguard:allow(path-traversal) -- the joined name is a constant, never a user's
        if let Ok(mut source) = fs::File::open(host_etc.join(name)) {
            let mut copy = new_file(&staging.join(name))?;
            io::copy(&mut source, &mut copy)?;
        }
    }
    for (name, contents) in [("passwd", sandbox_passwd()), ("group", sandbox_group()), ("resolv.conf", String::new())] {
        io::Write::write_all(&mut new_file(&staging.join(name))?, contents.as_bytes())?;
    }
    for name in PER_SANDBOX_FILES {
        new_file(&staging.join(name))?;
    }
    for name in ETC_DIRS {
        // sandguard:allow(path-traversal) -- the joined name is one of our constants, never a user's
        if fs::metadata(host_etc.join(name)).is_ok_and(|meta| meta.is_dir()) {
            let mount_point = staging.join(name);
            fs::create_dir(&mount_point)?;
            fs::set_permissions(&mount_point, fs::Permissions::from_mode(0o755))?;
        }
    }
    fs::set_permissions(staging, fs::Permissions::from_mode(0o755))
}

/// A new file readable by everyone (mode 0644 whatever the umask).
fn new_file(path: &Path) -> io::Result<fs::File> {
    let file = fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(path)?;
    file.set_permissions(fs::Permissions::from_mode(0o644))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_etc() -> tempfile::TempDir {
        let etc = tempfile::tempdir().unwrap();
        fs::write(etc.path().join("nsswitch.conf"), "hosts: files\n").unwrap();
        fs::write(etc.path().join("os-release"), "ID=test\n").unwrap();
        fs::create_dir(etc.path().join("ssl")).unwrap();
        etc
    }

    fn snapshots(base: &tempfile::TempDir) -> PathBuf {
        base.path().join("sandguard").join("etc")
    }

    #[test]
    fn a_snapshot_holds_the_copies_the_sandbox_files_and_the_mount_points() {
        let (etc, base) = (host_etc(), tempfile::tempdir().unwrap());
        let dir = snapshot_in(etc.path(), &snapshots(&base)).expect("a snapshot");
        assert_eq!(fs::read_to_string(dir.join("nsswitch.conf")).unwrap(), "hosts: files\n");
        assert_eq!(fs::read_to_string(dir.join("passwd")).unwrap(), sandbox_passwd());
        assert!(!dir.join("shadow").exists() && !dir.join("mime.types").exists());
        assert!(dir.join("ssl").is_dir() && !dir.join("python3").exists());
        for name in PER_SANDBOX_FILES {
            assert_eq!(fs::read(dir.join(name)).unwrap(), b"", "{name} is a placeholder");
        }
        for entry in fs::read_dir(&dir).unwrap() {
            let mode = entry.unwrap().metadata().unwrap().mode() & 0o777;
            assert!(mode == 0o644 || mode == 0o755, "{mode:o}");
        }
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o755);
    }

    #[test]
    fn the_same_host_files_give_the_same_snapshot_and_a_change_a_new_one() {
        let (etc, base) = (host_etc(), tempfile::tempdir().unwrap());
        let first = snapshot_in(etc.path(), &snapshots(&base)).unwrap();
        assert_eq!(snapshot_in(etc.path(), &snapshots(&base)).unwrap(), first);
        fs::write(etc.path().join("os-release"), "ID=changed\n").unwrap();
        let second = snapshot_in(etc.path(), &snapshots(&base)).unwrap();
        assert_ne!(second, first);
        assert_eq!(fs::read_to_string(second.join("os-release")).unwrap(), "ID=changed\n");
        assert_eq!(fs::read_to_string(first.join("os-release")).unwrap(), "ID=test\n", "the old one is untouched");
        // No staging directory is left behind.
        let names: Vec<_> = fs::read_dir(snapshots(&base)).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_directory_others_may_write_is_not_trusted() {
        let (etc, base) = (host_etc(), tempfile::tempdir().unwrap());
        let dir = snapshot_in(etc.path(), &snapshots(&base)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        // The snapshot itself: not used, and not rebuilt over (its name is taken).
        assert_eq!(snapshot_in(etc.path(), &snapshots(&base)), None);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        // Or a directory above it.
        fs::set_permissions(snapshots(&base), fs::Permissions::from_mode(0o777)).unwrap();
        fs::write(etc.path().join("os-release"), "ID=other\n").unwrap();
        assert_eq!(snapshot_in(etc.path(), &snapshots(&base)), None);
    }

    #[test]
    fn a_symlink_in_place_of_the_snapshots_is_not_followed() {
        let (etc, base, elsewhere) = (host_etc(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        fs::create_dir(base.path().join("sandguard")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), snapshots(&base)).unwrap();
        assert_eq!(snapshot_in(etc.path(), &snapshots(&base)), None);
        assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0, "nothing was written through the link");
    }
}
