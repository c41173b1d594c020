//! The host's side of a sandbox: create it, run commands in it, destroy it.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::unistd::Pid;
use sandguard_policy::{NetworkPolicy, ResourceLimits};

use crate::cgroup::{Cgroup, CgroupLimits, CgroupUsage};
use crate::error::Error;
use crate::files::FileOps;
use crate::init::InitSpec;
use crate::protocol::{self, Reply, Request};
use crate::rootfs;
use crate::start::{self, IdMapping};
use crate::sys::harden::{Hardening, HardeningOptions, LandlockMode, Rlimits};
use crate::sys::process;

/// How to build a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// A name for the sandbox's cgroup and host name: `[a-z0-9-]`, as a `SandboxId` is.
    pub name: String,
    /// Limits of the whole sandbox (memory, pids, cpus, disk) and defaults for its commands.
    pub limits: ResourceLimits,
    /// The cgroup to create the sandbox's under, relative to the hierarchy root; `None`: under the
    /// cgroup this process runs in.
    pub cgroup_parent: Option<PathBuf>,
    /// Run without cgroups or Landlock when the kernel lacks them, instead of refusing to start.
    /// Off by default: a sandbox never silently runs weaker than asked.
    pub allow_weaker: bool,
    /// The network: only loopback by default. `Proxied` is refused until the egress proxy exists.
    pub network: NetworkPolicy,
}

impl SandboxConfig {
    /// A config with `limits` and the safe defaults.
    pub fn new(name: impl Into<String>, limits: ResourceLimits) -> Self {
        Self { name: name.into(), limits, cgroup_parent: None, allow_weaker: false, network: NetworkPolicy::None }
    }
}

/// One command to run.
#[derive(Debug, Clone)]
pub struct Command {
    /// Program and arguments; the program is searched on the `PATH` of `env`.
    pub argv: Vec<OsString>,
    /// The complete environment (nothing is inherited from the host).
    pub env: Vec<(OsString, OsString)>,
    /// Working directory inside the sandbox.
    pub cwd: PathBuf,
    /// Bytes fed to standard input, which is then closed.
    pub stdin: Vec<u8>,
    /// Wall-clock limit; when it fires, every process of the command's session is killed.
    pub timeout: Duration,
    /// Bytes of stdout plus stderr kept; the rest is read and dropped, and flagged.
    pub output_limit: u64,
}

impl Command {
    /// `argv` with the default environment (`PATH`, `HOME`, `LANG`), `/workspace`, no input, and
    /// the timeout and output limit of `limits`.
    pub fn new<I, S>(argv: I, limits: &ResourceLimits) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self {
            argv: argv.into_iter().map(Into::into).collect(),
            env: default_env(),
            cwd: PathBuf::from("/workspace"),
            stdin: Vec::new(),
            timeout: limits.timeout,
            output_limit: limits.output,
        }
    }
}

/// The environment every command starts from.
pub fn default_env() -> Vec<(OsString, OsString)> {
    [
        ("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"),
        ("HOME", "/home/sandbox"),
        ("LANG", "C.UTF-8"),
        ("USER", "sandbox"),
    ]
    .into_iter()
    .map(|(name, value)| (OsString::from(name), OsString::from(value)))
    .collect()
}

/// Which stream a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// How a command ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Signal number, when a signal ended it.
    pub signal: Option<i32>,
    /// What it wrote to stdout (empty when streamed).
    pub stdout: Vec<u8>,
    /// What it wrote to stderr (empty when streamed).
    pub stderr: Vec<u8>,
    /// Bytes written to stdout and stderr in all.
    pub output_bytes: u64,
    /// Output beyond the limit was dropped.
    pub truncated: bool,
    /// The timeout fired.
    pub timed_out: bool,
    /// Wall-clock time from start to end.
    pub duration: Duration,
    /// CPU time of the command's main process and the children it waited for.
    pub cpu_time: Duration,
    /// Largest resident set of the main process, in bytes.
    pub peak_memory_bytes: u64,
}

type Waiters = Arc<Mutex<HashMap<u64, Sender<Reply>>>>;

/// What every sandbox's cgroup is named: this, then the sandbox's name.
const CGROUP_PREFIX: &str = "sandguard-";
/// How long a sandbox's cgroup must have been empty to count as abandoned; a starting sandbox
/// moves its init in within milliseconds of making it.
const ABANDONED_AFTER: Duration = Duration::from_secs(10);

/// The waiter that `Ready` or `SetupFailed` is routed to; commands are numbered from 1.
const SETUP_ID: u64 = 0;

/// A started command: its pipes, and the channel its end is reported on.
#[derive(Debug)]
pub(crate) struct Spawned {
    /// Its PID inside the sandbox.
    pub(crate) pid: i32,
    /// The write end of its stdin (take it to feed or close it).
    pub(crate) stdin: Option<OwnedFd>,
    /// The read end of its stdout.
    pub(crate) stdout: OwnedFd,
    /// The read end of its stderr.
    pub(crate) stderr: OwnedFd,
    /// Where the init's `Exited` report arrives.
    pub(crate) replies: Receiver<Reply>,
    pub(crate) registration: Registration,
}

/// A command whose start was requested: [`started`](Self::started) waits for the init's answer.
#[derive(Debug)]
struct Requested {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
    replies: Receiver<Reply>,
    registration: Registration,
}

impl Requested {
    /// Waits (at most 10 s: the init answers at once once it is ready) for the command's start.
    fn started(self) -> Result<Spawned, Error> {
        let Self { stdin, stdout, stderr, replies, registration } = self;
        let pid = match replies.recv_timeout(Duration::from_secs(10)) {
            Ok(Reply::Started { pid, .. }) => pid,
            Ok(Reply::SpawnFailed { error, .. }) => return Err(Error::Spawn(error)),
            Ok(other) => return Err(Error::Exec(format!("unexpected reply {other:?}"))),
            Err(_) => return Err(Error::Gone),
        };
        Ok(Spawned { pid, stdin: Some(stdin), stdout, stderr, replies, registration })
    }
}

/// What [`Sandbox::run_once`] did.
#[derive(Debug)]
#[must_use = "the command's result and the sandbox's destruction are reported here"]
pub struct RunOnce {
    /// The Landlock ABI the command ran under (0: none).
    pub landlock_abi: u32,
    /// Whether the sandbox ran with its cgroup limits (false only with `allow_weaker`).
    pub has_cgroup: bool,
    /// How the command ended, or why it could not start.
    pub output: Result<Output, Error>,
    /// Whether everything of the sandbox is gone: the cgroup's removal, as [`Sandbox::destroy`].
    pub destroyed: Result<(), Error>,
}

/// Keeps a command's reply channel registered; deregisters it when dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) id: u64,
    waiters: Waiters,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.waiters).remove(&self.id);
    }
}

/// A running sandbox. Dropping it destroys it.
#[derive(Debug)]
pub struct Sandbox {
    name: String,
    /// PID 1 of the sandbox, our child: killing it ends every process of the sandbox.
    init_pid: i32,
    control: Arc<OwnedFd>,
    waiters: Waiters,
    next_id: AtomicU64,
    cgroup: Option<Cgroup>,
    limits: ResourceLimits,
    landlock_abi: u32,
    /// Opened on first use (a sandbox that only runs commands never pays for it, nor for the
    /// root's mounts staying alive after its init until the descriptor closes).
    files: OnceLock<FileOps>,
    /// The host uid and gid of the sandbox's user, who owns files written through `files`.
    command_owner: (u32, u32),
    /// Routes the init's replies to the commands waiting for them (see `dispatch`).
    reply_thread: Option<std::thread::JoinHandle<()>>,
    destroyed: bool,
}

impl Sandbox {
    /// Creates a sandbox: a cgroup with the limits, then an init in new user, PID, mount,
    /// network, UTS, IPC and cgroup namespaces, pivoted into a private root.
    ///
    /// # Errors
    /// Names the missing kernel feature or the failed step; nothing is left behind.
    pub fn create(config: &SandboxConfig) -> Result<Self, Error> {
        Self::create_placed(config, None, rootfs::skeleton::shared)
    }

    /// As [`create`](Self::create), with the sandbox's cgroup nested inside `parent` (e.g. a
    /// cgroup that fences several sandboxes together).
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn create_inside(config: &SandboxConfig, parent: &Cgroup) -> Result<Self, Error> {
        Self::create_placed(config, Some(parent), rootfs::skeleton::shared)
    }

    /// `skeleton` finds the host's shared skeleton of the root (`None`: the init writes its own);
    /// it is called while the monitor makes the namespaces.
    fn create_placed(
        config: &SandboxConfig,
        parent: Option<&Cgroup>,
        skeleton: fn() -> Option<PathBuf>,
    ) -> Result<Self, Error> {
        let (mut sandbox, setup_replies) = Self::begin(config, parent, skeleton)?;
        sandbox.wait_ready(&setup_replies)?;
        Ok(sandbox)
    }

    /// Removes the empty cgroups of sandboxes whose host was killed before it could destroy them
    /// (SIGKILL, a crash), under this process's cgroup or `cgroup_parent`, and returns how many
    /// directories went: what a service does when it starts. A running sandbox is never touched:
    /// its cgroup holds its processes, and one made less than ten seconds ago is left to its owner.
    ///
    /// # Errors
    /// When the cgroup hierarchies cannot be found or listed.
    pub fn remove_abandoned_cgroups(cgroup_parent: Option<&std::path::Path>) -> Result<usize, Error> {
        Ok(Cgroup::remove_abandoned(CGROUP_PREFIX, cgroup_parent, ABANDONED_AFTER)?)
    }

    /// Creates a sandbox for one command and runs it there, streaming its output to `sink`;
    /// the sandbox is destroyed when the command ends. The same as [`create`](Self::create),
    /// [`exec_streaming`](Self::exec_streaming) and [`destroy`](Self::destroy), only faster: the
    /// command is handed to the init while it builds the sandbox and starts the moment the
    /// sandbox is ready, and the init ends itself as soon as the command has ended (taking
    /// anything the command left running with it) instead of waiting to be killed. The timeout
    /// counts from the call.
    ///
    /// # Errors
    /// As [`create`](Self::create) when the sandbox cannot be built. Otherwise the command's
    /// result and the destruction's are in the [`RunOnce`] returned.
    ///
    /// # Example
    /// ```no_run
    /// use sandguard_exec::{Command, Sandbox, SandboxConfig};
    /// use sandguard_policy::ResourceLimits;
    ///
    /// let limits = ResourceLimits::default();
    /// let command = Command::new(["/bin/echo", "hello"], &limits);
    /// let mut stdout = Vec::new();
    /// let run = Sandbox::run_once(&SandboxConfig::new("job-1", limits), &command, &mut |_, chunk| {
    ///     stdout.extend_from_slice(chunk)
    /// })?;
    /// assert_eq!(run.output?.exit_code, Some(0));
    /// assert_eq!(stdout, b"hello\n");
    /// run.destroyed?;
    /// # Ok::<(), sandguard_exec::Error>(())
    /// ```
    pub fn run_once(
        config: &SandboxConfig,
        command: &Command,
        sink: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<RunOnce, Error> {
        let started = Instant::now();
        let (mut sandbox, setup_replies) = Self::begin(config, None, rootfs::skeleton::shared)?;
        // The init reads requests only once it is ready, in the order sent.
        let requested = sandbox.request_exec(command);
        // Should this request be lost, `destroy` ends the init all the same.
        let _ = protocol::send(sandbox.control.as_raw_fd(), &Request::ExitWhenIdle, &[]);
        // A failed setup explains itself better than the queued command's lost reply.
        sandbox.wait_ready(&setup_replies)?;
        let output =
            requested.and_then(Requested::started).and_then(|spawned| sandbox.run(spawned, command, sink, started));
        let (landlock_abi, has_cgroup) = (sandbox.landlock_abi, sandbox.has_cgroup());
        let destroyed = sandbox.destroy();
        Ok(RunOnce { landlock_abi, has_cgroup, output, destroyed })
    }

    /// Everything of `create` but the wait for the init's `Ready`, which arrives on the channel
    /// returned; requests sent meanwhile are served once the sandbox is ready.
    fn begin(
        config: &SandboxConfig,
        parent: Option<&Cgroup>,
        skeleton: fn() -> Option<PathBuf>,
    ) -> Result<(Self, Receiver<Reply>), Error> {
        validate_name(&config.name)?;
        if !matches!(config.network, NetworkPolicy::None) {
            return Err(Error::Setup {
                stage: "network".into(),
                error: "egress through a proxy is not available yet; only the loopback-only network is".into(),
            });
        }
        let limits = config.limits;
        let mapping = IdMapping::choose();
        let hardening = Hardening::new(&HardeningOptions {
            uid: mapping.command_uid,
            gid: mapping.command_gid,
            rlimits: Rlimits { file_size: limits.file_size, open_files: u64::from(limits.open_files) },
            landlock: if config.allow_weaker { LandlockMode::BestEffort } else { LandlockMode::Required },
        })
        .map_err(|error| Error::Hardening(error.to_string()))?;

        let (host_end, init_end) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .map_err(setup("socketpair"))?;
        let spec = InitSpec {
            control: init_end,
            hardening,
            disk_bytes: limits.disk,
            hostname: config.name.clone(),
            skeleton: None,
            landlock_required: !config.allow_weaker,
        };
        // The init's `Ready` reaches `wait_ready` through the reply thread (see `dispatch`).
        let control = Arc::new(host_end);
        let waiters: Waiters = Arc::new(Mutex::new(HashMap::new()));
        let (setup_sender, setup_replies) = mpsc::channel();
        lock(&waiters).insert(SETUP_ID, setup_sender);

        let mut sandbox = Self {
            name: config.name.clone(),
            init_pid: 0,
            control,
            waiters,
            next_id: AtomicU64::new(SETUP_ID + 1),
            cgroup: None,
            limits,
            landlock_abi: 0,
            files: OnceLock::new(),
            command_owner: mapping.host_ids_of_command_user(),
            reply_thread: None,
            destroyed: false,
        };
        sandbox.init_pid = start::start_init(spec, &mapping, skeleton)?;
        // Started only now, while the init builds its root: a thread started along with the
        // sandbox's first process took a core from it.
        sandbox.reply_thread = Some({
            let (control, waiters) = (Arc::clone(&sandbox.control), Arc::clone(&sandbox.waiters));
            std::thread::Builder::new()
                .name(format!("sandguard-{}", config.name))
                .spawn(move || dispatch(control.as_raw_fd(), &waiters))
                .map_err(io_setup("start the reply thread"))?
        });

        // The cgroup is made while the init builds its root, which takes longer: on two cores
        // the one costs no time on top of the other. The init joins it before anything else
        // runs in the sandbox (see `init::run`).
        let name = format!("{CGROUP_PREFIX}{}", config.name);
        let cgroup_limits = CgroupLimits::from(&limits);
        let created = match parent {
            Some(parent) => parent.create_child(&name, &cgroup_limits),
            None => Cgroup::create(&name, config.cgroup_parent.as_deref(), &cgroup_limits),
        };
        sandbox.cgroup = match created {
            Ok(cgroup) => Some(cgroup),
            Err(_) if config.allow_weaker => None,
            Err(error) => return Err(error.into()),
        };
        let joins = match &sandbox.cgroup {
            Some(cgroup) => self_join_files(cgroup)?,
            None => Vec::new(),
        };
        let join_fds: Vec<RawFd> = joins.iter().map(AsRawFd::as_raw_fd).collect();
        protocol::send(sandbox.control.as_raw_fd(), &Request::JoinCgroup, &join_fds)
            .map_err(io_setup("hand the cgroup to the init"))?;
        drop(joins);
        Ok((sandbox, setup_replies))
    }

    /// Waits for the init's `Ready` (or the step that failed).
    fn wait_ready(&mut self, setup_replies: &Receiver<Reply>) -> Result<(), Error> {
        let ready_reply = setup_replies.recv();
        lock(&self.waiters).remove(&SETUP_ID);
        match ready_reply {
            Ok(Reply::Ready { landlock_abi }) => self.landlock_abi = landlock_abi,
            Ok(Reply::SetupFailed { stage, error }) => return Err(Error::Setup { stage, error }),
            Ok(_) | Err(_) => {
                return Err(Error::Setup { stage: "sandbox init".into(), error: "ended before it was ready".into() });
            }
        }
        Ok(())
    }

    /// The sandbox's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Landlock ABI the sandbox's commands run under (0: none).
    pub fn landlock_abi(&self) -> u32 {
        self.landlock_abi
    }

    /// Whether the sandbox runs with its cgroup limits (false only with `allow_weaker`).
    pub fn has_cgroup(&self) -> bool {
        self.cgroup.is_some()
    }

    /// The sandbox's root as the host sees it (`/proc/PID/root` of its init); open files below it
    /// only with `RESOLVE_IN_ROOT`, never with plain path joins.
    pub fn host_root(&self) -> PathBuf {
        crate::rootfs::host_view(self.init_pid)
    }

    /// File operations inside the sandbox's root, symlink- and `..`-proof (`openat2` with
    /// `RESOLVE_IN_ROOT`), done from the host; files written are owned by the sandbox's user.
    ///
    /// # Errors
    /// [`Error::Gone`] once the sandbox is destroyed; what failed when the root cannot be opened.
    pub fn files(&self) -> Result<&FileOps, Error> {
        if self.destroyed {
            return Err(Error::Gone);
        }
        if let Some(files) = self.files.get() {
            return Ok(files);
        }
        // The init is our child and is reaped only when the sandbox is destroyed, so its PID
        // names it, alive, until then; once opened, the root stays reachable through the
        // descriptor whatever happens to that PID.
        let (uid, gid) = self.command_owner;
        let opened = FileOps::open_as_owner(&self.host_root(), uid, gid)?;
        // Two threads may open it at once; the first to finish is kept.
        Ok(self.files.get_or_init(|| opened))
    }

    /// The sandbox-wide limits it was created with.
    pub fn limits(&self) -> &ResourceLimits {
        &self.limits
    }

    /// The PID of the sandbox's init on the host.
    pub fn init_pid(&self) -> i32 {
        self.init_pid
    }

    /// Resource usage of the whole sandbox, from its cgroup.
    ///
    /// # Errors
    /// When the sandbox has no cgroup or it cannot be read.
    pub fn usage(&self) -> Result<CgroupUsage, Error> {
        match &self.cgroup {
            Some(cgroup) => Ok(cgroup.usage()?),
            None => Err(Error::NoCgroup),
        }
    }

    /// Runs `command` and collects its output (up to its output limit).
    ///
    /// # Errors
    /// When the command cannot be started (no such program, bad directory, ...) or the sandbox is gone.
    pub fn exec(&self, command: &Command) -> Result<Output, Error> {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut output = self.exec_streaming(command, &mut |stream, chunk| match stream {
            Stream::Stdout => stdout.extend_from_slice(chunk),
            Stream::Stderr => stderr.extend_from_slice(chunk),
        })?;
        output.stdout = stdout;
        output.stderr = stderr;
        Ok(output)
    }

    /// Runs `command`, handing each chunk of output to `sink` as it arrives.
    ///
    /// # Errors
    /// As [`exec`](Self::exec).
    pub fn exec_streaming(&self, command: &Command, sink: &mut dyn FnMut(Stream, &[u8])) -> Result<Output, Error> {
        let started = Instant::now();
        let spawned = self.spawn_raw(command)?;
        self.run(spawned, command, sink, started)
    }

    /// Starts `command` and hands back its pipes and the channel its end is reported on; the
    /// building block of [`exec`](Self::exec), background processes and sessions.
    pub(crate) fn spawn_raw(&self, command: &Command) -> Result<Spawned, Error> {
        self.request_exec(command)?.started()
    }

    /// Sends the request to start `command`; [`Requested::started`] waits for the init's answer.
    fn request_exec(&self, command: &Command) -> Result<Requested, Error> {
        if self.destroyed {
            return Err(Error::Gone);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, replies) = mpsc::channel();
        lock(&self.waiters).insert(id, sender);
        // From here on, dropping `registration` deregisters the waiter, whatever fails.
        let registration = Registration { id, waiters: Arc::clone(&self.waiters) };
        let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(exec_error("pipe"));
        let (stdin_read, stdin_write) = pipe()?;
        let (stdout_read, stdout_write) = pipe()?;
        let (stderr_read, stderr_write) = pipe()?;
        let request = Request::Exec {
            id,
            argv: command.argv.iter().map(|arg| arg.as_bytes().to_vec()).collect(),
            env: command.env.iter().map(|(name, value)| [name.as_bytes(), b"=", value.as_bytes()].concat()).collect(),
            cwd: command.cwd.as_os_str().as_bytes().to_vec(),
        };
        let fds = [stdin_read.as_raw_fd(), stdout_write.as_raw_fd(), stderr_write.as_raw_fd()];
        protocol::send(self.control.as_raw_fd(), &request, &fds)
            .map_err(|error| Error::Exec(format!("send: {error}")))?;
        drop((stdin_read, stdout_write, stderr_write));
        Ok(Requested { stdin: stdin_write, stdout: stdout_read, stderr: stderr_read, replies, registration })
    }

    /// Sends `signal` to every process of a spawned command's session.
    pub(crate) fn signal_command(&self, id: u64, signal: i32) -> Result<(), Error> {
        protocol::send(self.control.as_raw_fd(), &Request::Kill { id, signal }, &[])
            .map_err(|error| Error::Exec(format!("send: {error}")))
    }

    fn run(
        &self,
        spawned: Spawned,
        command: &Command,
        sink: &mut dyn FnMut(Stream, &[u8]),
        started: Instant,
    ) -> Result<Output, Error> {
        let Spawned { stdin: stdin_write, stdout: stdout_read, stderr: stderr_read, replies, registration, .. } =
            spawned;
        let id = registration.id;
        let replies = &replies;
        let deadline = started + command.timeout;
        // Input goes from its own thread, so a command that writes before it reads cannot
        // deadlock against us; with no input, stdin is closed at once (EOF).
        let stdin = command.stdin.clone();
        let feeder = match stdin_write {
            Some(pipe) if !stdin.is_empty() => Some(std::thread::spawn(move || {
                let mut pipe = std::fs::File::from(pipe);
                let _ = pipe.write_all(&stdin);
            })),
            unused => {
                drop(unused);
                None
            }
        };

        let mut output = Output::default();
        let mut streams = [(Some(stdout_read), Stream::Stdout), (Some(stderr_read), Stream::Stderr)];
        let mut exited: Option<Reply> = None;
        let mut exited_at: Option<Instant> = None;
        let mut kill_sent = false;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if exited.is_none() {
                match replies.try_recv() {
                    Ok(reply @ Reply::Exited { .. }) => {
                        exited = Some(reply);
                        exited_at = Some(Instant::now());
                    }
                    Ok(_) | Err(mpsc::TryRecvError::Empty) => {}
                    Err(mpsc::TryRecvError::Disconnected) => return Err(Error::Gone),
                }
            }
            let open = streams.iter().any(|(fd, _)| fd.is_some());
            if !open && exited.is_some() {
                break;
            }
            // A background process may hold the pipes open after the command itself ended:
            // give it a moment to finish writing, then stop listening.
            if exited_at.is_some_and(|at| at.elapsed() > Duration::from_millis(100)) {
                break;
            }
            let now = Instant::now();
            if now >= deadline && !kill_sent {
                output.timed_out = true;
                kill_sent = true;
                let _ = self.signal_command(id, libc::SIGKILL);
            }
            if kill_sent && now >= deadline + Duration::from_secs(2) {
                break;
            }
            let wait = if exited.is_some() || now >= deadline {
                Duration::from_millis(10)
            } else {
                (deadline - now).min(Duration::from_millis(if open { 50 } else { 5 }))
            };
            if !open {
                if let Ok(reply @ Reply::Exited { .. }) = replies.recv_timeout(wait) {
                    exited = Some(reply);
                    exited_at = Some(Instant::now());
                }
                continue;
            }
            let mut polled: Vec<PollFd<'_>> = streams
                .iter()
                .filter_map(|(fd, _)| fd.as_ref())
                .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
                .collect();
            let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
            match poll(&mut polled, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(errno) => return Err(Error::Exec(format!("poll: {}", errno.desc()))),
            }
            let ready: Vec<bool> = polled.iter().map(|fd| fd.any().unwrap_or(true)).collect();
            drop(polled);
            let mut ready = ready.into_iter();
            for (fd, stream) in &mut streams {
                let Some(pipe) = fd.as_ref() else { continue };
                if !ready.next().unwrap_or(false) {
                    continue;
                }
                match nix::unistd::read(pipe, &mut chunk) {
                    Ok(0) => *fd = None,
                    Ok(n) => {
                        let n_u64 = n as u64;
                        let room = command.output_limit.saturating_sub(output.output_bytes);
                        output.output_bytes = output.output_bytes.saturating_add(n_u64);
                        let keep = usize::try_from(room.min(n_u64)).unwrap_or(n);
                        if keep < n {
                            output.truncated = true;
                        }
                        if keep > 0 {
                            sink(*stream, &chunk[..keep]);
                        }
                    }
                    Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                    Err(_) => *fd = None,
                }
            }
        }
        if let Some(feeder) = feeder {
            let _ = feeder.join();
        }
        if exited.is_none() {
            // Killed at the deadline: wait for the init's word, briefly.
            if let Ok(reply @ Reply::Exited { .. }) = replies.recv_timeout(Duration::from_secs(2)) {
                exited = Some(reply);
            }
        }
        output.duration = started.elapsed();
        if let Some(Reply::Exited { code, signal, cpu_us, max_rss_kib, .. }) = exited {
            output.exit_code = code;
            output.signal = signal;
            output.cpu_time = Duration::from_micros(cpu_us);
            output.peak_memory_bytes = max_rss_kib.saturating_mul(1024);
        } else if output.timed_out {
            output.signal = Some(libc::SIGKILL);
        }
        Ok(output)
    }

    /// Kills every process of the sandbox and removes its cgroup; its mounts disappear with its
    /// mount namespace and it has no state on the host's disk.
    ///
    /// # Errors
    /// When the cgroup cannot be removed.
    pub fn destroy(mut self) -> Result<(), Error> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), Error> {
        if self.destroyed {
            return Ok(());
        }
        self.destroyed = true;
        // Killing PID 1 of the namespace kills every process in it, and the kernel reports PID 1
        // ended only once every other process of the namespace is gone: once it is reaped, the
        // cgroup is empty, and not even a zombie stays behind.
        if self.init_pid > 0 {
            let init = Pid::from_raw(self.init_pid);
            let _ = kill(init, Signal::SIGKILL);
            if !process::reap_within(init, Duration::from_secs(2)) {
                // A process stuck in the kernel holds the namespace up: reap the init whenever it
                // ends, without holding the caller up; the cgroup's removal reports what is left.
                let _ = std::thread::Builder::new()
                    .name("sandguard-reap".into())
                    .spawn(move || nix::sys::wait::waitpid(init, None));
            }
        }
        // The reply thread ends when the init's end of the socket closes; nothing of the sandbox
        // outlives `destroy`, not even that thread.
        let _ = nix::sys::socket::shutdown(self.control.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        if let Some(thread) = self.reply_thread.take() {
            let _ = thread.join();
        }
        match self.cgroup.take() {
            Some(cgroup) => Ok(cgroup.remove()?),
            None => Ok(()),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Routes each reply from the init to the command waiting for it.
fn dispatch(control: RawFd, waiters: &Waiters) {
    let mut buffer = Vec::new();
    while let Ok(Some((reply, _))) = protocol::receive::<Reply>(control, &mut buffer) {
        let id = match &reply {
            Reply::Started { id, .. } | Reply::SpawnFailed { id, .. } | Reply::Exited { id, .. } => *id,
            Reply::Ready { .. } | Reply::SetupFailed { .. } => SETUP_ID,
        };
        if let Some(waiter) = lock(waiters).get(&id) {
            let _ = waiter.send(reply);
        }
    }
    // The init is gone: every waiter learns it from its closed channel.
    lock(waiters).clear();
}

/// The files through which a process moves itself into `cgroup`: v1's per-thread `tasks` (the
/// init is single-threaded, so its thread is the whole process), v2's `cgroup.procs`.
fn self_join_files(cgroup: &Cgroup) -> Result<Vec<OwnedFd>, Error> {
    let file = match cgroup.version() {
        crate::cgroup::CgroupVersion::V1 => "tasks",
        crate::cgroup::CgroupVersion::V2 => "cgroup.procs",
    };
    cgroup
        .paths()
        .iter()
        .map(|dir| {
            std::fs::OpenOptions::new()
                .write(true)
                // sandguard:allow(path-traversal) -- the joined name is a constant or our own, never a user's
                .open(dir.join(file))
                .map(OwnedFd::from)
                .map_err(io_setup("open the cgroup's task list"))
        })
        .collect()
}

fn validate_name(name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid { Ok(()) } else { Err(Error::InvalidName(name.to_owned())) }
}

fn setup(stage: &'static str) -> impl FnOnce(nix::errno::Errno) -> Error {
    move |errno| Error::Setup { stage: stage.to_owned(), error: errno.desc().to_owned() }
}

fn io_setup(stage: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |error| Error::Setup { stage: stage.to_owned(), error: error.to_string() }
}

fn exec_error(stage: &'static str) -> impl FnOnce(nix::errno::Errno) -> Error {
    move |errno| Error::Exec(format!("{stage}: {}", errno.desc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The root's tree (`/`, `/etc`, `/dev`): names, kinds, modes, link targets and the contents
    /// of regular files, without owners (a shared skeleton belongs to the host's root, unmapped
    /// inside).
    fn tree_of(sandbox: &Sandbox) -> String {
        let script = "for f in /* /etc/* /dev/*; do \
            if [ -L \"$f\" ]; then echo \"link $f $(readlink \"$f\")\"; \
            elif [ -d \"$f\" ]; then echo \"dir $f $(stat -c %a \"$f\")\"; \
            elif [ -f \"$f\" ]; then echo \"file $f $(stat -c %a \"$f\") $(md5sum < \"$f\")\"; \
            else echo \"other $f $(stat -c %a \"$f\")\"; fi; done";
        let output = sandbox.exec(&Command::new(["/bin/sh", "-c", script], sandbox.limits())).expect("sh runs");
        assert_eq!(output.exit_code, Some(0), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    #[test]
    fn the_root_is_the_same_from_a_shared_skeleton_or_one_of_its_own() {
        let config = SandboxConfig::new(format!("root-{}", std::process::id()), ResourceLimits::default());
        assert!(rootfs::skeleton::shared().is_some(), "root on this machine can keep skeletons");
        let from_shared =
            Sandbox::create_placed(&config, None, rootfs::skeleton::shared).expect("sandbox on the shared skeleton");
        let tree = tree_of(&from_shared);
        from_shared.destroy().expect("destroy");
        // Same name, so the same `hosts` and `hostname`.
        let on_its_own = Sandbox::create_placed(&config, None, || None).expect("sandbox writing its skeleton");
        assert_eq!(tree_of(&on_its_own), tree);
        on_its_own.destroy().expect("destroy");
        for expected in ["file /etc/passwd 644", "file /etc/hostname 644", "link /bin usr/bin", "other /dev/null 666"] {
            assert!(tree.contains(expected), "{expected}:\n{tree}");
        }
        assert!(!tree.contains("shadow"), "{tree}");
    }
}
