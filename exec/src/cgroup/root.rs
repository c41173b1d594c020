//! Where the cgroup hierarchies are mounted and where this process sits in them, read from
//! `/proc/self/mountinfo` and `/proc/self/cgroup`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use super::{CgroupError, CgroupVersion, Controller};

const MOUNTINFO: &str = "/proc/self/mountinfo";
const PROC_SELF_CGROUP: &str = "/proc/self/cgroup";

/// The cgroup file system(s) a [`Cgroup`](super::Cgroup) is created in: on cgroup v1 one mounted
/// hierarchy per controller, on cgroup v2 the single unified hierarchy; and, for each, the cgroup this
/// process runs in, under which new cgroups go unless a parent is given.
///
/// [`CgroupRoot::detect`] is what [`Cgroup::create`](super::Cgroup::create) uses; [`CgroupRoot::v2`] names
/// a cgroup2 mount explicitly (a tree mounted elsewhere, or a test's fake tree).
///
/// The version is chosen the way the kernel binds controllers: a controller lives in exactly one
/// hierarchy, so if any cgroup v1 hierarchy holds `memory`, `pids` or `cpu`, the layout is v1 (a
/// "hybrid" host whose cgroup2 mount has no controllers); otherwise it is the cgroup2 mount.
///
/// ```
/// use sandguard_exec::cgroup::{CgroupRoot, CgroupVersion};
///
/// let mountinfo = b"30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
/// let root = CgroupRoot::parse(mountinfo, b"0::/user.slice/app.service\n")?;
/// assert_eq!(root.version(), CgroupVersion::V2);
/// # Ok::<(), sandguard_exec::cgroup::CgroupError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CgroupRoot {
    pub(super) layout: Layout,
    /// Plain files stand in for the kernel's (tests of a fake tree): writes create them and removal
    /// deletes them.
    pub(super) fake_files: bool,
}

/// The hierarchies sandguard uses.
#[derive(Debug, Clone)]
pub(super) enum Layout {
    /// Each controller that is mounted, with its hierarchy (several may share one).
    V1(Vec<(Controller, Hierarchy)>),
    /// The unified hierarchy.
    V2(Hierarchy),
}

/// One mount of a cgroup hierarchy, and this process's cgroup in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Hierarchy {
    /// Where it is mounted.
    pub(super) mount_point: PathBuf,
    /// The cgroup (absolute within the hierarchy) that appears at `mount_point`; `/` unless a subtree
    /// was mounted.
    pub(super) mount_root: PathBuf,
    /// This process's cgroup (absolute within the hierarchy), when `/proc/self/cgroup` names one.
    pub(super) own: Option<PathBuf>,
}

impl Hierarchy {
    /// The directory of `cgroup` (absolute within the hierarchy), or `None` when it is not under the
    /// mounted subtree or is not a plain path.
    pub(super) fn dir_of(&self, cgroup: &Path) -> Option<PathBuf> {
        let relative = cgroup.strip_prefix(&self.mount_root).ok()?;
        let plain = relative.components().all(|c| matches!(c, Component::Normal(_)));
        plain.then(|| self.mount_point.join(relative))
    }
}

impl CgroupRoot {
    /// The hierarchies mounted on this host, and this process's cgroups in them, from
    /// `/proc/self/mountinfo` and `/proc/self/cgroup`.
    ///
    /// # Errors
    /// [`CgroupError::Io`] when a file cannot be read, [`CgroupError::NotMounted`] when no usable
    /// hierarchy is mounted.
    pub fn detect() -> Result<Self, CgroupError> {
        let read = |path: &'static str| {
            std::fs::read(path).map_err(|source| CgroupError::Io { op: "read", path: PathBuf::from(path), source })
        };
        Self::parse(&read(MOUNTINFO)?, &read(PROC_SELF_CGROUP)?)
    }

    /// The same as [`CgroupRoot::detect`], from the contents of `/proc/self/mountinfo` and
    /// `/proc/self/cgroup`. Malformed lines are skipped.
    ///
    /// # Errors
    /// [`CgroupError::NotMounted`] when no usable hierarchy is mounted.
    pub fn parse(mountinfo: &[u8], proc_self_cgroup: &[u8]) -> Result<Self, CgroupError> {
        let mounts = parse_mountinfo(mountinfo);
        let memberships = parse_proc_cgroup(proc_self_cgroup);
        let is_v1_with = |m: &Mount, c: Controller| m.fstype == b"cgroup" && m.has_option(c.name());

        if mounts.iter().any(|m| Controller::REQUIRED.iter().any(|&c| is_v1_with(m, c))) {
            let mut located = Vec::new();
            for c in Controller::ALL {
                let own = memberships.iter().find(|m| m.hierarchy_id != b"0" && m.has_controller(c.name()));
                let own = own.map(|m| m.path.clone());
                let candidates = mounts.iter().filter(|m| is_v1_with(m, c));
                if let Some(hierarchy) = choose(candidates, own) {
                    located.push((c, hierarchy));
                }
            }
            return Ok(Self { layout: Layout::V1(located), fake_files: false });
        }

        let own = memberships.iter().find(|m| m.hierarchy_id == b"0").map(|m| m.path.clone());
        match choose(mounts.iter().filter(|m| m.fstype == b"cgroup2"), own) {
            Some(hierarchy) => Ok(Self { layout: Layout::V2(hierarchy), fake_files: false }),
            None => Err(CgroupError::NotMounted),
        }
    }

    /// The cgroup2 hierarchy mounted at `mount_point`. There is no notion of this process's own
    /// cgroup here: a [`Cgroup`](super::Cgroup) created without a parent goes directly under
    /// `mount_point`.
    pub fn v2(mount_point: impl Into<PathBuf>) -> Self {
        let hierarchy = Hierarchy {
            mount_point: mount_point.into(),
            mount_root: PathBuf::from("/"),
            own: Some(PathBuf::from("/")),
        };
        Self { layout: Layout::V2(hierarchy), fake_files: false }
    }

    /// Which cgroup version this layout is.
    pub fn version(&self) -> CgroupVersion {
        match self.layout {
            Layout::V1(_) => CgroupVersion::V1,
            Layout::V2(_) => CgroupVersion::V2,
        }
    }

    /// Plain files stand in for the kernel's interface files (tests of a fake tree).
    #[cfg(test)]
    pub(super) fn with_fake_files(mut self) -> Self {
        self.fake_files = true;
        self
    }
}

/// The first mount through which this process's cgroup is reachable, or else the first mount.
fn choose<'a>(mut candidates: impl Iterator<Item = &'a Mount> + Clone, own: Option<PathBuf>) -> Option<Hierarchy> {
    let hierarchy =
        |m: &Mount| Hierarchy { mount_point: m.mount_point.clone(), mount_root: m.root.clone(), own: own.clone() };
    let reachable = candidates.clone().map(&hierarchy).find(|h| h.own.as_deref().and_then(|o| h.dir_of(o)).is_some());
    reachable.or_else(|| candidates.next().map(&hierarchy))
}

/// One line of `/proc/self/mountinfo`, for cgroup file systems only.
#[derive(Debug, PartialEq, Eq)]
struct Mount {
    root: PathBuf,
    mount_point: PathBuf,
    fstype: Vec<u8>,
    super_options: Vec<u8>,
}

impl Mount {
    fn has_option(&self, option: &str) -> bool {
        self.super_options.split(|&b| b == b',').any(|o| o == option.as_bytes())
    }
}

/// Parses the cgroup and cgroup2 lines of `/proc/self/mountinfo` (proc(5)):
/// `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`,
/// with space, tab, newline and backslash in paths escaped as `\ooo`.
fn parse_mountinfo(text: &[u8]) -> Vec<Mount> {
    let mut mounts = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let Some(separator) = fields.iter().skip(6).position(|&f| f == b"-").map(|p| p + 6) else { continue };
        let field = |i: usize| fields.get(i).copied();
        let (Some(root), Some(mount_point), Some(fstype)) = (field(3), field(4), field(separator + 1)) else {
            continue;
        };
        if fstype != b"cgroup" && fstype != b"cgroup2" {
            continue;
        }
        mounts.push(Mount {
            root: unescape(root),
            mount_point: unescape(mount_point),
            fstype: fstype.to_vec(),
            super_options: field(separator + 3).unwrap_or_default().to_vec(),
        });
    }
    mounts
}

/// Undoes the kernel's `\ooo` octal escapes in a mountinfo path.
fn unescape(field: &[u8]) -> PathBuf {
    let mut out = Vec::with_capacity(field.len());
    let mut rest = field;
    while let Some((&first, tail)) = rest.split_first() {
        if let [b'\\', a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7', after @ ..] = rest {
            out.push(((a - b'0') << 6) | ((b - b'0') << 3) | (c - b'0'));
            rest = after;
        } else {
            out.push(first);
            rest = tail;
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

/// One line of `/proc/self/cgroup`: `HIERARCHY_ID:CONTROLLERS:PATH` (v2: `0::PATH`).
#[derive(Debug, PartialEq, Eq)]
struct Membership {
    hierarchy_id: Vec<u8>,
    controllers: Vec<u8>,
    path: PathBuf,
}

impl Membership {
    fn has_controller(&self, controller: &str) -> bool {
        self.controllers.split(|&b| b == b',').any(|c| c == controller.as_bytes())
    }
}

/// Parses `/proc/self/cgroup`; the path is everything after the second colon (it may hold colons).
fn parse_proc_cgroup(text: &[u8]) -> Vec<Membership> {
    let mut memberships = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let mut parts = line.splitn(3, |&b| b == b':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        if !path.starts_with(b"/") {
            continue;
        }
        memberships.push(Membership {
            hierarchy_id: id.to_vec(),
            controllers: controllers.to_vec(),
            path: PathBuf::from(OsString::from_vec(path.to_vec())),
        });
    }
    memberships
}

#[cfg(test)]
mod tests {
    use super::*;

    const THIS_HOST_MOUNTINFO: &[u8] = b"\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const THIS_HOST_CGROUP: &[u8] = b"\
9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/process_api/6a0c
2:cpuacct:/
1:cpu:/
0::/
";

    fn v1(root: &CgroupRoot) -> &[(Controller, Hierarchy)] {
        match &root.layout {
            Layout::V1(located) => located,
            Layout::V2(_) => panic!("expected v1, got {root:?}"),
        }
    }

    fn v2(root: &CgroupRoot) -> &Hierarchy {
        match &root.layout {
            Layout::V2(hierarchy) => hierarchy,
            Layout::V1(_) => panic!("expected v2, got {root:?}"),
        }
    }

    #[test]
    fn hybrid_host_with_separate_cpu_and_cpuacct_is_v1() {
        let root = CgroupRoot::parse(THIS_HOST_MOUNTINFO, THIS_HOST_CGROUP).unwrap();
        assert_eq!(root.version(), CgroupVersion::V1);
        let located = v1(&root);
        let names: Vec<_> = located.iter().map(|(c, _)| c.name()).collect();
        assert_eq!(names, ["memory", "pids", "cpu", "cpuacct", "freezer"]);
        let (_, memory) = &located[0];
        assert_eq!(memory.mount_point, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(memory.own.as_deref(), Some(Path::new("/process_api/6a0c")));
        assert_eq!(
            memory.dir_of(memory.own.as_deref().unwrap()),
            Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/6a0c"))
        );
        assert_eq!(located[1].1.dir_of(Path::new("/")), Some(PathBuf::from("/sys/fs/cgroup/pids")));
    }

    #[test]
    fn comounted_controllers_share_one_hierarchy() {
        let mountinfo = b"25 20 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                          26 20 0:23 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                          27 20 0:24 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        let cgroup = b"3:cpu,cpuacct:/a\n2:memory:/a\n1:pids:/a\n";
        let root = CgroupRoot::parse(mountinfo, cgroup).unwrap();
        let located = v1(&root);
        let cpu = &located.iter().find(|(c, _)| *c == Controller::Cpu).unwrap().1;
        let cpuacct = &located.iter().find(|(c, _)| *c == Controller::Cpuacct).unwrap().1;
        assert_eq!(cpu, cpuacct);
        assert_eq!(cpu.dir_of(Path::new("/a")), Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a")));
        assert!(located.iter().all(|(c, _)| *c != Controller::Freezer));
    }

    #[test]
    fn unified_host_is_v2() {
        let mountinfo = b"30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        let root = CgroupRoot::parse(mountinfo, b"0::/system.slice/sandguard.service\n").unwrap();
        let h = v2(&root);
        assert_eq!(h.mount_point, Path::new("/sys/fs/cgroup"));
        assert_eq!(
            h.dir_of(h.own.as_deref().unwrap()),
            Some(PathBuf::from("/sys/fs/cgroup/system.slice/sandguard.service"))
        );
    }

    #[test]
    fn nothing_mounted_is_not_mounted() {
        let mountinfo = b"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n";
        assert!(matches!(CgroupRoot::parse(mountinfo, b"1:name=systemd:/\n"), Err(CgroupError::NotMounted)));
        assert!(matches!(CgroupRoot::parse(b"", b""), Err(CgroupError::NotMounted)));
    }

    #[test]
    fn escaped_paths_and_optional_fields() {
        let mountinfo = b"30 23 0:26 /sub\\040dir /mnt/my\\040cgroup\\134x rw shared:4 master:1 - cgroup2 none rw\n";
        let root = CgroupRoot::parse(mountinfo, b"0::/sub dir/svc\n").unwrap();
        let h = v2(&root);
        assert_eq!(h.mount_point, Path::new("/mnt/my cgroup\\x"));
        assert_eq!(h.mount_root, Path::new("/sub dir"));
        assert_eq!(h.dir_of(Path::new("/sub dir/svc")), Some(PathBuf::from("/mnt/my cgroup\\x/svc")));
    }

    #[test]
    fn cgroups_outside_the_mounted_subtree_are_unreachable() {
        let mountinfo = b"30 23 0:26 /container /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let root = CgroupRoot::parse(mountinfo, b"0::/other\n").unwrap();
        let h = v2(&root);
        assert_eq!(h.dir_of(Path::new("/other")), None);
        assert_eq!(h.dir_of(Path::new("/containerx")), None);
        assert_eq!(h.dir_of(Path::new("/container/../other")), None);
        assert_eq!(h.dir_of(Path::new("/container/a")), Some(PathBuf::from("/sys/fs/cgroup/a")));
    }

    #[test]
    fn prefers_the_mount_through_which_this_process_is_reachable() {
        let mountinfo = b"30 23 0:26 /elsewhere /mnt/a rw - cgroup2 cgroup2 rw\n\
                          31 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let root = CgroupRoot::parse(mountinfo, b"0::/svc\n").unwrap();
        assert_eq!(v2(&root).mount_point, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn odd_input_never_panics() {
        let odd: &[&[u8]] = &[
            b"",
            b"\n\n",
            b"-",
            b"1 2 3 4 5 6 -",
            b"1 2 3 4 5 6 - cgroup",
            b"1 2 3 4 5 6 - cgroup2",
            b"1 2 3 \\ \\0 6 - cgroup2 x y",
            b"1 2 3 \\7 \\777\\400 6 - cgroup2 x y z w",
            b"\xff\xfe 1 2 - cgroup cgroup rw,memory,pids,cpu",
            b"1 2 3 / /x o - cgroup s memory,pids,cpu",
        ];
        let cgroups: &[&[u8]] = &[b"", b"::", b"0::", b"0::/", b"x:y", b"1:memory:rel", b"0::/a:b:c\n:::"];
        for m in odd {
            for c in cgroups {
                let _ = CgroupRoot::parse(m, c);
            }
        }
        let root = CgroupRoot::parse(b"1 2 3 / /x o - cgroup s memory,pids,cpu", b"0::/a:b").unwrap();
        assert!(v1(&root).iter().all(|(_, h)| h.own.is_none()));
        let root = CgroupRoot::parse(b"1 2 3 / /x o - cgroup2 s rw", b"0::/a:b:c").unwrap();
        assert_eq!(v2(&root).own.as_deref(), Some(Path::new("/a:b:c")));
    }
}
