//! The sandbox's init: PID 1 of its PID namespace, the parent of every command.
//!
//! It builds the private root, then serves the host's requests: start a command (forking it,
//! hardening it and `execve`-ing it), signal a command's session, and report each command's end.
//! It reaps every orphan, and it exits when the host's end of the control socket closes, or once
//! no command runs if the host asked for that (a one-shot sandbox); either takes the whole PID
//! namespace (every process of the sandbox) with it.

use std::collections::HashMap;
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use crate::protocol::{self, Reply, Request};
use crate::rootfs::{self, RootSpec};
use crate::sys::harden::Hardening;
use crate::sys::process;

/// The stack of the thread that makes the network namespace: a few calls deep.
const NETWORK_THREAD_STACK: usize = 64 * 1024;

/// What the init needs, prepared by the host before the fork.
pub(crate) struct InitSpec {
    pub(crate) control: OwnedFd,
    pub(crate) hardening: Hardening,
    pub(crate) disk_bytes: u64,
    pub(crate) hostname: String,
    /// The host's shared skeleton of the root, if there is one (see `rootfs::skeleton`).
    pub(crate) skeleton: Option<std::path::PathBuf>,
    /// Whether the sandbox may run without Landlock when the kernel has none.
    pub(crate) landlock_required: bool,
}

/// Runs the init; never returns.
pub(crate) fn run(mut spec: InitSpec) -> ! {
    let control = spec.control.as_raw_fd();
    let fail = |stage: &str, error: String| -> ! {
        let _ = protocol::send(control, &Reply::SetupFailed { stage: stage.to_owned(), error }, &[]);
        process::exit_now(1)
    };

    // The network namespace takes longer to make than all the others together: a thread makes it
    // (with loopback up) while the root is built, and the init enters it before anything of the
    // sandbox runs. The thread is gone before the init joins the cgroup (v1 moves the calling
    // thread only) and installs the seccomp filter (which binds the calling thread only).
    let network = std::thread::Builder::new()
        .name("sandguard-net".into())
        .stack_size(NETWORK_THREAD_STACK)
        .spawn(process::new_network_namespace)
        .unwrap_or_else(|error| fail("create the network namespace", error.to_string()));
    let root = RootSpec { disk_bytes: spec.disk_bytes, hostname: &spec.hostname, skeleton: spec.skeleton.as_deref() };
    if let Err(error) = rootfs::build_and_enter(&root) {
        fail(&error.stage, error.error);
    }
    let network = match network.join() {
        Ok(Ok(namespace)) => namespace,
        Ok(Err(errno)) => fail("create the network namespace", errno.desc().to_owned()),
        Err(_) => fail("create the network namespace", "the thread making it failed".to_owned()),
    };
    if let Err(errno) = nix::sched::setns(&network, nix::sched::CloneFlags::CLONE_NEWNET) {
        fail("enter the network namespace", errno.desc().to_owned());
    }
    drop(network);
    // Into the sandbox's cgroup before anything else runs (the host makes it while the root is
    // built), and then a cgroup namespace rooted there. The files were opened by the host, whose
    // credentials the kernel checks. A single-threaded process moving itself through v1's
    // per-thread `tasks` file (the "0" means "me") skips the kernel's global thread-group lock,
    // whose RCU grace period made the host-side move of the whole process cost 10 ms and more.
    // What the init touched while building the root (some hundred KiB, the copies under /etc
    // included) stays charged to the host's cgroup; everything from here on is the sandbox's.
    let mut buffer = Vec::new();
    let joins = match protocol::receive::<Request>(control, &mut buffer) {
        Ok(Some((Request::JoinCgroup, joins))) => joins,
        Ok(Some(_)) => fail("join the cgroup", "the host's first request was another".to_owned()),
        Ok(None) | Err(_) => process::exit_now(1),
    };
    for join in &joins {
        if let Err(errno) = nix::unistd::write(join, b"0") {
            fail("join the cgroup", errno.desc().to_owned());
        }
    }
    drop(joins);
    if let Err(errno) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP) {
        fail("create the cgroup namespace (unshare)", errno.desc().to_owned());
    }
    let writable: Vec<&std::path::Path> =
        rootfs::WRITABLE_DIRS.iter().map(std::path::Path::new).chain([std::path::Path::new("/dev")]).collect();
    let readable: Vec<&std::path::Path> = ["/"].iter().map(std::path::Path::new).filter(|path| path.exists()).collect();
    let landlock_abi = match spec.hardening.prepare_landlock(&writable, &readable) {
        Ok(status) => status.abi,
        Err(error) if spec.landlock_required => fail("landlock", error.to_string()),
        Err(_) => 0,
    };

    // From here on the init needs none of the calls the filter refuses; its commands inherit it.
    if let Err(error) = spec.hardening.confine_self() {
        fail("seccomp", error.to_string());
    }

    // SIGCHLD arrives through a descriptor, so one poll serves requests and reaping alike.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    if let Err(errno) = mask.thread_block() {
        fail("block SIGCHLD", errno.desc().to_owned());
    }
    let signals = match SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
        Ok(fd) => fd,
        Err(errno) => fail("signalfd", errno.desc().to_owned()),
    };
    if protocol::send(control, &Reply::Ready { landlock_abi }, &[]).is_err() {
        process::exit_now(1);
    }

    let mut init = Init {
        control,
        commands: HashMap::new(),
        hardening: &spec.hardening,
        stack: vec![0; process::CHILD_STACK_BYTES],
        exit_when_idle: false,
    };
    loop {
        let mut fds =
            [PollFd::new(spec.control.as_fd(), PollFlags::POLLIN), PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => process::exit_now(1),
        }
        let request_ready = fds[0].any().unwrap_or(true);
        let child_ended = fds[1].any().unwrap_or(false);
        if child_ended {
            while let Ok(Some(_)) = signals.read_signal() {}
            init.reap_all();
        }
        if request_ready {
            match protocol::receive::<Request>(control, &mut buffer) {
                Ok(Some((request, fds))) => init.handle(request, fds),
                // The host is gone: ending PID 1 ends every process of the sandbox.
                Ok(None) | Err(_) => process::exit_now(0),
            }
        }
        if init.exit_when_idle && init.commands.is_empty() {
            process::exit_now(0);
        }
    }
}

struct Init<'a> {
    control: std::os::fd::RawFd,
    /// Running commands: PID inside the sandbox → the host's id for it.
    commands: HashMap<i32, u64>,
    hardening: &'a Hardening,
    /// The stack each command's process starts on, before its `execve`.
    stack: Vec<u8>,
    /// The host asked for the sandbox to end once no command runs.
    exit_when_idle: bool,
}

impl Init<'_> {
    fn reply(&self, reply: &Reply) {
        if protocol::send(self.control, reply, &[]).is_err() {
            process::exit_now(0);
        }
    }

    fn reap_all(&mut self) {
        while let Some(reaped) = process::reap(-1) {
            if let Some(id) = self.commands.remove(&reaped.pid) {
                self.reply(&Reply::Exited {
                    id,
                    code: reaped.code,
                    signal: reaped.signal,
                    cpu_us: reaped.cpu_us,
                    max_rss_kib: reaped.max_rss_kib,
                });
            }
        }
    }

    fn handle(&mut self, request: Request, fds: Vec<OwnedFd>) {
        match request {
            // Only ever the first request, handled before this loop.
            Request::JoinCgroup => {}
            Request::Exec { id, argv, env, cwd } => {
                let reply = match self.spawn(&argv, &env, &cwd, fds) {
                    Ok(pid) => {
                        self.commands.insert(pid, id);
                        Reply::Started { id, pid }
                    }
                    Err(error) => Reply::SpawnFailed { id, error },
                };
                self.reply(&reply);
            }
            Request::ExitWhenIdle => self.exit_when_idle = true,
            Request::Kill { id, signal } => {
                let Some((&pid, _)) = self.commands.iter().find(|(_, command)| **command == id) else { return };
                let Ok(signal) = Signal::try_from(signal) else { return };
                kill_session(pid, signal);
            }
        }
    }

    fn spawn(&mut self, argv: &[Vec<u8>], env: &[Vec<u8>], cwd: &[u8], fds: Vec<OwnedFd>) -> Result<i32, String> {
        let [stdin, stdout, stderr]: [OwnedFd; 3] =
            fds.try_into().map_err(|_| "an exec request needs exactly three descriptors".to_owned())?;
        let argv: Vec<CString> =
            argv.iter().map(|arg| rootfs::c_string(arg)).collect::<Option<_>>().ok_or("argument with NUL")?;
        if argv.is_empty() {
            return Err("empty command".to_owned());
        }
        let env: Vec<CString> =
            env.iter().map(|var| rootfs::c_string(var)).collect::<Option<_>>().ok_or("environment with NUL")?;
        let cwd = rootfs::c_string(cwd).ok_or("working directory with NUL")?;
        let exec = process::ExecArgs::new(&argv, &env);
        let fds = [&stdin, &stdout, &stderr];
        // The child reports a failure before execve here; execve closes it (CLOEXEC) on success.
        let (report_read, report_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|errno| format!("pipe: {}", errno.desc()))?;
        let hardening = self.hardening;
        let mut child = || {
            let mut report = Report::default();
            start_command(&exec, &cwd, fds, hardening, &report_write, &mut report);
            let _ = nix::unistd::write(&report_write, report.bytes());
            127
        };
        let spawned = process::spawn_shared(&mut self.stack, &mut child);
        drop((stdin, stdout, stderr, report_write));
        let pid = spawned.map_err(|errno| format!("clone: {}", errno.desc()))?;
        let mut report = String::new();
        let _ = std::fs::File::from(report_read).read_to_string(&mut report);
        if report.is_empty() { Ok(pid.as_raw()) } else { Err(report) }
    }
}

/// A failure message written on the child's own stack: the child shares the init's memory and
/// must not allocate.
struct Report {
    buffer: [u8; 512],
    len: usize,
}

impl Default for Report {
    fn default() -> Self {
        Self { buffer: [0; 512], len: 0 }
    }
}

impl Report {
    fn bytes(&self) -> &[u8] {
        &self.buffer[..self.len]
    }
}

impl std::fmt::Write for Report {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let room = self.buffer.len() - self.len;
        let take = text.len().min(room);
        self.buffer[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// The child's side of [`Init::spawn`]: returns only on failure, having described it in `report`.
/// Runs in memory shared with the init (see [`process::spawn_shared`]): reads, system calls and
/// writes to its own stack only.
fn start_command(
    exec: &process::ExecArgs<'_>,
    cwd: &CString,
    [stdin, stdout, stderr]: [&OwnedFd; 3],
    hardening: &Hardening,
    report_pipe: &OwnedFd,
    report: &mut Report,
) {
    use std::fmt::Write as _;
    // The dispositions are the defaults already: the monitor reset them before forking the init.
    process::unblock_all_signals();
    // Its own session and process group: a timeout kills the command with everything it started.
    if let Err(errno) = nix::unistd::setsid() {
        let _ = write!(report, "setsid: {}", errno.desc());
        return;
    }
    for (fd, target) in [(stdin, 0), (stdout, 1), (stderr, 2)] {
        if let Err(errno) = dup_onto(fd, target) {
            let _ = write!(report, "dup2: {}", errno.desc());
            return;
        }
    }
    if let Err(errno) = nix::unistd::chdir(cwd.as_c_str()) {
        let _ = write!(report, "chdir {:?}: {}", cwd, errno.desc());
        return;
    }
    // Hardening needs the Landlock ruleset descriptor; it is close-on-exec, like the report pipe.
    if let Err(error) = hardening.apply_in_child() {
        let _ = write!(report, "hardening: {error}");
        return;
    }
    // The originals (one may be 0, 1 or 2 by now) are closed by number; the init's own copies
    // are untouched, the descriptor table being the child's own.
    process::close_descriptors_from(3, report_pipe.as_raw_fd());
    let errno = exec.exec();
    let _ = write!(report, "execve {:?}: {}", exec.program(), errno.desc());
}

fn dup_onto(fd: &OwnedFd, target: i32) -> Result<(), nix::errno::Errno> {
    match target {
        0 => nix::unistd::dup2_stdin(fd),
        1 => nix::unistd::dup2_stdout(fd),
        _ => nix::unistd::dup2_stderr(fd),
    }
}

/// Signals the process group of the command, then every process that is still in its session
/// (a child that made its own process group is still in the session unless it also called setsid).
fn kill_session(leader: i32, signal: Signal) {
    let _ = kill(Pid::from_raw(-leader), signal);
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else { continue };
        if pid == 1 {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command name (which may hold spaces and parentheses): state ppid pgrp session.
        let Some(after_name) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        let session = after_name.split_whitespace().nth(3).and_then(|s| s.parse::<i32>().ok());
        if session == Some(leader) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}
