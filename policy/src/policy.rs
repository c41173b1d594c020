//! The compiled [`Policy`]: every guard, built once, and [`Policy::authorize`].

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use crate::action::{Action, ActionError, CommandSpec, Denial, ExecRequest, Grant, Permit};
use crate::config::ConfigErrors;
use crate::egress::EgressPolicy;
use crate::id::IdRules;
use crate::limits::ResourceLimits;
use crate::lockout::LockoutConfig;
use crate::path::PathGuard;
use crate::port::PortPolicy;
use crate::rate::Quota;

/// Environment variables no policy lets a caller set: each one changes how the dynamic loader
/// or the shell starts, which turns "set a variable" into "run code of my choosing".
pub const BUILTIN_DENIED_ENV: &[&str] = &[
    "BASH_ENV",
    "ENV",
    "GCONV_PATH",
    "LD_AUDIT",
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    "PROMPT_COMMAND",
    "SHELLOPTS",
];

/// Rules for running commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRules {
    shell: bool,
    max_command_bytes: usize,
    max_env_vars: usize,
    denied_env: Vec<String>,
}

impl Default for ExecRules {
    /// Shell command lines allowed, 64 KiB of command, 128 variables, [`BUILTIN_DENIED_ENV`].
    fn default() -> Self {
        Self::new(true, 64 * 1024, 128, std::iter::empty::<&str>())
    }
}

impl ExecRules {
    /// Rules allowing shell command lines when `shell` is true, commands of at most
    /// `max_command_bytes` (all arguments together), at most `max_env_vars` variables, and
    /// refusing `denied_env` on top of [`BUILTIN_DENIED_ENV`].
    pub fn new<I, S>(shell: bool, max_command_bytes: usize, max_env_vars: usize, denied_env: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut denied: Vec<String> = BUILTIN_DENIED_ENV
            .iter()
            .map(|name| (*name).to_owned())
            .chain(denied_env.into_iter().map(|name| name.as_ref().to_owned()))
            .collect();
        denied.sort_unstable();
        denied.dedup();
        Self { shell, max_command_bytes, max_env_vars, denied_env: denied }
    }

    /// Whether shell command lines are allowed.
    pub fn shell(&self) -> bool {
        self.shell
    }

    /// Longest command, in bytes.
    pub fn max_command_bytes(&self) -> usize {
        self.max_command_bytes
    }

    /// Most environment variables per command.
    pub fn max_env_vars(&self) -> usize {
        self.max_env_vars
    }

    /// Every refused environment variable name, sorted.
    pub fn denied_env(&self) -> &[String] {
        &self.denied_env
    }

    fn check_command(&self, command: &CommandSpec<'_>) -> Result<(), ActionError> {
        let len = match command {
            CommandSpec::Shell(line) => {
                if !self.shell {
                    return Err(ActionError::ShellNotAllowed);
                }
                if line.trim().is_empty() {
                    return Err(ActionError::EmptyCommand);
                }
                if line.as_bytes().contains(&0) {
                    return Err(ActionError::CommandContainsNul { index: 0 });
                }
                line.len()
            }
            CommandSpec::Argv(argv) => {
                if argv.first().is_none_or(|program| program.is_empty()) {
                    return Err(ActionError::EmptyCommand);
                }
                let mut len = 0usize;
                for (index, arg) in argv.iter().enumerate() {
                    if arg.as_bytes().contains(&0) {
                        return Err(ActionError::CommandContainsNul { index });
                    }
                    // Each argument costs its bytes plus the separator `execve` stores.
                    len = len.saturating_add(arg.len()).saturating_add(1);
                }
                len
            }
        };
        if len > self.max_command_bytes {
            return Err(ActionError::CommandTooLong { len, max: self.max_command_bytes });
        }
        Ok(())
    }

    fn check_env(&self, env: &[(String, String)]) -> Result<(), ActionError> {
        if env.len() > self.max_env_vars {
            return Err(ActionError::TooManyEnvVars { count: env.len(), max: self.max_env_vars });
        }
        for (name, value) in env {
            if !is_env_name(name) {
                return Err(ActionError::InvalidEnvName { name: name.clone() });
            }
            if self.denied_env.binary_search(name).is_ok() {
                return Err(ActionError::EnvNotAllowed { name: name.clone() });
            }
            if value.as_bytes().contains(&0) {
                return Err(ActionError::EnvContainsNul { name: name.clone() });
            }
        }
        Ok(())
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`, the names every shell and `env` accept.
fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Every guard of one policy, compiled once; cheap to share behind an `Arc`.
///
/// Build one from TOML with [`Policy::from_toml`] / [`Policy::load`], programmatically with
/// [`Policy::builder`], or take the safe defaults with [`Policy::default`].
///
/// ```
/// use sandguard_policy::{Action, CommandSpec, ExecRequest, Policy};
///
/// let policy = Policy::from_toml("[exec]\nshell = false\n", "inline.toml").unwrap();
/// let exec = ExecRequest { command: CommandSpec::Shell("ls"), cwd: None, env: &[], limits: None };
/// let denial = policy.authorize(&Action::Exec(exec)).unwrap_err();
/// assert_eq!(denial.code(), "SHELL_NOT_ALLOWED");
/// ```
#[derive(Debug, Clone)]
pub struct Policy {
    ids: IdRules,
    paths: PathGuard,
    ports: PortPolicy,
    egress: EgressPolicy,
    exec: ExecRules,
    limits: ResourceLimits,
    rate_limit: Option<Quota>,
    lockout: Option<LockoutConfig>,
    redact_patterns: bool,
    secret_env: Vec<String>,
}

impl Default for Policy {
    /// The safe defaults of every guard (see [`manual`](crate::manual)): roots `/workspace`,
    /// `/tmp`, `/home`; ports 1024–65535 but 3000; no egress; 20 requests/s per actor with a burst
    /// of 40; 5 denials in 5 minutes lock an actor out for 15 minutes; credential shapes redacted.
    fn default() -> Self {
        Self {
            ids: IdRules::default(),
            paths: PathGuard::default(),
            ports: PortPolicy::default(),
            egress: EgressPolicy::default(),
            exec: ExecRules::default(),
            limits: ResourceLimits::default(),
            rate_limit: Quota::new(20, Duration::from_secs(1), 40).ok(),
            lockout: Some(LockoutConfig::default()),
            redact_patterns: true,
            secret_env: Vec::new(),
        }
    }
}

impl Policy {
    /// Starts a policy from the defaults.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder { policy: Self::default() }
    }

    /// Compiles a policy from TOML text; `origin` names the text in error messages.
    ///
    /// # Errors
    /// Every problem found, each with line and column: syntax errors, unknown keys, values of the
    /// wrong type, and values a guard refuses.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigErrors> {
        crate::config::compile(text, origin)
    }

    /// Reads and compiles a policy file.
    ///
    /// # Errors
    /// As [`Policy::from_toml`], or one error naming the file when it cannot be read.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let origin = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_toml(&text, &origin),
            Err(error) => Err(ConfigErrors::io(&origin, &error)),
        }
    }

    /// The sandbox ID rules.
    pub fn ids(&self) -> &IdRules {
        &self.ids
    }
    /// The path guard.
    pub fn paths(&self) -> &PathGuard {
        &self.paths
    }
    /// The port policy.
    pub fn ports(&self) -> &PortPolicy {
        &self.ports
    }
    /// The egress policy.
    pub fn egress(&self) -> &EgressPolicy {
        &self.egress
    }
    /// The exec rules.
    pub fn exec(&self) -> &ExecRules {
        &self.exec
    }
    /// The resource limits every command runs under (the most a caller may ask for).
    pub fn limits(&self) -> &ResourceLimits {
        &self.limits
    }
    /// The per-actor rate limit, if any.
    pub fn rate_limit(&self) -> Option<Quota> {
        self.rate_limit
    }
    /// The lockout settings, if lockout is enabled.
    pub fn lockout(&self) -> Option<LockoutConfig> {
        self.lockout
    }
    /// Whether built-in credential shapes are redacted from output.
    pub fn redact_patterns(&self) -> bool {
        self.redact_patterns
    }
    /// Names of environment variables whose values are secrets to redact from output.
    pub fn secret_env(&self) -> &[String] {
        &self.secret_env
    }

    /// Decides on one action: a [`Permit`] carrying the normalised values, or a [`Denial`]
    /// with a stable code. Pure: no I/O, no clock, no allocation beyond the permit's values.
    pub fn authorize(&self, action: &Action<'_>) -> Result<Permit, Denial> {
        let grant = match *action {
            Action::Exec(ref request) => self.authorize_exec(request)?,
            Action::ReadFile { path } => Grant::ReadFile { path: self.paths.check(path)? },
            Action::WriteFile { path, len } => {
                let path = self.paths.check(path)?;
                if len > self.limits.file_size {
                    return Err(ActionError::FileTooLarge { len, max: self.limits.file_size }.into());
                }
                Grant::WriteFile { path }
            }
            Action::ExposePort { port } => Grant::ExposePort { port: self.ports.check(port)? },
            Action::Connect { url } => Grant::Connect { target: self.egress.check_url(url)? },
        };
        Ok(Permit::new(grant))
    }

    fn authorize_exec(&self, request: &ExecRequest<'_>) -> Result<Grant, Denial> {
        self.exec.check_command(&request.command)?;
        self.exec.check_env(request.env)?;
        let cwd = request.cwd.map(|cwd: &OsStr| self.paths.check(cwd)).transpose()?;
        let limits = match request.limits {
            Some(asked) => {
                asked.check_within(&self.limits)?;
                *asked
            }
            None => self.limits,
        };
        Ok(Grant::Exec { limits, cwd })
    }
}

/// Builds a [`Policy`] in code, one guard at a time; every guard is already validated.
///
/// ```
/// use sandguard_policy::{Action, PathGuard, Policy};
///
/// let policy = Policy::builder().paths(PathGuard::new(["/data"]).unwrap()).build();
/// assert!(policy.authorize(&Action::ReadFile { path: "/data/x".as_ref() }).is_ok());
/// assert!(policy.authorize(&Action::ReadFile { path: "/workspace/x".as_ref() }).is_err());
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct PolicyBuilder {
    policy: Policy,
}

impl PolicyBuilder {
    /// Sets the sandbox ID rules.
    pub fn ids(mut self, ids: IdRules) -> Self {
        self.policy.ids = ids;
        self
    }
    /// Sets the path guard.
    pub fn paths(mut self, paths: PathGuard) -> Self {
        self.policy.paths = paths;
        self
    }
    /// Sets the port policy.
    pub fn ports(mut self, ports: PortPolicy) -> Self {
        self.policy.ports = ports;
        self
    }
    /// Sets the egress policy.
    pub fn egress(mut self, egress: EgressPolicy) -> Self {
        self.policy.egress = egress;
        self
    }
    /// Sets the exec rules.
    pub fn exec(mut self, exec: ExecRules) -> Self {
        self.policy.exec = exec;
        self
    }
    /// Sets the resource limits.
    pub fn limits(mut self, limits: ResourceLimits) -> Self {
        self.policy.limits = limits;
        self
    }
    /// Sets (or with `None` removes) the per-actor rate limit.
    pub fn rate_limit(mut self, quota: Option<Quota>) -> Self {
        self.policy.rate_limit = quota;
        self
    }
    /// Sets (or with `None` disables) lockout.
    pub fn lockout(mut self, lockout: Option<LockoutConfig>) -> Self {
        self.policy.lockout = lockout;
        self
    }
    /// Turns redaction of built-in credential shapes on or off.
    pub fn redact_patterns(mut self, on: bool) -> Self {
        self.policy.redact_patterns = on;
        self
    }
    /// Sets the names of environment variables whose values are redacted from output.
    pub fn secret_env<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.policy.secret_env = names.into_iter().map(Into::into).collect();
        self
    }
    /// The finished policy.
    pub fn build(self) -> Policy {
        self.policy
    }
}
