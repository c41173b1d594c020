//! How a sandbox's init comes to be: a child of the host, alone in new user, PID, mount, UTS and
//! IPC namespaces, root of its user namespace, ready to build its root.
//!
//! Every namespace but two: the network namespace, the one slow to make (half a millisecond, all
//! the others together a fifth of that), is made by a thread of the init while it builds its root
//! (see `init::run`); the cgroup namespace, by the init once it is in the sandbox's cgroup.
//!
//! Two ways, one protocol. A single-threaded host forks the init straight into its namespaces
//! (one `clone`, as bubblewrap does). A multi-threaded host (a service) cannot: the child of a
//! raw `clone` may find a lock held by a thread that no longer exists in it, and glibc's `fork`,
//! which resets its own locks, takes no namespace flags. So it forks a monitor instead, which
//! makes the namespaces with `unshare` and forks the init (single-threaded, it may use the raw
//! `clone`) as the host's child, then exits.
//!
//! The steps, over a `setup` socket pair: the child says `u` once in its namespaces; while the
//! host writes its uid and gid maps, it prepares what every process of the sandbox inherits (see
//! [`prepare_inherited_state`]); the host says `m`, followed by the path of the root's shared
//! skeleton if there is one; the child becomes root of its user namespace and says `p` (the
//! monitor: followed by the init's PID, once it has forked it). A failure is reported as `f` and
//! a message instead of the next step.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::unistd::Pid;

use crate::error::Error;
use crate::init::{self, InitSpec};
use crate::protocol;
use crate::rootfs::{SANDBOX_GID, SANDBOX_UID};
use crate::sys::harden::Hardening;
use crate::sys::process::{self, Forked};

/// The namespaces the init starts in (see the module's documentation for the other two).
const NAMESPACES: CloneFlags = CloneFlags::CLONE_NEWUSER
    .union(CloneFlags::CLONE_NEWNS)
    .union(CloneFlags::CLONE_NEWPID)
    .union(CloneFlags::CLONE_NEWUTS)
    .union(CloneFlags::CLONE_NEWIPC);

/// Starts the sandbox's init, in its namespaces and under `mapping`, and returns its PID: a child
/// of this process from then on, which the caller must kill and reap. `skeleton` finds the host's
/// shared skeleton of the root (`None`: the init writes its own); it is called while the child
/// settles in its namespaces.
///
/// # Errors
/// The step that failed; nothing is left running.
pub(crate) fn start_init(spec: InitSpec, mapping: &IdMapping, skeleton: fn() -> Option<PathBuf>) -> Result<i32, Error> {
    let (host_setup, child_setup) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(setup_error("socketpair"))?;
    // No other thread can start one between this check and the fork: only this one could.
    let direct = process::is_single_threaded();
    let forked = if direct { process::fork_raw(NAMESPACES.bits()) } else { process::fork() };
    let mut child = match forked.map_err(setup_error(if direct { "create namespaces (clone)" } else { "fork" }))? {
        Forked::Child => {
            drop(host_setup);
            if direct { init_main(spec, child_setup) } else { monitor_main(spec, child_setup) }
        }
        Forked::Parent(pid) => FirstChild { pid, ours: true },
    };
    drop((spec, child_setup));

    let skeleton = skeleton();
    let mut buffer = Vec::new();
    expect_step(&host_setup, &mut buffer, b"u")?;
    mapping.write(child.pid.as_raw())?;
    let mut maps_written = b"m".to_vec();
    maps_written.extend_from_slice(skeleton.as_deref().map_or(&[][..], |path| path.as_os_str().as_bytes()));
    protocol::send_bytes(host_setup.as_raw_fd(), &maps_written, &[]).map_err(io_setup_error("start the sandbox"))?;
    let init_pid = expect_step(&host_setup, &mut buffer, b"p")?;
    if direct {
        // The child is the init: from here on the caller kills and reaps it.
        child.ours = false;
        return Ok(child.pid.as_raw());
    }
    let init_pid = init_pid
        .try_into()
        .map(i32::from_ne_bytes)
        .map_err(|_| Error::Setup { stage: "fork the sandbox init".into(), error: "no process id".into() })?;
    // The monitor's work is done: it exits, and the init is our child.
    child.reap();
    Ok(init_pid)
}

/// The init forked straight into its namespaces: its first steps, then [`init::run`].
fn init_main(mut spec: InitSpec, setup: OwnedFd) -> ! {
    close_host_descriptors(&spec, &setup);
    settle(&mut spec, &setup);
    if protocol::send_bytes(setup.as_raw_fd(), b"p", &[]).is_err() {
        process::exit_now(1);
    }
    drop(setup);
    init::run(spec)
}

/// The monitor: makes the namespaces, forks the init as the host's own child (`CLONE_PARENT`),
/// says `p` and its PID, and exits, so the host holds PID 1 of the sandbox directly.
fn monitor_main(mut spec: InitSpec, setup: OwnedFd) -> ! {
    close_host_descriptors(&spec, &setup);
    if let Err(errno) = nix::sched::unshare(NAMESPACES) {
        fail(&setup, &format!("create namespaces (unshare): {}", errno.desc()));
    }
    settle(&mut spec, &setup);
    match process::fork_raw(libc::CLONE_PARENT) {
        Ok(Forked::Child) => {
            drop(setup);
            init::run(spec)
        }
        Ok(Forked::Parent(init_pid)) => {
            let mut message = [b'p', 0, 0, 0, 0];
            message[1..].copy_from_slice(&init_pid.as_raw().to_ne_bytes());
            let _ = protocol::send_bytes(setup.as_raw_fd(), &message, &[]);
            process::exit_now(0)
        }
        Err(errno) => fail(&setup, &format!("fork the sandbox init: {}", errno.desc())),
    }
}

/// The first child's steps once in its namespaces: `u`, the inherited state prepared while the
/// host writes the id maps, `m`, and root of the new user namespace (mapped to an unprivileged
/// host uid, so the files it makes have an owner the namespace knows). Ends the process on error.
fn settle(spec: &mut InitSpec, setup: &OwnedFd) {
    if protocol::send_bytes(setup.as_raw_fd(), b"u", &[]).is_err() {
        process::exit_now(1);
    }
    // A failure is reported after `m`, where the host expects either news.
    let prepared = prepare_inherited_state(&mut spec.hardening);
    let mut buffer = Vec::new();
    match protocol::receive_bytes(setup.as_raw_fd(), &mut buffer) {
        Ok(Some((len, _))) if len >= 1 && buffer[0] == b'm' => {
            let skeleton = &buffer[1..len];
            spec.skeleton = (!skeleton.is_empty()).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(skeleton)));
        }
        _ => process::exit_now(1),
    }
    if let Err(message) = prepared {
        fail(setup, &message);
    }
    let (root_gid, root_uid) = (nix::unistd::Gid::from_raw(0), nix::unistd::Uid::from_raw(0));
    if let Err(errno) = nix::unistd::setresgid(root_gid, root_gid, root_gid) {
        fail(setup, &format!("setresgid: {}", errno.desc()));
    }
    if let Err(errno) = nix::unistd::setresuid(root_uid, root_uid, root_uid) {
        fail(setup, &format!("setresuid: {}", errno.desc()));
    }
}

/// Descriptors of the host (other sandboxes' sockets, other commands' pipes) must not live on in
/// this sandbox: they would keep those open after their owners closed them.
fn close_host_descriptors(spec: &InitSpec, setup: &OwnedFd) {
    process::close_descriptors_except(&[setup.as_raw_fd(), spec.control.as_raw_fd()]);
}

/// What every process of the sandbox inherits from the first child: default signal
/// dispositions and an empty capability bounding set (which `CAP_SETPCAP` in the new user
/// namespace allows). Fails as `stage: error`.
fn prepare_inherited_state(hardening: &mut Hardening) -> Result<(), String> {
    process::reset_signal_dispositions();
    hardening.empty_bounding_set().map_err(|error| format!("empty the capability bounding set: {error}"))
}

/// Reports `message` (`stage: error`) as the step's failure, and ends the process.
fn fail(setup: &OwnedFd, message: &str) -> ! {
    let _ = protocol::send_bytes(setup.as_raw_fd(), format!("f{message}").as_bytes(), &[]);
    process::exit_now(1)
}

/// The host's first child (the monitor, or the init itself), killed and reaped if starting fails
/// while it is still ours to reap.
struct FirstChild {
    pid: Pid,
    ours: bool,
}

impl FirstChild {
    /// Waits for the monitor, which exits once it has forked the init.
    fn reap(&mut self) {
        if self.ours {
            self.ours = false;
            let _ = nix::sys::wait::waitpid(self.pid, None);
        }
    }
}

impl Drop for FirstChild {
    fn drop(&mut self) {
        if self.ours {
            // Not reaped yet, so the pid is still ours and cannot name another process.
            let _ = kill(self.pid, Signal::SIGKILL);
            self.reap();
        }
    }
}

/// Receives the child's next step, which must be `step` (its first byte); returns the rest.
fn expect_step<'b>(setup: &OwnedFd, buffer: &'b mut Vec<u8>, step: &[u8; 1]) -> Result<&'b [u8], Error> {
    let stage = match step {
        b"u" => "create namespaces",
        b"p" => "start the sandbox init",
        _ => "start the sandbox",
    };
    match protocol::receive_bytes(setup.as_raw_fd(), buffer) {
        Ok(Some((len, _))) if len >= 1 && buffer[0] == step[0] => Ok(&buffer[1..len]),
        Ok(Some((len, _))) if len >= 1 && buffer[0] == b'f' => {
            let message = String::from_utf8_lossy(&buffer[1..len]).into_owned();
            let (stage, error) = message.split_once(": ").unwrap_or((stage, &message));
            Err(Error::Setup { stage: stage.to_owned(), error: error.to_owned() })
        }
        Ok(_) => Err(Error::Setup { stage: stage.into(), error: "the sandbox's first process ended early".into() }),
        Err(error) => Err(Error::Setup { stage: stage.into(), error: error.to_string() }),
    }
}

/// How uids and gids inside map to the host.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdMapping {
    /// First host uid of the sandbox's range (inner 0 maps here).
    host_base: u32,
    /// How many ids are mapped.
    count: u32,
    /// The uid commands run as, inside.
    pub(crate) command_uid: u32,
    /// The gid commands run as, inside.
    pub(crate) command_gid: u32,
}

impl IdMapping {
    /// As root: a random one of 4096 ranges of 65536 subordinate ids from 2^28 up, so a sandbox's
    /// root is never host root and two sandboxes rarely share ids. Otherwise: our own uid alone.
    pub(crate) fn choose() -> Self {
        if nix::unistd::geteuid().is_root() {
            let slot = random_u32() % 4096;
            Self {
                host_base: 0x1000_0000 + slot * 0x1_0000,
                count: 0x1_0000,
                command_uid: SANDBOX_UID,
                command_gid: SANDBOX_GID,
            }
        } else {
            Self { host_base: nix::unistd::geteuid().as_raw(), count: 1, command_uid: 0, command_gid: 0 }
        }
    }

    /// The host uid and gid that commands' files belong to.
    pub(crate) fn host_ids_of_command_user(&self) -> (u32, u32) {
        (self.host_base.saturating_add(self.command_uid), self.host_base.saturating_add(self.command_gid))
    }

    fn write(&self, pid: i32) -> Result<(), Error> {
        let map = format!("0 {} {}\n", self.host_base, self.count);
        if self.count == 1 {
            std::fs::write(format!("/proc/{pid}/setgroups"), "deny").map_err(io_setup_error("write setgroups"))?;
            let gid = format!("0 {} 1\n", nix::unistd::getegid().as_raw());
            std::fs::write(format!("/proc/{pid}/gid_map"), gid).map_err(io_setup_error("write gid_map"))?;
        } else {
            std::fs::write(format!("/proc/{pid}/gid_map"), &map).map_err(io_setup_error("write gid_map"))?;
        }
        std::fs::write(format!("/proc/{pid}/uid_map"), &map).map_err(io_setup_error("write uid_map"))
    }
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_err() {
        // No randomness: fall back to something that still differs between processes.
        return std::process::id().wrapping_mul(2_654_435_761);
    }
    u32::from_ne_bytes(bytes)
}

fn setup_error(stage: &'static str) -> impl FnOnce(nix::errno::Errno) -> Error {
    move |errno| Error::Setup { stage: stage.to_owned(), error: errno.desc().to_owned() }
}

fn io_setup_error(stage: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |error| Error::Setup { stage: stage.to_owned(), error: error.to_string() }
}
