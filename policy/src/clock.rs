//! Time, only through a trait, so rate limits and lockouts are tested with a fake clock.
//!
//! OWNER: helper C.

use std::time::Duration;

/// A monotonic clock: time elapsed since an arbitrary, fixed origin.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Time since this clock's origin.
    fn now(&self) -> Duration;
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: std::time::Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self { origin: std::time::Instant::now() }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct FakeClock {
    _todo: (),
}

impl FakeClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let _ = by;
        todo!()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Duration {
        todo!()
    }
}
