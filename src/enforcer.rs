//! The [`Enforcer`]: policy, rate limit, lockout and audit in front of every operation.

use std::ffi::OsStr;
use std::sync::Arc;

use sandguard_audit::{AuditLog, NewEvent, Outcome};
use sandguard_policy::{
    Action, Clock, CommandSpec, Denial, Grant, Lockout, Policy, RateLimit, SandboxId, SecretRedactor, SystemClock,
};
use serde_json::{Value, json};

use crate::Error;

/// Proof that an operation was allowed by the policy *and* recorded in the audit log.
///
/// Only [`Enforcer::authorize`] makes one; executor calls take one, so an operation that was not
/// checked and recorded cannot be started.
#[derive(Debug, Clone, PartialEq)]
pub struct Permit {
    grant: Grant,
    actor: String,
    sandbox: Option<SandboxId>,
    audit_seq: u64,
}

impl Permit {
    /// What the operation may do, with every value normalised by its guard.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }
    /// Who asked.
    pub fn actor(&self) -> &str {
        &self.actor
    }
    /// The sandbox the operation acts on, if any.
    pub fn sandbox(&self) -> Option<&SandboxId> {
        self.sandbox.as_ref()
    }
    /// The sequence number of the audit record of this decision.
    pub fn audit_seq(&self) -> u64 {
        self.audit_seq
    }
}

/// Decides on every operation and records every decision.
///
/// For each call to [`authorize`](Self::authorize), in this order: the actor's lockout, the
/// actor's rate limit, then the policy; the decision is recorded (allowed and denied alike)
/// *before* the caller gets its answer, and a decision that cannot be recorded is refused.
/// Policy denials count towards the actor's lockout; lockout and rate-limit refusals do not,
/// so a locked actor's retries cannot extend its own lock.
#[derive(Debug)]
pub struct Enforcer {
    policy: Arc<Policy>,
    audit: AuditLog,
    rate_limit: Option<RateLimit>,
    lockout: Option<Lockout>,
    redactor: SecretRedactor,
}

impl Enforcer {
    /// An enforcer over `policy`, recording into `audit`, on the system clock.
    pub fn new(policy: Policy, audit: AuditLog) -> Self {
        Self::builder(policy, audit).build()
    }

    /// Starts an enforcer whose clock (for rate limits and lockout) can be chosen.
    pub fn builder(policy: Policy, audit: AuditLog) -> EnforcerBuilder {
        EnforcerBuilder { policy, audit, clock: Arc::new(SystemClock::default()) }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Decides whether `actor` may perform `action` (on `sandbox`), and records the decision.
    ///
    /// # Errors
    /// [`Error::Denied`] when the lockout, the rate limit or the policy refuses (recorded with its
    /// code); [`Error::Audit`] when the decision could not be recorded, in which case the action
    /// is refused whatever the policy said.
    pub fn authorize(&self, actor: &str, sandbox: Option<&SandboxId>, action: &Action<'_>) -> Result<Permit, Error> {
        let decision = self.decide(actor, action);
        let mut event = NewEvent::new(actor, action.name(), outcome_of(&decision));
        if let Some(sandbox) = sandbox {
            event = event.sandbox(sandbox.as_str());
        }
        for (key, value) in self.describe(action) {
            event = event.detail(key, value);
        }
        match &decision {
            Ok(grant) => {
                for (key, value) in describe_grant(grant) {
                    event = event.detail(key, value);
                }
            }
            Err((denial, locked_now)) => {
                event = event.reason(denial.code(), denial.message());
                if *locked_now {
                    event = event.detail("locked_out", true);
                }
            }
        }
        let recorded = self.audit.record(event)?;
        match decision {
            Ok(grant) => Ok(Permit {
                grant,
                actor: actor.to_owned(),
                sandbox: sandbox.cloned(),
                audit_seq: recorded.seq,
            }),
            Err((denial, _)) => Err(Error::Denied(denial)),
        }
    }

    /// The decision alone; on denial, also whether this denial locked the actor out.
    fn decide(&self, actor: &str, action: &Action<'_>) -> Result<Grant, (Denial, bool)> {
        if let Some(lockout) = &self.lockout {
            lockout.check(actor).map_err(|locked| (Denial::from(locked), false))?;
        }
        if let Some(rate_limit) = &self.rate_limit {
            rate_limit.check(actor).map_err(|limited| (Denial::from(limited), false))?;
        }
        match self.policy.authorize(action) {
            Ok(permit) => {
                if let Some(lockout) = &self.lockout {
                    lockout.record_success(actor);
                }
                Ok(permit.grant().clone())
            }
            Err(denial) => {
                let locked_now = self.lockout.as_ref().and_then(|lockout| lockout.record_failure(actor)).is_some();
                Err((denial, locked_now))
            }
        }
    }

    /// What the caller asked, for the audit record; commands and URLs pass the redactor, and
    /// environment variables are recorded by name only.
    fn describe(&self, action: &Action<'_>) -> Vec<(&'static str, Value)> {
        let redact = |text: &str| Value::from(self.redactor.redact(text).into_owned());
        match action {
            Action::Exec(request) => {
                let command = match request.command {
                    CommandSpec::Shell(line) => json!({ "shell": redact(line) }),
                    CommandSpec::Argv(argv) => {
                        Value::Array(argv.iter().map(|arg| redact(&arg.to_string_lossy())).collect())
                    }
                };
                let env: Vec<&str> = request.env.iter().map(|(name, _)| name.as_str()).collect();
                let mut details = vec![("command", command), ("env", json!(env))];
                if let Some(cwd) = request.cwd {
                    details.push(("cwd", lossy(cwd)));
                }
                details
            }
            Action::ReadFile { path } => vec![("path", lossy(path))],
            Action::WriteFile { path, len } => vec![("path", lossy(path)), ("len", json!(len))],
            Action::ExposePort { port } => vec![("port", json!(port))],
            Action::Connect { url } => vec![("url", redact(url))],
            _ => Vec::new(),
        }
    }
}

fn outcome_of<T>(decision: &Result<T, (Denial, bool)>) -> Outcome {
    if decision.is_ok() { Outcome::Allowed } else { Outcome::Denied }
}

fn lossy(text: &OsStr) -> Value {
    Value::from(text.to_string_lossy().into_owned())
}

/// The normalised values of a grant, for the audit record.
fn describe_grant(grant: &Grant) -> Vec<(&'static str, Value)> {
    match grant {
        Grant::Exec { limits, cwd } => {
            let mut details = vec![
                ("timeout_ms", json!(u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX))),
                ("memory_bytes", json!(limits.memory)),
                ("pids", json!(limits.pids)),
            ];
            if let Some(cwd) = cwd {
                details.push(("canonical_cwd", lossy(cwd.as_os_str())));
            }
            details
        }
        Grant::ReadFile { path } | Grant::WriteFile { path } => vec![("canonical_path", lossy(path.as_os_str()))],
        Grant::Connect { target } => vec![("target", Value::from(target.to_string()))],
        _ => Vec::new(),
    }
}

/// Builds an [`Enforcer`]; see [`Enforcer::builder`].
#[derive(Debug)]
#[must_use]
pub struct EnforcerBuilder {
    policy: Policy,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
}

impl EnforcerBuilder {
    /// Uses `clock` for rate limits and lockout (a [`FakeClock`](sandguard_policy::FakeClock) in tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The enforcer.
    pub fn build(self) -> Enforcer {
        let rate_limit = self.policy.rate_limit().map(|quota| RateLimit::new(quota, Arc::clone(&self.clock)));
        let lockout = self.policy.lockout().map(|config| Lockout::new(config, Arc::clone(&self.clock)));
        let redactor = if self.policy.redact_patterns() { SecretRedactor::default() } else { SecretRedactor::builder().patterns(false).build().unwrap_or_default() };
        Enforcer { policy: Arc::new(self.policy), audit: self.audit, rate_limit, lockout, redactor }
    }
}
