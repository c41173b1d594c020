//! Background processes: commands that keep running while the caller does other things.
//!
//! [`Sandbox::start_process`] starts a command and returns at once with a [`Process`], a handle
//! (`Send + Sync`, usable from several threads) to ask its [status](Process::status), read its
//! [logs](Process::logs), [signal](Process::kill) it, feed its [stdin](Process::write_stdin), and
//! wait, each time with a timeout, for it to [exit](Process::wait), to
//! [print something](Process::wait_for_log) or to [listen on a port](Process::wait_for_port).
//!
//! # Lifetime
//! - The command's own [`timeout`](Command::timeout) still applies: when it expires, every process
//!   of the command's session is killed (`SIGKILL`) and [`ExitStatus::timed_out`] says so. A
//!   long-running server needs a command whose timeout is as long as it should live (the
//!   facade takes it from the policy).
//! - Dropping a `Process` **detaches** it: the command keeps running, its output is still
//!   drained and its timeout still enforced, but its stdin is closed. To stop it, call
//!   [`kill`](Process::kill) first. Destroying the sandbox kills it with everything else.
//! - A `Process` does not borrow its [`Sandbox`]: it can be stored and moved freely. Once the
//!   sandbox is gone its status is [`ProcessStatus::Gone`].
//!
//! # Logs
//! A host thread drains stdout and stderr as they are written, so the process never blocks on a
//! full pipe. The **last** [`output_limit`](Command::output_limit) bytes of both streams together
//! are kept, oldest dropped first: for a server the recent output is the useful part (as with
//! `docker logs --tail`); [`Logs::truncated`] says when something was dropped. (A one-shot
//! [`Sandbox::exec`] keeps the first bytes instead: there the beginning explains the rest.)
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! use sandguard_exec::{Command, Sandbox, SandboxConfig};
//! use sandguard_policy::ResourceLimits;
//!
//! let limits = ResourceLimits::default();
//! let sandbox = Sandbox::create(&SandboxConfig::new("demo", limits))?;
//! let server = Command::new(["python3", "-m", "http.server", "8000", "--bind", "127.0.0.1"], &limits);
//! let process = sandbox.start_process(&server)?;
//! process.wait_for_port(8000, Duration::from_secs(5))?;
//! process.kill(libc::SIGTERM)?;
//! let status = process.wait(Duration::from_secs(5))?;
//! assert_eq!(status.signal, Some(libc::SIGTERM));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::Error;
use crate::protocol::Reply;
use crate::sandbox::{Command, Sandbox, Spawned, Stream};

/// How long output is still read after the command's main process ended: a background child
/// may hold the pipes open, and we do not wait for it (as [`Sandbox::exec`] does not).
const EXIT_GRACE: Duration = Duration::from_millis(100);
/// One read from a pipe.
const CHUNK: usize = 64 * 1024;
/// Chunks of the same stream are merged up to this size, so dropping the oldest bytes moves
/// little memory.
const MERGE: usize = 64 * 1024;
/// How often the sandbox's socket table is read while waiting for a port.
const PORT_POLL: Duration = Duration::from_millis(5);

impl Sandbox {
    /// Starts `command` in the background and returns at once.
    ///
    /// The process's stdin is a pipe: `command.stdin` is written to it first, then it stays open
    /// for [`Process::write_stdin`] until [`Process::close_stdin`] or the `Process` is dropped.
    /// Its timeout and output limit are those of `command`; see the [module docs](self).
    ///
    /// # Errors
    /// As [`exec`](Self::exec) when the command cannot be started; [`Error::Exec`] when the host
    /// cannot set up its supervision (the command is then killed).
    pub fn start_process(&self, command: &Command) -> Result<Process, Error> {
        let started = Instant::now();
        let mut spawned = self.spawn_raw(command)?;
        let id = spawned.registration.id;
        let pid = spawned.pid;
        let stdin = spawned.stdin.take();
        let limit = usize::try_from(command.output_limit).unwrap_or(usize::MAX);
        let prepared = CommandSignaller::new(self.init_pid(), pid).and_then(|signaller| {
            let proc_dir = File::open(format!("/proc/{}", self.init_pid()))
                .map_err(|error| Error::Exec(format!("open the sandbox's /proc entry: {error}")))?;
            Ok((Arc::new(signaller), proc_dir))
        });
        let (signaller, proc_dir) = match prepared {
            Ok(prepared) => prepared,
            Err(error) => {
                let _ = self.signal_command(id, libc::SIGKILL);
                return Err(error);
            }
        };
        let deadline = started.checked_add(command.timeout);
        let supervision = match supervise(spawned, started, deadline, Arc::clone(&signaller), ProcessLog::new(limit)) {
            Ok(supervision) => supervision,
            Err(error) => {
                let _ = self.signal_command(id, libc::SIGKILL);
                return Err(error);
            }
        };
        let stdin = Arc::new(Mutex::new(stdin.map(File::from)));
        if !command.stdin.is_empty() {
            feed_stdin(&stdin, command.stdin.clone());
        }
        Ok(Process { id, pid, supervision, stdin, signaller, proc_dir })
    }
}

/// Writes `input` to the process's stdin from a thread of its own (the process may read it
/// slowly, or never), holding the stdin lock so later writes queue behind it.
fn feed_stdin(stdin: &Arc<Mutex<Option<File>>>, input: Vec<u8>) {
    let slot = Arc::clone(stdin);
    let (held, is_held) = mpsc::channel();
    let feeder = std::thread::Builder::new().name("sandguard-stdin".into()).spawn(move || {
        let mut pipe = lock(&slot);
        let _ = held.send(());
        let failed = pipe.as_mut().is_some_and(|file| file.write_all(&input).is_err());
        if failed {
            *pipe = None;
        }
    });
    if feeder.is_ok() {
        let _ = is_held.recv();
    }
}

/// A command running in the background; see the [module docs](self).
pub struct Process {
    id: u64,
    pid: i32,
    supervision: Arc<Supervision<ProcessLog>>,
    stdin: Arc<Mutex<Option<File>>>,
    signaller: Arc<CommandSignaller>,
    /// `/proc/<init>` of the sandbox, opened while it surely lived: it never points at a later
    /// process that reuses the PID.
    proc_dir: File,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process").field("id", &self.id).field("pid", &self.pid).field("status", &self.status()).finish()
    }
}

/// Where a background process is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessStatus {
    /// Its main process has not ended yet.
    Running,
    /// Its main process ended.
    Exited(ExitStatus),
    /// The sandbox was destroyed (or its init died) before the end was reported; the process
    /// died with it.
    Gone,
}

/// How a background process (or a session's shell) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExitStatus {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Signal number, when a signal ended it.
    pub signal: Option<i32>,
    /// Its timeout fired and it was killed.
    pub timed_out: bool,
    /// Wall-clock time from start to end.
    pub duration: Duration,
    /// CPU time of the main process and the children it waited for.
    pub cpu_time: Duration,
    /// Largest resident set of the main process, in bytes.
    pub peak_memory_bytes: u64,
}

impl ExitStatus {
    /// It exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}")?,
            (None, Some(signal)) => write!(f, "signal {signal}")?,
            (None, None) => f.write_str("unknown status")?,
        }
        if self.timed_out {
            f.write_str(", timed out")?;
        }
        Ok(())
    }
}

/// What a background process wrote, as far as it is kept (see [`Process::logs`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Logs {
    /// The kept end of its stdout.
    pub stdout: Vec<u8>,
    /// The kept end of its stderr.
    pub stderr: Vec<u8>,
    /// Bytes it wrote to stdout and stderr in all.
    pub total_bytes: u64,
    /// Older output was dropped to stay within the limit.
    pub truncated: bool,
}

/// What a wait was for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Condition {
    /// The process to end.
    Exit,
    /// A byte string in the output.
    Log {
        /// The substring looked for.
        pattern: Vec<u8>,
        /// The stream it was looked for in; `None`: either.
        stream: Option<Stream>,
    },
    /// A TCP port to be listening in the sandbox.
    Port(u16),
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exit => f.write_str("the process to exit"),
            Self::Log { pattern, stream } => {
                write!(f, "{:?} in ", String::from_utf8_lossy(pattern))?;
                f.write_str(match stream {
                    Some(Stream::Stdout) => "stdout",
                    Some(Stream::Stderr) => "stderr",
                    None => "the output",
                })
            }
            Self::Port(port) => write!(f, "TCP port {port} to listen"),
        }
    }
}

/// Why a wait on a background process did not see what it waited for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The time ran out; the process may still run.
    #[error("timed out after {waited:?} waiting for {condition}")]
    Timeout {
        /// What was waited for.
        condition: Condition,
        /// How long.
        waited: Duration,
    },
    /// The process ended before the condition held.
    #[error("the process ended ({status}) before {condition}")]
    Ended {
        /// What was waited for.
        condition: Condition,
        /// How it ended.
        status: ExitStatus,
    },
    /// The sandbox was destroyed; the process died with it.
    #[error("the sandbox is gone")]
    Gone,
    /// The sandbox's socket table could not be read.
    #[error("cannot read the sandbox's socket table: {0}")]
    SocketTable(String),
}

impl Process {
    /// The host's id for the command (as in the executor's replies).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Its main process's PID inside the sandbox.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether it still runs, and how it ended if not. Output is fully read before the end is
    /// reported, so [`logs`](Self::logs) after a non-running status is complete.
    pub fn status(&self) -> ProcessStatus {
        status_of(self.supervision.lock().end)
    }

    /// A copy of the output kept so far: the last `output_limit` bytes of stdout and stderr
    /// together.
    pub fn logs(&self) -> Logs {
        self.supervision.lock().sink.logs()
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to every process of the command's session. Does
    /// nothing once it has ended (its PID may be another's by then).
    ///
    /// # Errors
    /// [`Error::Exec`] when `signal` is not a signal number.
    pub fn kill(&self, signal: i32) -> Result<(), Error> {
        let signal = Signal::try_from(signal).map_err(|_| Error::Exec(format!("{signal} is not a signal number")))?;
        if self.supervision.lock().end.is_none() {
            self.signaller.signal(signal);
        }
        Ok(())
    }

    /// Writes `bytes` to its stdin; waits while the pipe is full (until the process reads, or
    /// ends), and behind the command's own `stdin` bytes if it has not read them yet.
    ///
    /// # Errors
    /// [`Error::Exec`] when stdin was closed or the process no longer reads it.
    pub fn write_stdin(&self, bytes: &[u8]) -> Result<(), Error> {
        let mut stdin = lock(&self.stdin);
        let Some(pipe) = stdin.as_mut() else { return Err(Error::Exec("the process's stdin is closed".into())) };
        pipe.write_all(bytes).map_err(|error| {
            *stdin = None;
            Error::Exec(format!("write to the process's stdin: {error}"))
        })
    }

    /// Closes its stdin: it reads end of file (once it has read what was written before).
    /// Waits, as [`write_stdin`](Self::write_stdin) does, for a write still in progress.
    pub fn close_stdin(&self) {
        *lock(&self.stdin) = None;
    }

    /// Waits up to `timeout` for it to end.
    ///
    /// # Errors
    /// [`WaitError::Timeout`] when it still runs; [`WaitError::Gone`] when the sandbox is.
    pub fn wait(&self, timeout: Duration) -> Result<ExitStatus, WaitError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.supervision.lock();
        loop {
            match state.end {
                Some(End::Exited(status)) => return Ok(status),
                Some(End::Gone) => return Err(WaitError::Gone),
                None if passed(deadline) => {
                    return Err(WaitError::Timeout { condition: Condition::Exit, waited: timeout });
                }
                None => state = self.supervision.wait_change(state, deadline),
            }
        }
    }

    /// Waits up to `timeout` until `pattern` appears in its output: in `stream`, or in either
    /// when `None`. Output still kept when the wait starts counts, and so does everything
    /// written after, even what the limit later drops; a pattern split across reads matches.
    ///
    /// # Errors
    /// [`WaitError::Timeout`]; [`WaitError::Ended`] when the process ended (its output fully
    /// read) without printing it; [`WaitError::Gone`].
    pub fn wait_for_log(
        &self,
        pattern: impl AsRef<[u8]>,
        stream: Option<Stream>,
        timeout: Duration,
    ) -> Result<(), WaitError> {
        let pattern = pattern.as_ref();
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.supervision.lock();
        let watch = state.sink.watch(pattern, stream);
        let result = loop {
            if state.sink.found(watch) {
                break Ok(());
            }
            let condition = || Condition::Log { pattern: pattern.to_vec(), stream };
            match state.end {
                Some(End::Exited(status)) => break Err(WaitError::Ended { condition: condition(), status }),
                Some(End::Gone) => break Err(WaitError::Gone),
                None if passed(deadline) => break Err(WaitError::Timeout { condition: condition(), waited: timeout }),
                None => state = self.supervision.wait_change(state, deadline),
            }
        };
        state.sink.unwatch(watch);
        result
    }

    /// Waits up to `timeout` until a TCP socket (IPv4 or IPv6) listens on `port` in the
    /// sandbox's network namespace, whichever process of the sandbox owns it. Polls the
    /// sandbox's socket table every few milliseconds.
    ///
    /// # Errors
    /// [`WaitError::Timeout`]; [`WaitError::Ended`] when the process ended first;
    /// [`WaitError::Gone`]; [`WaitError::SocketTable`] when the table cannot be read.
    pub fn wait_for_port(&self, port: u16, timeout: Duration) -> Result<(), WaitError> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let listening = self.listening(port);
            let state = self.supervision.lock();
            match (listening, state.end) {
                (Ok(true), _) => return Ok(()),
                (_, Some(End::Exited(status))) => {
                    return Err(WaitError::Ended { condition: Condition::Port(port), status });
                }
                (_, Some(End::Gone)) => return Err(WaitError::Gone),
                (Err(error), None) => {
                    // The table vanishes with the sandbox: give the end a moment to be reported.
                    let until = Instant::now() + 2 * EXIT_GRACE;
                    let mut state = state;
                    while state.end.is_none() && Instant::now() < until {
                        state = self.supervision.wait_change(state, Some(until));
                    }
                    return Err(match state.end {
                        Some(End::Exited(status)) => WaitError::Ended { condition: Condition::Port(port), status },
                        Some(End::Gone) => WaitError::Gone,
                        None => WaitError::SocketTable(error),
                    });
                }
                (Ok(false), None) if passed(deadline) => {
                    return Err(WaitError::Timeout { condition: Condition::Port(port), waited: timeout });
                }
                (Ok(false), None) => {
                    // A sleep, not a wait on `changed`: a chatty process must not make us poll faster.
                    drop(state);
                    let left =
                        deadline.map_or(PORT_POLL, |deadline| deadline.saturating_duration_since(Instant::now()));
                    std::thread::sleep(left.min(PORT_POLL));
                }
            }
        }
    }

    /// Whether `port` is in LISTEN state in the sandbox's `/proc/net/tcp` or `tcp6`.
    fn listening(&self, port: u16) -> Result<bool, String> {
        for table in ["net/tcp", "net/tcp6"] {
            let opened = nix::fcntl::openat(
                self.proc_dir.as_fd(),
                table,
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            );
            let fd = match opened {
                Ok(fd) => fd,
                // No IPv6 in the kernel: only the IPv4 table exists.
                Err(nix::errno::Errno::ENOENT) if table == "net/tcp6" => continue,
                Err(errno) => return Err(format!("{table}: {}", errno.desc())),
            };
            let mut text = String::new();
            File::from(fd).read_to_string(&mut text).map_err(|error| format!("{table}: {error}"))?;
            if listens_on(&text, port) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Whether a `/proc/net/tcp`-format table has a socket in LISTEN state (`0A`) on `port`.
fn listens_on(table: &str, port: u16) -> bool {
    table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1);
        let state = fields.nth(1);
        let local_port =
            local.and_then(|address| address.rsplit(':').next()).and_then(|hex| u16::from_str_radix(hex, 16).ok());
        state == Some("0A") && local_port == Some(port)
    })
}

fn status_of(end: Option<End>) -> ProcessStatus {
    match end {
        None => ProcessStatus::Running,
        Some(End::Exited(status)) => ProcessStatus::Exited(status),
        Some(End::Gone) => ProcessStatus::Gone,
    }
}

fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|deadline| Instant::now() >= deadline)
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a supervised command's output goes, chunk by chunk, as it is read.
pub(crate) trait OutputSink: Send + 'static {
    /// `bytes` were just read from `stream`.
    fn output(&mut self, stream: Stream, bytes: &[u8]);
}

/// How a supervised command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Its main process ended; all its output that came before was read.
    Exited(ExitStatus),
    /// The sandbox went away first.
    Gone,
}

/// A command watched by two host threads: one waits for its end (and kills it at its
/// deadline), one drains its output into a sink. Waiters sleep on `changed`, which is notified
/// after every chunk and at the end.
#[derive(Debug)]
pub(crate) struct Supervision<S> {
    state: Mutex<Supervised<S>>,
    changed: Condvar,
}

/// The state shared with a supervised command's threads.
#[derive(Debug)]
pub(crate) struct Supervised<S> {
    /// Where output went.
    pub(crate) sink: S,
    /// Set once, after the last output was read.
    pub(crate) end: Option<End>,
}

impl<S> Supervision<S> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Supervised<S>> {
        lock(&self.state)
    }

    /// Sleeps until the state changes or `deadline` passes (`None`: no deadline).
    pub(crate) fn wait_change<'a>(
        &self,
        guard: MutexGuard<'a, Supervised<S>>,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, Supervised<S>> {
        match deadline {
            None => self.changed.wait(guard).unwrap_or_else(PoisonError::into_inner),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                self.changed.wait_timeout(guard, left).unwrap_or_else(PoisonError::into_inner).0
            }
        }
    }

    fn publish(&self, change: impl FnOnce(&mut Supervised<S>)) {
        change(&mut self.lock());
        self.changed.notify_all();
    }
}

/// Starts the two threads that watch a spawned command (whose stdin the caller took), and kills
/// it at `deadline`.
///
/// # Errors
/// [`Error::Exec`] when a thread cannot start; the caller must then kill the command.
pub(crate) fn supervise<S: OutputSink>(
    spawned: Spawned,
    started: Instant,
    deadline: Option<Instant>,
    signaller: Arc<CommandSignaller>,
    sink: S,
) -> Result<Arc<Supervision<S>>, Error> {
    let Spawned { stdout, stderr, replies, registration, .. } = spawned;
    let supervision =
        Arc::new(Supervision { state: Mutex::new(Supervised { sink, end: None }), changed: Condvar::new() });
    // The reply thread closes `wake_write` when the end is known, which wakes the drainer's poll.
    let (wake_read, wake_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|errno| Error::Exec(format!("pipe: {}", errno.desc())))?;
    let (ended, end) = mpsc::channel();
    let name = format!("sandguard-cmd-{}", registration.id);
    let thread_error = |error: std::io::Error| Error::Exec(format!("start a supervising thread: {error}"));
    std::thread::Builder::new()
        .name(name.clone())
        .stack_size(256 * 1024)
        .spawn(move || {
            let status = await_end(&replies, started, deadline, &signaller);
            let _ = ended.send(status);
            drop((wake_write, registration));
        })
        .map_err(thread_error)?;
    let shared = Arc::clone(&supervision);
    std::thread::Builder::new()
        .name(name)
        .stack_size(256 * 1024)
        .spawn(move || drain(&shared, [stdout, stderr], wake_read, &end))
        .map_err(thread_error)?;
    Ok(supervision)
}

/// Waits for the command's `Exited` reply, killing its session at `deadline`; `None` when the
/// sandbox went away first.
fn await_end(
    replies: &Receiver<Reply>,
    started: Instant,
    deadline: Option<Instant>,
    signaller: &CommandSignaller,
) -> Option<ExitStatus> {
    let mut timed_out = false;
    loop {
        let received = match deadline {
            Some(deadline) if !timed_out => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    timed_out = true;
                    signaller.signal(Signal::SIGKILL);
                    continue;
                }
                replies.recv_timeout(left)
            }
            _ => replies.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(Reply::Exited { code, signal, cpu_us, max_rss_kib, .. }) => {
                return Some(ExitStatus {
                    code,
                    signal,
                    timed_out,
                    duration: started.elapsed(),
                    cpu_time: Duration::from_micros(cpu_us),
                    peak_memory_bytes: max_rss_kib.saturating_mul(1024),
                });
            }
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// Reads both pipes into the sink until the end is known and the pipes are at end of file (or
/// [`EXIT_GRACE`] has passed), then publishes the end.
fn drain<S: OutputSink>(
    supervision: &Supervision<S>,
    pipes: [OwnedFd; 2],
    wake: OwnedFd,
    end: &Receiver<Option<ExitStatus>>,
) {
    const STREAMS: [Stream; 2] = [Stream::Stdout, Stream::Stderr];
    let mut pipes = pipes.map(Some);
    let mut wake = Some(wake);
    let mut ended_at: Option<Instant> = None;
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let open = pipes.iter().any(Option::is_some);
        let timeout = match ended_at {
            None => PollTimeout::NONE,
            Some(at) => {
                let left = EXIT_GRACE.saturating_sub(at.elapsed());
                if !open || left.is_zero() {
                    break;
                }
                PollTimeout::try_from(left + Duration::from_micros(999)).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut polled: Vec<PollFd<'_>> =
            pipes.iter().flatten().chain(wake.iter()).map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN)).collect();
        match poll(&mut polled, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
        let ready: Vec<bool> = polled.iter().map(|fd| fd.any().unwrap_or(true)).collect();
        drop(polled);
        let mut ready = ready.into_iter();
        for (slot, stream) in pipes.iter_mut().zip(STREAMS) {
            let Some(pipe) = slot.as_ref() else { continue };
            if !ready.next().unwrap_or(false) {
                continue;
            }
            match nix::unistd::read(pipe, &mut chunk) {
                Ok(0) => *slot = None,
                Ok(n) => supervision.publish(|state| state.sink.output(stream, &chunk[..n])),
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(_) => *slot = None,
            }
        }
        if wake.is_some() && ready.next().unwrap_or(false) {
            wake = None;
            ended_at = Some(Instant::now());
        }
    }
    let status = end.recv().ok().flatten();
    supervision.publish(|state| state.end = Some(status.map_or(End::Gone, End::Exited)));
}

/// Signals every process of one command's session, from the host.
///
/// The init's `Kill` request does the same from inside, but sending it needs the [`Sandbox`],
/// and background processes and sessions outlive a borrow of it (their timeouts fire from host
/// threads). So this looks in the host's `/proc` for the processes whose innermost session id is
/// the command's PID and which live in the sandbox's PID namespace. The namespace is pinned by
/// an open descriptor: its identity (device, inode) cannot pass to a later namespace while we
/// compare against it, so processes of another sandbox or of the host never match.
#[derive(Debug)]
pub(crate) struct CommandSignaller {
    /// Keeps the namespace, and so its inode number, alive.
    _namespace: File,
    namespace_id: (u64, u64),
    /// The command's PID inside the sandbox, which is its session id (the init calls `setsid`).
    leader: i32,
}

impl CommandSignaller {
    /// For the command whose PID inside the sandbox of init `init_pid` (a host PID) is `leader`;
    /// call it while the sandbox surely lives.
    pub(crate) fn new(init_pid: i32, leader: i32) -> Result<Self, Error> {
        let namespace = File::open(format!("/proc/{init_pid}/ns/pid"))
            .map_err(|error| Error::Exec(format!("open the sandbox's PID namespace: {error}")))?;
        let metadata =
            namespace.metadata().map_err(|error| Error::Exec(format!("stat the sandbox's PID namespace: {error}")))?;
        Ok(Self { namespace_id: (metadata.dev(), metadata.ino()), _namespace: namespace, leader })
    }

    /// Sends `signal` to every live process of the session; for `SIGKILL`, again until none is
    /// left (a process may fork while we scan). Returns how many signals were sent.
    pub(crate) fn signal(&self, signal: Signal) -> usize {
        let passes = if signal == Signal::SIGKILL { 50 } else { 1 };
        let mut sent = 0;
        for pass in 0..passes {
            let members = self.members();
            if members.is_empty() {
                break;
            }
            for pid in members {
                if kill(Pid::from_raw(pid), signal).is_ok() {
                    sent += 1;
                }
            }
            if pass + 1 < passes {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        sent
    }

    /// Host PIDs of the session's processes that have not ended.
    fn members(&self) -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str().and_then(|name| name.parse::<i32>().ok()))
            .filter(|&pid| self.is_member(pid))
            .collect()
    }

    fn is_member(&self, pid: i32) -> bool {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
        let mut in_session = false;
        let mut ended = false;
        for line in status.lines() {
            if let Some(state) = line.strip_prefix("State:") {
                ended = state.trim_start().starts_with(['Z', 'X']);
            } else if let Some(ids) = line.strip_prefix("NSsid:") {
                // One id per namespace level, the sandbox's last; a host process has one only.
                let ids: Vec<&str> = ids.split_whitespace().collect();
                in_session = ids.len() >= 2 && ids.last().and_then(|id| id.parse::<i32>().ok()) == Some(self.leader);
            }
        }
        in_session
            && !ended
            && std::fs::metadata(format!("/proc/{pid}/ns/pid"))
                .is_ok_and(|namespace| (namespace.dev(), namespace.ino()) == self.namespace_id)
    }
}

/// The kept output of a background process (the last `limit` bytes of both streams, in the
/// order they were read), and the patterns waiters look for.
#[derive(Debug)]
struct ProcessLog {
    limit: usize,
    chunks: VecDeque<(Stream, Vec<u8>)>,
    kept: usize,
    total: u64,
    dropped: u64,
    watches: Vec<Watch>,
    next_watch: u64,
}

/// One waiter's pattern, matched against each stream separately.
#[derive(Debug)]
struct Watch {
    id: u64,
    stream: Option<Stream>,
    /// One per stream: stdout, stderr.
    matchers: [Matcher; 2],
    found: bool,
}

/// Finds a byte string in a stream fed piece by piece.
#[derive(Debug, Clone)]
struct Matcher {
    pattern: Vec<u8>,
    /// The last `pattern.len() - 1` bytes seen: a match may start there.
    tail: Vec<u8>,
}

impl Matcher {
    fn new(pattern: &[u8]) -> Self {
        Self { pattern: pattern.to_vec(), tail: Vec::new() }
    }

    /// Feeds `bytes`; true when the pattern ends in them (or already ended before).
    fn feed(&mut self, bytes: &[u8]) -> bool {
        if self.pattern.is_empty() {
            return true;
        }
        self.tail.extend_from_slice(bytes);
        let found = self.tail.windows(self.pattern.len()).any(|window| window == self.pattern);
        let cut = self.tail.len().saturating_sub(self.pattern.len() - 1);
        self.tail.drain(..cut);
        found
    }
}

fn index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl ProcessLog {
    fn new(limit: usize) -> Self {
        Self { limit, chunks: VecDeque::new(), kept: 0, total: 0, dropped: 0, watches: Vec::new(), next_watch: 0 }
    }

    fn logs(&self) -> Logs {
        let mut logs = Logs { total_bytes: self.total, truncated: self.dropped > 0, ..Logs::default() };
        for (stream, bytes) in &self.chunks {
            match stream {
                Stream::Stdout => logs.stdout.extend_from_slice(bytes),
                Stream::Stderr => logs.stderr.extend_from_slice(bytes),
            }
        }
        logs
    }

    /// Starts looking for `pattern`, first in the output kept so far.
    fn watch(&mut self, pattern: &[u8], stream: Option<Stream>) -> u64 {
        let id = self.next_watch;
        self.next_watch += 1;
        let mut watch = Watch { id, stream, matchers: [Matcher::new(pattern), Matcher::new(pattern)], found: false };
        for (chunk_stream, bytes) in &self.chunks {
            watch.offer(*chunk_stream, bytes);
        }
        self.watches.push(watch);
        id
    }

    fn found(&self, watch: u64) -> bool {
        self.watches.iter().any(|candidate| candidate.id == watch && candidate.found)
    }

    fn unwatch(&mut self, watch: u64) {
        self.watches.retain(|candidate| candidate.id != watch);
    }
}

impl Watch {
    fn offer(&mut self, stream: Stream, bytes: &[u8]) {
        if !self.found && self.stream.is_none_or(|wanted| wanted == stream) {
            self.found = self.matchers[index(stream)].feed(bytes);
        }
    }
}

impl OutputSink for ProcessLog {
    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        for watch in &mut self.watches {
            watch.offer(stream, bytes);
        }
        let length = bytes.len() as u64;
        self.total = self.total.saturating_add(length);
        // Only the last `limit` bytes can survive; skip the copy of the rest.
        let bytes = &bytes[bytes.len().saturating_sub(self.limit)..];
        self.dropped = self.dropped.saturating_add(length - bytes.len() as u64);
        if bytes.is_empty() {
            return;
        }
        match self.chunks.back_mut() {
            Some((last, chunk)) if *last == stream && chunk.len() + bytes.len() <= MERGE => {
                chunk.extend_from_slice(bytes);
            }
            _ => self.chunks.push_back((stream, bytes.to_vec())),
        }
        self.kept += bytes.len();
        while self.kept > self.limit {
            let excess = self.kept - self.limit;
            let Some((_, front)) = self.chunks.front_mut() else { break };
            let cut = excess.min(front.len());
            if cut == front.len() {
                self.chunks.pop_front();
            } else {
                front.drain(..cut);
            }
            self.kept -= cut;
            self.dropped = self.dropped.saturating_add(cut as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_split_across_chunks_is_found() {
        let mut matcher = Matcher::new(b"ready");
        assert!(!matcher.feed(b"xxre"));
        assert!(!matcher.feed(b"a"));
        assert!(matcher.feed(b"dyzz"));
        let mut late = Matcher::new(b"ab");
        assert!(!late.feed(b"a"));
        assert!(late.feed(b"b"));
    }

    #[test]
    fn the_log_keeps_the_last_bytes_of_both_streams_within_the_limit() {
        let mut log = ProcessLog::new(10);
        log.output(Stream::Stdout, b"0123456");
        log.output(Stream::Stderr, b"abcdef");
        let logs = log.logs();
        assert_eq!(logs.stdout, b"3456");
        assert_eq!(logs.stderr, b"abcdef");
        assert!(logs.truncated);
        assert_eq!(logs.total_bytes, 13);
        log.output(Stream::Stdout, b"0123456789ABCDEF");
        let logs = log.logs();
        assert_eq!(logs.stdout, b"6789ABCDEF");
        assert!(logs.stderr.is_empty());
        assert_eq!(log.kept, 10);
    }

    #[test]
    fn a_watch_sees_kept_output_and_later_output_even_when_dropped() {
        let mut log = ProcessLog::new(4);
        log.output(Stream::Stdout, b"he");
        let early = log.watch(b"hello", Some(Stream::Stdout));
        let other = log.watch(b"hello", Some(Stream::Stderr));
        log.output(Stream::Stdout, b"llo world, more than the limit");
        assert!(log.found(early));
        assert!(!log.found(other));
        let kept = log.watch(b"mit", None);
        assert!(log.found(kept));
        log.unwatch(early);
        assert!(!log.found(early));
    }

    #[test]
    fn listening_sockets_are_read_from_the_proc_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
                     0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1\n   \
                     1: 0100007F:1F41 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 2 1\n";
        assert!(listens_on(table, 8000));
        assert!(!listens_on(table, 8001), "established, not listening");
        assert!(!listens_on(table, 80));
    }

    #[test]
    fn exit_statuses_read_well() {
        let status = ExitStatus {
            code: None,
            signal: Some(9),
            timed_out: true,
            duration: Duration::ZERO,
            cpu_time: Duration::ZERO,
            peak_memory_bytes: 0,
        };
        assert_eq!(status.to_string(), "signal 9, timed out");
        assert!(!status.success());
    }
}
