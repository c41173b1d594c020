//! The guarded [`Sandbox`]: every operation passes the [`Enforcer`] and is audited before the
//! executor sees it.

use std::ffi::{OsStr, OsString};
use std::sync::Arc;

use sandguard_audit::{NewEvent, Outcome, Usage};
use sandguard_exec::{Command, Output, SandboxConfig, Stream};
use sandguard_policy::{Action, CommandSpec, ExecRequest, Grant, Policy, ResourceLimits, SandboxId, SecretRedactor};

use crate::{Enforcer, Error, Permit};

/// A sandbox whose every operation is authorized by an [`Enforcer`] and recorded in its audit
/// log; denied operations never reach the executor, and output passes the secret redactor.
#[derive(Debug)]
pub struct Sandbox {
    enforcer: Arc<Enforcer>,
    actor: String,
    id: SandboxId,
    inner: sandguard_exec::Sandbox,
}

/// What one command did, its output redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    /// The executor's report; `stdout` and `stderr` are redacted.
    pub output: Output,
    /// The audit record of the decision that allowed the command.
    pub audit_seq: u64,
}

impl Sandbox {
    /// Creates a sandbox for `actor` under the policy's limits, and records `sandbox.create`.
    ///
    /// # Errors
    /// [`Error::Exec`] when the sandbox cannot be built (the failure is recorded with outcome
    /// `error`); [`Error::Audit`] when the event cannot be recorded.
    pub fn create(enforcer: Arc<Enforcer>, actor: &str, id: SandboxId) -> Result<Self, Error> {
        let limits = *enforcer.policy().limits();
        Self::create_with_limits(enforcer, actor, id, limits)
    }

    /// As [`create`](Self::create), with the sandbox-wide limits given (each must already be
    /// within the policy: use a [`Permit`] for `Exec` to get them).
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn create_with_limits(
        enforcer: Arc<Enforcer>,
        actor: &str,
        id: SandboxId,
        limits: ResourceLimits,
    ) -> Result<Self, Error> {
        let created = sandguard_exec::Sandbox::create(&sandbox_config(enforcer.policy(), &id, limits));
        let made = created.as_ref().map(|inner| (inner.landlock_abi(), inner.has_cgroup()));
        enforcer.audit().record(create_event(actor, &id, &limits, made))?;
        let inner = created?;
        Ok(Self { enforcer, actor: actor.to_owned(), id, inner })
    }

    /// Runs one command in a sandbox made for it alone and destroyed when it ends: what
    /// `sandguard run` does, and faster than [`create_with_limits`](Self::create_with_limits),
    /// [`exec_streaming`](Self::exec_streaming) and [`destroy`](Self::destroy), whose records it
    /// writes (`sandbox.create`, `exec.result`, `sandbox.destroy`; see
    /// [`sandguard_exec::Sandbox::run_once`] for the speed). The command is authorized first, so
    /// a refused one costs no sandbox, and the sandbox gets the limits granted to it.
    ///
    /// # Errors
    /// As [`exec_streaming`](Self::exec_streaming), and [`Error::Exec`] when the sandbox cannot
    /// be built or destroyed (recorded either way).
    ///
    /// # Example
    /// ```no_run
    /// use std::ffi::OsString;
    /// use std::sync::Arc;
    /// use sandguard::audit::{AuditLog, MemorySink};
    /// use sandguard::policy::{CommandSpec, ExecRequest, Policy, SandboxId};
    /// use sandguard::{Enforcer, Sandbox};
    ///
    /// let enforcer = Arc::new(Enforcer::new(Policy::default(), AuditLog::new(Arc::new(MemorySink::new()))));
    /// let argv: Vec<OsString> = vec!["/bin/true".into()];
    /// let request = ExecRequest { command: CommandSpec::Argv(&argv), cwd: None, env: &[], limits: None };
    /// let id = SandboxId::generate("job")?;
    /// let result = Sandbox::run_once(enforcer, "alice", id, &request, &[], &mut |_, _| {})?;
    /// assert_eq!(result.output.exit_code, Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_once(
        enforcer: Arc<Enforcer>,
        actor: &str,
        id: SandboxId,
        request: &ExecRequest<'_>,
        stdin: &[u8],
        sink: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<ExecResult, Error> {
        let permit = enforcer.authorize(actor, Some(&id), &Action::Exec(*request))?;
        let Grant::Exec { limits, .. } = permit.grant() else { return Err(unexpected_grant()) };
        let config = sandbox_config(enforcer.policy(), &id, *limits);
        let command = command_for(enforcer.policy(), request, stdin, &permit);
        let redactor = redactor_for(enforcer.policy(), request);
        let mut redacting = |stream: Stream, chunk: &[u8]| sink(stream, &redactor.redact_bytes(chunk));
        let run = sandguard_exec::Sandbox::run_once(&config, &command, &mut redacting);
        let made = run.as_ref().map(|run| (run.landlock_abi, run.has_cgroup));
        enforcer.audit().record(create_event(actor, &id, limits, made))?;
        let run = run?;
        let result = record_exec_result(&enforcer, actor, &id, &permit, &redactor, run.output);
        enforcer.audit().record(destroy_event(actor, &id, &run.destroyed))?;
        run.destroyed?;
        result
    }

    /// The sandbox's ID.
    pub fn id(&self) -> &SandboxId {
        &self.id
    }

    /// The executor's sandbox, for operations the facade does not wrap yet.
    pub fn executor(&self) -> &sandguard_exec::Sandbox {
        &self.inner
    }

    /// Authorizes and runs a command, collecting its (redacted) output.
    ///
    /// # Errors
    /// [`Error::Denied`] when the policy refuses (nothing runs); [`Error::Exec`] when the command
    /// cannot be started; [`Error::Audit`] when a record cannot be written.
    pub fn exec(&self, request: &ExecRequest<'_>, stdin: &[u8]) -> Result<ExecResult, Error> {
        let mut ignore = |_: Stream, _: &[u8]| {};
        self.run(request, stdin, &mut ignore, true)
    }

    /// Authorizes and runs a command, handing each (redacted) chunk of output to `sink` as it
    /// arrives. A secret split across two chunks can escape redaction; keep secrets out of
    /// sandboxes rather than relying on it.
    ///
    /// # Errors
    /// As [`exec`](Self::exec).
    pub fn exec_streaming(
        &self,
        request: &ExecRequest<'_>,
        stdin: &[u8],
        sink: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<ExecResult, Error> {
        self.run(request, stdin, sink, false)
    }

    fn run(
        &self,
        request: &ExecRequest<'_>,
        stdin: &[u8],
        sink: &mut dyn FnMut(Stream, &[u8]),
        collect: bool,
    ) -> Result<ExecResult, Error> {
        let policy = self.enforcer.policy();
        let permit = self.enforcer.authorize(&self.actor, Some(&self.id), &Action::Exec(*request))?;
        let command = command_for(policy, request, stdin, &permit);
        let redactor = redactor_for(policy, request);
        let mut redacting = |stream: Stream, chunk: &[u8]| sink(stream, &redactor.redact_bytes(chunk));
        let result =
            if collect { self.inner.exec(&command) } else { self.inner.exec_streaming(&command, &mut redacting) };
        record_exec_result(&self.enforcer, &self.actor, &self.id, &permit, &redactor, result)
    }

    /// Authorizes a command and starts it in the background (logs, waits for a log line or a
    /// port, kill); it lives at most the granted timeout. Its [`logs`](Process::logs) pass the
    /// same redactor as [`exec`](Self::exec)'s output, secret environment values included.
    ///
    /// # Errors
    /// As [`exec`](Self::exec).
    pub fn start_process(&self, request: &ExecRequest<'_>, stdin: &[u8]) -> Result<Process, Error> {
        let permit = self.enforcer.authorize(&self.actor, Some(&self.id), &Action::Exec(*request))?;
        let command = command_for(self.enforcer.policy(), request, stdin, &permit);
        let redactor = redactor_for(self.enforcer.policy(), request);
        Ok(Process { inner: self.inner.start_process(&command)?, redactor })
    }

    /// Opens a session: a shell whose working directory, variables and functions persist between
    /// calls, sharing the sandbox's files. `cwd` passes the path guard; every script passes the
    /// policy like any command.
    ///
    /// # Errors
    /// [`Error::Denied`] for a refused directory or environment; [`Error::Exec`] when the shell
    /// cannot start.
    pub fn create_session(&self, cwd: &OsStr, env: &[(String, String)]) -> Result<Session<'_>, Error> {
        Ok(Session { sandbox: self, inner: self.open_session(cwd, env)? })
    }

    /// As [`create_session`](Self::create_session), for callers that keep sessions apart from
    /// the sandbox (a service's session table): run scripts with
    /// [`session_exec`](Self::session_exec) on the same sandbox.
    ///
    /// # Errors
    /// As [`create_session`](Self::create_session).
    pub fn open_session(&self, cwd: &OsStr, env: &[(String, String)]) -> Result<ShellSession, Error> {
        // The session's shell is checked as an exec of a shell would be: its directory, its
        // environment; every script is checked again when it runs.
        let shell: Vec<OsString> = vec!["/bin/sh".into()];
        let opening = ExecRequest { command: CommandSpec::Argv(&shell), cwd: Some(cwd), env, limits: None };
        let permit = self.enforcer.authorize(&self.actor, Some(&self.id), &Action::Exec(opening))?;
        let cwd = match permit.grant() {
            Grant::Exec { cwd: Some(cwd), .. } => cwd.clone(),
            _ => return Err(unexpected_grant()),
        };
        let env: Vec<(OsString, OsString)> = sandguard_exec::default_env()
            .into_iter()
            .filter(|(name, _)| !env.iter().any(|(given, _)| OsStr::new(given) == name))
            .chain(env.iter().map(|(name, value)| (name.into(), value.into())))
            .collect();
        let inner = self.inner.create_session(&cwd, &env)?;
        Ok(ShellSession { inner })
    }

    /// Authorizes `script` as a shell command line (with `limits`, each within the policy's, or
    /// the policy's), runs it in `session` (opened on this sandbox), and returns its redacted
    /// output.
    ///
    /// # Errors
    /// [`Error::Denied`] when the policy refuses the script or the limits; [`Error::Exec`] when
    /// the session has ended.
    pub fn session_exec(
        &self,
        session: &ShellSession,
        script: &str,
        limits: Option<&ResourceLimits>,
    ) -> Result<Output, Error> {
        let request = ExecRequest { command: CommandSpec::Shell(script), cwd: None, env: &[], limits };
        let permit = self.enforcer.authorize(&self.actor, Some(&self.id), &Action::Exec(request))?;
        let timeout = match permit.grant() {
            Grant::Exec { limits, .. } => limits.timeout,
            _ => return Err(unexpected_grant()),
        };
        let redactor = redactor_for(self.enforcer.policy(), &request);
        let mut output = session.inner.exec(script, timeout)?;
        output.stdout = redactor.redact_bytes(&output.stdout).into_owned();
        output.stderr = redactor.redact_bytes(&output.stderr).into_owned();
        self.enforcer.audit().record(
            NewEvent::new(&self.actor, "exec.result", Outcome::Allowed)
                .sandbox(self.id.as_str())
                .detail("permit_seq", permit.audit_seq())
                .detail("session", session.inner.id())
                .detail("exit_code", output.exit_code)
                .detail("timed_out", output.timed_out),
        )?;
        Ok(output)
    }

    /// Ends a session: kills its shell and everything it started; records `session.close`.
    ///
    /// # Errors
    /// [`Error::Audit`] when the record cannot be written (the session is closed regardless).
    pub fn close_session(&self, session: ShellSession) -> Result<(), Error> {
        let id = session.inner.id();
        session.inner.close();
        self.enforcer.audit().record(
            NewEvent::new(&self.actor, "session.close", Outcome::Allowed)
                .sandbox(self.id.as_str())
                .detail("session", id),
        )?;
        Ok(())
    }

    /// Kills a background process (started on this sandbox) and everything it started;
    /// records `process.kill`.
    ///
    /// # Errors
    /// [`Error::Audit`] when the record cannot be written (the process is killed regardless).
    pub fn kill_process(&self, process: &Process) -> Result<(), Error> {
        const SIGKILL: i32 = 9;
        let killed = process.kill(SIGKILL);
        self.enforcer.audit().record(
            NewEvent::new(&self.actor, "process.kill", if killed.is_ok() { Outcome::Allowed } else { Outcome::Error })
                .sandbox(self.id.as_str())
                .detail("process", process.id()),
        )?;
        Ok(killed?)
    }

    /// Authorizes and reads a file inside the sandbox (at most the policy's file size).
    ///
    /// # Errors
    /// [`Error::Denied`] for a path outside the policy's roots; [`Error::Exec`] when the file
    /// cannot be read (missing, a symlink leading nowhere inside the root, too large, ...).
    pub fn read_file(&self, path: &OsStr) -> Result<Vec<u8>, Error> {
        let permit = self.enforcer.authorize(&self.actor, Some(&self.id), &Action::ReadFile { path })?;
        let Grant::ReadFile { path } = permit.grant() else { return Err(unexpected_grant()) };
        let max = self.enforcer.policy().limits().file_size;
        Ok(self.inner.files()?.read(path, max).map_err(sandguard_exec::Error::from)?)
    }

    /// Authorizes and writes a file inside the sandbox, owned by the sandbox's user.
    ///
    /// # Errors
    /// [`Error::Denied`] for a path outside the roots or data over the file size limit;
    /// [`Error::Exec`] when the write fails (a symlink as the last component is refused).
    pub fn write_file(&self, path: &OsStr, data: &[u8], mode: Option<u32>) -> Result<(), Error> {
        let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
        let permit = self.enforcer.authorize(&self.actor, Some(&self.id), &Action::WriteFile { path, len })?;
        let Grant::WriteFile { path } = permit.grant() else { return Err(unexpected_grant()) };
        Ok(self.inner.files()?.write(path, data, mode).map_err(sandguard_exec::Error::from)?)
    }

    /// Authorizes and lists a directory inside the sandbox (entries are never followed).
    ///
    /// # Errors
    /// [`Error::Denied`] for a path outside the policy's roots; [`Error::Exec`] when the
    /// directory cannot be listed (missing, not a directory, a symlink leaving the root, ...).
    pub fn list_files(&self, path: &OsStr, recursive: bool) -> Result<Vec<sandguard_exec::files::DirEntry>, Error> {
        let permit = self.enforcer.authorize(&self.actor, Some(&self.id), &Action::ListDir { path })?;
        let Grant::ReadFile { path } = permit.grant() else { return Err(unexpected_grant()) };
        Ok(self.inner.files()?.list(path, recursive).map_err(sandguard_exec::Error::from)?)
    }

    /// Authorizes and creates a directory inside the sandbox (and its parents with `recursive`).
    ///
    /// # Errors
    /// [`Error::Denied`] for a path outside the roots; [`Error::Exec`] when it cannot be made.
    pub fn make_dir(&self, path: &OsStr, recursive: bool) -> Result<(), Error> {
        let permit = self.enforcer.authorize(&self.actor, Some(&self.id), &Action::MakeDir { path })?;
        let Grant::WriteFile { path } = permit.grant() else { return Err(unexpected_grant()) };
        Ok(self.inner.files()?.mkdir(path, recursive, None).map_err(sandguard_exec::Error::from)?)
    }

    /// Authorizes and removes a file, a symlink (not its target) or, with `recursive`, a
    /// directory tree inside the sandbox.
    ///
    /// # Errors
    /// [`Error::Denied`] for a path outside the roots; [`Error::Exec`] when it cannot be removed.
    pub fn remove_file(&self, path: &OsStr, recursive: bool) -> Result<(), Error> {
        let permit = self.enforcer.authorize(&self.actor, Some(&self.id), &Action::Remove { path })?;
        let Grant::WriteFile { path } = permit.grant() else { return Err(unexpected_grant()) };
        Ok(self.inner.files()?.remove(path, recursive).map_err(sandguard_exec::Error::from)?)
    }

    /// Kills everything in the sandbox and removes it; records `sandbox.destroy`.
    ///
    /// # Errors
    /// [`Error::Exec`] when cleanup failed (recorded); [`Error::Audit`] when the record fails.
    pub fn destroy(self) -> Result<(), Error> {
        let Self { enforcer, actor, id, inner } = self;
        let destroyed = inner.destroy();
        enforcer.audit().record(destroy_event(&actor, &id, &destroyed))?;
        destroyed.map_err(Error::Exec)
    }
}

/// A guarded session: each script is authorized as a shell command and recorded.
#[derive(Debug)]
pub struct Session<'s> {
    sandbox: &'s Sandbox,
    inner: ShellSession,
}

impl Session<'_> {
    /// Authorizes `script` as a shell command line, runs it in the session, and returns its
    /// redacted output. The timeout is the policy's.
    ///
    /// # Errors
    /// [`Error::Denied`] when the policy refuses the script; [`Error::Exec`] when the session
    /// has ended.
    pub fn exec(&self, script: &str) -> Result<Output, Error> {
        self.sandbox.session_exec(&self.inner, script, None)
    }

    /// Whether the session's shell still runs.
    pub fn is_alive(&self) -> bool {
        self.inner.is_alive()
    }
}

/// A background process started by [`Sandbox::start_process`]: the executor's
/// [`Process`](sandguard_exec::process::Process) (status, waits, signals, stdin), with its
/// [`logs`](Self::logs) redacted. Kill it through [`Sandbox::kill_process`] to have it recorded.
pub struct Process {
    inner: sandguard_exec::process::Process,
    redactor: SecretRedactor,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The redactor holds the secret values it hides; it is left out.
        f.debug_struct("Process").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl Process {
    /// What it wrote so far (the kept end), with secrets redacted.
    pub fn logs(&self) -> sandguard_exec::process::Logs {
        let mut logs = self.inner.logs();
        logs.stdout = self.redactor.redact_bytes(&logs.stdout).into_owned();
        logs.stderr = self.redactor.redact_bytes(&logs.stderr).into_owned();
        logs
    }
}

impl std::ops::Deref for Process {
    type Target = sandguard_exec::process::Process;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

/// A session's shell, kept apart from its sandbox; see [`Sandbox::open_session`]. Dropping it
/// ends the shell.
#[derive(Debug)]
pub struct ShellSession {
    inner: sandguard_exec::session::Session,
}

impl ShellSession {
    /// Whether the session's shell still runs.
    pub fn is_alive(&self) -> bool {
        self.inner.is_alive()
    }
}

/// A permit for one action always carries that action's grant; this is the error if it ever did not.
/// The executor's config of sandbox `id`: `limits`, and the policy's network and `allow_weaker`.
fn sandbox_config(policy: &Policy, id: &SandboxId, limits: ResourceLimits) -> SandboxConfig {
    let mut config = SandboxConfig::new(id.as_str(), limits);
    config.allow_weaker = policy.allow_weaker();
    config.network = policy.network().clone();
    config
}

/// The command a permit for `request` grants: its argv (a shell line runs under `/bin/sh -c`),
/// the default environment plus the request's, and the granted limits and directory.
fn command_for(policy: &Policy, request: &ExecRequest<'_>, stdin: &[u8], permit: &Permit) -> Command {
    let (limits, cwd) = match permit.grant() {
        Grant::Exec { limits, cwd } => (*limits, cwd.clone()),
        _ => (*policy.limits(), None),
    };
    let argv: Vec<OsString> = match request.command {
        CommandSpec::Shell(line) => vec!["/bin/sh".into(), "-c".into(), line.into()],
        CommandSpec::Argv(argv) => argv.to_vec(),
    };
    let mut command = Command::new(argv, &limits);
    for (name, value) in request.env {
        command.env.retain(|(existing, _)| existing != OsStr::new(name));
        command.env.push((name.into(), value.into()));
    }
    if let Some(cwd) = cwd {
        command.cwd = cwd;
    }
    command.stdin = stdin.to_vec();
    command
}

/// The policy's credential patterns plus the values of this command's secret variables.
fn redactor_for(policy: &Policy, request: &ExecRequest<'_>) -> SecretRedactor {
    let mut builder = SecretRedactor::builder().patterns(policy.redact_patterns());
    for (name, value) in request.env {
        // Values shorter than the redactor's minimum would turn ordinary text into
        // placeholders; they are left to the patterns.
        let secret = policy.secret_env().iter().any(|secret| secret == name);
        if secret && value.len() >= SecretRedactor::MIN_SECRET_LEN {
            builder = match builder.secret(name.clone(), value.as_bytes()) {
                Ok(next) => next,
                // Only a value that spells a placeholder is refused here; start again
                // with the patterns rather than run with a half-built redactor.
                Err(_) => SecretRedactor::builder().patterns(policy.redact_patterns()),
            };
        }
    }
    builder.build().unwrap_or_default()
}

/// `sandbox.create`, for a sandbox made (with its Landlock ABI and whether it has a cgroup) or not.
fn create_event(
    actor: &str,
    id: &SandboxId,
    limits: &ResourceLimits,
    made: Result<(u32, bool), &sandguard_exec::Error>,
) -> NewEvent {
    let event = NewEvent::new(actor, "sandbox.create", if made.is_ok() { Outcome::Allowed } else { Outcome::Error })
        .sandbox(id.as_str())
        .detail("memory_bytes", limits.memory)
        .detail("pids", limits.pids)
        .detail("disk_bytes", limits.disk);
    match made {
        Ok((landlock_abi, cgroup)) => event.detail("landlock_abi", landlock_abi).detail("cgroup", cgroup),
        Err(error) => event.reason("SANDBOX_CREATE_FAILED", error.to_string()),
    }
}

/// `sandbox.destroy`, with the failure if there was one.
fn destroy_event(actor: &str, id: &SandboxId, destroyed: &Result<(), sandguard_exec::Error>) -> NewEvent {
    let event =
        NewEvent::new(actor, "sandbox.destroy", if destroyed.is_ok() { Outcome::Allowed } else { Outcome::Error })
            .sandbox(id.as_str());
    match destroyed {
        Ok(()) => event,
        Err(error) => event.reason("SANDBOX_DESTROY_FAILED", error.to_string()),
    }
}

/// Redacts a command's collected output and records its `exec.result` (usage included).
fn record_exec_result(
    enforcer: &Enforcer,
    actor: &str,
    id: &SandboxId,
    permit: &Permit,
    redactor: &SecretRedactor,
    result: Result<Output, sandguard_exec::Error>,
) -> Result<ExecResult, Error> {
    let event = NewEvent::new(actor, "exec.result", Outcome::Allowed)
        .sandbox(id.as_str())
        .detail("permit_seq", permit.audit_seq());
    let (event, output) = match result {
        Ok(mut output) => {
            output.stdout = redactor.redact_bytes(&output.stdout).into_owned();
            output.stderr = redactor.redact_bytes(&output.stderr).into_owned();
            let event = event
                .detail("exit_code", output.exit_code)
                .detail("signal", output.signal)
                .detail("timed_out", output.timed_out)
                .detail("truncated", output.truncated)
                .usage(
                    Usage::new()
                        .wall_ms(millis(output.duration))
                        .cpu_ms(millis(output.cpu_time))
                        .memory_peak_bytes(output.peak_memory_bytes)
                        .stdout_bytes(output.output_bytes),
                );
            (event, Ok(output))
        }
        Err(error) => (
            NewEvent::new(actor, "exec.result", Outcome::Error)
                .sandbox(id.as_str())
                .detail("permit_seq", permit.audit_seq())
                .reason("EXEC_FAILED", error.to_string()),
            Err(Error::Exec(error)),
        ),
    };
    enforcer.audit().record(event)?;
    output.map(|output| ExecResult { output, audit_seq: permit.audit_seq() })
}

fn unexpected_grant() -> Error {
    Error::Exec(sandguard_exec::Error::Exec("the permit does not match the operation".to_owned()))
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
