//! Lockout: N failures for a key within a window lock it for a while.
//!
//! OWNER: helper C.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutConfig {
    /// Failures within `window` that lock a key.
    pub max_failures: u32,
    /// The window failures are counted in.
    pub window: Duration,
    /// How long a key stays locked.
    pub lock_for: Duration,
}

/// Tracks failures per key.
#[derive(Debug)]
pub struct Lockout {
    _clock: Arc<dyn Clock>,
}

impl Lockout {
    /// A tracker with `config`.
    pub fn new(config: LockoutConfig, clock: Arc<dyn Clock>) -> Self {
        let _ = config;
        Self { _clock: clock }
    }
    /// Fails when `key` is locked.
    pub fn check(&self, key: &str) -> Result<(), Locked> {
        let _ = key;
        todo!()
    }
    /// Counts a failure; returns the lock when this failure locked the key.
    pub fn record_failure(&self, key: &str) -> Option<Locked> {
        let _ = key;
        todo!()
    }
    /// A success clears the key's failures.
    pub fn record_success(&self, key: &str) {
        let _ = key;
        todo!()
    }
}
