//! Lockout: N failures for a key within a window lock it for a while.
//!
//! The usual defence against password and token guessing: after `max_failures` failed attempts
//! within a sliding `window`, the key (an account, an actor, a client address) is refused for
//! `lock_for`, whatever it sends. The default is 5 failures within 5 minutes lock for 15 minutes.
//!
//! The rules, precisely:
//!
//! - A failure at time `f` counts at time `t` while `t − f < window`.
//! - The failure that brings the count to `max_failures` locks the key until exactly
//!   `f + lock_for`, and starts the count afresh.
//! - Failures while locked are ignored: they neither extend the lock nor count towards the next
//!   one. An attacker cannot keep a victim's account locked for longer by failing more, and the lock
//!   ends at a time known when it began. The caller refuses attempts while locked anyway, so the
//!   only failures that arrive then are races.
//! - A success clears the key's failures but does not lift a lock: callers [`check`](Lockout::check)
//!   before attempting, so no success can happen while locked. [`Lockout::reset`] lifts a lock.
//!
//! # Memory
//!
//! A key holds at most `max_failures − 1` timestamps, and `max_failures` is at most
//! [`LockoutConfig::MAX_FAILURES_LIMIT`]. The number of keys is bounded by
//! [`Lockout::with_max_keys`]: when a shard is full, keys that are neither locked nor have a failure
//! within the window are dropped (they are indistinguishable from keys never seen); if none is, the
//! unlocked key whose latest failure is oldest is forgotten, and only if every key is locked, the
//! lock that ends first. A lockout never refuses to track a key, since an untracked key could be
//! guessed at without limit; an attacker who wants to make it forget one key must first fill its
//! shard with fresher state.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, nanos};
use crate::limits::{HumanDuration, LimitsError};
use crate::rate::KeyedState;

/// A key is locked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("locked out after repeated failures; retry after {} s", retry_after.as_secs())]
pub struct Locked {
    /// How long until the lock lifts.
    pub retry_after: Duration,
}

impl Locked {
    /// The stable code: `LOCKED_OUT`.
    pub fn code(&self) -> &'static str {
        "LOCKED_OUT"
    }
}

/// Lockout settings.
///
/// The fields are public for literals; [`LockoutConfig::new`] checks them.
///
/// ```
/// use std::time::Duration;
/// use sandguard_policy::LockoutConfig;
///
/// let config = LockoutConfig::default();
/// assert_eq!(config.max_failures, 5);
/// assert_eq!(config.window, Duration::from_secs(5 * 60));
/// assert_eq!(config.lock_for, Duration::from_secs(15 * 60));
///
/// let err = LockoutConfig::new(0, Duration::from_secs(60), Duration::from_secs(60)).unwrap_err();
/// assert_eq!(err.code(), "INVALID_LOCKOUT");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutConfig {
    /// Failures within `window` that lock a key.
    pub max_failures: u32,
    /// The window failures are counted in.
    pub window: Duration,
    /// How long a key stays locked.
    pub lock_for: Duration,
}

impl Default for LockoutConfig {
    /// 5 failures within 5 minutes lock a key for 15 minutes.
    fn default() -> Self {
        Self { max_failures: 5, window: Duration::from_secs(5 * 60), lock_for: Duration::from_secs(15 * 60) }
    }
}

impl LockoutConfig {
    /// The largest `max_failures`: each key keeps a timestamp per counted failure.
    pub const MAX_FAILURES_LIMIT: u32 = 1024;

    /// `max_failures` failures within `window` lock a key for `lock_for`.
    ///
    /// Refused (`INVALID_LOCKOUT`) when `max_failures` is not between 1 and
    /// [`MAX_FAILURES_LIMIT`](Self::MAX_FAILURES_LIMIT), or a duration is zero: a zero window or
    /// lock would silently disable the lockout.
    pub fn new(max_failures: u32, window: Duration, lock_for: Duration) -> Result<Self, LimitsError> {
        let config = Self { max_failures, window, lock_for };
        config.validate()?;
        Ok(config)
    }

    /// Checks the settings: see [`LockoutConfig::new`].
    pub fn validate(&self) -> Result<(), LimitsError> {
        if !(1..=Self::MAX_FAILURES_LIMIT).contains(&self.max_failures) {
            return Err(LimitsError::Lockout {
                field: "max_failures",
                value: self.max_failures.to_string(),
                allowed: "must be between 1 and 1024",
            });
        }
        for (field, value) in [("window", self.window), ("lock_for", self.lock_for)] {
            if value.is_zero() {
                return Err(LimitsError::Lockout {
                    field,
                    value: HumanDuration(value).to_string(),
                    allowed: "must be longer than zero",
                });
            }
        }
        Ok(())
    }
}

/// One key's failures and lock, in nanoseconds of the lockout's clock.
#[derive(Debug, Default)]
struct KeyState {
    /// Failures not yet known to be outside the window, oldest first; fewer than `max_failures`.
    failures: VecDeque<u64>,
    /// Locked while `now < locked_until`; 0 when never locked.
    locked_until: u64,
}

impl KeyState {
    fn is_locked(&self, now: u64) -> bool {
        now < self.locked_until
    }

    /// Neither locked nor holding a failure within the window: the same as a key never seen.
    fn is_idle(&self, now: u64, window: u64) -> bool {
        !self.is_locked(now) && self.failures.back().is_none_or(|&f| now.saturating_sub(f) >= window)
    }
}

/// Tracks failures per key; see the [module documentation](self) for the rules.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use sandguard_policy::{FakeClock, Lockout, LockoutConfig};
///
/// let clock = FakeClock::default();
/// let config = LockoutConfig::new(3, Duration::from_secs(60), Duration::from_secs(600))?;
/// let lockout = Lockout::new(config, Arc::new(clock.clone()));
///
/// assert!(lockout.check("alice").is_ok());
/// assert_eq!(lockout.record_failure("alice"), None);
/// assert_eq!(lockout.record_failure("alice"), None);
/// let locked = lockout.record_failure("alice").expect("the third failure locks");
/// assert_eq!(locked.retry_after, Duration::from_secs(600));
/// assert_eq!(lockout.check("alice").unwrap_err().code(), "LOCKED_OUT");
/// assert!(lockout.check("bob").is_ok());
///
/// clock.advance(Duration::from_secs(600));
/// assert!(lockout.check("alice").is_ok());
/// # Ok::<(), sandguard_policy::limits::LimitsError>(())
/// ```
#[derive(Debug)]
pub struct Lockout {
    config: LockoutConfig,
    /// False when `config` is invalid: every key is then locked.
    valid: bool,
    clock: Arc<dyn Clock>,
    keys: KeyedState<KeyState>,
}

impl Lockout {
    /// The default bound on the number of keys tracked at once.
    pub const DEFAULT_MAX_KEYS: usize = 100_000;

    /// A tracker with `config`.
    ///
    /// An invalid config (see [`LockoutConfig::new`]) fails closed: every key is locked, with a
    /// `retry_after` of [`Duration::MAX`]. Use [`Lockout::try_new`] to get the error instead.
    pub fn new(config: LockoutConfig, clock: Arc<dyn Clock>) -> Self {
        Self { config, valid: config.validate().is_ok(), clock, keys: KeyedState::new(Self::DEFAULT_MAX_KEYS) }
    }

    /// A tracker with `config`, or the reason the config is invalid.
    pub fn try_new(config: LockoutConfig, clock: Arc<dyn Clock>) -> Result<Self, LimitsError> {
        config.validate()?;
        Ok(Self::new(config, clock))
    }

    /// Bounds the number of keys tracked at once to about `max_keys` (rounded up to a multiple of
    /// the shard count). Meant for construction: it forgets every key seen so far.
    pub fn with_max_keys(self, max_keys: usize) -> Self {
        Self { keys: KeyedState::new(max_keys), ..self }
    }

    /// The settings.
    pub fn config(&self) -> LockoutConfig {
        self.config
    }

    /// How many keys are tracked now. Idle keys may linger until their shard needs the room.
    pub fn tracked_keys(&self) -> usize {
        self.keys.len()
    }

    /// Fails when `key` is locked, with the time until the lock lifts.
    pub fn check(&self, key: &str) -> Result<(), Locked> {
        if !self.valid {
            return Err(Locked { retry_after: Duration::MAX });
        }
        let now = nanos(self.clock.now());
        match self.keys.shard(key).map.get(key) {
            Some(state) if state.is_locked(now) => {
                Err(Locked { retry_after: Duration::from_nanos(state.locked_until - now) })
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure; returns the lock when this failure locked the key.
    ///
    /// Returns `None` for a failure that did not lock the key, including one while it was already
    /// locked (which changes nothing).
    pub fn record_failure(&self, key: &str) -> Option<Locked> {
        if !self.valid {
            return None;
        }
        let now = nanos(self.clock.now());
        let window = nanos(self.config.window);
        let mut shard = self.keys.shard(key);
        if !shard.map.contains_key(key) {
            if shard.map.len() >= self.keys.shard_cap {
                make_room(&mut shard.map, now, window);
            }
            shard.map.insert(key.into(), KeyState::default());
        }
        let state = shard.map.get_mut(key)?;
        if state.is_locked(now) {
            return None;
        }
        while state.failures.front().is_some_and(|&f| now.saturating_sub(f) >= window) {
            state.failures.pop_front();
        }
        let max_failures = usize::try_from(self.config.max_failures).unwrap_or(usize::MAX);
        if state.failures.len() < max_failures.saturating_sub(1) {
            state.failures.push_back(now);
            return None;
        }
        state.failures.clear();
        state.locked_until = now.saturating_add(nanos(self.config.lock_for));
        Some(Locked { retry_after: self.config.lock_for })
    }

    /// A success clears the key's failures. It does not lift a lock: see the
    /// [module documentation](self).
    pub fn record_success(&self, key: &str) {
        let now = nanos(self.clock.now());
        let mut shard = self.keys.shard(key);
        let Some(state) = shard.map.get_mut(key) else { return };
        if state.is_locked(now) {
            state.failures.clear();
        } else {
            shard.map.remove(key);
        }
    }

    /// Forgets `key` entirely, lifting any lock: for an administrator who has verified the owner.
    pub fn reset(&self, key: &str) {
        self.keys.shard(key).map.remove(key);
    }
}

/// Makes room for one more key in a full shard; see "Memory" in the [module documentation](self).
fn make_room(map: &mut std::collections::HashMap<Box<str>, KeyState>, now: u64, window: u64) {
    let before = map.len();
    map.retain(|_, state| !state.is_idle(now, window));
    if map.len() < before {
        return;
    }
    // Prefer forgetting failures (which expire on their own) to forgetting a lock (which would lift
    // it), and among each the state closest to expiring anyway.
    let victim = map
        .iter()
        .min_by_key(|(_, state)| {
            let locked = state.is_locked(now);
            let newest_failure = state.failures.back().copied().unwrap_or(0);
            (locked, if locked { state.locked_until } else { newest_failure })
        })
        .map(|(key, _)| key.clone());
    if let Some(key) = victim {
        map.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use proptest::prelude::*;

    const NS: fn(u64) -> Duration = Duration::from_nanos;
    const SECS: fn(u64) -> Duration = Duration::from_secs;

    fn lockout(max_failures: u32, window: Duration, lock_for: Duration) -> (FakeClock, Lockout) {
        let clock = FakeClock::new(SECS(1000));
        let config = LockoutConfig::new(max_failures, window, lock_for).unwrap();
        (clock.clone(), Lockout::new(config, Arc::new(clock)))
    }

    #[test]
    fn locks_at_exactly_max_failures_within_the_window() {
        let (clock, lockout) = lockout(3, SECS(60), SECS(600));
        assert_eq!(lockout.record_failure("k"), None);
        clock.advance(SECS(30));
        assert_eq!(lockout.record_failure("k"), None);
        assert!(lockout.check("k").is_ok(), "two failures do not lock");
        clock.advance(SECS(30) - NS(1));
        assert_eq!(lockout.record_failure("k"), Some(Locked { retry_after: SECS(600) }));
        assert_eq!(lockout.check("k"), Err(Locked { retry_after: SECS(600) }));
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_lock() {
        let (clock, lockout) = lockout(3, SECS(60), SECS(600));
        for _ in 0..100 {
            assert_eq!(lockout.record_failure("k"), None);
            clock.advance(SECS(30));
        }
        assert!(lockout.check("k").is_ok());
    }

    #[test]
    fn a_failure_leaves_the_window_at_exactly_its_length() {
        let (clock, lockout) = lockout(2, SECS(60), SECS(600));
        assert_eq!(lockout.record_failure("k"), None);
        clock.advance(SECS(60));
        assert_eq!(lockout.record_failure("k"), None, "the first failure is exactly one window old");
        clock.advance(SECS(60) - NS(1));
        assert!(lockout.record_failure("k").is_some());
    }

    #[test]
    fn unlocks_at_exactly_lock_for_and_not_a_nanosecond_early() {
        let (clock, lockout) = lockout(1, SECS(60), SECS(900));
        assert!(lockout.record_failure("k").is_some());
        clock.advance(SECS(900) - NS(1));
        assert_eq!(lockout.check("k"), Err(Locked { retry_after: NS(1) }));
        clock.advance(NS(1));
        assert_eq!(lockout.check("k"), Ok(()));
    }

    #[test]
    fn failures_while_locked_neither_extend_nor_count() {
        let (clock, lockout) = lockout(2, SECS(60), SECS(100));
        lockout.record_failure("k");
        assert!(lockout.record_failure("k").is_some());
        clock.advance(SECS(50));
        for _ in 0..10 {
            assert_eq!(lockout.record_failure("k"), None);
        }
        assert_eq!(lockout.check("k"), Err(Locked { retry_after: SECS(50) }));
        clock.advance(SECS(50));
        assert!(lockout.check("k").is_ok());
        assert_eq!(lockout.record_failure("k"), None, "the count started afresh at the lock");
    }

    #[test]
    fn a_success_clears_failures_but_not_a_lock() {
        let (clock, lockout) = lockout(3, SECS(60), SECS(600));
        lockout.record_failure("k");
        lockout.record_failure("k");
        lockout.record_success("k");
        assert_eq!(lockout.record_failure("k"), None);
        assert_eq!(lockout.record_failure("k"), None);
        assert!(lockout.record_failure("k").is_some());
        lockout.record_success("k");
        assert!(lockout.check("k").is_err());
        clock.advance(SECS(600));
        assert!(lockout.check("k").is_ok());
    }

    #[test]
    fn reset_lifts_a_lock() {
        let (_, lockout) = lockout(1, SECS(60), SECS(600));
        lockout.record_failure("k");
        lockout.reset("k");
        assert!(lockout.check("k").is_ok());
        assert_eq!(lockout.tracked_keys(), 0);
    }

    #[test]
    fn keys_are_independent() {
        let (_, lockout) = lockout(2, SECS(60), SECS(600));
        lockout.record_failure("alice");
        assert_eq!(lockout.record_failure("bob"), None);
        assert!(lockout.record_failure("alice").is_some());
        assert!(lockout.check("bob").is_ok());
    }

    #[test]
    fn invalid_configs_are_refused_or_fail_closed() {
        let clock: Arc<dyn Clock> = Arc::new(FakeClock::default());
        for (config, field) in [
            (LockoutConfig { max_failures: 0, ..Default::default() }, "max_failures"),
            (LockoutConfig { max_failures: 1025, ..Default::default() }, "max_failures"),
            (LockoutConfig { window: Duration::ZERO, ..Default::default() }, "window"),
            (LockoutConfig { lock_for: Duration::ZERO, ..Default::default() }, "lock_for"),
        ] {
            let err = config.validate().unwrap_err();
            assert_eq!(err.code(), "INVALID_LOCKOUT");
            assert!(matches!(err, LimitsError::Lockout { field: f, .. } if f == field), "{err}");
            assert!(Lockout::try_new(config, clock.clone()).is_err());
            let lockout = Lockout::new(config, clock.clone());
            assert_eq!(lockout.check("k"), Err(Locked { retry_after: Duration::MAX }));
        }
        let err = LockoutConfig { window: Duration::ZERO, ..Default::default() }.validate().unwrap_err();
        assert_eq!(err.to_string(), "invalid lockout window 0s: must be longer than zero");
    }

    #[test]
    fn memory_stays_bounded_and_locks_survive_a_flood() {
        let (clock, mut lockout) = lockout(2, SECS(60), SECS(600));
        lockout.keys = KeyedState::with_shards(1, 8);
        lockout.record_failure("victim");
        assert!(lockout.record_failure("victim").is_some());
        for i in 0..1000 {
            lockout.record_failure(&format!("flood-{i}"));
            clock.advance(Duration::from_millis(10));
            assert!(lockout.tracked_keys() <= 8);
        }
        assert!(lockout.check("victim").is_err(), "a lock is forgotten only when every key is locked");
    }

    #[test]
    fn a_full_shard_forgets_the_stalest_failures_first() {
        let (clock, mut lockout) = lockout(2, SECS(60), SECS(600));
        lockout.keys = KeyedState::with_shards(1, 2);
        lockout.record_failure("old");
        clock.advance(SECS(1));
        lockout.record_failure("recent");
        clock.advance(SECS(1));
        lockout.record_failure("new");
        assert!(lockout.record_failure("recent").is_some(), "`recent` kept its failure");
        assert_eq!(lockout.record_failure("old"), None, "`old` was forgotten");
    }

    #[test]
    fn when_every_key_is_locked_the_lock_ending_first_goes() {
        let (clock, mut lockout) = lockout(1, SECS(60), SECS(600));
        lockout.keys = KeyedState::with_shards(1, 2);
        lockout.record_failure("first");
        clock.advance(SECS(1));
        lockout.record_failure("second");
        assert!(lockout.record_failure("third").is_some(), "a new key is always tracked");
        assert!(lockout.check("first").is_ok());
        assert!(lockout.check("second").is_err());
        assert!(lockout.check("third").is_err());
    }

    /// A model that keeps every failure forever and counts the recent ones each time.
    #[derive(Debug, Default, Clone)]
    struct Model {
        failures: Vec<u64>,
        locked_until: Option<u64>,
    }

    impl Model {
        fn locked(&self, now: u64) -> Option<u64> {
            self.locked_until.filter(|&until| now < until).map(|until| until - now)
        }
        fn fail(&mut self, now: u64, config: &LockoutConfig) -> bool {
            if self.locked(now).is_some() {
                return false;
            }
            self.failures.push(now);
            let window = u64::try_from(config.window.as_nanos()).unwrap();
            let recent = self.failures.iter().filter(|&&f| now - f < window).count();
            if recent < usize::try_from(config.max_failures).unwrap() {
                return false;
            }
            self.failures.clear();
            self.locked_until = Some(now + u64::try_from(config.lock_for.as_nanos()).unwrap());
            true
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Advance(u64),
        Fail(u8),
        Succeed(u8),
        Check(u8),
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            3 => (0u64..400).prop_map(Op::Advance),
            4 => (0u8..3).prop_map(Op::Fail),
            1 => (0u8..3).prop_map(Op::Succeed),
            2 => (0u8..3).prop_map(Op::Check),
        ];
        prop::collection::vec(op, 0..300)
    }

    proptest! {
        #[test]
        fn agrees_with_a_model_and_locks_for_exactly_lock_for(
            max_failures in 1u32..5, window in 1u64..1000, lock_for in 1u64..1000, ops in ops(),
        ) {
            let config = LockoutConfig::new(max_failures, NS(window), NS(lock_for)).unwrap();
            let clock = FakeClock::default();
            let lockout = Lockout::new(config, Arc::new(clock.clone()));
            let mut models: [Model; 3] = Default::default();
            let mut locked_at: [Option<u64>; 3] = [None; 3];
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Advance(by) => {
                        clock.advance(NS(by));
                        now += by;
                    }
                    Op::Fail(k) => {
                        let k = usize::from(k);
                        let got = lockout.record_failure(&k.to_string());
                        prop_assert_eq!(got.is_some(), models[k].fail(now, &config));
                        if let Some(locked) = got {
                            prop_assert_eq!(locked.retry_after, NS(lock_for));
                            locked_at[k] = Some(now);
                        }
                    }
                    Op::Succeed(k) => {
                        let k = usize::from(k);
                        lockout.record_success(&k.to_string());
                        models[k].failures.clear();
                    }
                    Op::Check(k) => {
                        let k = usize::from(k);
                        let got = lockout.check(&k.to_string()).err().map(|l| l.retry_after);
                        prop_assert_eq!(got, models[k].locked(now).map(NS));
                        // Independently of the model: locked exactly during [lock, lock + lock_for).
                        let expected = locked_at[k].is_some_and(|at| now < at + lock_for);
                        prop_assert_eq!(got.is_some(), expected);
                    }
                }
            }
        }
    }
}
