//! Cgroups v1 and v2: create a sandbox's cgroup with its limits, move processes in, read usage, kill
//! everything inside and remove it, leaving nothing behind.
//!
//! One small layer over the cgroup file system, for both versions:
//!
//! | | cgroup v1 (one hierarchy per controller) | cgroup v2 (one unified hierarchy) |
//! |---|---|---|
//! | memory | `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes` (when swap is accounted) | `memory.max`, `memory.swap.max = 0`, `memory.oom_group = 1` |
//! | pids | `pids.max` | `pids.max` |
//! | cpu | `cpu.cfs_quota_us` over `cpu.cfs_period_us = 100000` | `cpu.max = "<quota> 100000"` |
//! | kill | freezer `FROZEN`, SIGKILL each process, `THAWED`, until empty | `cgroup.kill`, until empty |
//!
//! A cgroup is created under the cgroup this process runs in (on v1, per controller), or under a
//! configured parent, and never above or outside the mounted hierarchy. It fails closed: without
//! `memory`, `pids` or `cpu` creation is refused with [`CgroupError::MissingController`] rather than
//! running a sandbox without that limit. On v1 the `cpuacct` hierarchy (for CPU usage) and `freezer`
//! (for an atomic kill) are used when they are mounted.
//!
//! ```no_run
//! use sandguard_exec::cgroup::{Cgroup, CgroupLimits};
//!
//! let limits = CgroupLimits { memory_bytes: 256 << 20, pids: 64, cpus: 1.0 };
//! let cgroup = Cgroup::create("sandbox-1", None, &limits)?;
//! let child = std::process::Command::new("sleep").arg("1").spawn()?;
//! cgroup.add_pid(i32::try_from(child.id())?)?;
//! println!("{:?}", cgroup.usage()?);
//! cgroup.remove()?; // kills the child, then removes the cgroup's directories
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod root;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Component, Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub use root::CgroupRoot;
use root::{Hierarchy, Layout};

/// How long [`Cgroup::kill_all`] keeps killing before it reports [`CgroupError::Busy`].
const KILL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long removing a directory is retried while the kernel still reports it busy.
const RMDIR_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a v1 freezer is given to reach `FROZEN` before the kill goes ahead anyway.
const FREEZE_TIMEOUT: Duration = Duration::from_millis(100);
/// The CFS period, in microseconds, that CPU quotas are expressed over.
const CPU_PERIOD_US: u64 = 100_000;
/// The smallest CFS quota the kernel accepts, in microseconds.
const CPU_MIN_QUOTA_US: u64 = 1_000;
/// The most cores a limit may name; keeps the quota arithmetic far from overflow.
const MAX_CPUS: f64 = 1_000_000.0;
/// How deep [`Cgroup::kill_all`] and [`Cgroup::remove`] descend into sub-cgroups.
const MAX_DEPTH: usize = 32;

/// Why a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgroupError {
    /// No cgroup hierarchy that sandguard can use is mounted.
    #[error(
        "no cgroup hierarchy is mounted: /proc/self/mountinfo lists neither a cgroup v1 hierarchy with memory, \
         pids or cpu nor a cgroup2 file system; sandboxes refuse to start without resource limits"
    )]
    NotMounted,
    /// A controller that every sandbox needs is not available.
    #[error(
        "cgroup {version} controller `{controller}` is not available (looked in {looked_in}); sandboxes need \
         memory, pids and cpu and refuse to start without one of them"
    )]
    MissingController {
        /// `memory`, `pids` or `cpu`.
        controller: &'static str,
        /// The cgroup version of the host.
        version: CgroupVersion,
        /// Where the controller was looked for: `/proc/self/mountinfo` (v1) or a `cgroup.controllers`
        /// file (v2).
        looked_in: PathBuf,
    },
    /// This process's cgroup is not inside the part of the hierarchy that is mounted (e.g. another
    /// cgroup namespace), so there is nowhere to create a cgroup under it.
    #[error(
        "this process's {controller} cgroup {cgroup:?} is not inside the hierarchy mounted at {mount_point}; \
         configure an explicit parent cgroup"
    )]
    NotReachable {
        /// The controller (v1) or `cgroup2`.
        controller: &'static str,
        /// This process's cgroup as `/proc/self/cgroup` names it, if it names one.
        cgroup: Option<PathBuf>,
        /// Where the hierarchy is mounted.
        mount_point: PathBuf,
    },
    /// The name of a new cgroup is not a single plain path component.
    #[error(
        "invalid cgroup name {name:?}: {reason}; a name is one path component: not empty, `.` or `..`, \
         without `/`, NUL or control characters, at most 255 bytes"
    )]
    InvalidName {
        /// The refused name (cut to 64 characters).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The configured parent is not a plain path inside the hierarchy.
    #[error(
        "invalid parent cgroup {parent:?}: {reason}; a parent is a path from the hierarchy's root such as \
         `/sandguard`, made of plain components only"
    )]
    InvalidParent {
        /// The refused parent.
        parent: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The parent cgroup's directory does not exist.
    #[error("parent cgroup directory {path} does not exist")]
    ParentNotFound {
        /// The missing directory.
        path: PathBuf,
    },
    /// A limit cannot be enforced.
    #[error("invalid {limit} limit {value}: {allowed}")]
    InvalidLimit {
        /// `memory`, `pids` or `cpus`.
        limit: &'static str,
        /// The refused value.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
    /// A process id cannot be moved into a cgroup.
    #[error("cannot add process {pid} to a cgroup: {reason}")]
    InvalidPid {
        /// The refused pid.
        pid: i32,
        /// Why.
        reason: &'static str,
    },
    /// A cgroup of that name already exists; it is never adopted, since it may belong to someone else.
    #[error("cgroup {path} already exists")]
    AlreadyExists {
        /// Its directory.
        path: PathBuf,
    },
    /// Controllers could not be enabled for children in a v2 parent's `cgroup.subtree_control`.
    #[error(
        "cannot enable controllers `{controllers}` in {path}: {source} (on cgroup v2 a cgroup with processes \
         of its own cannot hand controllers to children: configure a parent cgroup that holds no processes)"
    )]
    EnableControllers {
        /// The `cgroup.subtree_control` file.
        path: PathBuf,
        /// What was written, e.g. `+memory +pids`.
        controllers: String,
        /// The kernel's answer.
        source: io::Error,
    },
    /// A process could not be moved into the cgroup.
    #[error("cannot add process {pid} to {path}: {source}")]
    AddPid {
        /// The process.
        pid: i32,
        /// The `cgroup.procs` file.
        path: PathBuf,
        /// The kernel's answer (`ESRCH`: no such process).
        source: io::Error,
    },
    /// A cgroup file or directory could not be read, written, created or removed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was attempted: `read`, `write`, `create`, `remove`, `list`.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The kernel's answer.
        source: io::Error,
    },
    /// A cgroup file did not hold what the kernel documents.
    #[error("unexpected contents in {path}: {content:?}, expected {expected}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held (cut to 64 characters).
        content: String,
        /// What was expected.
        expected: &'static str,
    },
    /// Processes were still in the cgroup after [`Cgroup::kill_all`] kept killing for 2 seconds.
    #[error("cgroup {path} still holds {remaining} process(es) after 2 s of SIGKILL")]
    Busy {
        /// The cgroup's (first) directory.
        path: PathBuf,
        /// How many processes were left.
        remaining: usize,
    },
}

/// The two cgroup interfaces of the Linux kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CgroupVersion {
    /// One hierarchy per controller (`/sys/fs/cgroup/memory`, `/sys/fs/cgroup/pids`, ...).
    V1,
    /// The unified hierarchy.
    V2,
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        })
    }
}

/// The limits a cgroup enforces on everything inside it together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CgroupLimits {
    /// Memory in bytes, without swap (swap is limited to none). Must be greater than zero.
    pub memory_bytes: u64,
    /// Processes and threads. Must be greater than zero.
    pub pids: u32,
    /// CPU bandwidth in cores (`1.5` = one and a half cores). Must be finite and greater than zero;
    /// at least 1% of a core is granted.
    pub cpus: f64,
}

impl From<&sandguard_policy::ResourceLimits> for CgroupLimits {
    fn from(limits: &sandguard_policy::ResourceLimits) -> Self {
        Self { memory_bytes: limits.memory, pids: limits.pids, cpus: limits.cpus }
    }
}

impl CgroupLimits {
    fn validate(&self) -> Result<(), CgroupError> {
        let invalid = |limit, value: String, allowed| Err(CgroupError::InvalidLimit { limit, value, allowed });
        if self.memory_bytes == 0 {
            return invalid("memory", "0".into(), "must be greater than zero");
        }
        if self.pids == 0 {
            return invalid("pids", "0".into(), "must be greater than zero");
        }
        if !(self.cpus.is_finite() && self.cpus > 0.0 && self.cpus <= MAX_CPUS) {
            return invalid("cpus", self.cpus.to_string(), "must be a number greater than zero, at most 1000000");
        }
        Ok(())
    }

    /// The CFS quota in microseconds per [`CPU_PERIOD_US`].
    fn cpu_quota_us(&self) -> u64 {
        // `validate` keeps `cpus` in (0, MAX_CPUS], so the product is a small positive number.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let quota = (self.cpus * CPU_PERIOD_US as f64).round() as u64;
        quota.max(CPU_MIN_QUOTA_US)
    }
}

/// What a cgroup and everything in it has used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CgroupUsage {
    /// Memory charged now, in bytes.
    pub memory_current_bytes: u64,
    /// The most memory charged at once, in bytes (v2 kernels before 5.19 have no `memory.peak`: there it
    /// is the current value).
    pub memory_peak_bytes: u64,
    /// CPU time, user and system, in nanoseconds (0 on v1 when `cpuacct` is not mounted).
    pub cpu_usage_ns: u64,
    /// Processes and threads now.
    pub pids_current: u64,
    /// Processes killed by the kernel's OOM killer for exceeding the memory limit.
    pub oom_kills: u64,
}

/// The controllers sandguard uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controller {
    Memory,
    Pids,
    Cpu,
    /// v1 only: CPU usage, when mounted apart from `cpu`.
    Cpuacct,
    /// v1 only: stops every process at once so a kill cannot race forks or pid reuse.
    Freezer,
}

impl Controller {
    /// The controllers a sandbox cannot run without.
    const REQUIRED: [Self; 3] = [Self::Memory, Self::Pids, Self::Cpu];
    /// Every controller used on v1, in the order their directories are made.
    const ALL: [Self; 5] = [Self::Memory, Self::Pids, Self::Cpu, Self::Cpuacct, Self::Freezer];

    /// The kernel's name.
    const fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Pids => "pids",
            Self::Cpu => "cpu",
            Self::Cpuacct => "cpuacct",
            Self::Freezer => "freezer",
        }
    }
}

/// A parent directory in which a cgroup directory is to be made, and the controllers it serves.
struct Placement {
    parent: PathBuf,
    controllers: Vec<Controller>,
}

/// A cgroup this process created: one directory per hierarchy on v1, one on v2. Dropping it kills
/// everything inside and removes the directories (best effort); [`Cgroup::remove`] does the same and
/// reports failures.
#[derive(Debug)]
pub struct Cgroup {
    version: CgroupVersion,
    /// Every directory made, in creation order.
    paths: Vec<PathBuf>,
    /// The controllers each directory of `paths` serves.
    controllers: Vec<Vec<Controller>>,
    fake_files: bool,
    /// `remove` has run: nothing left for `Drop`.
    removed: bool,
}

impl Cgroup {
    /// Creates the cgroup `name` under the cgroup this process is in (on v1, in each controller's
    /// hierarchy, as `/proc/self/cgroup` and `/proc/self/mountinfo` say), or under `parent` when given
    /// (a path from the hierarchy's root, such as `/sandguard`, which must exist), and applies `limits`.
    ///
    /// # Errors
    /// [`CgroupError::MissingController`] when memory, pids or cpu is not available;
    /// [`CgroupError::InvalidName`], [`CgroupError::InvalidParent`] or [`CgroupError::InvalidLimit`]
    /// for refused arguments; [`CgroupError::AlreadyExists`] when the name is taken; otherwise what
    /// the kernel refused. Nothing is left behind on error.
    pub fn create(name: &str, parent: Option<&Path>, limits: &CgroupLimits) -> Result<Self, CgroupError> {
        validate_name(name)?;
        limits.validate()?;
        Self::create_in(&CgroupRoot::detect()?, name, parent, limits)
    }

    /// [`Cgroup::create`] in the hierarchies of `root`.
    ///
    /// # Errors
    /// As [`Cgroup::create`].
    pub fn create_in(
        root: &CgroupRoot,
        name: &str,
        parent: Option<&Path>,
        limits: &CgroupLimits,
    ) -> Result<Self, CgroupError> {
        validate_name(name)?;
        limits.validate()?;
        let placements = Self::placements(root, parent)?;
        Self::build(root.version(), placements, name, limits, root.fake_files)
    }

    /// Removes the empty cgroups whose names start with `prefix` that processes killed before they
    /// could remove their own (a service ended by SIGKILL) left under this process's cgroup, or
    /// under `parent` (on v1 in every hierarchy); returns how many directories went. A directory
    /// younger than `min_age` is left alone (its owner may be about to move a process in), and so
    /// is one with a process or a cgroup inside: the kernel refuses to remove those.
    ///
    /// # Errors
    /// [`CgroupError::MissingController`] and [`CgroupError::InvalidParent`] as for
    /// [`Cgroup::create`]; [`CgroupError::Io`] when a parent directory cannot be listed.
    pub fn remove_abandoned(prefix: &str, parent: Option<&Path>, min_age: Duration) -> Result<usize, CgroupError> {
        Self::remove_abandoned_in(&CgroupRoot::detect()?, prefix, parent, min_age)
    }

    /// [`Cgroup::remove_abandoned`] in the hierarchies of `root`.
    ///
    /// # Errors
    /// As [`Cgroup::remove_abandoned`].
    pub fn remove_abandoned_in(
        root: &CgroupRoot,
        prefix: &str,
        parent: Option<&Path>,
        min_age: Duration,
    ) -> Result<usize, CgroupError> {
        let mut removed = 0;
        for placement in Self::placements(root, parent)? {
            let entries =
                fs::read_dir(&placement.parent).map_err(|source| io_error("list", &placement.parent, source))?;
            for entry in entries.flatten() {
                let abandoned = entry.file_name().as_encoded_bytes().starts_with(prefix.as_bytes())
                    && entry.metadata().is_ok_and(|meta| {
                        meta.is_dir() && meta.modified().is_ok_and(|at| at.elapsed().is_ok_and(|age| age >= min_age))
                    });
                if abandoned && fs::remove_dir(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Where a cgroup under `parent` (or this process's own) goes: a directory per hierarchy.
    fn placements(root: &CgroupRoot, parent: Option<&Path>) -> Result<Vec<Placement>, CgroupError> {
        let parent = parent.map(parent_cgroup).transpose()?;
        let placements = match &root.layout {
            Layout::V1(located) => {
                let mut placements: Vec<Placement> = Vec::new();
                for required in Controller::REQUIRED {
                    if !located.iter().any(|(c, _)| *c == required) {
                        return Err(CgroupError::MissingController {
                            controller: required.name(),
                            version: CgroupVersion::V1,
                            looked_in: PathBuf::from("/proc/self/mountinfo"),
                        });
                    }
                }
                for (controller, hierarchy) in located {
                    let dir = parent_dir(hierarchy, parent.as_deref(), controller.name())?;
                    match placements.iter_mut().find(|p| p.parent == dir) {
                        Some(shared) => shared.controllers.push(*controller),
                        None => placements.push(Placement { parent: dir, controllers: vec![*controller] }),
                    }
                }
                placements
            }
            Layout::V2(hierarchy) => {
                let dir = parent_dir(hierarchy, parent.as_deref(), "cgroup2")?;
                vec![Placement { parent: dir, controllers: Controller::REQUIRED.to_vec() }]
            }
        };
        Ok(placements)
    }

    /// Creates the cgroup `name` inside this one, with its own `limits` (the tighter of the two
    /// apply; on v1 the kernel refuses a child CPU quota above its parent's). Removing or dropping this
    /// cgroup kills and removes the child too.
    ///
    /// # Errors
    /// As [`Cgroup::create`].
    pub fn create_child(&self, name: &str, limits: &CgroupLimits) -> Result<Self, CgroupError> {
        validate_name(name)?;
        limits.validate()?;
        let placements = (self.paths.iter().zip(&self.controllers))
            .map(|(parent, controllers)| Placement { parent: parent.clone(), controllers: controllers.clone() })
            .collect();
        Self::build(self.version, placements, name, limits, self.fake_files)
    }

    fn build(
        version: CgroupVersion,
        placements: Vec<Placement>,
        name: &str,
        limits: &CgroupLimits,
        fake_files: bool,
    ) -> Result<Self, CgroupError> {
        if version == CgroupVersion::V2 {
            for placement in &placements {
                enable_controllers_v2(&placement.parent, fake_files)?;
            }
        }
        // From here on, dropping `cgroup` on an error removes whatever was made.
        let mut cgroup = Self { version, paths: Vec::new(), controllers: Vec::new(), fake_files, removed: false };
        for placement in placements {
            let dir = placement.parent.join(name);
            fs::create_dir(&dir).map_err(|source| match source.kind() {
                io::ErrorKind::AlreadyExists => CgroupError::AlreadyExists { path: dir.clone() },
                _ => CgroupError::Io { op: "create", path: dir.clone(), source },
            })?;
            cgroup.paths.push(dir);
            cgroup.controllers.push(placement.controllers);
        }
        cgroup.apply(limits)?;
        Ok(cgroup)
    }

    fn apply(&self, limits: &CgroupLimits) -> Result<(), CgroupError> {
        let memory = limits.memory_bytes.to_string();
        let quota = limits.cpu_quota_us().to_string();
        let (memory_dir, pids_dir, cpu_dir) =
            (self.dir(Controller::Memory)?, self.dir(Controller::Pids)?, self.dir(Controller::Cpu)?);
        match self.version {
            CgroupVersion::V1 => {
                self.write(memory_dir, "memory.limit_in_bytes", &memory)?;
                // Without it, swap would let the sandbox use more than its memory limit.
                self.write_if_present(memory_dir, "memory.memsw.limit_in_bytes", &memory)?;
                self.write(pids_dir, "pids.max", &limits.pids.to_string())?;
                self.write(cpu_dir, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
                self.write(cpu_dir, "cpu.cfs_quota_us", &quota)?;
            }
            CgroupVersion::V2 => {
                self.write(memory_dir, "memory.max", &memory)?;
                self.write_if_present(memory_dir, "memory.swap.max", "0")?;
                // The OOM killer takes the whole sandbox, not one process of it.
                self.write_if_present(memory_dir, "memory.oom_group", "1")?;
                self.write(pids_dir, "pids.max", &limits.pids.to_string())?;
                self.write(cpu_dir, "cpu.max", &format!("{quota} {CPU_PERIOD_US}"))?;
            }
        }
        Ok(())
    }

    /// Which cgroup version this is.
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// Every directory this cgroup made: on v1 one per hierarchy, on v2 one.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Moves process `pid` (all its threads) into this cgroup, in every hierarchy. Its children
    /// from then on are born inside.
    ///
    /// # Errors
    /// [`CgroupError::InvalidPid`] for a pid that is not positive or is this process itself (whose
    /// cgroup would then be killed); [`CgroupError::AddPid`] when the kernel refuses (`ESRCH`: no
    /// such process).
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        if pid <= 0 {
            return Err(CgroupError::InvalidPid { pid, reason: "a process id is greater than zero" });
        }
        if u32::try_from(pid).is_ok_and(|p| p == std::process::id()) {
            return Err(CgroupError::InvalidPid { pid, reason: "it is this process, which must stay outside" });
        }
        for dir in &self.paths {
            let path = dir.join("cgroup.procs");
            write_file(&path, &pid.to_string(), self.fake_files).map_err(|source| CgroupError::AddPid {
                pid,
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// The processes directly in this cgroup (v1: in its `pids` hierarchy), not in sub-cgroups.
    ///
    /// # Errors
    /// [`CgroupError::Io`] or [`CgroupError::Parse`] when `cgroup.procs` cannot be read.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let path = self.dir(Controller::Pids)?.join("cgroup.procs");
        match read_file(&path)? {
            Some(text) => parse_pids(&path, &text),
            None => Err(io_error("read", &path, io::ErrorKind::NotFound.into())),
        }
    }

    /// Kills every process in this cgroup and its sub-cgroups and waits until none is left.
    ///
    /// v2: writes `1` to `cgroup.kill` (or, before Linux 5.14, freezes and SIGKILLs each process).
    /// v1: freezes the cgroup when the freezer is mounted, so nothing can fork or exit in between,
    /// sends SIGKILL to each process in `cgroup.procs`, then thaws it so the signals are delivered.
    /// Either way it repeats until the cgroup is empty. Without a freezer (v1 hosts that do not mount
    /// it) a process could exit and its pid be reused between reading `cgroup.procs` and the signal.
    ///
    /// # Errors
    /// [`CgroupError::Busy`] when processes remain after 2 seconds (e.g. stuck in uninterruptible
    /// sleep); [`CgroupError::Io`] when the cgroup cannot be read.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        let deadline = Instant::now() + KILL_TIMEOUT;
        let mut pause = Duration::from_millis(1);
        loop {
            let remaining = self.all_pids()?.len();
            if remaining == 0 && !self.populated_v2()? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let path = self.paths.first().cloned().unwrap_or_default();
                return Err(CgroupError::Busy { path, remaining: remaining.max(1) });
            }
            self.kill_once()?;
            sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// One round of killing.
    fn kill_once(&self) -> Result<(), CgroupError> {
        if self.version == CgroupVersion::V2 {
            let dir = self.dir(Controller::Memory)?;
            if self.write_if_present(dir, "cgroup.kill", "1")? {
                return Ok(());
            }
        }
        let frozen = self.set_frozen(true);
        let killed = self.all_pids().map(|pids| {
            for pid in pids {
                // ESRCH: already gone. Anything else shows up as a process that stays.
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        });
        if frozen {
            // A frozen v1 process only dies once thawed.
            self.set_frozen(false);
        }
        killed
    }

    /// Freezes or thaws the cgroup; `true` when it is frozen (or as good as: `FREEZING` after the
    /// timeout, which still stops most processes).
    fn set_frozen(&self, frozen: bool) -> bool {
        let (dir, file, value, done) = match self.version {
            CgroupVersion::V1 => {
                let Ok(dir) = self.dir(Controller::Freezer) else { return false };
                (dir, "freezer.state", if frozen { "FROZEN" } else { "THAWED" }, "FROZEN")
            }
            CgroupVersion::V2 => {
                let Ok(dir) = self.dir(Controller::Memory) else { return false };
                (dir, "cgroup.freeze", if frozen { "1" } else { "0" }, "1")
            }
        };
        if !matches!(self.write_if_present(dir, file, value), Ok(true)) || !frozen {
            return false;
        }
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        let state_file = if self.version == CgroupVersion::V1 { "freezer.state" } else { "cgroup.events" };
        while Instant::now() < deadline {
            let state = read_file(&dir.join(state_file)).ok().flatten().unwrap_or_default();
            let is_frozen = match self.version {
                CgroupVersion::V1 => state.trim() == done,
                CgroupVersion::V2 => flat_keyed(&state, "frozen") == Some(done),
            };
            if is_frozen {
                break;
            }
            sleep(Duration::from_millis(1));
        }
        true
    }

    /// Every process in every directory of this cgroup and their sub-cgroups, without duplicates and
    /// without this process.
    fn all_pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = Vec::new();
        for dir in &self.paths {
            collect_pids(dir, 0, &mut pids)?;
        }
        pids.sort_unstable();
        pids.dedup();
        let me = i32::try_from(std::process::id()).unwrap_or(0);
        pids.retain(|&pid| pid > 0 && pid != me);
        Ok(pids)
    }

    /// v2: whether `cgroup.events` says a process is still inside (zombies included); v1: `false`.
    fn populated_v2(&self) -> Result<bool, CgroupError> {
        if self.version == CgroupVersion::V1 {
            return Ok(false);
        }
        let path = self.dir(Controller::Memory)?.join("cgroup.events");
        Ok(read_file(&path)?.is_some_and(|events| flat_keyed(&events, "populated") == Some("1")))
    }

    /// What this cgroup has used so far.
    ///
    /// # Errors
    /// [`CgroupError::Io`] or [`CgroupError::Parse`] when a statistics file cannot be read.
    pub fn usage(&self) -> Result<CgroupUsage, CgroupError> {
        let memory = self.dir(Controller::Memory)?;
        let pids_current = read_u64(&self.dir(Controller::Pids)?.join("pids.current"))?;
        match self.version {
            CgroupVersion::V1 => {
                let cpu_usage_ns = match self.dir(Controller::Cpuacct) {
                    Ok(dir) => read_u64(&dir.join("cpuacct.usage"))?,
                    Err(_) => 0,
                };
                Ok(CgroupUsage {
                    memory_current_bytes: read_u64(&memory.join("memory.usage_in_bytes"))?,
                    memory_peak_bytes: read_u64(&memory.join("memory.max_usage_in_bytes"))?,
                    cpu_usage_ns,
                    pids_current,
                    oom_kills: read_key(&memory.join("memory.oom_control"), "oom_kill")?.unwrap_or(0),
                })
            }
            CgroupVersion::V2 => {
                let memory_current_bytes = read_u64(&memory.join("memory.current"))?;
                let peak = memory.join("memory.peak");
                let memory_peak_bytes = match read_file(&peak)? {
                    Some(text) => parse_u64(&peak, &text)?,
                    None => memory_current_bytes,
                };
                let cpu_dir = self.dir(Controller::Cpu)?;
                let usage_usec = read_key(&cpu_dir.join("cpu.stat"), "usage_usec")?.unwrap_or(0);
                Ok(CgroupUsage {
                    memory_current_bytes,
                    memory_peak_bytes,
                    cpu_usage_ns: usage_usec.saturating_mul(1000),
                    pids_current,
                    oom_kills: read_key(&memory.join("memory.events"), "oom_kill")?.unwrap_or(0),
                })
            }
        }
    }

    /// Kills everything inside ([`Cgroup::kill_all`]), then removes every directory, sub-cgroups
    /// first, retrying briefly while the kernel still reports them busy.
    ///
    /// # Errors
    /// [`CgroupError::Busy`] when processes remain; [`CgroupError::Io`] when a directory cannot be
    /// removed. Either way what could not be removed stays, and dropping does not try again.
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.removed = true;
        // Usually the caller has already ended everything inside (a sandbox's processes all die
        // with its PID namespace): then one `rmdir` per directory is all there is to do. The
        // kernel refuses to remove a cgroup that holds a process or a sub-cgroup, so whatever
        // that leaves goes the long way, killing first.
        if !self.fake_files {
            let mut left = Vec::new();
            for (dir, controllers) in self.paths.iter().zip(&self.controllers).rev() {
                match fs::remove_dir(dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(_) => left.push((dir.clone(), controllers.clone())),
                }
            }
            left.reverse();
            (self.paths, self.controllers) = left.into_iter().unzip();
            if self.paths.is_empty() {
                return Ok(());
            }
        }
        self.kill_all()?;
        self.remove_dirs()
    }

    fn remove_dirs(&self) -> Result<(), CgroupError> {
        let mut first_error = None;
        for dir in self.paths.iter().rev() {
            let removed = if self.fake_files {
                fs::remove_dir_all(dir).or_else(not_found_is_ok).map_err(|source| io_error("remove", dir, source))
            } else {
                remove_tree(dir, 0)
            };
            if let Err(error) = removed {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The directory serving `controller`.
    fn dir(&self, controller: Controller) -> Result<&Path, CgroupError> {
        let found = self.paths.iter().zip(&self.controllers).find(|(_, served)| served.contains(&controller));
        found.map(|(path, _)| path.as_path()).ok_or(CgroupError::MissingController {
            controller: controller.name(),
            version: self.version,
            looked_in: self.paths.first().cloned().unwrap_or_default(),
        })
    }

    fn write(&self, dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
        let path = dir.join(file);
        write_file(&path, value, self.fake_files).map_err(|source| io_error("write", &path, source))
    }

    /// Writes a file that only some kernels or configurations have; `false` when it is absent.
    fn write_if_present(&self, dir: &Path, file: &str, value: &str) -> Result<bool, CgroupError> {
        let path = dir.join(file);
        match write_file(&path, value, self.fake_files) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(io_error("write", &path, source)),
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.kill_all();
            let _ = self.remove_dirs();
        }
    }
}

/// Refuses names that are not exactly one plain path component.
fn validate_name(name: &str) -> Result<(), CgroupError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name == "." || name == ".." {
        "it is `.` or `..`"
    } else if name.contains('/') {
        "it contains `/`"
    } else if name.chars().any(char::is_control) {
        "it contains a NUL or control character"
    } else if name.len() > 255 {
        "it is longer than 255 bytes"
    } else {
        return Ok(());
    };
    Err(CgroupError::InvalidName { name: excerpt(name), reason })
}

/// The configured parent as an absolute path within the hierarchy, made of plain components.
fn parent_cgroup(parent: &Path) -> Result<PathBuf, CgroupError> {
    let invalid = |reason| CgroupError::InvalidParent { parent: parent.to_path_buf(), reason };
    let mut cgroup = PathBuf::from("/");
    for (i, component) in parent.components().enumerate() {
        match component {
            Component::RootDir if i == 0 => {}
            Component::Normal(part) => {
                if part.as_encoded_bytes().iter().any(u8::is_ascii_control) {
                    return Err(invalid("it contains a NUL or control character"));
                }
                cgroup.push(part);
            }
            Component::ParentDir => return Err(invalid("it contains `..`")),
            Component::CurDir => return Err(invalid("it contains `.`")),
            Component::RootDir | Component::Prefix(_) => return Err(invalid("it is not a plain path")),
        }
    }
    Ok(cgroup)
}

/// The directory under which the new cgroup goes in `hierarchy`: the configured parent, or this
/// process's cgroup. It must exist and resolve to a directory inside the mount.
fn parent_dir(hierarchy: &Hierarchy, parent: Option<&Path>, controller: &'static str) -> Result<PathBuf, CgroupError> {
    let dir = match parent {
        Some(parent) => hierarchy.dir_of(parent).ok_or_else(|| CgroupError::InvalidParent {
            parent: parent.to_path_buf(),
            reason: "it is outside the part of the hierarchy that is mounted",
        })?,
        None => {
            hierarchy.own.as_deref().and_then(|own| hierarchy.dir_of(own)).ok_or_else(|| CgroupError::NotReachable {
                controller,
                cgroup: hierarchy.own.clone(),
                mount_point: hierarchy.mount_point.clone(),
            })?
        }
    };
    let resolved = match fs::canonicalize(&dir) {
        Ok(resolved) if resolved.is_dir() => resolved,
        Ok(_) => return Err(CgroupError::ParentNotFound { path: dir }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(CgroupError::ParentNotFound { path: dir }),
        Err(source) => return Err(io_error("resolve", &dir, source)),
    };
    let mount = fs::canonicalize(&hierarchy.mount_point)
        .map_err(|source| io_error("resolve", &hierarchy.mount_point, source))?;
    if !resolved.starts_with(&mount) {
        return Err(CgroupError::InvalidParent {
            parent: dir,
            reason: "it resolves to a directory outside the hierarchy's mount",
        });
    }
    Ok(resolved)
}

/// v2: refuses a parent without memory, pids or cpu in `cgroup.controllers`, and enables the ones
/// missing from its `cgroup.subtree_control` so that children get them.
fn enable_controllers_v2(parent: &Path, fake_files: bool) -> Result<(), CgroupError> {
    let available_path = parent.join("cgroup.controllers");
    let available = read_file(&available_path)?.unwrap_or_default();
    for controller in Controller::REQUIRED {
        if !available.split_whitespace().any(|c| c == controller.name()) {
            return Err(CgroupError::MissingController {
                controller: controller.name(),
                version: CgroupVersion::V2,
                looked_in: available_path,
            });
        }
    }
    let control_path = parent.join("cgroup.subtree_control");
    let enabled = read_file(&control_path)?.unwrap_or_default();
    let missing: Vec<String> = (Controller::REQUIRED.iter())
        .filter(|c| !enabled.split_whitespace().any(|e| e == c.name()))
        .map(|c| format!("+{}", c.name()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let controllers = missing.join(" ");
    write_file(&control_path, &controllers, fake_files).map_err(|source| CgroupError::EnableControllers {
        path: control_path,
        controllers,
        source,
    })
}

/// Writes `value` in one `write(2)`, as cgroup files require. Kernel files are never created; fake
/// ones are.
fn write_file(path: &Path, value: &str, fake_files: bool) -> io::Result<()> {
    let mut file = fs::OpenOptions::new().write(true).create(fake_files).truncate(fake_files).open(path)?;
    file.write_all(value.as_bytes())
}

/// The contents of a cgroup file; `None` when it does not exist.
fn read_file(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(io_error("read", path, source)),
    }
}

fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    match read_file(path)? {
        Some(text) => parse_u64(path, &text),
        None => Err(io_error("read", path, io::ErrorKind::NotFound.into())),
    }
}

/// The value of `key` in a flat-keyed file (`key value` per line); `None` when the file or the key
/// is absent.
fn read_key(path: &Path, key: &str) -> Result<Option<u64>, CgroupError> {
    let Some(text) = read_file(path)? else { return Ok(None) };
    flat_keyed(&text, key).map(|value| parse_u64(path, value)).transpose()
}

fn flat_keyed<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim())
    })
}

fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: excerpt(text),
        expected: "a decimal number",
    })
}

fn parse_pids(path: &Path, text: &str) -> Result<Vec<i32>, CgroupError> {
    (text.split_whitespace())
        .map(|pid| {
            pid.parse().map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                content: excerpt(pid),
                expected: "one process id per line",
            })
        })
        .collect()
}

/// Adds the processes of `dir` and of its sub-cgroups to `pids`; a directory that is gone holds none.
fn collect_pids(dir: &Path, depth: usize, pids: &mut Vec<i32>) -> Result<(), CgroupError> {
    let procs = dir.join("cgroup.procs");
    if let Some(text) = read_file(&procs)? {
        pids.extend(parse_pids(&procs, &text)?);
    }
    for sub in sub_cgroups(dir, depth)? {
        collect_pids(&sub, depth + 1, pids)?;
    }
    Ok(())
}

/// The sub-cgroup directories of `dir` (none below [`MAX_DEPTH`] or when `dir` is gone).
fn sub_cgroups(dir: &Path, depth: usize) -> Result<Vec<PathBuf>, CgroupError> {
    if depth >= MAX_DEPTH {
        return Ok(Vec::new());
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(io_error("list", dir, source)),
    };
    let mut subs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| io_error("list", dir, source))?;
        // `file_type` does not follow symlinks, so the walk cannot leave the tree.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            subs.push(entry.path());
        }
    }
    Ok(subs)
}

/// Removes a cgroup directory, sub-cgroups first. A directory that is already gone is fine.
fn remove_tree(dir: &Path, depth: usize) -> Result<(), CgroupError> {
    for sub in sub_cgroups(dir, depth)? {
        remove_tree(&sub, depth + 1)?;
    }
    let deadline = Instant::now() + RMDIR_TIMEOUT;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            // The kernel may still be tearing down the last exited processes.
            Err(e) if e.raw_os_error() == Some(Errno::EBUSY as i32) && Instant::now() < deadline => {
                sleep(Duration::from_millis(5));
            }
            Err(source) => return Err(io_error("remove", dir, source)),
        }
    }
}

fn not_found_is_ok(error: io::Error) -> io::Result<()> {
    if error.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(error) }
}

fn io_error(op: &'static str, path: &Path, source: io::Error) -> CgroupError {
    CgroupError::Io { op, path: path.to_path_buf(), source }
}

/// At most 64 characters of untrusted or unexpected text, for error messages.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    match text.char_indices().nth(MAX_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}...", &text[..cut]),
    }
}
