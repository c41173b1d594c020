//! Keyed rate limiting (GCRA).
//!
//! A [`RateLimit`] gives every key (an actor, an API token, a client address) the same [`Quota`]:
//! from idle, `burst` requests may pass at once; after that, one more passes every emission interval
//! `T = period / per_period`. This is the Generic Cell Rate Algorithm, the leaky bucket written as
//! one timestamp per key:
//!
//! - Each key has a *theoretical arrival time* `TAT`: when its bucket will be empty again. A key
//!   never seen, or whose `TAT` has passed, is idle.
//! - The tolerance is `τ = T × (burst − 1)`. A request at time `t` passes when `TAT − t ≤ τ`, and
//!   then moves `TAT` to `max(TAT, t) + T`. A refused request changes nothing.
//! - A refused request may retry after exactly `TAT − τ − t`: not a nanosecond earlier.
//!
//! So within any interval of length `L`, at most `burst + ⌊L / T⌋` requests of one key pass.
//!
//! `T` is rounded *up* to a whole nanosecond, so a quota of `3/s` lets through at most 3 requests a
//! second (plus the burst), never a fraction more.
//!
//! # Memory
//!
//! State lives in a fixed number of mutex-guarded shards, one `u64` per key, and is bounded by
//! [`RateLimit::with_max_keys`] (default [`RateLimit::DEFAULT_MAX_KEYS`]). When a shard is full,
//! entries whose `TAT` has passed are dropped: they are indistinguishable from keys never seen. If
//! the shard is still full, every key in it was active within its last `τ + T`, and the limiter fails
//! closed: a key it has no room for is refused until an entry expires. Forgetting a live key instead
//! would hand a fresh burst to exactly the keys that are flooding it.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::clock::{Clock, nanos};
use crate::limits::{HumanDuration, LimitsError, excerpt};

/// A key exceeded its quota.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded; retry after {} ms", retry_after.as_millis())]
pub struct RateLimited {
    /// How long until one more request would pass.
    pub retry_after: Duration,
}

impl RateLimited {
    /// The stable code: `RATE_LIMITED`.
    pub fn code(&self) -> &'static str {
        "RATE_LIMITED"
    }
}

/// How many requests per period, with how large a burst.
///
/// The fields are public for pattern matching and literals; [`Quota::new`], the `per_*`
/// constructors and [`FromStr`] check them. Text form: `<count>/<period>`, where the period is a unit
/// (`s`, `min`, `h`, ...) or a [`HumanDuration`] (`10s`), optionally followed by ` burst <n>`.
/// Without it, the burst equals the count: a whole period's worth may arrive at once.
///
/// ```
/// use std::time::Duration;
/// use sandguard_policy::Quota;
///
/// let quota: Quota = "100/min".parse()?;
/// assert_eq!(quota, Quota::per_minute(100)?);
/// assert_eq!(quota.burst, 100);
///
/// let strict: Quota = "5/10s burst 1".parse()?;
/// assert_eq!(strict, Quota::new(5, Duration::from_secs(10), 1)?);
/// assert_eq!(strict.to_string(), "5/10s burst 1");
///
/// assert_eq!("0/s".parse::<Quota>().unwrap_err().code(), "INVALID_QUOTA");
/// # Ok::<(), sandguard_policy::limits::LimitsError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests replenished per `period`.
    pub per_period: u32,
    /// The period.
    pub period: Duration,
    /// Requests that may pass at once.
    pub burst: u32,
}

impl Quota {
    /// `per_period` requests every `period`, of which `burst` may pass at once.
    ///
    /// Refused (`INVALID_QUOTA`) when a count is zero, the period is zero, or `burst` emission
    /// intervals add up to more than `u64::MAX` nanoseconds (about 584 years).
    pub fn new(per_period: u32, period: Duration, burst: u32) -> Result<Self, LimitsError> {
        let quota = Self { per_period, period, burst };
        quota.validate()?;
        Ok(quota)
    }

    /// `n` requests a second, all of which may pass at once.
    pub fn per_second(n: u32) -> Result<Self, LimitsError> {
        Self::new(n, Duration::from_secs(1), n)
    }

    /// `n` requests a minute, all of which may pass at once.
    pub fn per_minute(n: u32) -> Result<Self, LimitsError> {
        Self::new(n, Duration::from_secs(60), n)
    }

    /// `n` requests an hour, all of which may pass at once.
    pub fn per_hour(n: u32) -> Result<Self, LimitsError> {
        Self::new(n, Duration::from_secs(3600), n)
    }

    /// The same rate with a different burst.
    pub fn with_burst(self, burst: u32) -> Result<Self, LimitsError> {
        Self::new(self.per_period, self.period, burst)
    }

    /// Checks the quota: see [`Quota::new`].
    pub fn validate(&self) -> Result<(), LimitsError> {
        self.gcra().map(drop)
    }

    fn gcra(&self) -> Result<Gcra, LimitsError> {
        let refuse = |reason| LimitsError::Quota { quota: excerpt(&self.to_string()), reason };
        if self.per_period == 0 {
            return Err(refuse("the request count must be at least 1"));
        }
        if self.burst == 0 {
            return Err(refuse("the burst must be at least 1"));
        }
        if self.period.is_zero() {
            return Err(refuse("the period must be longer than zero"));
        }
        let interval = self.period.as_nanos().div_ceil(u128::from(self.per_period));
        let too_long = || refuse("the burst spans more than 584 years");
        let span = interval.checked_mul(u128::from(self.burst)).ok_or_else(too_long)?;
        u64::try_from(span).map_err(|_| too_long())?;
        // Both fit: each is at most `span`.
        let interval = u64::try_from(interval).map_err(|_| too_long())?;
        let tolerance = interval.saturating_mul(u64::from(self.burst - 1));
        Ok(Gcra { interval, tolerance })
    }
}

impl FromStr for Quota {
    type Err = LimitsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let refuse = |reason| LimitsError::Quota { quota: excerpt(s), reason };
        let count = |digits: &str| -> Option<u32> {
            // `u32::from_str` also takes a leading `+`, which this grammar does not.
            digits.bytes().all(|b| b.is_ascii_digit()).then(|| digits.parse().ok()).flatten()
        };
        let (rate, burst) = match s.split_once(" burst ") {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (s, None),
        };
        let (per_period, period) = rate.split_once('/').ok_or_else(|| refuse("there is no `/`"))?;
        let per_period =
            count(per_period).ok_or_else(|| refuse("the request count must be a whole number up to 4294967295"))?;
        let period = if period.starts_with(|c: char| c.is_ascii_digit()) {
            period.parse::<HumanDuration>()
        } else {
            // A bare unit means one of it: `20/s` is `20/1s`.
            format!("1{period}").parse::<HumanDuration>()
        };
        let period = period.map_err(|_| refuse("the period must be a unit (s, min, h) or a duration (10s)"))?;
        let burst = match burst {
            None => per_period,
            Some(b) => count(b).ok_or_else(|| refuse("the burst must be a whole number up to 4294967295"))?,
        };
        // Report range problems against the text the user wrote.
        Self { per_period, period: period.0, burst }.validate().map_err(|e| match e {
            LimitsError::Quota { reason, .. } => refuse(reason),
            other => other,
        })?;
        Ok(Self { per_period, period: period.0, burst })
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let period = HumanDuration(self.period).to_string();
        let period = match period.strip_prefix('1') {
            Some("m") => "min",
            Some(unit) if unit.bytes().all(|b| b.is_ascii_alphabetic()) => unit,
            _ => &period,
        };
        write!(f, "{}/{period}", self.per_period)?;
        if self.burst != self.per_period {
            write!(f, " burst {}", self.burst)?;
        }
        Ok(())
    }
}

// The text form, e.g. `"20/s"` or `"5/10s burst 1"`.
crate::limits::serde_as_text!(Quota, "a rate quota such as \"20/s\", \"100/min\" or \"5/10s burst 1\"");

/// A valid quota in the nanoseconds GCRA works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gcra {
    /// `T`: the time one request "costs".
    interval: u64,
    /// `τ = T × (burst − 1)`: how far ahead of now a key's `TAT` may be and still pass.
    tolerance: u64,
}

impl Gcra {
    /// Admits a request at `now` against `tat`, advancing it, or says when to retry.
    fn admit(self, tat: &mut u64, now: u64) -> Result<(), RateLimited> {
        let ahead = tat.saturating_sub(now);
        if ahead > self.tolerance {
            return Err(RateLimited { retry_after: Duration::from_nanos(ahead - self.tolerance) });
        }
        *tat = (*tat).max(now).saturating_add(self.interval);
        Ok(())
    }
}

/// A keyed GCRA rate limiter; see the [module documentation](self) for the algorithm.
///
/// `check` takes `&self`, locks one shard for a hash-map lookup, and allocates only for a key it
/// has not seen; share one limiter between threads with an `Arc`.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use sandguard_policy::{FakeClock, Quota, RateLimit};
///
/// let clock = FakeClock::default();
/// let limit = RateLimit::new(Quota::per_second(2)?, Arc::new(clock.clone()));
/// assert!(limit.check("alice").is_ok());
/// assert!(limit.check("alice").is_ok());
/// let refused = limit.check("alice").unwrap_err();
/// assert_eq!(refused.retry_after, Duration::from_millis(500));
/// assert!(limit.check("bob").is_ok(), "keys are independent");
///
/// clock.advance(refused.retry_after);
/// assert!(limit.check("alice").is_ok());
/// # Ok::<(), sandguard_policy::limits::LimitsError>(())
/// ```
#[derive(Debug)]
pub struct RateLimit {
    quota: Quota,
    /// `None` when the quota is invalid: the limiter then refuses everything.
    gcra: Option<Gcra>,
    clock: Arc<dyn Clock>,
    keys: KeyedState<u64>,
}

impl RateLimit {
    /// The default bound on the number of keys tracked at once.
    pub const DEFAULT_MAX_KEYS: usize = 100_000;

    /// A limiter with `quota` for every key.
    ///
    /// An invalid quota (see [`Quota::new`]) fails closed: every request is refused with a
    /// `retry_after` of [`Duration::MAX`]. Use [`RateLimit::try_new`] to get the error instead.
    pub fn new(quota: Quota, clock: Arc<dyn Clock>) -> Self {
        Self { quota, gcra: quota.gcra().ok(), clock, keys: KeyedState::new(Self::DEFAULT_MAX_KEYS) }
    }

    /// A limiter with `quota` for every key, or the reason the quota is invalid.
    pub fn try_new(quota: Quota, clock: Arc<dyn Clock>) -> Result<Self, LimitsError> {
        quota.validate()?;
        Ok(Self::new(quota, clock))
    }

    /// Bounds the number of keys tracked at once to about `max_keys` (rounded up to a multiple of
    /// the shard count). Meant for construction: it forgets every key seen so far.
    pub fn with_max_keys(self, max_keys: usize) -> Self {
        Self { keys: KeyedState::new(max_keys), ..self }
    }

    /// The quota every key gets.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// How many keys are tracked now. Idle keys may linger until their shard needs the room.
    pub fn tracked_keys(&self) -> usize {
        self.keys.len()
    }

    /// Counts one request for `key`, or refuses it with the exact time until one would pass.
    ///
    /// When `key` is new and its shard is full of active keys (see "Memory" in the
    /// [module documentation](self)), the refusal's `retry_after` is instead a lower bound on when
    /// room is made.
    pub fn check(&self, key: &str) -> Result<(), RateLimited> {
        let Some(gcra) = self.gcra else {
            return Err(RateLimited { retry_after: Duration::MAX });
        };
        let now = nanos(self.clock.now());
        let mut shard = self.keys.shard(key);
        if let Some(tat) = shard.map.get_mut(key) {
            return gcra.admit(tat, now);
        }
        if shard.map.len() >= self.keys.shard_cap {
            // Until `stale_from`, no entry can have expired, so a full shard need not be rescanned:
            // this keeps a flood of new keys from costing a full scan per request.
            if now >= shard.stale_from {
                let mut earliest = u64::MAX;
                shard.map.retain(|_, tat| {
                    let live = *tat > now;
                    if live {
                        earliest = earliest.min(*tat);
                    }
                    live
                });
                shard.stale_from = earliest;
            }
            if shard.map.len() >= self.keys.shard_cap {
                let wait = shard.stale_from.saturating_sub(now);
                return Err(RateLimited { retry_after: Duration::from_nanos(wait) });
            }
        }
        let mut tat = now;
        gcra.admit(&mut tat, now)?;
        shard.stale_from = shard.stale_from.min(tat);
        shard.map.insert(key.into(), tat);
        Ok(())
    }
}

/// Per-key state split over mutex-guarded shards, so that threads checking different keys rarely
/// wait on each other. Shared by [`RateLimit`] and [`Lockout`](crate::Lockout).
pub(crate) struct KeyedState<V> {
    /// Chooses the shard. Keys are attacker-chosen, so the hash is keyed (SipHash with a random key),
    /// as is each shard's map: nobody can aim many keys at one shard or one bucket.
    shard_hasher: RandomState,
    shards: Box<[Mutex<Shard<V>>]>,
    /// Most keys one shard may hold; the owner makes room before inserting beyond it.
    pub(crate) shard_cap: usize,
}

/// One shard of a [`KeyedState`].
pub(crate) struct Shard<V> {
    pub(crate) map: HashMap<Box<str>, V>,
    /// A time (nanoseconds) before which no entry can become stale, kept by owners that use it to
    /// avoid rescanning a full shard.
    pub(crate) stale_from: u64,
}

/// Enough shards that two cores, or sixteen, rarely contend on one.
const SHARDS: usize = 32;

impl<V> KeyedState<V> {
    /// About `max_keys` keys at most, over the default number of shards.
    pub(crate) fn new(max_keys: usize) -> Self {
        Self::with_shards(SHARDS, max_keys)
    }

    pub(crate) fn with_shards(shards: usize, max_keys: usize) -> Self {
        let shards = shards.max(1);
        Self {
            shard_hasher: RandomState::new(),
            shards: (0..shards).map(|_| Mutex::new(Shard { map: HashMap::new(), stale_from: 0 })).collect(),
            shard_cap: max_keys.div_ceil(shards).max(1),
        }
    }

    pub(crate) fn shard(&self, key: &str) -> MutexGuard<'_, Shard<V>> {
        let hash = self.shard_hasher.hash_one(key);
        // The high bits: the map inside the shard draws its own, independent hash.
        let index = usize::try_from(hash >> 32).unwrap_or(0) % self.shards.len();
        // No code holding a shard lock can panic, so a poisoned lock still guards consistent state.
        self.shards[index].lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).map.len()).sum()
    }
}

impl<V> fmt::Debug for KeyedState<V> {
    /// Keys are user data (addresses, actor names): not for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedState")
            .field("shards", &self.shards.len())
            .field("shard_cap", &self.shard_cap)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use proptest::prelude::*;

    fn limiter(quota: Quota) -> (FakeClock, RateLimit) {
        let clock = FakeClock::default();
        (clock.clone(), RateLimit::new(quota, Arc::new(clock)))
    }

    const NS: fn(u64) -> Duration = Duration::from_nanos;

    #[test]
    fn burst_passes_then_the_next_waits_exactly_one_interval() {
        let (clock, limit) = limiter(Quota::new(10, Duration::from_secs(1), 3).unwrap());
        for _ in 0..3 {
            assert_eq!(limit.check("k"), Ok(()));
        }
        assert_eq!(limit.check("k"), Err(RateLimited { retry_after: Duration::from_millis(100) }));
        clock.advance(Duration::from_millis(100) - NS(1));
        assert_eq!(limit.check("k"), Err(RateLimited { retry_after: NS(1) }));
        clock.advance(NS(1));
        assert_eq!(limit.check("k"), Ok(()));
        assert_eq!(limit.check("k"), Err(RateLimited { retry_after: Duration::from_millis(100) }));
    }

    #[test]
    fn refused_requests_do_not_push_the_retry_time_back() {
        let (clock, limit) = limiter(Quota::per_second(1).unwrap());
        assert!(limit.check("k").is_ok());
        for _ in 0..100 {
            assert!(limit.check("k").is_err());
        }
        clock.advance(Duration::from_secs(1));
        assert!(limit.check("k").is_ok());
    }

    #[test]
    fn an_idle_key_gets_its_full_burst_back_and_no_more() {
        let (clock, limit) = limiter(Quota::per_second(5).unwrap());
        for _ in 0..5 {
            assert!(limit.check("k").is_ok());
        }
        clock.advance(Duration::from_secs(3600));
        for _ in 0..5 {
            assert!(limit.check("k").is_ok());
        }
        assert!(limit.check("k").is_err());
    }

    #[test]
    fn keys_are_independent() {
        let (_, limit) = limiter(Quota::per_minute(1).unwrap());
        assert!(limit.check("alice").is_ok());
        assert!(limit.check("alice").is_err());
        assert!(limit.check("bob").is_ok());
        assert!(limit.check("Alice").is_ok(), "keys are compared exactly");
    }

    #[test]
    fn the_interval_is_rounded_up() {
        let (_, limit) = limiter(Quota::new(3, Duration::from_secs(1), 1).unwrap());
        assert!(limit.check("k").is_ok());
        assert_eq!(limit.check("k").unwrap_err().retry_after, NS(333_333_334));
    }

    #[test]
    fn an_invalid_quota_fails_closed() {
        let clock: Arc<dyn Clock> = Arc::new(FakeClock::default());
        for quota in [
            Quota { per_period: 0, period: Duration::from_secs(1), burst: 1 },
            Quota { per_period: 1, period: Duration::from_secs(1), burst: 0 },
            Quota { per_period: 1, period: Duration::ZERO, burst: 1 },
            Quota { per_period: 1, period: Duration::MAX, burst: 1 },
            Quota { per_period: 1, period: Duration::from_secs(1 << 30), burst: 1 << 10 },
        ] {
            assert_eq!(quota.validate().unwrap_err().code(), "INVALID_QUOTA", "{quota:?}");
            assert!(RateLimit::try_new(quota, clock.clone()).is_err());
            let limit = RateLimit::new(quota, clock.clone());
            assert_eq!(limit.check("k"), Err(RateLimited { retry_after: Duration::MAX }));
        }
    }

    #[test]
    fn quotas_parse_from_text() {
        let q = |s: &str| s.parse::<Quota>();
        let secs = Duration::from_secs;
        assert_eq!(q("20/s"), Ok(Quota { per_period: 20, period: secs(1), burst: 20 }));
        assert_eq!(q("100/min"), Ok(Quota { per_period: 100, period: secs(60), burst: 100 }));
        assert_eq!(q("100/m"), q("100/min"));
        assert_eq!(q("1000/h"), Ok(Quota { per_period: 1000, period: secs(3600), burst: 1000 }));
        assert_eq!(q("5/10s"), Ok(Quota { per_period: 5, period: secs(10), burst: 5 }));
        assert_eq!(q("5/1m30s burst 2"), Ok(Quota { per_period: 5, period: secs(90), burst: 2 }));
        for bad in [
            "",
            "20",
            "/s",
            "20/",
            "20/x",
            "-1/s",
            "+1/s",
            "1.5/s",
            "0/s",
            "20/0s",
            "20 /s",
            "20/ s",
            "20/s burst",
            "20/s burst 0",
            "20/s  burst 2",
            "20/s burst -1",
            "20/s burst 2 burst 3",
            "4294967296/s",
            "20/s/s",
            "1/584000000000d",
        ] {
            let err = q(bad).unwrap_err();
            assert_eq!(err.code(), "INVALID_QUOTA", "{bad:?}");
            assert!(matches!(&err, LimitsError::Quota { quota, .. } if quota == bad), "{bad:?}: {err}");
        }
    }

    #[test]
    fn quota_errors_say_what_is_wrong() {
        let err = "0/s".parse::<Quota>().unwrap_err().to_string();
        assert!(err.starts_with("invalid rate quota \"0/s\": the request count must be at least 1;"), "{err}");
    }

    #[test]
    fn a_full_shard_drops_expired_keys_first() {
        let clock = FakeClock::default();
        let mut limit = RateLimit::new(Quota::per_second(1).unwrap(), Arc::new(clock.clone()));
        limit.keys = KeyedState::with_shards(1, 4);
        for i in 0..1000 {
            assert!(limit.check(&format!("key-{i}")).is_ok(), "key-{i}");
            assert!(limit.tracked_keys() <= 4);
            clock.advance(Duration::from_millis(250));
        }
        // The survivors' state was kept: the most recent key is still limited.
        assert!(limit.check("key-999").is_err());
    }

    #[test]
    fn a_shard_full_of_live_keys_refuses_new_keys_until_one_expires() {
        let clock = FakeClock::default();
        let mut limit = RateLimit::new(Quota::per_second(1).unwrap(), Arc::new(clock.clone()));
        limit.keys = KeyedState::with_shards(1, 2);
        assert!(limit.check("a").is_ok());
        clock.advance(Duration::from_millis(400));
        assert!(limit.check("b").is_ok());
        let refused = limit.check("c").unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(600), "until `a` expires");
        // Known keys are unaffected by the shard being full.
        assert!(limit.check("a").is_err());
        clock.advance(refused.retry_after);
        assert!(limit.check("c").is_ok());
        assert!(limit.check("b").is_err(), "`b` was not forgotten");
        assert_eq!(limit.tracked_keys(), 2);
    }

    #[test]
    fn with_max_keys_bounds_memory() {
        let clock = FakeClock::default();
        let limit = RateLimit::new(Quota::per_second(1).unwrap(), Arc::new(clock.clone())).with_max_keys(64);
        for i in 0..10_000 {
            let _ = limit.check(&i.to_string());
            assert!(limit.tracked_keys() <= 64);
        }
        // Once the keys seen have gone idle, new ones take their places.
        for i in 0..100 {
            clock.advance(Duration::from_secs(1));
            assert!(limit.check(&format!("later-{i}")).is_ok());
        }
    }

    #[test]
    fn concurrent_checks_admit_exactly_the_burst() {
        let (_, limit) = limiter(Quota::per_hour(100).unwrap());
        let admitted = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        if limit.check("shared").is_ok() {
                            admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.into_inner(), 100);
    }

    /// The continuous-state leaky bucket of ITU-T I.371: a different formulation of GCRA, written
    /// independently, with signed arithmetic and no saturation.
    #[derive(Debug, Default, Clone, Copy)]
    struct LeakyBucket {
        /// Bucket content, in nanoseconds of work.
        level: i128,
        /// When the bucket last accepted a request.
        last: i128,
    }

    impl LeakyBucket {
        fn check(&mut self, now: i128, interval: i128, limit: i128) -> Result<(), i128> {
            let drained = (self.level - (now - self.last)).max(0);
            if drained > limit {
                return Err(drained - limit);
            }
            self.level = drained + interval;
            self.last = now;
            Ok(())
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Advance(u64),
        Check(u8),
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![(0u64..3000).prop_map(Op::Advance), (0u8..3).prop_map(Op::Check)];
        prop::collection::vec(op, 0..300)
    }

    proptest! {
        #[test]
        fn agrees_with_a_leaky_bucket_and_respects_the_bound(
            per_period in 1u32..6, period in 1u64..2000, burst in 1u32..6, ops in ops(),
        ) {
            let quota = Quota::new(per_period, NS(period), burst).unwrap();
            let (clock, limit) = limiter(quota);
            let interval = i128::from(period.div_ceil(u64::from(per_period)));
            let limit_ns = interval * i128::from(burst - 1);
            let mut models = [LeakyBucket::default(); 3];
            let mut admitted: [Vec<i128>; 3] = Default::default();
            let mut now = 0i128;
            for op in ops {
                match op {
                    Op::Advance(by) => {
                        clock.advance(NS(by));
                        now += i128::from(by);
                    }
                    Op::Check(k) => {
                        let k = usize::from(k);
                        let got = limit.check(&k.to_string());
                        let want = models[k].check(now, interval, limit_ns);
                        let got_ns = got.clone().map_err(|e| i128::try_from(e.retry_after.as_nanos()).unwrap());
                        prop_assert_eq!(got_ns, want, "key {} at {}", k, now);
                        if got.is_ok() {
                            admitted[k].push(now);
                        }
                    }
                }
            }
            for times in &admitted {
                for (i, first) in times.iter().enumerate() {
                    for (j, last) in times.iter().enumerate().skip(i) {
                        let passed = i128::try_from(j - i + 1).unwrap();
                        prop_assert!(passed <= i128::from(burst) + (last - first) / interval);
                    }
                }
            }
        }

        #[test]
        fn retry_after_is_exact(per_period in 1u32..100, period in 1u64..1_000_000_000, burst in 1u32..10) {
            let (clock, limit) = limiter(Quota::new(per_period, NS(period), burst).unwrap());
            for _ in 0..burst {
                prop_assert!(limit.check("k").is_ok());
            }
            let retry = limit.check("k").unwrap_err().retry_after;
            prop_assert_eq!(retry, NS(period.div_ceil(u64::from(per_period))));
            clock.advance(retry - NS(1));
            prop_assert!(limit.check("k").is_err());
            clock.advance(NS(1));
            prop_assert!(limit.check("k").is_ok());
        }

        #[test]
        fn quota_display_then_parse_is_identity(
            per_period in 1u32.., secs in 1u64..1_000_000, burst in 1u32..,
        ) {
            let quota = Quota::new(per_period, Duration::from_secs(secs), burst);
            prop_assume!(quota.is_ok());
            let quota = quota.unwrap();
            prop_assert_eq!(quota.to_string().parse::<Quota>(), Ok(quota));
        }

        #[test]
        fn quota_parse_never_panics(s in "[0-9a-z/ ]{0,24}") {
            let _ = s.parse::<Quota>();
        }
    }
}
