//! Threat detection: repeated denials for one actor within a sliding window.

use std::collections::VecDeque;
use std::collections::hash_map::{Entry, HashMap};
use std::time::Duration;

use time::OffsetDateTime;

use crate::{AuditError, NewEvent, Outcome, SecurityEvent, ThreatConfigError};

/// The action of the event an [`AuditLog`](crate::AuditLog) records when its detector
/// reports a [`Threat`].
pub const THREAT_DETECTED: &str = "threat.detected";

/// How failures are grouped before they are counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyBy {
    /// All of an actor's denials count together, whichever sandbox they concern. This
    /// catches an actor probing many sandboxes, and is the default.
    #[default]
    Actor,
    /// Each (actor, sandbox) pair counts separately: quieter for actors who own many
    /// sandboxes, but blind to probing spread across them. (Counting both ways at once
    /// with one threshold would add nothing: the per-actor count always reaches the
    /// threshold first.)
    ActorAndSandbox,
}

/// Whose failures a [`Threat`] counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ThreatKey {
    /// The actor.
    pub actor: String,
    /// The sandbox, when counting by [`KeyBy::ActorAndSandbox`] (and the events named one).
    pub sandbox: Option<String>,
}

/// A signal from the [`ThreatDetector`]: `failures` denials for `key` within `window`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Threat {
    /// Whose denials.
    pub key: ThreatKey,
    /// How many (the detector's threshold).
    pub failures: u32,
    /// Within how long.
    pub window: Duration,
    /// The seq of the first of them, to find them in the log.
    pub first_seq: u64,
    /// The seq of the last of them, the event that crossed the threshold.
    pub last_seq: u64,
}

impl Threat {
    /// The `threat.detected` event that records this threat.
    ///
    /// It is attributed to the offending actor (and sandbox), and carries the `denied`
    /// outcome: it summarises denials, so whatever already watches denials (alert hooks,
    /// dashboards, `event.outcome:failure` queries) sees it without a new outcome that
    /// OCSF and ECS have no value for. The detector never counts it as a failure.
    pub fn to_event(&self) -> NewEvent {
        let window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        let mut event = NewEvent::new(self.key.actor.clone(), THREAT_DETECTED, Outcome::Denied)
            .reason(
                "repeated-denials",
                format!(
                    "{} denials for {} within {:?} (seq {}..={})",
                    self.failures, self.key.actor, self.window, self.first_seq, self.last_seq
                ),
            )
            .detail("failures", self.failures)
            .detail("window_ms", window_ms)
            .detail("first_seq", self.first_seq)
            .detail("last_seq", self.last_seq);
        if let Some(sandbox) = &self.key.sandbox {
            event = event.sandbox(sandbox.clone());
        }
        event
    }
}

/// Counts denials per actor (or per actor and sandbox) and reports a [`Threat`] when
/// `threshold` of them fall within `window` of each other.
///
/// - **Deterministic.** Time comes from the events' own `time`, never the wall clock,
///   so the same events always give the same signals.
/// - **Counts denials only.** An `error` outcome is usually the platform failing, not
///   the actor probing; counting errors would page people for outages.
/// - **Fires once per burst.** Reaching the threshold reports a threat and clears the
///   key's history, so a sustained attack fires once every `threshold` denials rather
///   than on every denial after the threshold.
/// - **Bounded memory.** Each key keeps at most `threshold` timestamps, and at most
///   [`max_keys`](Self::max_keys) keys are tracked. When a new key would exceed that,
///   keys with no denial inside the window are forgotten first; if all are live (a
///   flood of distinct sandboxes), the eighth with the oldest latest denial is dropped,
///   which can reset their counts. Keys are hashed with std's randomly keyed SipHash,
///   so attacker-chosen names cannot degrade the map.
/// - Timestamps are expected to grow; one that goes backwards (a clock step) is kept
///   rather than dropped, so skew errs towards reporting.
///
/// ```
/// use std::time::Duration;
/// use sandguard_audit::{AuditLog, MemorySink, NewEvent, Outcome, ThreatDetector, THREAT_DETECTED};
///
/// let log = AuditLog::builder(MemorySink::new())
///     .threat_detector(ThreatDetector::new(3, Duration::from_secs(60))?)
///     .alert(|event: &sandguard_audit::SecurityEvent| {
///         if event.action == THREAT_DETECTED {
///             eprintln!("page the on-call: {:?}", event.reason);
///         }
///     })
///     .build();
/// for _ in 0..3 {
///     log.record(NewEvent::new("mallory", "file.read", Outcome::Denied))?;
/// }
/// // The third denial was followed by seq 4, the threat.
/// let next = log.record(NewEvent::new("alice", "exec", Outcome::Allowed))?;
/// assert_eq!(next.seq, 5);
/// # Ok::<(), sandguard_audit::AuditError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ThreatDetector {
    threshold: u32,
    window: Duration,
    span: time::Duration,
    key_by: KeyBy,
    max_keys: usize,
    failures: HashMap<ThreatKey, VecDeque<Failure>>,
}

#[derive(Debug, Clone, Copy)]
struct Failure {
    time: OffsetDateTime,
    seq: u64,
}

impl ThreatDetector {
    /// How many keys are tracked unless [`max_keys`](Self::max_keys) says otherwise.
    pub const DEFAULT_MAX_KEYS: usize = 10_000;

    /// Reports a threat when `threshold` denials for one key fall within `window`
    /// (inclusive), counting by [`KeyBy::Actor`].
    ///
    /// # Errors
    ///
    /// [`AuditError::ThreatConfig`] if `threshold` is 0 or `window` is zero or too long
    /// to subtract from a timestamp.
    pub fn new(threshold: u32, window: Duration) -> Result<Self, AuditError> {
        if threshold == 0 {
            return Err(AuditError::ThreatConfig(ThreatConfigError::ZeroThreshold));
        }
        let span = time::Duration::try_from(window)
            .ok()
            .filter(|span| span.is_positive())
            .ok_or(AuditError::ThreatConfig(ThreatConfigError::Window(window)))?;
        Ok(Self {
            threshold,
            window,
            span,
            key_by: KeyBy::default(),
            max_keys: Self::DEFAULT_MAX_KEYS,
            failures: HashMap::new(),
        })
    }

    /// How denials are grouped.
    pub fn key_by(mut self, key_by: KeyBy) -> Self {
        self.key_by = key_by;
        self
    }

    /// The most keys tracked at once (at least 1).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    /// Counts `event` if it is a denial, and reports a threat if it completes one.
    pub fn observe(&mut self, event: &SecurityEvent) -> Option<Threat> {
        if event.outcome != Outcome::Denied || event.action == THREAT_DETECTED {
            return None;
        }
        let sandbox = match self.key_by {
            KeyBy::Actor => None,
            KeyBy::ActorAndSandbox => event.sandbox.clone(),
        };
        let key = ThreatKey { actor: event.actor.clone(), sandbox };
        // `None` only near the start of the calendar, where nothing can be stale yet.
        let horizon = event.time.checked_sub(self.span);
        if self.failures.len() >= self.max_keys && !self.failures.contains_key(&key) {
            self.make_room(horizon);
        }
        let mut entry = match self.failures.entry(key) {
            Entry::Occupied(entry) => entry,
            Entry::Vacant(entry) => entry.insert_entry(VecDeque::new()),
        };
        let history = entry.get_mut();
        if let Some(horizon) = horizon {
            while history.front().is_some_and(|failure| failure.time < horizon) {
                history.pop_front();
            }
        }
        history.push_back(Failure { time: event.time, seq: event.seq });
        if history.len() < self.threshold as usize {
            return None;
        }
        let (key, history) = entry.remove_entry();
        Some(Threat {
            key,
            failures: self.threshold,
            window: self.window,
            first_seq: history.front().map_or(event.seq, |failure| failure.seq),
            last_seq: event.seq,
        })
    }

    /// Frees at least one slot in a full key table.
    fn make_room(&mut self, horizon: Option<OffsetDateTime>) {
        // A key whose latest denial has left the window holds nothing that can still
        // count: forgetting it loses nothing.
        if let Some(horizon) = horizon {
            self.failures.retain(|_, history| history.back().is_some_and(|f| f.time >= horizon));
        }
        if self.failures.len() < self.max_keys {
            return;
        }
        // Every key is live. Drop the eighth whose latest denial is oldest, so that this
        // O(n) pass runs at most once per n/8 new keys.
        let mut latest: Vec<OffsetDateTime> =
            self.failures.values().filter_map(|history| history.back().map(|f| f.time)).collect();
        let evict = (self.max_keys / 8).max(1);
        if evict <= latest.len() {
            let (_, cutoff, _) = latest.select_nth_unstable(evict - 1);
            let cutoff = *cutoff;
            self.failures.retain(|_, history| history.back().is_some_and(|f| f.time > cutoff));
        }
    }

    /// How many keys are currently tracked.
    pub fn tracked_keys(&self) -> usize {
        self.failures.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2025-01-31 12:00:00 UTC);

    fn at(seq: u64, secs: i64, actor: &str, outcome: Outcome) -> SecurityEvent {
        let new = NewEvent::new(actor, "file.read", outcome).sandbox(format!("sbx-{}", seq % 2));
        SecurityEvent::from_new(seq, T0 + time::Duration::seconds(secs), new)
    }

    fn denied(seq: u64, secs: i64) -> SecurityEvent {
        at(seq, secs, "mallory", Outcome::Denied)
    }

    fn detector(threshold: u32, window_secs: u64) -> ThreatDetector {
        ThreatDetector::new(threshold, Duration::from_secs(window_secs)).unwrap()
    }

    #[test]
    fn fires_at_the_threshold_within_the_window() {
        let mut detector = detector(3, 10);
        assert_eq!(detector.observe(&denied(1, 0)), None);
        assert_eq!(detector.observe(&denied(2, 4)), None);
        let threat = detector.observe(&denied(3, 10)).expect("3 denials within 10s, inclusive");
        assert_eq!(threat.key, ThreatKey { actor: "mallory".into(), sandbox: None });
        assert_eq!((threat.failures, threat.first_seq, threat.last_seq), (3, 1, 3));
        assert_eq!(threat.window, Duration::from_secs(10));
    }

    #[test]
    fn does_not_fire_when_denials_are_spread_out() {
        let mut detector = detector(3, 10);
        for seq in 0..50 {
            let secs = i64::try_from(seq).unwrap() * 6; // at most two per 10 s
            assert_eq!(detector.observe(&denied(seq, secs)), None, "seq {seq}");
        }
    }

    #[test]
    fn counts_only_denials_and_never_its_own_events() {
        let mut detector = detector(2, 60);
        for seq in 0..10 {
            assert_eq!(detector.observe(&at(seq, 0, "bob", Outcome::Allowed)), None);
            assert_eq!(detector.observe(&at(seq, 0, "bob", Outcome::Error)), None);
        }
        assert_eq!(detector.observe(&denied(1, 0)), None);
        let threat = detector.observe(&denied(2, 0)).unwrap();
        let recorded = SecurityEvent::from_new(3, T0, threat.to_event());
        assert_eq!(recorded.outcome, Outcome::Denied);
        assert_eq!(detector.observe(&recorded), None);
        assert_eq!(detector.observe(&recorded), None);
    }

    #[test]
    fn restarts_the_count_after_firing() {
        let mut detector = detector(2, 60);
        let fired: Vec<bool> = (1..=6).map(|seq| detector.observe(&denied(seq, 0)).is_some()).collect();
        assert_eq!(fired, [false, true, false, true, false, true]);
    }

    #[test]
    fn groups_by_actor_or_by_actor_and_sandbox() {
        // Denials alternate between sbx-1 and sbx-0.
        let mut by_actor = detector(2, 60);
        let mut by_sandbox = detector(2, 60).key_by(KeyBy::ActorAndSandbox);
        assert_eq!(by_actor.observe(&denied(1, 0)), None);
        assert!(by_actor.observe(&denied(2, 0)).is_some());
        assert_eq!(by_sandbox.observe(&denied(1, 0)), None);
        assert_eq!(by_sandbox.observe(&denied(2, 0)), None);
        let threat = by_sandbox.observe(&denied(3, 0)).unwrap();
        assert_eq!(threat.key.sandbox.as_deref(), Some("sbx-1"));
        assert_eq!((threat.first_seq, threat.last_seq), (1, 3));
        let recorded = SecurityEvent::from_new(4, T0, threat.to_event());
        assert_eq!(recorded.sandbox.as_deref(), Some("sbx-1"));
        assert_eq!(recorded.details["window_ms"], 60_000);
        assert_eq!(recorded.details["first_seq"], 1);
    }

    #[test]
    fn other_actors_do_not_add_up() {
        let mut detector = detector(2, 60);
        assert_eq!(detector.observe(&at(1, 0, "a", Outcome::Denied)), None);
        assert_eq!(detector.observe(&at(2, 0, "b", Outcome::Denied)), None);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let mut detector = detector(2, 3600).max_keys(64);
        for seq in 0..10_000 {
            detector.observe(&at(seq, i64::try_from(seq).unwrap(), &format!("actor-{seq}"), Outcome::Denied));
            assert!(detector.tracked_keys() <= 64);
        }
        // A key that is still active keeps its count if it is not the oldest.
        let mut detector = self::detector(2, 3600).max_keys(8);
        detector.observe(&at(0, 100, "target", Outcome::Denied));
        for seq in 1..8 {
            detector.observe(&at(seq, 0, &format!("old-{seq}"), Outcome::Denied));
        }
        detector.observe(&at(9, 100, "newcomer", Outcome::Denied));
        assert!(detector.observe(&at(10, 101, "target", Outcome::Denied)).is_some());
    }

    #[test]
    fn stale_keys_are_forgotten_first() {
        let mut detector = detector(2, 10).max_keys(4);
        for seq in 0..4 {
            detector.observe(&at(seq, 0, &format!("old-{seq}"), Outcome::Denied));
        }
        detector.observe(&at(5, 100, "new", Outcome::Denied));
        assert_eq!(detector.tracked_keys(), 1);
    }

    #[test]
    fn invalid_configurations_are_refused() {
        let zero = ThreatDetector::new(0, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(zero, AuditError::ThreatConfig(ThreatConfigError::ZeroThreshold)));
        for window in [Duration::ZERO, Duration::MAX] {
            let err = ThreatDetector::new(1, window).unwrap_err();
            assert!(matches!(err, AuditError::ThreatConfig(ThreatConfigError::Window(w)) if w == window));
        }
    }

    #[test]
    fn extreme_timestamps_do_not_panic() {
        let mut detector = ThreatDetector::new(2, Duration::from_secs(1 << 40)).unwrap();
        for (seq, time) in [(1, OffsetDateTime::UNIX_EPOCH), (2, T0), (3, OffsetDateTime::UNIX_EPOCH)] {
            let new = NewEvent::new("m", "x", Outcome::Denied);
            detector.observe(&SecurityEvent::from_new(seq, time, new));
        }
        let min = time::PrimitiveDateTime::MIN.assume_utc();
        let event = SecurityEvent::from_new(4, min, NewEvent::new("m", "x", Outcome::Denied));
        detector.observe(&event);
    }

    proptest! {
        /// Oracle: for each key, the threat fires exactly when the denials since its last
        /// threat that lie within `window` of the current one number `threshold`.
        #[test]
        fn matches_a_naive_count(
            threshold in 1u32..5,
            window in 1i64..30,
            steps in prop::collection::vec((0usize..3, any::<bool>(), 0i64..10), 0..200),
        ) {
            let mut detector = ThreatDetector::new(threshold, Duration::from_secs(window.unsigned_abs())).unwrap();
            let mut since_last_threat: HashMap<usize, Vec<i64>> = HashMap::new();
            let mut now = 0;
            for (seq, (actor, is_denial, gap)) in steps.into_iter().enumerate() {
                now += gap;
                let outcome = if is_denial { Outcome::Denied } else { Outcome::Allowed };
                let event = at(seq as u64, now, &format!("actor-{actor}"), outcome);
                let fired = detector.observe(&event).is_some();
                let expected = is_denial && {
                    let times = since_last_threat.entry(actor).or_default();
                    times.push(now);
                    let recent = times.iter().filter(|&&t| t >= now - window).count();
                    let fire = recent >= threshold as usize;
                    if fire {
                        times.clear();
                    }
                    fire
                };
                prop_assert_eq!(fired, expected, "step {} at {}s", seq, now);
            }
        }
    }
}
