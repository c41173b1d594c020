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
use crate::network::NetworkPolicy;
use crate::path::PathGuard;
use crate::port::PortPolicy;
use crate::rate::Quota;

/// Environment variables no policy lets a caller set: each one changes how the dynamic loader
/// or the shell starts, which turns "set a variable" into "run code of my choosing".
pub const BUILTIN_DENIED_ENV: &[&str] =
    &["BASH_ENV", "ENV", "GCONV_PATH", "LD_AUDIT", "LD_LIBRARY_PATH", "LD_PRELOAD", "PROMPT_COMMAND", "SHELLOPTS"];

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
    allow_weaker: bool,
    network: NetworkPolicy,
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
            allow_weaker: false,
            network: NetworkPolicy::None,
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
    /// Whether a sandbox may start without cgroups or Landlock when the kernel lacks them
    /// (`[sandbox] allow_weaker`). Off by default: sandguard refuses to run weaker than asked.
    pub fn allow_weaker(&self) -> bool {
        self.allow_weaker
    }
    /// The network sandboxes get (`[sandbox] network`).
    pub fn network(&self) -> &NetworkPolicy {
        &self.network
    }

    /// Decides on one action: a [`Permit`] carrying the normalised values, or a [`Denial`]
    /// with a stable code. Pure: no I/O, no clock, no allocation beyond the permit's values.
    pub fn authorize(&self, action: &Action<'_>) -> Result<Permit, Denial> {
        let grant = match *action {
            Action::Exec(ref request) => self.authorize_exec(request)?,
            Action::ReadFile { path } | Action::ListDir { path } => Grant::ReadFile { path: self.paths.check(path)? },
            Action::MakeDir { path } | Action::Remove { path } => Grant::WriteFile { path: self.paths.check(path)? },
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
    /// Lets sandboxes start without cgroups or Landlock when the kernel lacks them.
    pub fn allow_weaker(mut self, on: bool) -> Self {
        self.policy.allow_weaker = on;
        self
    }
    /// Sets the network sandboxes get.
    pub fn network(mut self, network: NetworkPolicy) -> Self {
        self.policy.network = network;
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

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::path::PathBuf;

    use super::*;
    use crate::egress::{EgressTarget, Host};
    use crate::port::PortRange;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
    }

    fn exec<'a>(command: CommandSpec<'a>, env: &'a [(String, String)]) -> Action<'a> {
        Action::Exec(ExecRequest { command, cwd: None, env, limits: None })
    }

    fn with_exec(rules: ExecRules) -> Policy {
        Policy::builder().exec(rules).build()
    }

    /// The policy's own reason for refusing `action`; panics if it was allowed or refused by a guard.
    #[track_caller]
    fn action_error(policy: &Policy, action: &Action<'_>) -> ActionError {
        let denial = policy.authorize(action).expect_err("the action must be refused");
        match denial.error() {
            crate::Error::Action(error) => {
                assert_eq!(denial.code(), error.code());
                error.clone()
            }
            other => panic!("refused by a guard rather than the exec rules: {other:?}"),
        }
    }

    #[track_caller]
    fn denial_code(policy: &Policy, action: &Action<'_>) -> &'static str {
        policy.authorize(action).expect_err("the action must be refused").code()
    }

    #[track_caller]
    fn grant(policy: &Policy, action: &Action<'_>) -> Grant {
        policy.authorize(action).unwrap_or_else(|denial| panic!("{action:?} must be allowed: {denial}")).grant().clone()
    }

    #[test]
    fn empty_commands_are_refused() {
        let policy = Policy::default();
        let (none, empty_program) = (argv(&[]), argv(&["", "-c", "id"]));
        for command in [
            CommandSpec::Shell(""),
            CommandSpec::Shell(" \t\n  "),
            CommandSpec::Argv(&none),
            CommandSpec::Argv(&empty_program),
        ] {
            assert_eq!(action_error(&policy, &exec(command, &[])), ActionError::EmptyCommand, "{command:?}");
        }
        assert_eq!(ActionError::EmptyCommand.code(), "EMPTY_COMMAND");
    }

    #[test]
    fn shell_lines_are_refused_when_the_policy_allows_argument_vectors_only() {
        let argv_only = with_exec(ExecRules::new(false, 1024, 8, std::iter::empty::<&str>()));
        let ls = argv(&["ls", "-l"]);
        assert_eq!(action_error(&argv_only, &exec(CommandSpec::Shell("ls -l"), &[])), ActionError::ShellNotAllowed);
        assert_eq!(ActionError::ShellNotAllowed.code(), "SHELL_NOT_ALLOWED");
        assert!(argv_only.authorize(&exec(CommandSpec::Argv(&ls), &[])).is_ok());
        assert!(Policy::default().authorize(&exec(CommandSpec::Shell("ls -l"), &[])).is_ok(), "on by default");
    }

    #[test]
    fn commands_longer_than_the_maximum_are_refused() {
        let policy = with_exec(ExecRules::new(true, 10, 8, std::iter::empty::<&str>()));
        assert!(policy.authorize(&exec(CommandSpec::Shell("echo 12345"), &[])).is_ok(), "10 bytes is the maximum");
        assert_eq!(
            action_error(&policy, &exec(CommandSpec::Shell("echo 123456"), &[])),
            ActionError::CommandTooLong { len: 11, max: 10 }
        );

        // Each argument costs its bytes and its terminating NUL: 5 + 5 = 10, then 5 + 6 = 11.
        let (fits, too_long) = (argv(&["echo", "1234"]), argv(&["echo", "12345"]));
        assert!(policy.authorize(&exec(CommandSpec::Argv(&fits), &[])).is_ok());
        let error = action_error(&policy, &exec(CommandSpec::Argv(&too_long), &[]));
        assert_eq!(error, ActionError::CommandTooLong { len: 11, max: 10 });
        assert_eq!(error.code(), "COMMAND_TOO_LONG");
    }

    #[test]
    fn a_nul_byte_in_a_command_is_refused_with_the_argument_index() {
        let policy = Policy::default();
        let (in_program, in_third) = (argv(&["ec\0ho", "x"]), argv(&["echo", "ok", "a\0b"]));
        let cases = [
            (CommandSpec::Argv(&in_program), 0),
            (CommandSpec::Argv(&in_third), 2),
            (CommandSpec::Shell("echo a\0b"), 0),
        ];
        for (command, index) in cases {
            let error = action_error(&policy, &exec(command, &[]));
            assert_eq!(error, ActionError::CommandContainsNul { index }, "{command:?}");
            assert_eq!(error.code(), "COMMAND_CONTAINS_NUL");
        }
    }

    #[test]
    fn environment_names_must_be_shell_names() {
        let policy = Policy::default();
        for name in ["", "1PATH", "A-B", "A=B", "A B", "NAÏVE", "BASH_FUNC_ls%%"] {
            let vars = env(&[("OK", "1"), (name, "x")]);
            let error = action_error(&policy, &exec(CommandSpec::Shell("true"), &vars));
            assert_eq!(error, ActionError::InvalidEnvName { name: name.to_owned() }, "{name:?}");
            assert_eq!(error.code(), "INVALID_ENV_NAME");
        }
        let fine = env(&[("_", "1"), ("a1", "2"), ("PATH", "/bin"), ("ld_preload", "not the loader's")]);
        assert!(policy.authorize(&exec(CommandSpec::Shell("true"), &fine)).is_ok());
    }

    #[test]
    fn a_nul_byte_in_an_environment_value_is_refused() {
        let vars = env(&[("TOKEN", "abc\0def")]);
        let error = action_error(&Policy::default(), &exec(CommandSpec::Shell("true"), &vars));
        assert_eq!(error, ActionError::EnvContainsNul { name: "TOKEN".to_owned() });
        assert_eq!(error.code(), "ENV_CONTAINS_NUL");
        assert!(!error.to_string().contains("abc"), "the value stays out of the message: {error}");
    }

    #[test]
    fn loader_and_shell_startup_variables_are_always_refused() {
        let extra = ExecRules::new(true, 1024, 8, ["NODE_OPTIONS"]);
        for rules in [ExecRules::default(), extra.clone()] {
            let policy = with_exec(rules);
            for name in ["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "GCONV_PATH", "BASH_ENV", "ENV", "PROMPT_COMMAND"]
                .into_iter()
                .chain(BUILTIN_DENIED_ENV.iter().copied())
            {
                let vars = env(&[(name, "/tmp/evil.so")]);
                let error = action_error(&policy, &exec(CommandSpec::Shell("true"), &vars));
                assert_eq!(error, ActionError::EnvNotAllowed { name: name.to_owned() });
                assert_eq!(error.code(), "ENV_NOT_ALLOWED");
            }
        }

        let node = env(&[("NODE_OPTIONS", "--require /tmp/x.js")]);
        assert!(Policy::default().authorize(&exec(CommandSpec::Shell("node"), &node)).is_ok());
        assert!(with_exec(extra.clone()).authorize(&exec(CommandSpec::Shell("node"), &node)).is_err());
        let denied = extra.denied_env();
        assert!(denied.windows(2).all(|pair| pair[0] < pair[1]), "sorted and deduplicated: {denied:?}");
        assert_eq!(denied.len(), BUILTIN_DENIED_ENV.len() + 1);
    }

    #[test]
    fn more_variables_than_the_maximum_are_refused() {
        let policy = with_exec(ExecRules::new(true, 1024, 2, std::iter::empty::<&str>()));
        let two = env(&[("A", "1"), ("B", "2")]);
        let three = env(&[("A", "1"), ("B", "2"), ("C", "3")]);
        assert!(policy.authorize(&exec(CommandSpec::Shell("true"), &two)).is_ok());
        let error = action_error(&policy, &exec(CommandSpec::Shell("true"), &three));
        assert_eq!(error, ActionError::TooManyEnvVars { count: 3, max: 2 });
        assert_eq!(error.code(), "TOO_MANY_ENV_VARS");
    }

    #[test]
    fn writes_up_to_the_file_size_limit_are_allowed() {
        let policy = Policy::builder().limits(ResourceLimits { file_size: 100, ..ResourceLimits::default() }).build();
        let write = |len| Action::WriteFile { path: "/workspace/out/../data.bin".as_ref(), len };

        assert_eq!(grant(&policy, &write(100)), Grant::WriteFile { path: PathBuf::from("/workspace/data.bin") });
        let error = action_error(&policy, &write(101));
        assert_eq!(error, ActionError::FileTooLarge { len: 101, max: 100 });
        assert_eq!(error.code(), "FILE_TOO_LARGE");
        assert_eq!(
            denial_code(&policy, &Action::WriteFile { path: "/etc/passwd".as_ref(), len: 1 }),
            "PATH_OUTSIDE_ROOTS"
        );
    }

    #[test]
    fn file_paths_are_granted_in_canonical_form_inside_the_roots() {
        let policy = Policy::default();
        assert_eq!(
            grant(&policy, &Action::ReadFile { path: "/workspace/./src//lib/../main.py".as_ref() }),
            Grant::ReadFile { path: PathBuf::from("/workspace/src/main.py") }
        );
        for outside in ["/workspace/../etc/shadow", "/workspace-evil/x", "/etc/passwd"] {
            assert_eq!(denial_code(&policy, &Action::ReadFile { path: outside.as_ref() }), "PATH_OUTSIDE_ROOTS");
        }
    }

    #[test]
    fn the_working_directory_must_be_inside_the_roots() {
        let policy = Policy::default();
        let request = |cwd: &'static str| {
            Action::Exec(ExecRequest {
                command: CommandSpec::Shell("ls"),
                cwd: Some(cwd.as_ref()),
                env: &[],
                limits: None,
            })
        };
        assert_eq!(denial_code(&policy, &request("/workspace/../etc")), "PATH_OUTSIDE_ROOTS");
        assert_eq!(denial_code(&policy, &request("/")), "PATH_OUTSIDE_ROOTS");
        assert_eq!(
            grant(&policy, &request("/workspace/./proj/../src/")),
            Grant::Exec { limits: ResourceLimits::default(), cwd: Some(PathBuf::from("/workspace/src")) }
        );
    }

    #[test]
    fn requested_limits_may_be_lower_than_the_policy_never_higher() {
        let policy = Policy::default();
        fn request(limits: &ResourceLimits) -> Action<'_> {
            Action::Exec(ExecRequest { command: CommandSpec::Shell("make"), cwd: None, env: &[], limits: Some(limits) })
        }
        let lower = ResourceLimits { timeout: Duration::from_secs(5), memory: 64 << 20, ..*policy.limits() };
        assert_eq!(grant(&policy, &request(&lower)), Grant::Exec { limits: lower, cwd: None });

        let longer = ResourceLimits { timeout: Duration::from_secs(3600), ..*policy.limits() };
        let more_memory = ResourceLimits { memory: policy.limits().memory + 1, ..*policy.limits() };
        for asked in [longer, more_memory] {
            assert_eq!(denial_code(&policy, &request(&asked)), "LIMIT_EXCEEDS_POLICY", "{asked:?}");
        }
        assert_eq!(
            grant(&policy, &exec(CommandSpec::Shell("make"), &[])),
            Grant::Exec { limits: *policy.limits(), cwd: None },
            "without a request, the policy's own limits apply"
        );
    }

    #[test]
    fn ports_are_decided_by_the_port_policy() {
        let policy = Policy::default();
        assert_eq!(grant(&policy, &Action::ExposePort { port: 8080 }), Grant::ExposePort { port: 8080 });
        assert_eq!(denial_code(&policy, &Action::ExposePort { port: 3000 }), "RESERVED_PORT");
        assert_eq!(denial_code(&policy, &Action::ExposePort { port: 22 }), "PORT_NOT_ALLOWED");
        assert_eq!(denial_code(&policy, &Action::ExposePort { port: 0 }), "PORT_OUT_OF_RANGE");

        let custom = Policy::builder().ports(PortPolicy::new(vec![PortRange::new(22, 22).unwrap()], vec![])).build();
        assert_eq!(grant(&custom, &Action::ExposePort { port: 22 }), Grant::ExposePort { port: 22 });
        assert_eq!(denial_code(&custom, &Action::ExposePort { port: 8080 }), "PORT_NOT_ALLOWED");
    }

    #[test]
    fn connections_are_decided_by_the_egress_policy_and_granted_normalised() {
        assert_eq!(
            denial_code(&Policy::default(), &Action::Connect { url: "https://example.com/" }),
            "EGRESS_HOST_NOT_ALLOWED"
        );

        let egress = EgressPolicy::new(["https"], ["*.example.com"], None).unwrap();
        let policy = Policy::builder().egress(egress).build();
        assert_eq!(
            grant(&policy, &Action::Connect { url: "HTTPS://API.Example.COM./v1?q=1" }),
            Grant::Connect {
                target: EgressTarget {
                    scheme: "https".to_owned(),
                    host: Host::Name("api.example.com".to_owned()),
                    port: 443
                }
            }
        );
        let refused = [
            ("http://api.example.com/", "EGRESS_SCHEME_NOT_ALLOWED"),
            ("https://example.com/", "EGRESS_HOST_NOT_ALLOWED"),
            ("https://api.example.com:8443/", "EGRESS_PORT_NOT_ALLOWED"),
            ("https://169.254.169.254/latest/meta-data/", "EGRESS_ADDRESS_DENIED"),
            ("https://user:pw@api.example.com/", "EGRESS_USERINFO"),
        ];
        for (url, code) in refused {
            assert_eq!(denial_code(&policy, &Action::Connect { url }), code, "{url}");
        }
    }

    #[test]
    fn the_builder_sets_each_guard() {
        let ids = IdRules::new(["billing"]);
        let paths = PathGuard::new(["/data"]).unwrap();
        let ports = PortPolicy::new(vec![PortRange::new(8000, 8001).unwrap()], vec![8001]);
        let exec_rules = ExecRules::new(false, 7, 1, ["NODE_OPTIONS"]);
        let limits = ResourceLimits { pids: 3, ..ResourceLimits::default() };
        let quota = Quota::new(1, Duration::from_secs(60), 1).unwrap();
        let lockout = LockoutConfig::new(2, Duration::from_secs(10), Duration::from_secs(20)).unwrap();

        let policy = Policy::builder()
            .ids(ids.clone())
            .paths(paths.clone())
            .ports(ports.clone())
            .egress(EgressPolicy::new(["https"], ["example.com"], None).unwrap())
            .exec(exec_rules.clone())
            .limits(limits)
            .rate_limit(Some(quota))
            .lockout(Some(lockout))
            .redact_patterns(false)
            .secret_env(["OPENAI_API_KEY"])
            .build();

        assert_eq!(policy.ids(), &ids);
        assert_eq!(policy.paths(), &paths);
        assert_eq!(policy.ports(), &ports);
        assert!(policy.egress().allows("https://example.com/"));
        assert_eq!(policy.exec(), &exec_rules);
        assert_eq!(policy.limits(), &limits);
        assert_eq!(policy.rate_limit(), Some(quota));
        assert_eq!(policy.lockout(), Some(lockout));
        assert!(!policy.redact_patterns());
        assert_eq!(policy.secret_env(), ["OPENAI_API_KEY"]);

        let off = Policy::builder().rate_limit(None).lockout(None).build();
        assert_eq!((off.rate_limit(), off.lockout()), (None, None));
        assert!(Policy::default().rate_limit().is_some() && Policy::default().lockout().is_some(), "on by default");
    }
}
