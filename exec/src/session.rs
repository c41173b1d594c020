//! Sessions: a long-lived shell per session, so the working directory, the environment and the
//! shell's state (variables, functions, options) persist from one call to the next.
//!
//! Sessions of one sandbox share its filesystem and nothing else: each has its own shell
//! (`bash` when the sandbox has it, else `/bin/sh`), started by
//! [`Sandbox::create_session`]. [`Session::exec`] runs a script in that shell and returns its
//! [`Output`].
//!
//! # How a call is framed
//! Each call writes, to the shell's stdin:
//! ```text
//! command eval '<script, single-quoted>
//! ' </dev/null
//! printf '\n<marker>:%d\n' "$?"
//! printf '\n<marker>:\n' >&2
//! ```
//! where `<marker>` is 128 fresh random bits, so no output can end a call early by accident or
//! by guessing. The script is data to `eval`, not text of the shell's input: a syntax error (an
//! unclosed quote...) fails that call with status 2 and cannot swallow the framing; `command`
//! keeps `eval` from ending the shell on such an error. Its stdin is `/dev/null`, so a script
//! that reads input gets end of file instead of the framing. Output without a final newline
//! is returned as is (the framing's leading newline is not part of it).
//!
//! Framing is reliable against any *output*; a script that tampers with its own shell on
//! purpose (redefines `printf`, closes its stdout, reads the shell's saved stdin) can only
//! break its own session: the call then runs into its timeout, which ends the session.
//!
//! # When a session ends
//! - `exit` (or `exec`, or `set -e` and a failing command) ends the shell: that call returns the
//!   shell's exit code and the session is over ([`Session::is_alive`] is false; later calls fail).
//! - A timeout kills the shell and everything it started (they are one process session), and
//!   the call returns with [`Output::timed_out`] set: the script runs *in* the shell so that it
//!   can change its state, so it cannot be stopped alone. A timed-out session is over.
//! - [`Session::close`] and dropping the `Session` kill the shell and everything it started.
//!
//! Output that background jobs of a session write *between* calls is read and dropped (so they
//! never block); output they write *during* a call is part of that call's output.
//!
//! # Example
//! ```no_run
//! use std::path::Path;
//! use std::time::Duration;
//! use sandguard_exec::{Sandbox, SandboxConfig};
//! use sandguard_policy::ResourceLimits;
//!
//! let sandbox = Sandbox::create(&SandboxConfig::new("demo", ResourceLimits::default()))?;
//! let session = sandbox.create_session(Path::new("/workspace"), &[])?;
//! session.exec("cd /tmp && export GREETING=hello", Duration::from_secs(5))?;
//! let output = session.exec("echo $GREETING from $(pwd)", Duration::from_secs(5))?;
//! assert_eq!(output.stdout, b"hello from /tmp\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;

use crate::error::Error;
use crate::process::{CommandSignaller, End, OutputSink, Supervision, lock, supervise};
use crate::sandbox::{Command, Output, Sandbox, Stream, default_env};

/// The shells tried, in order; arguments keep `bash` from reading any start-up file.
const SHELLS: [&[&str]; 2] = [&["/bin/bash", "--noprofile", "--norc"], &["/bin/sh"]];
/// How long a timed-out or closed session's shell is given to be reaped.
const KILL_GRACE: Duration = Duration::from_secs(2);

impl Sandbox {
    /// Starts a session: a shell in `cwd`, with the [default environment](default_env) plus
    /// `env` (which overrides it), whose state persists between [`Session::exec`] calls.
    ///
    /// Each call's timeout is capped by the sandbox's command timeout and its output by the
    /// sandbox's output limit.
    ///
    /// # Errors
    /// As [`exec`](Self::exec): [`Error::Spawn`] when `cwd` does not exist or no shell can run,
    /// [`Error::Gone`] when the sandbox is gone.
    pub fn create_session(&self, cwd: &Path, env: &[(OsString, OsString)]) -> Result<Session, Error> {
        let mut environment = default_env();
        for (name, value) in env {
            environment.retain(|(existing, _)| existing != name);
            environment.push((name.clone(), value.clone()));
        }
        let mut command = Command::new(SHELLS[0].iter().copied(), self.limits());
        command.env = environment;
        command.cwd = cwd.to_path_buf();
        let started = Instant::now();
        let mut spawned = self.spawn_raw(&command);
        for shell in &SHELLS[1..] {
            match &spawned {
                Err(Error::Spawn(error)) if error.starts_with("execve") => {
                    command.argv = shell.iter().map(OsString::from).collect();
                    spawned = self.spawn_raw(&command);
                }
                _ => break,
            }
        }
        let mut spawned = spawned?;
        let id = spawned.registration.id;
        let pid = spawned.pid;
        let stdin = spawned.stdin.take();
        let kill_and_fail = |error: Error| {
            let _ = self.signal_command(id, libc::SIGKILL);
            error
        };
        let stdin = stdin.ok_or_else(|| kill_and_fail(Error::Exec("the shell has no stdin".into())))?;
        // Writes never block a call past its timeout: a full pipe is waited for with poll.
        nix::fcntl::fcntl(&stdin, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))
            .map_err(|errno| kill_and_fail(Error::Exec(format!("fcntl: {}", errno.desc()))))?;
        let signaller = Arc::new(CommandSignaller::new(self.init_pid(), pid).map_err(kill_and_fail)?);
        let supervision =
            supervise(spawned, started, None, Arc::clone(&signaller), Framing::default()).map_err(kill_and_fail)?;
        Ok(Session {
            id,
            pid,
            shell: command.argv[0].to_string_lossy().into_owned(),
            supervision,
            stdin: Mutex::new(Some(stdin)),
            closed: AtomicBool::new(false),
            signaller,
            max_timeout: self.limits().timeout,
            output_limit: usize::try_from(self.limits().output).unwrap_or(usize::MAX),
        })
    }
}

/// A shell whose state persists between calls; see the [module docs](self).
///
/// `Send + Sync`; calls from several threads run one after the other.
pub struct Session {
    id: u64,
    pid: i32,
    shell: String,
    supervision: Arc<Supervision<Framing>>,
    /// The shell's stdin (non-blocking); `None` once closed. Held for a whole call, which
    /// serializes calls.
    stdin: Mutex<Option<OwnedFd>>,
    /// Set when the session was closed or timed out (readable while a call holds `stdin`).
    closed: AtomicBool,
    signaller: Arc<CommandSignaller>,
    max_timeout: Duration,
    output_limit: usize,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("pid", &self.pid)
            .field("shell", &self.shell)
            .field("alive", &self.is_alive())
            .finish()
    }
}

/// How a call ended.
enum Outcome {
    /// Both framing lines came: the script's status.
    Done(Option<i32>),
    /// The shell ended during the call.
    Ended(End),
    /// The call's timeout fired.
    TimedOut,
}

impl Session {
    /// The host's id for the session's shell (as in the executor's replies).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The shell's PID inside the sandbox.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The shell's path inside the sandbox (`/bin/bash` or `/bin/sh`).
    pub fn shell(&self) -> &str {
        &self.shell
    }

    /// Whether the shell still runs and [`exec`](Self::exec) can be called.
    pub fn is_alive(&self) -> bool {
        !self.closed.load(Ordering::Relaxed) && self.supervision.lock().end.is_none()
    }

    /// Runs `script` in the session's shell, for at most `timeout` (capped by the sandbox's
    /// command timeout), and returns its status and output (the first bytes up to the
    /// sandbox's output limit, as [`Sandbox::exec`] keeps them).
    ///
    /// [`Output::cpu_time`] and [`Output::peak_memory_bytes`] are zero: the script runs in the
    /// shell, whose usage is not per call.
    ///
    /// # Errors
    /// [`Error::Exec`] when the session is over (an earlier `exit`, timeout or
    /// [`close`](Self::close)) or `script` contains a NUL byte; [`Error::Gone`] when the sandbox
    /// is gone.
    pub fn exec(&self, script: &str, timeout: Duration) -> Result<Output, Error> {
        let mut stdin = lock(&self.stdin);
        if script.contains('\0') {
            return Err(Error::Exec("a session script cannot contain a NUL byte".into()));
        }
        if let Some(end) = self.supervision.lock().end {
            return Err(ended(end));
        }
        let Some(pipe) = stdin.as_ref() else { return Err(Error::Exec("the session is closed".into())) };
        let started = Instant::now();
        let timeout = timeout.min(self.max_timeout);
        let deadline = started.checked_add(timeout);
        let marker = random_marker()?;
        self.supervision.lock().sink.call = Some(Call::new(&marker, self.output_limit));
        let framed = frame(script, &marker);
        let written = self.write(pipe, framed.as_bytes(), deadline);

        let mut state = self.supervision.lock();
        let outcome = loop {
            if let Some(code) = state.sink.call.as_ref().and_then(Call::status) {
                break Outcome::Done(code);
            }
            if let Some(end) = state.end {
                break Outcome::Ended(end);
            }
            if !written || deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                break Outcome::TimedOut;
            }
            state = self.supervision.wait_change(state, deadline);
        };
        if matches!(outcome, Outcome::TimedOut) {
            drop(state);
            *stdin = None;
            self.closed.store(true, Ordering::Relaxed);
            self.signaller.signal(Signal::SIGKILL);
            state = self.supervision.lock();
            let waited = Instant::now() + KILL_GRACE;
            while state.end.is_none() && Instant::now() < waited {
                state = self.supervision.wait_change(state, Some(waited));
            }
        }
        let mut call = state.sink.call.take().unwrap_or_else(|| Call::new(&marker, 0));
        drop(state);
        call.flush();
        let mut output = Output {
            stdout: std::mem::take(&mut call.kept.output[0]),
            stderr: std::mem::take(&mut call.kept.output[1]),
            output_bytes: call.kept.written,
            truncated: call.kept.truncated,
            duration: started.elapsed(),
            ..Output::default()
        };
        match outcome {
            Outcome::Done(code) => output.exit_code = code,
            Outcome::Ended(End::Exited(status)) => {
                output.exit_code = status.code;
                output.signal = status.signal;
            }
            Outcome::Ended(End::Gone) => return Err(Error::Gone),
            Outcome::TimedOut => {
                output.timed_out = true;
                output.signal = Some(libc::SIGKILL);
            }
        }
        Ok(output)
    }

    /// Writes all of `bytes` to the shell's non-blocking stdin, waiting for room until
    /// `deadline`; false when the deadline passed first. A shell that died (`EPIPE`) counts as
    /// written: its end is reported by the supervision.
    fn write(&self, pipe: &OwnedFd, mut bytes: &[u8], deadline: Option<Instant>) -> bool {
        while !bytes.is_empty() {
            match nix::unistd::write(pipe, bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => {
                    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                        return false;
                    }
                    if self.supervision.lock().end.is_some() {
                        return true;
                    }
                    let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLOUT)];
                    let _ = poll(&mut fds, PollTimeout::from(50u8));
                }
                Err(_) => return true,
            }
        }
        true
    }

    /// Ends the session: kills the shell and everything it started, and waits (briefly) until
    /// it is gone.
    pub fn close(self) {
        self.kill();
        let mut state = self.supervision.lock();
        let waited = Instant::now() + KILL_GRACE;
        while state.end.is_none() && Instant::now() < waited {
            state = self.supervision.wait_change(state, Some(waited));
        }
    }

    fn kill(&self) {
        self.closed.store(true, Ordering::Relaxed);
        *lock(&self.stdin) = None;
        // Also after the shell ended by itself: jobs it left in the background go with it.
        self.signaller.signal(Signal::SIGKILL);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.kill();
    }
}

fn ended(end: End) -> Error {
    match end {
        End::Exited(status) => Error::Exec(format!("the session has ended ({status}); start a new one")),
        End::Gone => Error::Gone,
    }
}

/// 128 random bits, in hex.
fn random_marker() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .map_err(|error| Error::Exec(format!("read /dev/urandom: {error}")))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The shell input for one call; see the [module docs](self).
fn frame(script: &str, marker: &str) -> String {
    let mut framed = String::with_capacity(script.len() + 2 * marker.len() + 96);
    framed.push_str("command eval '");
    for (i, part) in script.split('\'').enumerate() {
        if i > 0 {
            framed.push_str("'\\''");
        }
        framed.push_str(part);
    }
    framed.push_str("\n' </dev/null\n");
    framed.push_str(&format!("printf '\\n{marker}:%d\\n' \"$?\"\nprintf '\\n{marker}:\\n' >&2\n"));
    framed
}

/// The session's output sink: splits the shell's streams into calls at the framing lines.
#[derive(Debug, Default)]
struct Framing {
    /// The call in progress; output with no call in progress is dropped.
    call: Option<Call>,
}

impl OutputSink for Framing {
    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        if let Some(call) = &mut self.call {
            call.output(stream, bytes);
        }
    }
}

/// One call's output so far.
#[derive(Debug)]
struct Call {
    /// Stdout, stderr.
    streams: [Framed; 2],
    kept: Kept,
}

/// Output kept for a call: the first `limit` bytes of both streams together.
#[derive(Debug)]
struct Kept {
    limit: usize,
    /// Stdout, stderr.
    output: [Vec<u8>; 2],
    written: u64,
    truncated: bool,
}

impl Kept {
    fn keep(&mut self, stream: usize, bytes: &[u8]) {
        self.written = self.written.saturating_add(bytes.len() as u64);
        let room = self.limit.saturating_sub(self.output[0].len() + self.output[1].len());
        if bytes.len() > room {
            self.truncated = true;
        }
        self.output[stream].extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

impl Call {
    fn new(marker: &str, limit: usize) -> Self {
        let terminator = format!("\n{marker}:").into_bytes();
        Self {
            streams: [Framed::new(terminator.clone()), Framed::new(terminator)],
            kept: Kept { limit, output: [Vec::new(), Vec::new()], written: 0, truncated: false },
        }
    }

    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        let index = match stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        };
        let kept = &mut self.kept;
        self.streams[index].feed(bytes, &mut |output| kept.keep(index, output));
    }

    /// `Some(status)` once both streams' framing lines came; the status is the one printed on
    /// stdout.
    fn status(&self) -> Option<Option<i32>> {
        match &self.streams {
            [Framed { status: Some(code), .. }, Framed { status: Some(_), .. }] => Some(*code),
            _ => None,
        }
    }

    /// The call ended without its framing: what was held back as a possible framing line
    /// is output after all.
    fn flush(&mut self) {
        for (index, stream) in self.streams.iter_mut().enumerate() {
            if stream.status.is_none() {
                self.kept.keep(index, &std::mem::take(&mut stream.pending));
            }
        }
    }
}

/// One stream of a call, searched for its framing line `\n<marker>:<digits>\n`.
#[derive(Debug)]
struct Framed {
    terminator: Vec<u8>,
    /// Bytes held back: they may be the start of the framing line.
    pending: Vec<u8>,
    /// Set when the framing line came: the digits it carried, if any.
    status: Option<Option<i32>>,
}

impl Framed {
    fn new(terminator: Vec<u8>) -> Self {
        Self { terminator, pending: Vec::new(), status: None }
    }

    /// Takes in `bytes`, handing to `keep` what is surely the script's output.
    fn feed(&mut self, bytes: &[u8], keep: &mut dyn FnMut(&[u8])) {
        if self.status.is_some() {
            // After the framing line: a background job's output, dropped.
            return;
        }
        self.pending.extend_from_slice(bytes);
        let found = self.pending.windows(self.terminator.len()).position(|window| window == self.terminator);
        if let Some(at) = found {
            keep(&self.pending[..at]);
            self.pending.drain(..at);
            let digits_from = self.terminator.len();
            if let Some(newline) = self.pending[digits_from..].iter().position(|&byte| byte == b'\n') {
                let digits = &self.pending[digits_from..digits_from + newline];
                self.status = Some(std::str::from_utf8(digits).ok().and_then(|digits| digits.parse().ok()));
                self.pending.clear();
            }
            return;
        }
        let cut = self.pending.len().saturating_sub(self.terminator.len() - 1);
        keep(&self.pending[..cut]);
        self.pending.drain(..cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(call: &mut Call, pieces: &[(Stream, &[u8])]) {
        for (stream, bytes) in pieces {
            call.output(*stream, bytes);
        }
    }

    #[test]
    fn framing_lines_split_anywhere_are_found_and_the_output_before_them_kept() {
        let marker = "0123456789abcdef0123456789abcdef";
        let stdout = format!("hello\n\n{marker}:42\nlate");
        let stderr = format!("oops\n{marker}:\n");
        for split in 0..stdout.len() {
            let mut call = Call::new(marker, 1 << 20);
            let (first, second) = stdout.as_bytes().split_at(split);
            run(&mut call, &[(Stream::Stdout, first), (Stream::Stderr, stderr.as_bytes())]);
            let framing_line_complete = split > stdout.len() - 5;
            assert_eq!(call.status().is_some(), framing_line_complete, "split at {split}");
            run(&mut call, &[(Stream::Stdout, second)]);
            assert_eq!(call.status(), Some(Some(42)), "split at {split}");
            assert_eq!(call.kept.output[0], b"hello\n");
            assert_eq!(call.kept.output[1], b"oops");
        }
    }

    #[test]
    fn output_without_framing_is_flushed_and_limited() {
        let mut call = Call::new("feedface", 5);
        run(&mut call, &[(Stream::Stdout, b"abc\nfeed"), (Stream::Stderr, b"xyz")]);
        assert_eq!(call.status(), None);
        call.flush();
        assert_eq!(call.kept.output[0], b"abc\nf");
        assert!(call.kept.output[1].is_empty());
        assert!(call.kept.truncated);
        assert_eq!(call.kept.written, 11);
    }

    #[test]
    fn scripts_are_single_quoted_whatever_they_hold() {
        let framed = frame("echo 'a'\"b\"", "m");
        assert!(framed.starts_with("command eval 'echo '\\''a'\\''\"b\"\n' </dev/null\n"), "{framed}");
        assert!(framed.ends_with("printf '\\nm:%d\\n' \"$?\"\nprintf '\\nm:\\n' >&2\n"), "{framed}");
    }
}
