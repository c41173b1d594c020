//! `executor_file_ops`: random sequences of the executor's file operations, mixed with symlinks
//! the sandbox's code could plant, never touch anything outside the sandbox root.
//!
//! The layout, created once per process under a temporary directory:
//!
//! ```text
//! base/sentinel          a file whose content, mode and size must never change
//! base/outside/secret    likewise, in a directory whose listing must never change
//! base/root/             the sandbox root given to FileOps::open, emptied before each input
//! ```
//!
//! Each input is a script: operations (`write`, `write_atomic`, `mkdir`, `remove`, `rename`,
//! `read`, `list`, `exists`) on paths built from a small vocabulary that includes `..`, `.` and
//! the names of what lies outside, interleaved with symlinks planted directly in the root (as
//! the sandbox's own processes could) pointing at `..`, `/`, the sentinel's host path and the
//! like. After the script, the sentinel and the outside directory must be exactly as they were,
//! `base` must hold nothing new, and no `read` may ever have returned the sentinel's content.

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sandguard_exec::files::FileOps;

use crate::{Violation, violation};

/// The sentinel's content: what no read inside the sandbox may ever see.
pub const SECRET: &[u8] = b"sandguard-fuzz-sentinel: outside the sandbox root\n";

/// Path components the scripts build paths from.
const VOCABULARY: [&str; 12] =
    ["workspace", "tmp", "a", "b", "l1", "l2", "..", ".", "sentinel", "outside", "secret", ""];

/// Most operations one input runs.
const MAX_OPS: usize = 24;

/// The fixed places of one process's campaign.
pub struct Layout {
    _dir: tempfile::TempDir,
    base: PathBuf,
    /// The permission bits of `sentinel` and `outside/secret` as created.
    modes: [u32; 2],
}

/// The files outside the root, relative to `base`.
const OUTSIDE_FILES: [&str; 2] = ["sentinel", "outside/secret"];

impl Layout {
    /// Creates the layout under a fresh temporary directory.
    ///
    /// # Panics
    /// When the temporary directory cannot be set up.
    pub fn new() -> Self {
        // tmpfs when there is one: the script's writes and the reset between inputs stay in memory.
        let shm = Path::new("/dev/shm");
        let parent = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        let dir =
            tempfile::Builder::new().prefix("sandguard-fuzz-files").tempdir_in(parent).expect("a temporary directory");
        let base = dir.path().to_path_buf();
        fs::write(base.join("sentinel"), SECRET).expect("the sentinel");
        fs::create_dir(base.join("outside")).expect("the outside directory");
        fs::write(base.join("outside/secret"), SECRET).expect("the outside secret");
        // sandguard:allow(path-traversal) -- names from the constant OUTSIDE_FILES
        let modes = OUTSIDE_FILES.map(|file| fs::metadata(base.join(file)).map_or(0, |m| m.mode() & 0o7777));
        let layout = Self { _dir: dir, base, modes };
        layout.reset_root();
        layout
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    /// Symlink targets a sandbox could plant: relative and absolute escapes, loops, and the
    /// sentinel's real host path.
    fn link_targets(&self) -> Vec<String> {
        let base = self.base.display().to_string();
        vec![
            "..".into(),
            "../sentinel".into(),
            "../outside".into(),
            "/".into(),
            "/..".into(),
            "workspace/../..".into(),
            "l1".into(),
            "/workspace".into(),
            base.clone(),
            format!("{base}/sentinel"),
            format!("{base}/outside"),
        ]
    }

    /// Empties the root: `remove_dir_all` never follows symlinks, so this cannot reach outside.
    fn reset_root(&self) {
        let root = self.root();
        let _ = fs::remove_dir_all(&root);
        fs::create_dir(&root).expect("the sandbox root");
        fs::create_dir(root.join("workspace")).expect("/workspace");
        fs::create_dir(root.join("tmp")).expect("/tmp");
    }

    /// The invariant: everything outside the root is exactly as created.
    pub fn check_outside(&self) -> Result<(), Violation> {
        for (file, mode) in OUTSIDE_FILES.iter().zip(self.modes) {
            let path = self.base.join(file);
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(error) => violation!("{file} outside the root is gone: {error}"),
            };
            if !meta.file_type().is_file() || meta.mode() & 0o7777 != mode {
                violation!("{file} outside the root changed type or mode: {:o}", meta.mode());
            }
            if fs::read(&path).ok().as_deref() != Some(SECRET) {
                violation!("{file} outside the root was written");
            }
        }
        let mut names: Vec<String> = names_in(&self.base);
        names.sort();
        if names != ["outside", "root", "sentinel"] {
            violation!("the directory around the root changed: {names:?}");
        }
        if names_in(&self.base.join("outside")) != ["secret"] {
            violation!("the outside directory changed: {:?}", names_in(&self.base.join("outside")));
        }
        Ok(())
    }
}

impl Default for Layout {
    fn default() -> Self {
        Self::new()
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Reads a script byte by byte; runs out as zeros.
struct Script<'a>(std::slice::Iter<'a, u8>);

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        self.0.next().copied().unwrap_or(0)
    }

    /// `/` and one to three components from the vocabulary.
    fn path(&mut self) -> PathBuf {
        let n = 1 + usize::from(self.byte() % 3);
        let mut path = String::new();
        for _ in 0..n {
            path.push('/');
            path.push_str(VOCABULARY[usize::from(self.byte()) % VOCABULARY.len()]);
        }
        PathBuf::from(path)
    }
}

/// Runs one script in a freshly emptied root and checks the invariant.
pub fn check_with(layout: &Layout, data: &[u8]) -> Result<(), Violation> {
    layout.reset_root();
    let root = layout.root();
    let uid = fs::metadata(&root).map(|m| m.uid()).unwrap_or(0);
    let gid = fs::metadata(&root).map(|m| m.gid()).unwrap_or(0);
    let files = match FileOps::open(&root, uid, gid) {
        Ok(files) => files,
        Err(error) => violation!("FileOps::open on a plain directory failed: {error}"),
    };
    let targets = layout.link_targets();
    let mut script = Script(data.iter());
    let mut log = Vec::new();
    for _ in 0..MAX_OPS {
        if script.0.len() == 0 {
            break;
        }
        let op = script.byte();
        let recursive = op & 0x80 != 0;
        let step = match op % 9 {
            0 => {
                let path = script.path();
                let data = vec![b'x'; usize::from(script.byte() % 8)];
                format!("write {path:?}: {:?}", files.write(&path, &data, Some(0o600)).map_err(|e| e.code()))
            }
            1 => {
                let path = script.path();
                format!("write_atomic {path:?}: {:?}", files.write_atomic(&path, b"y", None).map_err(|e| e.code()))
            }
            2 => {
                let path = script.path();
                format!("mkdir {path:?}: {:?}", files.mkdir(&path, recursive, Some(0o777)).map_err(|e| e.code()))
            }
            3 => {
                let path = script.path();
                format!("remove {path:?}: {:?}", files.remove(&path, recursive).map_err(|e| e.code()))
            }
            4 => {
                let (from, to) = (script.path(), script.path());
                format!("rename {from:?} {to:?}: {:?}", files.rename(&from, &to).map_err(|e| e.code()))
            }
            5 => {
                let path = script.path();
                let read = files.read(&path, 1 << 16);
                if read.as_deref().is_ok_and(|content| content.windows(SECRET.len()).any(|w| w == SECRET)) {
                    violation!("read {path:?} returned the sentinel's content; steps: {log:#?}");
                }
                format!("read {path:?}: {:?}", read.map(|c| c.len()).map_err(|e| e.code()))
            }
            6 => {
                let path = script.path();
                format!("list {path:?}: {:?}", files.list(&path, recursive).map(|e| e.len()).map_err(|e| e.code()))
            }
            7 => {
                let path = script.path();
                format!("exists {path:?}: {:?}", files.exists(&path).map_err(|e| e.code()))
            }
            _ => {
                // Planted by the sandbox's own code: directly in the root, which the harness
                // created and nothing in the script can replace.
                let name = ["l1", "l2"][usize::from(script.byte() % 2)];
                let target = &targets[usize::from(script.byte()) % targets.len()];
                let planted = symlink(target, root.join(name)).is_ok();
                format!("plant /{name} -> {target}: {planted}")
            }
        };
        log.push(step);
    }
    layout.check_outside().map_err(|violation| Violation(format!("{violation}; steps: {log:#?}")))
}

/// [`check_with`] on the process's layout.
pub fn check(data: &[u8]) -> Result<(), Violation> {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    check_with(LAYOUT.get_or_init(Layout::new), data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_escapes_stay_inside() {
        let layout = Layout::new();
        // plant /l1 -> "..", write /l1/sentinel; plant /l2 -> host path of the sentinel, read /l2.
        check_with(&layout, &[8, 0, 0, 0, 1, 0, 8, 3, 0, 9, 5, 0, 4]).unwrap();
        check_with(&layout, &[8, 1, 9, 5, 0, 5, 3, 0x80, 0, 4]).unwrap();
    }

    #[test]
    fn the_oracle_fails_when_the_outside_changes() {
        let layout = Layout::new();
        layout.check_outside().unwrap();
        fs::write(layout.base.join("sentinel"), b"changed").unwrap();
        assert!(layout.check_outside().is_err());
        fs::write(layout.base.join("sentinel"), SECRET).unwrap();
        fs::write(layout.base.join("outside/new"), b"").unwrap();
        assert!(layout.check_outside().is_err());
    }
}
