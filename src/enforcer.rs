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
    /// Built on first use: compiling the credential patterns takes about a millisecond that a
    /// short-lived program can spend building its sandbox instead.
    redactor: std::sync::OnceLock<SecretRedactor>,
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
                // Guards quote what they refused (an unparsable URL, say), so the message passes
                // the redactor like the details do.
                event = event.reason(denial.code(), self.redactor().redact(&denial.message()).into_owned());
                if *locked_now {
                    event = event.detail("locked_out", true);
                }
            }
        }
        let recorded = self.audit.record(event)?;
        match decision {
            Ok(grant) => {
                Ok(Permit { grant, actor: actor.to_owned(), sandbox: sandbox.cloned(), audit_seq: recorded.seq })
            }
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

    /// The redactor for audit details: the policy's credential patterns.
    fn redactor(&self) -> &SecretRedactor {
        self.redactor.get_or_init(|| {
            // Without patterns nothing can fail to build; were it to, redacting with the
            // patterns (more, not less) is the safe side.
            SecretRedactor::builder().patterns(self.policy.redact_patterns()).build().unwrap_or_default()
        })
    }

    /// What the caller asked, for the audit record; commands and URLs pass the redactor, and
    /// environment variables are recorded by name only.
    fn describe(&self, action: &Action<'_>) -> Vec<(&'static str, Value)> {
        let redactor = self.redactor();
        let redact = |text: &str| Value::from(redactor.redact(text).into_owned());
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
            Action::ReadFile { path }
            | Action::ListDir { path }
            | Action::MakeDir { path }
            | Action::Remove { path } => vec![("path", lossy(path))],
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
        Enforcer {
            policy: Arc::new(self.policy),
            audit: self.audit,
            rate_limit,
            lockout,
            redactor: std::sync::OnceLock::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::io;
    use std::time::Duration;

    use sandguard_audit::{AuditError, AuditSink, IoOp, MemorySink, SecurityEvent};
    use sandguard_policy::{ExecRequest, FakeClock, ResourceLimits};

    use super::*;

    /// A value that must never be written to the audit log.
    const SECRET: &str = "hunter2-correct-horse-battery-staple";
    /// The same, with a NUL byte no environment value may hold.
    const SECRET_WITH_NUL: &str = "hunter2-correct-horse-battery-staple\0";
    /// Shaped like an AWS access key ID (made up), which the redactor knows.
    // sandguard:allow(aws-access-key-id) -- a made-up credential shape, for tests and docs
    const AWS_KEY_ID: &str = "AKIAQWERTYUIOPASDFGH";

    struct Harness {
        enforcer: Enforcer,
        sink: Arc<MemorySink>,
        clock: FakeClock,
    }

    impl Harness {
        fn new(policy: Policy) -> Self {
            let sink = Arc::new(MemorySink::new());
            let clock = FakeClock::new(Duration::from_secs(3600));
            let log = AuditLog::new(Arc::clone(&sink));
            let enforcer = Enforcer::builder(policy, log).clock(Arc::new(clock.clone())).build();
            Self { enforcer, sink, clock }
        }

        fn authorize(&self, actor: &str, action: &Action<'_>) -> Result<Permit, Error> {
            self.enforcer.authorize(actor, None, action)
        }

        /// The code of a refusal; panics if the action was allowed.
        #[track_caller]
        fn refusal(&self, actor: &str, action: &Action<'_>) -> &'static str {
            match self.authorize(actor, action) {
                Err(Error::Denied(denial)) => denial.code(),
                other => panic!("{actor} must be denied {action:?}, got {other:?}"),
            }
        }

        fn events(&self) -> Vec<SecurityEvent> {
            self.sink.events()
        }

        fn last_event(&self) -> SecurityEvent {
            self.events().pop().expect("an event was recorded")
        }
    }

    fn allowed_read() -> Action<'static> {
        Action::ReadFile { path: "/workspace/notes.txt".as_ref() }
    }

    fn denied_read() -> Action<'static> {
        Action::ReadFile { path: "/workspace/../etc/shadow".as_ref() }
    }

    fn reason_code(event: &SecurityEvent) -> Option<&str> {
        event.reason.as_ref().map(|reason| reason.code.as_str())
    }

    fn json(event: &SecurityEvent) -> String {
        serde_json::to_string(event).expect("events serialise")
    }

    #[test]
    fn an_allowed_action_is_recorded_once_with_what_was_asked_and_granted() {
        let harness = Harness::new(Policy::default());
        let sandbox = SandboxId::parse("sbx-7").unwrap();
        let env = [("API_TOKEN".to_owned(), SECRET.to_owned()), ("LANG".to_owned(), "C".to_owned())];
        let action = Action::Exec(ExecRequest {
            command: CommandSpec::Shell("python3 main.py"),
            cwd: Some("/workspace/./app/../src".as_ref()),
            env: &env,
            limits: None,
        });

        let permit = harness.enforcer.authorize("alice", Some(&sandbox), &action).expect("allowed");

        let events = harness.events();
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.seq, permit.audit_seq());
        assert_eq!(event.outcome, Outcome::Allowed);
        assert_eq!(event.action, "exec");
        assert_eq!(event.actor, "alice");
        assert_eq!(event.sandbox.as_deref(), Some("sbx-7"));
        assert_eq!(event.reason, None);
        assert_eq!(event.details["command"], json!({ "shell": "python3 main.py" }));
        assert_eq!(event.details["env"], json!(["API_TOKEN", "LANG"]), "names only");
        assert_eq!(event.details["cwd"], "/workspace/./app/../src");
        assert_eq!(event.details["canonical_cwd"], "/workspace/src");
        assert_eq!(event.details["timeout_ms"], 30_000);
        assert!(!json(event).contains(SECRET), "{}", json(event));

        let limits = ResourceLimits::default();
        assert_eq!(permit.grant(), &Grant::Exec { limits, cwd: Some("/workspace/src".into()) });
        assert_eq!((permit.actor(), permit.sandbox()), ("alice", Some(&sandbox)));
    }

    #[test]
    fn a_denied_action_is_recorded_once_with_its_reason() {
        let harness = Harness::new(Policy::default());
        let sandbox = SandboxId::parse("sbx-7").unwrap();

        let error = harness.enforcer.authorize("mallory", Some(&sandbox), &denied_read()).unwrap_err();
        let Error::Denied(denial) = &error else { panic!("a policy denial, got {error:?}") };
        assert_eq!(error.code(), "PATH_OUTSIDE_ROOTS");

        let events = harness.events();
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.outcome, Outcome::Denied);
        assert_eq!(event.action, "file.read");
        assert_eq!(event.actor, "mallory");
        assert_eq!(event.sandbox.as_deref(), Some("sbx-7"));
        let reason = event.reason.as_ref().expect("a denial has a reason");
        assert_eq!((reason.code.as_str(), reason.message.clone()), ("PATH_OUTSIDE_ROOTS", denial.message()));
        assert_eq!(event.details["path"], "/workspace/../etc/shadow");
        assert!(!event.details.contains_key("canonical_path"), "nothing was granted");
    }

    #[test]
    fn each_permit_names_the_seq_of_its_own_record() {
        let harness = Harness::new(Policy::default());
        assert!(harness.authorize("alice", &denied_read()).is_err());
        let first = harness.authorize("alice", &allowed_read()).unwrap();
        let second = harness.authorize("alice", &Action::ExposePort { port: 8080 }).unwrap();

        let events = harness.events();
        assert_eq!(events.iter().map(|event| event.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!((first.audit_seq(), second.audit_seq()), (2, 3));
        assert_eq!(events[2].action, "port.expose");
    }

    #[test]
    fn environment_values_never_reach_the_log() {
        let harness = Harness::new(Policy::default());
        let cases: [&[(&str, &str)]; 4] = [
            &[("API_TOKEN", SECRET)],                         // allowed
            &[("API_TOKEN", SECRET), ("LD_PRELOAD", SECRET)], // ENV_NOT_ALLOWED
            &[("BAD-NAME", SECRET)],                          // INVALID_ENV_NAME
            &[("API_TOKEN", SECRET_WITH_NUL)],                // ENV_CONTAINS_NUL
        ];
        for pairs in cases {
            let env: Vec<(String, String)> =
                pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
            let action =
                Action::Exec(ExecRequest { command: CommandSpec::Shell("env"), cwd: None, env: &env, limits: None });
            let _ = harness.authorize("alice", &action);
        }

        let events = harness.events();
        let outcomes: Vec<_> = events.iter().map(|event| (event.outcome, reason_code(event))).collect();
        assert_eq!(
            outcomes,
            [
                (Outcome::Allowed, None),
                (Outcome::Denied, Some("ENV_NOT_ALLOWED")),
                (Outcome::Denied, Some("INVALID_ENV_NAME")),
                (Outcome::Denied, Some("ENV_CONTAINS_NUL")),
            ]
        );
        assert_eq!(events[1].details["env"], json!(["API_TOKEN", "LD_PRELOAD"]));
        for event in &events {
            assert!(!json(event).contains(SECRET), "{}", json(event));
        }
    }

    #[test]
    fn credential_shaped_tokens_are_redacted_from_commands_and_urls() {
        let harness = Harness::new(Policy::default());
        let line = format!("aws s3 ls --access-key-id {AWS_KEY_ID}");
        let argv = [OsString::from("aws"), OsString::from("--access-key-id"), OsString::from(AWS_KEY_ID)];
        let query = format!("https://example.com/upload?key={AWS_KEY_ID}");
        // Not a URL at all: the parser's complaint quotes the text it could not read.
        let port = format!("https://example.com:{AWS_KEY_ID}/");
        for action in [
            Action::Exec(ExecRequest { command: CommandSpec::Shell(&line), cwd: None, env: &[], limits: None }),
            Action::Exec(ExecRequest { command: CommandSpec::Argv(&argv), cwd: None, env: &[], limits: None }),
            Action::Connect { url: &query },
            Action::Connect { url: &port },
        ] {
            let _ = harness.authorize("alice", &action);
        }

        let events = harness.events();
        assert_eq!(events.len(), 4);
        assert_eq!(events[0].details["command"]["shell"], "aws s3 ls --access-key-id [REDACTED:aws-access-key-id]");
        assert_eq!(events[1].details["command"][2], "[REDACTED:aws-access-key-id]");
        assert_eq!(reason_code(&events[3]), Some("INVALID_URL"));
        for event in &events {
            assert!(!json(event).contains(AWS_KEY_ID), "{}", json(event));
        }
    }

    #[test]
    fn repeated_denials_lock_the_actor_out_until_the_lock_ends() {
        let harness = Harness::new(Policy::default());
        let lockout = harness.enforcer.policy().lockout().expect("lockout is on by default");
        assert_eq!(lockout.max_failures, 5);

        for _ in 0..4 {
            assert_eq!(harness.refusal("mallory", &denied_read()), "PATH_OUTSIDE_ROOTS");
            assert!(!harness.last_event().details.contains_key("locked_out"));
        }
        assert_eq!(harness.refusal("mallory", &denied_read()), "PATH_OUTSIDE_ROOTS", "the 5th is still the policy's");
        assert_eq!(harness.last_event().details["locked_out"], true);

        // Locked: even an action the policy allows is refused, and recorded.
        assert_eq!(harness.refusal("mallory", &allowed_read()), "LOCKED_OUT");
        let event = harness.last_event();
        assert_eq!(
            (event.outcome, event.action.as_str(), reason_code(&event)),
            (Outcome::Denied, "file.read", Some("LOCKED_OUT"))
        );
        assert!(harness.authorize("alice", &allowed_read()).is_ok(), "other actors are not affected");

        // Retries while locked neither extend the lock nor count towards the next one.
        harness.clock.advance(lockout.lock_for - Duration::from_nanos(1));
        assert_eq!(harness.refusal("mallory", &allowed_read()), "LOCKED_OUT");
        harness.clock.advance(Duration::from_nanos(1));
        assert!(harness.authorize("mallory", &allowed_read()).is_ok(), "the lock has ended");
        assert_eq!(harness.refusal("mallory", &denied_read()), "PATH_OUTSIDE_ROOTS", "a fresh count, not a lock");

        assert_eq!(harness.events().len(), 10, "every decision is recorded");
    }

    #[test]
    fn the_rate_limit_refuses_calls_beyond_the_quota_until_time_passes() {
        let policy = Policy::from_toml("[rate_limit]\nquota = \"2/s\"\nburst = 2\n", "test.toml").unwrap();
        let harness = Harness::new(policy);

        assert!(harness.authorize("alice", &allowed_read()).is_ok());
        assert!(harness.authorize("alice", &allowed_read()).is_ok());
        assert_eq!(harness.refusal("alice", &allowed_read()), "RATE_LIMITED");
        let event = harness.last_event();
        assert_eq!((event.outcome, reason_code(&event)), (Outcome::Denied, Some("RATE_LIMITED")));
        assert!(harness.authorize("bob", &allowed_read()).is_ok(), "each actor has its own quota");

        harness.clock.advance(Duration::from_millis(500));
        assert!(harness.authorize("alice", &allowed_read()).is_ok(), "one request is replenished every 500ms");
        assert_eq!(harness.events().len(), 5);
    }

    #[test]
    fn rate_limit_refusals_do_not_count_towards_lockout() {
        let policy = Policy::from_toml("[rate_limit]\nquota = \"1/s\"\n", "test.toml").unwrap();
        let harness = Harness::new(policy);
        assert!(harness.authorize("alice", &allowed_read()).is_ok());
        for _ in 0..10 {
            assert_eq!(harness.refusal("alice", &allowed_read()), "RATE_LIMITED");
        }
        harness.clock.advance(Duration::from_secs(1));
        assert!(harness.authorize("alice", &allowed_read()).is_ok(), "ten refusals did not lock alice out");
    }

    /// A sink whose disk is always full.
    #[derive(Debug)]
    struct FullDisk;

    impl AuditSink for FullDisk {
        fn write(&self, _event: &SecurityEvent) -> Result<(), AuditError> {
            Err(AuditError::Io {
                op: IoOp::Write,
                path: "/var/log/sandguard/audit.jsonl".into(),
                source: io::Error::from(io::ErrorKind::StorageFull),
            })
        }

        fn flush(&self) -> Result<(), AuditError> {
            Ok(())
        }
    }

    #[test]
    fn a_decision_that_cannot_be_recorded_is_refused() {
        let enforcer = Enforcer::new(Policy::default(), AuditLog::new(FullDisk));
        assert!(Policy::default().authorize(&allowed_read()).is_ok(), "the policy alone would allow it");

        for action in [allowed_read(), denied_read()] {
            let error = enforcer.authorize("alice", None, &action).unwrap_err();
            assert!(matches!(error, Error::Audit(AuditError::Io { op: IoOp::Write, .. })), "{error:?}");
            assert_eq!(error.code(), "AUDIT_FAILURE");
        }
    }
}
