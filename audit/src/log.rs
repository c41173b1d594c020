//! The front door: [`AuditLog`] numbers, timestamps and stores events, and raises alerts.

use std::fmt;
use std::sync::{Mutex, MutexGuard};

use time::OffsetDateTime;

use crate::{AuditError, AuditSink, NewEvent, Outcome, SecurityEvent, ThreatDetector};

/// Something to do when an operation is denied: page someone, bump a metric, lock an
/// account.
///
/// Hooks are called for every recorded event with the `denied` outcome, including the
/// `threat.detected` events of a [`ThreatDetector`] (check `event.action` against
/// [`THREAT_DETECTED`](crate::THREAT_DETECTED) to tell them apart). They are not called
/// for `error` outcomes: those are the platform failing, which is for monitoring, not
/// security alerting.
///
/// Any `Fn(&SecurityEvent) + Send + Sync` closure is an `Alert`.
pub trait Alert: Send + Sync {
    /// Called after `event` has been stored, outside the log's lock.
    fn on_denial(&self, event: &SecurityEvent);
}

impl<F: Fn(&SecurityEvent) + Send + Sync> Alert for F {
    fn on_denial(&self, event: &SecurityEvent) {
        self(event);
    }
}

/// Records security events: gives each one the next seq and the current time, and
/// writes it to a sink, all under one lock, so that the sink's order is seq order even
/// with many threads recording at once.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use sandguard_audit::{AuditLog, MemorySink, NewEvent, Outcome, SecurityEvent};
///
/// let paged = Arc::new(Mutex::new(Vec::new()));
/// let pager = Arc::clone(&paged);
/// let log = AuditLog::builder(MemorySink::new())
///     .alert(move |event: &SecurityEvent| pager.lock().unwrap().push(event.seq))
///     .build();
///
/// log.record(NewEvent::new("alice", "exec", Outcome::Allowed))?;
/// let denied = log.record(
///     NewEvent::new("alice", "port.expose", Outcome::Denied).reason("port-reserved", "22 is reserved"),
/// )?;
/// assert_eq!(denied.seq, 2);
/// assert_eq!(*paged.lock().unwrap(), [2]);
/// # Ok::<(), sandguard_audit::AuditError>(())
/// ```
pub struct AuditLog {
    sink: Box<dyn AuditSink>,
    alerts: Vec<Box<dyn Alert>>,
    state: Mutex<State>,
}

struct State {
    /// The seq of the last event stored; 0 before the first.
    last_seq: u64,
    detector: Option<ThreatDetector>,
}

impl AuditLog {
    /// A log writing to `sink`, with no alerts and no threat detection. It continues
    /// after the sink's [`last_seq`](AuditSink::last_seq).
    pub fn new(sink: impl AuditSink + 'static) -> Self {
        Self::builder(sink).build()
    }

    /// A builder, to add alert hooks and a threat detector.
    pub fn builder(sink: impl AuditSink + 'static) -> AuditLogBuilder {
        AuditLogBuilder { sink: Box::new(sink), alerts: Vec::new(), detector: None }
    }

    /// Stores `event` with the next seq and the current UTC time, and returns it.
    ///
    /// Then, for a denial, feeds the threat detector, which may add a `threat.detected`
    /// event right after it (the next seq), and calls the alert hooks: outside the lock,
    /// since hooks may be slow or record events themselves.
    ///
    /// `time` is the wall clock at recording; the order of events is their seq, which
    /// file order always matches.
    ///
    /// # Errors
    ///
    /// The sink's error, if it could not store the event; the seq is not consumed. If
    /// the event was stored but the `threat.detected` event it triggered was not, the
    /// event's alerts still run and the sink's error is returned, because the sink is
    /// failing and the next call would fail too.
    pub fn record(&self, event: NewEvent) -> Result<SecurityEvent, AuditError> {
        let (recorded, threat) = {
            let mut state = self.lock();
            let recorded = self.append(&mut state, event)?;
            let threat = state.detector.as_mut().and_then(|detector| detector.observe(&recorded));
            let threat = threat.map(|threat| self.append(&mut state, threat.to_event()));
            (recorded, threat)
        };
        self.alert(&recorded);
        match threat {
            None => Ok(recorded),
            Some(Ok(threat)) => {
                self.alert(&threat);
                Ok(recorded)
            }
            Some(Err(err)) => Err(err),
        }
    }

    /// Makes every recorded event durable, as far as the sink can.
    pub fn flush(&self) -> Result<(), AuditError> {
        self.sink.flush()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state only changes after a successful write, so it is consistent even if a
        // sink panicked while the lock was held.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn append(&self, state: &mut State, event: NewEvent) -> Result<SecurityEvent, AuditError> {
        let seq = state.last_seq.checked_add(1).ok_or(AuditError::SeqExhausted)?;
        let event = SecurityEvent::from_new(seq, OffsetDateTime::now_utc(), event);
        self.sink.write(&event)?;
        state.last_seq = seq;
        Ok(event)
    }

    fn alert(&self, event: &SecurityEvent) {
        if event.outcome == Outcome::Denied {
            for alert in &self.alerts {
                alert.on_denial(event);
            }
        }
    }
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("last_seq", &self.lock().last_seq)
            .field("alerts", &self.alerts.len())
            .finish_non_exhaustive()
    }
}

/// Configures an [`AuditLog`]; made by [`AuditLog::builder`].
#[must_use = "call build() to get the AuditLog"]
pub struct AuditLogBuilder {
    sink: Box<dyn AuditSink>,
    alerts: Vec<Box<dyn Alert>>,
    detector: Option<ThreatDetector>,
}

impl AuditLogBuilder {
    /// Adds a hook called for every denial. Hooks run in the order they were added.
    pub fn alert(mut self, alert: impl Alert + 'static) -> Self {
        self.alerts.push(Box::new(alert));
        self
    }

    /// Watches denials for repeated failures and records a `threat.detected` event
    /// when the detector reports one.
    pub fn threat_detector(mut self, detector: ThreatDetector) -> Self {
        self.detector = Some(detector);
        self
    }

    /// The log.
    pub fn build(self) -> AuditLog {
        let last_seq = self.sink.last_seq().unwrap_or(0);
        AuditLog {
            sink: self.sink,
            alerts: self.alerts,
            state: Mutex::new(State { last_seq, detector: self.detector }),
        }
    }
}

impl fmt::Debug for AuditLogBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLogBuilder")
            .field("alerts", &self.alerts.len())
            .field("detector", &self.detector)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileSink, FileSinkOptions, FsyncPolicy, MemorySink, THREAT_DETECTED, verify};
    use std::sync::Arc;
    use std::time::Duration;

    fn denied(actor: &str) -> NewEvent {
        NewEvent::new(actor, "file.read", Outcome::Denied).reason("path-outside-root", "no")
    }

    type Alerted = Arc<Mutex<Vec<(u64, String)>>>;

    /// Collects the seq and action of every alert.
    fn recorder() -> (Alerted, impl Alert) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        (seen, move |event: &SecurityEvent| sink.lock().unwrap().push((event.seq, event.action.clone())))
    }

    #[test]
    fn logs_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<AuditLog>();
        shareable::<crate::FileSink>();
    }

    #[test]
    fn assigns_consecutive_seqs_from_one() {
        let sink = Arc::new(MemorySink::new());
        let log = AuditLog::new(Arc::clone(&sink));
        for expected in 1..=5 {
            let event = log.record(NewEvent::new("a", "exec", Outcome::Allowed)).unwrap();
            assert_eq!(event.seq, expected);
        }
        let times: Vec<_> = sink.events().iter().map(|e| e.time).collect();
        assert!(times.iter().all(|t| t.offset().is_utc()));
        assert_eq!(sink.events().len(), 5);
    }

    #[test]
    fn alerts_fire_on_denials_only() {
        let (seen, alert) = recorder();
        let log = AuditLog::builder(MemorySink::new()).alert(alert).build();
        log.record(NewEvent::new("a", "exec", Outcome::Allowed)).unwrap();
        log.record(denied("a")).unwrap();
        log.record(NewEvent::new("a", "exec", Outcome::Error)).unwrap();
        log.record(denied("b")).unwrap();
        assert_eq!(*seen.lock().unwrap(), [(2, "file.read".into()), (4, "file.read".into())]);
    }

    #[test]
    fn a_threat_is_recorded_right_after_the_denial_that_completes_it() {
        let (seen, alert) = recorder();
        let sink = Arc::new(MemorySink::new());
        let log = AuditLog::builder(Arc::clone(&sink))
            .alert(alert)
            .threat_detector(ThreatDetector::new(2, Duration::from_secs(60)).unwrap())
            .build();
        log.record(denied("mallory")).unwrap();
        log.record(NewEvent::new("alice", "exec", Outcome::Allowed)).unwrap();
        assert_eq!(log.record(denied("mallory")).unwrap().seq, 3);

        let threat = &sink.events()[3];
        assert_eq!((threat.seq, threat.action.as_str()), (4, THREAT_DETECTED));
        assert_eq!((threat.actor.as_str(), threat.outcome), ("mallory", Outcome::Denied));
        assert_eq!(threat.reason.as_ref().unwrap().code, "repeated-denials");
        assert_eq!(
            *seen.lock().unwrap(),
            [(1, "file.read".into()), (3, "file.read".into()), (4, THREAT_DETECTED.into())]
        );
    }

    #[test]
    fn hooks_may_record_events_themselves() {
        let log = Arc::new(Mutex::new(None::<Arc<AuditLog>>));
        let inner = Arc::clone(&log);
        let audit = Arc::new(
            AuditLog::builder(MemorySink::new())
                .alert(move |event: &SecurityEvent| {
                    if event.action != "alert.sent" {
                        let log = inner.lock().unwrap().clone().unwrap();
                        log.record(NewEvent::new("pager", "alert.sent", Outcome::Denied)).unwrap();
                    }
                })
                .build(),
        );
        *log.lock().unwrap() = Some(Arc::clone(&audit));
        audit.record(denied("a")).unwrap(); // deadlocks if hooks ran under the lock
        let next = audit.record(NewEvent::new("a", "exec", Outcome::Allowed)).unwrap();
        assert_eq!(next.seq, 3);
        log.lock().unwrap().take(); // break the cycle
    }

    #[test]
    fn a_failed_write_does_not_consume_the_seq() {
        let dir = tempfile::tempdir().unwrap();
        let options = FileSinkOptions::new().fsync(FsyncPolicy::Never);
        let log = AuditLog::new(FileSink::open(dir.path().join("a.log"), options).unwrap());
        let huge = NewEvent::new("a", "exec", Outcome::Allowed).detail("x", "y".repeat(2 << 20));
        assert!(matches!(log.record(huge), Err(AuditError::RecordTooLarge { .. })));
        assert_eq!(log.record(NewEvent::new("a", "exec", Outcome::Allowed)).unwrap().seq, 1);
    }

    #[test]
    fn concurrent_records_land_in_seq_order() {
        const THREADS: u64 = 8;
        const EACH: u64 = 500;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let policy = FsyncPolicy::GroupCommit { max_delay: Duration::from_millis(1) };
        let log = AuditLog::builder(FileSink::open(&path, FileSinkOptions::new().fsync(policy)).unwrap())
            .threat_detector(ThreatDetector::new(1_000_000, Duration::from_secs(1)).unwrap())
            .build();
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let log = &log;
                scope.spawn(move || {
                    for i in 0..EACH {
                        let outcome = if i % 3 == 0 { Outcome::Denied } else { Outcome::Allowed };
                        log.record(NewEvent::new(format!("t{thread}"), "exec", outcome)).unwrap();
                    }
                });
            }
        });
        drop(log);
        let report = verify(&path, None).unwrap();
        assert_eq!(report.first_problem, None);
        assert_eq!(report.records, THREADS * EACH);
        assert_eq!(report.head.unwrap().seq, THREADS * EACH);
    }

    #[test]
    fn resumes_after_the_sinks_last_seq() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let options = || FileSinkOptions::new().fsync(FsyncPolicy::Never);
        for round in 0..3 {
            let log = AuditLog::new(FileSink::open(&path, options()).unwrap());
            for i in 1..=4 {
                let event = log.record(NewEvent::new("a", "exec", Outcome::Allowed)).unwrap();
                assert_eq!(event.seq, round * 4 + i);
            }
        }
        assert_eq!(verify(&path, None).unwrap().records, 12);
    }
}
