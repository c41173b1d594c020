//! Security events: what happened, to whom, and how it ended.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// One recorded security event: an operation that was allowed, denied or failed.
///
/// Events are created by [`AuditLog::record`](crate::AuditLog::record) from a [`NewEvent`];
/// the log assigns `seq` and `time`. Each event is serialised as one JSON object on one
/// line; `None` fields and empty `details` are left out. Strings are JSON-escaped, so a
/// hostile actor name or path containing newlines or quotes cannot forge a second line.
///
/// # Field mapping
///
/// The field names are sandguard's own; this is where each one goes in the two common
/// schemas, for whoever writes the SIEM ingestion pipeline:
///
/// | field           | OCSF                                     | Elastic Common Schema        |
/// |-----------------|------------------------------------------|------------------------------|
/// | `seq`           | `metadata.sequence`                      | `event.sequence`             |
/// | `time`          | `time`                                   | `@timestamp`                 |
/// | `actor`         | `actor.user.name`                        | `user.name`                  |
/// | `sandbox`       | `container.uid`                          | `container.id`               |
/// | `action`        | `activity_name`                          | `event.action`               |
/// | `outcome`       | `status` + `disposition` (see [`Outcome`]) | `event.outcome`            |
/// | `reason.code`   | `status_code`                            | `error.code` (or `rule.id`)  |
/// | `reason.message`| `status_detail`                          | `event.reason`               |
/// | `details`       | `unmapped`                               | `labels` / custom fields     |
/// | `usage`         | `unmapped`                               | custom fields                |
/// | `hash` (file)   | —                                        | `event.hash`                 |
///
/// # Example
///
/// ```
/// use sandguard_audit::{AuditLog, MemorySink, NewEvent, Outcome};
///
/// let log = AuditLog::new(MemorySink::new());
/// let event = log.record(NewEvent::new("alice", "file.read", Outcome::Denied)
///     .sandbox("sbx-7")
///     .reason("path-outside-root", "/etc/shadow is outside /workspace"))?;
/// assert_eq!(event.seq, 1);
///
/// let json = serde_json::to_string(&event)?;
/// assert!(json.starts_with(r#"{"seq":1,"time":""#));
/// assert!(json.contains(r#""outcome":"denied""#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SecurityEvent {
    /// Position in the log: 1 for the first event, then consecutive.
    pub seq: u64,
    /// When the log recorded the event (UTC). Serialised as RFC 3339 with nanoseconds,
    /// always nine fractional digits, so timestamps sort as text.
    #[serde(with = "rfc3339_nanos")]
    pub time: OffsetDateTime,
    /// Who asked for the operation (the authenticated user or service).
    pub actor: String,
    /// The sandbox the operation concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// What was attempted, dotted lowercase: `exec`, `file.read`, `port.expose`,
    /// `egress.connect`, `sandbox.create`, [`THREAT_DETECTED`](crate::THREAT_DETECTED), …
    pub action: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why, for denials and errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Action-specific facts: the command, the path, the host and port, …
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
    /// Resources the operation consumed, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl SecurityEvent {
    /// Completes `event` with the position and time the log assigns.
    pub(crate) fn from_new(seq: u64, time: OffsetDateTime, event: NewEvent) -> Self {
        let NewEvent { actor, sandbox, action, outcome, reason, details, usage } = event;
        Self { seq, time, actor, sandbox, action, outcome, reason, details, usage }
    }
}

/// How an operation ended. Lowercase in JSON: `"allowed"`, `"denied"`, `"error"`.
///
/// OCSF: `allowed` is status Success with disposition Allowed; `denied` is status Failure
/// with disposition Blocked; `error` is status Failure. ECS `event.outcome`: `success`,
/// `failure`, `failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The policy permitted the operation and it ran.
    Allowed,
    /// The policy refused the operation; it never reached the executor.
    Denied,
    /// The operation was permitted but failed while running.
    Error,
}

impl Outcome {
    /// The JSON spelling: `allowed`, `denied` or `error`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an operation was denied or failed: a stable machine-readable code (a policy
/// diagnostic code such as `path-outside-root`) and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable identifier, suitable for alert rules and dashboards.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl Reason {
    /// A reason with the given code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }
}

/// Resources an operation consumed. Every figure is optional because not every
/// operation measures every resource; absent figures are left out of the JSON.
///
/// ```
/// use sandguard_audit::Usage;
///
/// let usage = Usage::new().wall_ms(120).cpu_ms(95).memory_peak_bytes(48 << 20);
/// assert_eq!(usage.cpu_ms, Some(95));
/// assert_eq!(usage.stdout_bytes, None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// Wall-clock duration in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<u64>,
    /// CPU time (user + system) in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
    /// Peak resident memory in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_peak_bytes: Option<u64>,
    /// Bytes written to standard output (before any cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_bytes: Option<u64>,
    /// Bytes written to standard error (before any cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_bytes: Option<u64>,
}

impl Usage {
    /// No figures yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the wall-clock duration in milliseconds.
    pub fn wall_ms(mut self, ms: u64) -> Self {
        self.wall_ms = Some(ms);
        self
    }

    /// Sets the CPU time in milliseconds.
    pub fn cpu_ms(mut self, ms: u64) -> Self {
        self.cpu_ms = Some(ms);
        self
    }

    /// Sets the peak memory in bytes.
    pub fn memory_peak_bytes(mut self, bytes: u64) -> Self {
        self.memory_peak_bytes = Some(bytes);
        self
    }

    /// Sets the standard-output byte count.
    pub fn stdout_bytes(mut self, bytes: u64) -> Self {
        self.stdout_bytes = Some(bytes);
        self
    }

    /// Sets the standard-error byte count.
    pub fn stderr_bytes(mut self, bytes: u64) -> Self {
        self.stderr_bytes = Some(bytes);
        self
    }
}

/// An event as a caller describes it, before the log gives it a `seq` and a `time`.
///
/// ```
/// use sandguard_audit::{NewEvent, Outcome, Usage};
///
/// let event = NewEvent::new("alice", "exec", Outcome::Allowed)
///     .sandbox("sbx-7")
///     .detail("argv", serde_json::json!(["ls", "-la"]))
///     .usage(Usage::new().wall_ms(12));
/// # let _ = event;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a NewEvent does nothing until it is recorded with AuditLog::record"]
pub struct NewEvent {
    actor: String,
    sandbox: Option<String>,
    action: String,
    outcome: Outcome,
    reason: Option<Reason>,
    details: Map<String, Value>,
    usage: Option<Usage>,
}

impl NewEvent {
    /// `actor` attempted `action`, which ended with `outcome`.
    pub fn new(actor: impl Into<String>, action: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            actor: actor.into(),
            sandbox: None,
            action: action.into(),
            outcome,
            reason: None,
            details: Map::new(),
            usage: None,
        }
    }

    /// The sandbox the operation concerned.
    pub fn sandbox(mut self, sandbox: impl Into<String>) -> Self {
        self.sandbox = Some(sandbox.into());
        self
    }

    /// Why it was denied or failed.
    pub fn reason(mut self, code: impl Into<String>, message: impl Into<String>) -> Self {
        self.reason = Some(Reason::new(code, message));
        self
    }

    /// Adds (or replaces) one entry of `details`.
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// The resources the operation consumed.
    pub fn usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }

    /// The outcome the event will be recorded with.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }
}

/// RFC 3339 in UTC with exactly nine fractional digits, e.g. `2025-01-31T12:00:00.000000001Z`.
///
/// A fixed width keeps lines sortable as text; parsing accepts any RFC 3339 offset and
/// converts to UTC, so files edited by other tools still read.
pub(crate) mod rfc3339_nanos {
    use serde::{Deserialize, Deserializer, Serializer, de, ser};
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    use time::{OffsetDateTime, UtcOffset};

    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

    pub(crate) fn format(time: OffsetDateTime) -> Option<String> {
        time.checked_to_offset(UtcOffset::UTC)?.format(FORMAT).ok()
    }

    pub(crate) fn serialize<S: Serializer>(time: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let text = format(*time)
            .ok_or_else(|| ser::Error::custom("timestamp outside the years 0000-9999 cannot be written as RFC 3339"))?;
        s.serialize_str(&text)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        // Borrowed when possible; timestamps never need JSON escapes.
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339)
            .ok()
            .and_then(|t| t.checked_to_offset(UtcOffset::UTC))
            .ok_or_else(|| de::Error::custom(format_args!("invalid RFC 3339 timestamp {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn sample() -> SecurityEvent {
        let new = NewEvent::new("alice", "exec", Outcome::Denied)
            .sandbox("sbx-1")
            .reason("cmd-denied", "rm is not allowed")
            .detail("argv", json!(["rm", "-rf", "/"]))
            .usage(Usage::new().wall_ms(3));
        SecurityEvent::from_new(7, datetime!(2025-01-31 12:00:00.000000001 UTC), new)
    }

    #[test]
    fn serialises_to_one_json_object_in_schema_order() {
        let line = serde_json::to_string(&sample()).unwrap();
        assert_eq!(
            line,
            r#"{"seq":7,"time":"2025-01-31T12:00:00.000000001Z","actor":"alice","sandbox":"sbx-1","action":"exec","outcome":"denied","reason":{"code":"cmd-denied","message":"rm is not allowed"},"details":{"argv":["rm","-rf","/"]},"usage":{"wall_ms":3}}"#
        );
    }

    #[test]
    fn absent_fields_are_left_out_and_read_back_as_absent() {
        let event = SecurityEvent::from_new(
            1,
            datetime!(2025-01-31 12:00:00 UTC),
            NewEvent::new("bob", "sandbox.create", Outcome::Allowed),
        );
        let line = serde_json::to_string(&event).unwrap();
        assert_eq!(
            line,
            r#"{"seq":1,"time":"2025-01-31T12:00:00.000000000Z","actor":"bob","action":"sandbox.create","outcome":"allowed"}"#
        );
        assert_eq!(serde_json::from_str::<SecurityEvent>(&line).unwrap(), event);
    }

    #[test]
    fn round_trips_and_ignores_chain_fields() {
        let event = sample();
        let mut line = serde_json::to_string(&event).unwrap();
        line.pop();
        line.push_str(r#","prev":"00","hash":"11"}"#);
        assert_eq!(serde_json::from_str::<SecurityEvent>(&line).unwrap(), event);
    }

    #[test]
    fn hostile_strings_stay_on_one_line() {
        let new = NewEvent::new("eve\n{\"seq\":2}", "exec\r\n", Outcome::Allowed);
        let event = SecurityEvent::from_new(1, datetime!(2025-01-31 12:00:00 UTC), new);
        let line = serde_json::to_string(&event).unwrap();
        assert!(!line.contains('\n') && !line.contains('\r'));
        assert_eq!(serde_json::from_str::<SecurityEvent>(&line).unwrap(), event);
    }

    #[test]
    fn timestamps_with_offsets_are_read_as_utc() {
        let line = r#"{"seq":1,"time":"2025-01-31T13:00:00.5+01:00","actor":"a","action":"x","outcome":"error"}"#;
        let event: SecurityEvent = serde_json::from_str(line).unwrap();
        assert_eq!(event.time, datetime!(2025-01-31 12:00:00.5 UTC));
        assert_eq!(event.time.offset(), time::UtcOffset::UTC);
    }

    #[test]
    fn invalid_timestamps_and_outcomes_are_rejected() {
        for line in [
            r#"{"seq":1,"time":"yesterday","actor":"a","action":"x","outcome":"error"}"#,
            r#"{"seq":1,"time":"2025-01-31T12:00:00Z","actor":"a","action":"x","outcome":"Denied"}"#,
        ] {
            assert!(serde_json::from_str::<SecurityEvent>(line).is_err(), "{line}");
        }
    }
}
