//! Time, only through a trait, so rate limits and lockouts are tested with a fake clock.
//!
//! Guards never read the system time themselves: they ask a [`Clock`] for the time elapsed since a
//! fixed origin. Production code passes a [`SystemClock`]; tests pass a [`FakeClock`] and move it by
//! hand, so a test of a 15-minute lockout runs in microseconds and never sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic clock: time elapsed since an arbitrary, fixed origin.
///
/// Implementations must never go backwards. The guards in this crate stay safe if one does (they
/// refuse rather than admit), but their `retry_after` hints are then only approximate.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Time since this clock's origin.
    fn now(&self) -> Duration;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Duration {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Duration {
        (**self).now()
    }
}

/// The real monotonic clock, whose origin is the moment it was created.
///
/// ```
/// use sandguard_policy::{Clock, SystemClock};
///
/// let clock = SystemClock::new();
/// let before = clock.now();
/// assert!(clock.now() >= before);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to; clones share the same time.
///
/// Time is kept in whole nanoseconds, up to `u64::MAX` (about 584 years); moving past that saturates.
///
/// ```
/// use std::time::Duration;
/// use sandguard_policy::{Clock, FakeClock};
///
/// let clock = FakeClock::default();
/// let seen_by_guard = clock.clone();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(seen_by_guard.now(), Duration::from_secs(90));
/// ```
#[derive(Debug, Clone, Default)]
pub struct FakeClock {
    nanos: Arc<AtomicU64>,
}

impl FakeClock {
    /// A clock that reads `start` until it is advanced.
    pub fn new(start: Duration) -> Self {
        Self { nanos: Arc::new(AtomicU64::new(nanos(start))) }
    }

    /// Moves the clock, and every clone of it, forward by `by`.
    ///
    /// There is deliberately no way to move it backwards: [`Clock`] promises monotonic time.
    pub fn advance(&self, by: Duration) {
        let by = nanos(by);
        // `fetch_update` with a closure that always returns `Some` cannot fail.
        let _ = self.nanos.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| Some(now.saturating_add(by)));
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// Whole nanoseconds of `d`, saturating at `u64::MAX` (about 584 years).
///
/// The limiters keep their per-key state in a `u64` of nanoseconds so an entry stays one machine word.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_starts_where_told_and_clones_share_time() {
        let clock = FakeClock::new(Duration::from_millis(7));
        let other = clock.clone();
        assert_eq!(other.now(), Duration::from_millis(7));
        other.advance(Duration::from_nanos(3));
        assert_eq!(clock.now(), Duration::from_nanos(7_000_003));
    }

    #[test]
    fn fake_clock_saturates_instead_of_wrapping() {
        let clock = FakeClock::new(Duration::from_nanos(u64::MAX - 1));
        clock.advance(Duration::from_secs(10));
        assert_eq!(clock.now(), Duration::from_nanos(u64::MAX));
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn clock_is_usable_through_arc_dyn() {
        let fake = FakeClock::default();
        let clock: Arc<dyn Clock> = Arc::new(fake.clone());
        fake.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), Duration::from_secs(1));
    }

    #[test]
    fn system_clock_does_not_go_backwards() {
        let clock = SystemClock::new();
        let mut last = clock.now();
        for _ in 0..1000 {
            let now = clock.now();
            assert!(now >= last);
            last = now;
        }
    }

    #[test]
    fn nanos_saturates() {
        assert_eq!(nanos(Duration::from_nanos(5)), 5);
        assert_eq!(nanos(Duration::MAX), u64::MAX);
    }
}
