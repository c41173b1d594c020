//! Keyed rate limiting (GCRA).
//!
//! OWNER: helper C.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests replenished per `period`.
    pub per_period: u32,
    /// The period.
    pub period: Duration,
    /// Requests that may pass at once.
    pub burst: u32,
}

/// A keyed GCRA rate limiter.
#[derive(Debug)]
pub struct RateLimit {
    _clock: Arc<dyn Clock>,
}

impl RateLimit {
    /// A limiter with `quota` for every key.
    pub fn new(quota: Quota, clock: Arc<dyn Clock>) -> Self {
        let _ = quota;
        Self { _clock: clock }
    }
    /// Counts one request for `key`.
    pub fn check(&self, key: &str) -> Result<(), RateLimited> {
        let _ = key;
        todo!()
    }
}
