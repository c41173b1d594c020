//! Where events go: the [`AuditSink`] trait and the simple sinks.

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::{AuditError, Outcome, SecurityEvent};

/// A destination for security events.
///
/// [`AuditLog`](crate::AuditLog) calls `write` under its lock, once per event, in seq
/// order, so a sink sees events in the order they happened and never concurrently.
pub trait AuditSink: Send + Sync {
    /// Stores one event. Returning `Err` tells the caller the event may not have been
    /// stored; the facade treats that as a reason to refuse the operation.
    fn write(&self, event: &SecurityEvent) -> Result<(), AuditError>;

    /// Makes every event written so far as durable as the sink can.
    fn flush(&self) -> Result<(), AuditError>;

    /// The seq of the last event the sink already holds (from an earlier run, for a
    /// file), so that a new [`AuditLog`](crate::AuditLog) continues after it. `None`,
    /// the default, means the sink holds nothing and the log starts at seq 1.
    fn last_seq(&self) -> Option<u64> {
        None
    }
}

impl<S: AuditSink + ?Sized> AuditSink for Arc<S> {
    fn write(&self, event: &SecurityEvent) -> Result<(), AuditError> {
        (**self).write(event)
    }

    fn flush(&self) -> Result<(), AuditError> {
        (**self).flush()
    }

    fn last_seq(&self) -> Option<u64> {
        (**self).last_seq()
    }
}

impl<S: AuditSink + ?Sized> AuditSink for Box<S> {
    fn write(&self, event: &SecurityEvent) -> Result<(), AuditError> {
        (**self).write(event)
    }

    fn flush(&self) -> Result<(), AuditError> {
        (**self).flush()
    }

    fn last_seq(&self) -> Option<u64> {
        (**self).last_seq()
    }
}

/// Keeps events in memory, for tests and for showing recent events.
///
/// Share it with [`Arc`] to inspect what an [`AuditLog`](crate::AuditLog) recorded:
///
/// ```
/// use std::sync::Arc;
/// use sandguard_audit::{AuditLog, MemorySink, NewEvent, Outcome};
///
/// let sink = Arc::new(MemorySink::new());
/// let log = AuditLog::new(Arc::clone(&sink));
/// log.record(NewEvent::new("alice", "exec", Outcome::Allowed))?;
/// assert_eq!(sink.events()[0].actor, "alice");
/// # Ok::<(), sandguard_audit::AuditError>(())
/// ```
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<SecurityEvent>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every event written so far, oldest first.
    pub fn events(&self) -> Vec<SecurityEvent> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SecurityEvent>> {
        // A Vec stays valid whatever a panicking thread was doing with it.
        self.events.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl AuditSink for MemorySink {
    fn write(&self, event: &SecurityEvent) -> Result<(), AuditError> {
        self.lock().push(event.clone());
        Ok(())
    }

    fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }

    fn last_seq(&self) -> Option<u64> {
        self.lock().last().map(|event| event.seq)
    }
}

/// Sends every event to several sinks: the chained file for evidence, `tracing` for the
/// operators, for instance.
///
/// `write` and `flush` try every sink even after one fails, so one broken destination
/// does not silence the others, and return the first error. Note that when a sink
/// fails, [`AuditLog`](crate::AuditLog) does not consume the seq, so the sinks that did
/// accept the event will see that seq again with the next event.
///
/// ```
/// use sandguard_audit::{AuditLog, FanOut, MemorySink, TracingSink};
///
/// let log = AuditLog::new(FanOut::new().with(TracingSink::new()).with(MemorySink::new()));
/// # let _ = log;
/// ```
#[derive(Default)]
pub struct FanOut {
    sinks: Vec<Box<dyn AuditSink>>,
}

impl FanOut {
    /// A fan-out to no sink yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sink.
    pub fn with(mut self, sink: impl AuditSink + 'static) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    fn each(&self, f: impl Fn(&dyn AuditSink) -> Result<(), AuditError>) -> Result<(), AuditError> {
        let mut first_error = None;
        for sink in &self.sinks {
            if let Err(err) = f(sink.as_ref()) {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl fmt::Debug for FanOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FanOut").field("sinks", &self.sinks.len()).finish()
    }
}

impl AuditSink for FanOut {
    fn write(&self, event: &SecurityEvent) -> Result<(), AuditError> {
        self.each(|sink| sink.write(event))
    }

    fn flush(&self) -> Result<(), AuditError> {
        self.each(|sink| sink.flush())
    }

    /// The highest of the sinks' last seqs: the log must continue after every event
    /// that any of them holds, or the file would refuse the next one.
    fn last_seq(&self) -> Option<u64> {
        self.sinks.iter().filter_map(|sink| sink.last_seq()).max()
    }
}

/// Emits each event as a `tracing` event with target `sandguard::audit`: at `WARN` for
/// denials and errors, at `INFO` for allowed operations, with the event's fields as
/// structured fields (`seq`, `actor`, `sandbox`, `action`, `outcome`, `reason.code`,
/// `reason.message`, `details` as JSON, and `usage.*`).
///
/// It never fails and keeps nothing, so it is a view for operators, not evidence.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl TracingSink {
    /// The sink.
    pub fn new() -> Self {
        Self
    }
}

/// Renders `details` as JSON only if a subscriber actually records the field.
struct Json<'a>(&'a serde_json::Map<String, serde_json::Value>);

impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self.0).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl AuditSink for TracingSink {
    fn write(&self, event: &SecurityEvent) -> Result<(), AuditError> {
        let reason = event.reason.as_ref();
        let usage = event.usage.unwrap_or_default();
        let details = (!event.details.is_empty()).then(|| tracing::field::display(Json(&event.details)));
        // `tracing` levels are static per call site, hence the two identical calls.
        macro_rules! emit {
            ($level:expr) => {
                tracing::event!(
                    target: "sandguard::audit",
                    $level,
                    seq = event.seq,
                    actor = event.actor.as_str(),
                    sandbox = event.sandbox.as_deref(),
                    action = event.action.as_str(),
                    outcome = event.outcome.as_str(),
                    reason.code = reason.map(|r| r.code.as_str()),
                    reason.message = reason.map(|r| r.message.as_str()),
                    details,
                    usage.wall_ms = usage.wall_ms,
                    usage.cpu_ms = usage.cpu_ms,
                    usage.memory_peak_bytes = usage.memory_peak_bytes,
                    usage.stdout_bytes = usage.stdout_bytes,
                    usage.stderr_bytes = usage.stderr_bytes,
                    "security event"
                )
            };
        }
        match event.outcome {
            Outcome::Allowed => emit!(tracing::Level::INFO),
            Outcome::Denied | Outcome::Error => emit!(tracing::Level::WARN),
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewEvent, Usage};
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use time::OffsetDateTime;
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    fn event(seq: u64, new: NewEvent) -> SecurityEvent {
        SecurityEvent::from_new(seq, OffsetDateTime::now_utc(), new)
    }

    /// A sink that fails every call and counts them.
    #[derive(Default)]
    struct Broken(AtomicUsize);

    impl AuditSink for Broken {
        fn write(&self, _: &SecurityEvent) -> Result<(), AuditError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Err(AuditError::SeqExhausted)
        }

        fn flush(&self) -> Result<(), AuditError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Err(AuditError::Poisoned)
        }
    }

    #[test]
    fn memory_sink_keeps_events_in_order() {
        let sink = MemorySink::new();
        assert_eq!(sink.last_seq(), None);
        for seq in 1..=3 {
            sink.write(&event(seq, NewEvent::new("a", "exec", Outcome::Allowed))).unwrap();
        }
        let seqs: Vec<u64> = sink.events().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(sink.last_seq(), Some(3));
    }

    #[test]
    fn fan_out_tries_every_sink_and_returns_the_first_error() {
        let first = Arc::new(Broken::default());
        let second = Arc::new(Broken::default());
        let memory = Arc::new(MemorySink::new());
        let fan = FanOut::new().with(Arc::clone(&first)).with(Arc::clone(&memory)).with(Arc::clone(&second));
        let err = fan.write(&event(1, NewEvent::new("a", "exec", Outcome::Allowed))).unwrap_err();
        assert!(matches!(err, AuditError::SeqExhausted));
        assert_eq!(memory.events().len(), 1);
        assert!(matches!(fan.flush().unwrap_err(), AuditError::Poisoned));
        assert_eq!((first.0.load(Ordering::Relaxed), second.0.load(Ordering::Relaxed)), (2, 2));
        assert_eq!(fan.last_seq(), Some(1));
    }

    type Seen = Arc<Mutex<Vec<(Level, BTreeMap<String, String>)>>>;

    /// Records the level and fields of every event.
    struct Capture(Seen);

    struct Fields<'a>(&'a mut BTreeMap<String, String>);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }

        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = BTreeMap::new();
            event.record(&mut Fields(&mut fields));
            fields.insert("target".into(), event.metadata().target().into());
            self.0.lock().unwrap().push((*event.metadata().level(), fields));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn tracing_sink_warns_on_denials_and_errors_with_structured_fields() {
        let seen = Seen::default();
        let dispatch = tracing::Dispatch::new(Capture(Arc::clone(&seen)));
        tracing::dispatcher::with_default(&dispatch, || {
            let sink = TracingSink::new();
            let denied = NewEvent::new("alice", "file.read", Outcome::Denied)
                .sandbox("sbx-1")
                .reason("path-outside-root", "/etc/shadow")
                .detail("path", "/etc/shadow");
            sink.write(&event(1, denied)).unwrap();
            let allowed = NewEvent::new("bob", "exec", Outcome::Allowed).usage(Usage::new().cpu_ms(7));
            sink.write(&event(2, allowed)).unwrap();
            sink.write(&event(3, NewEvent::new("bob", "exec", Outcome::Error))).unwrap();
        });
        let seen = seen.lock().unwrap();
        let levels: Vec<Level> = seen.iter().map(|(level, _)| *level).collect();
        assert_eq!(levels, [Level::WARN, Level::INFO, Level::WARN]);

        let denied = &seen[0].1;
        assert_eq!(denied["target"], "sandguard::audit");
        assert_eq!(denied["seq"], "1");
        assert_eq!(denied["actor"], "alice");
        assert_eq!(denied["sandbox"], "sbx-1");
        assert_eq!(denied["outcome"], "denied");
        assert_eq!(denied["reason.code"], "path-outside-root");
        assert_eq!(denied["details"], r#"{"path":"/etc/shadow"}"#);
        assert!(!denied.contains_key("usage.cpu_ms"));

        let allowed = &seen[1].1;
        assert_eq!(allowed["usage.cpu_ms"], "7");
        assert!(!allowed.contains_key("sandbox") && !allowed.contains_key("details"));
    }
}
