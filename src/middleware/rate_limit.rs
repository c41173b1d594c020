//! Rate limit per actor: each authenticated actor gets its own quota (GCRA, see
//! [`RateLimit`]); a request over it is refused with 429 `RATE_LIMITED` and `Retry-After`
//! before it reaches the layers behind. Requests without an actor pass (place the layer after
//! authentication).

use std::sync::Arc;

use axum::body::Body;
use http::{Request, Response};
use sandguard_policy::RateLimit;

use super::guard::{Guard, GuardLayer, GuardService};
use super::{Actor, refuse, too_many_requests};
use crate::Enforcer;

/// Limits each actor's request rate; see the [module docs](self).
pub type RateLimitLayer = GuardLayer<RateLimitGuard>;

/// The service made by [`RateLimitLayer`].
pub type RateLimitCheck<S> = GuardService<RateLimitGuard, S>;

/// The decision of a [`RateLimitLayer`].
#[derive(Debug, Clone)]
pub struct RateLimitGuard {
    limit: Arc<RateLimit>,
    enforcer: Arc<Enforcer>,
}

impl RateLimitLayer {
    /// A layer applying `limit` per actor, recording refusals through `enforcer`.
    pub fn new(limit: RateLimit, enforcer: Arc<Enforcer>) -> Self {
        Self::with(RateLimitGuard { limit: Arc::new(limit), enforcer })
    }
}

impl Guard for RateLimitGuard {
    fn check<B>(&self, request: &mut Request<B>) -> Result<(), Response<Body>> {
        let Some(actor) = request.extensions().get::<Actor>() else { return Ok(()) };
        self.limit.check(actor.name()).map_err(|limited| {
            let message = limited.to_string();
            let refusal = too_many_requests(limited.code(), &message, limited.retry_after);
            refuse(&self.enforcer, request, "request.rate_limit", limited.code(), &message, refusal)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sandguard_policy::Quota;

    use tower::Layer;

    use super::*;
    use crate::middleware::test_support::{Harness, as_actor};

    #[test]
    fn each_actor_has_its_own_quota() {
        let harness = Harness::new();
        let quota = Quota::new(2, Duration::from_secs(1), 2).unwrap();
        let limit = RateLimit::new(quota, Arc::new(harness.clock.clone()));
        let mut service = RateLimitLayer::new(limit, harness.enforcer()).layer(harness.echo_actor());
        assert_eq!(harness.call(&mut service, as_actor("alice", "/x", 200)).status, 200);
        assert_eq!(harness.call(&mut service, as_actor("alice", "/x", 200)).status, 200);
        let limited = harness.call(&mut service, as_actor("alice", "/x", 200));
        assert_eq!((limited.status, limited.code.as_deref()), (429, Some("RATE_LIMITED")));
        assert_eq!(limited.headers["retry-after"], "1");
        assert_eq!(harness.last_event().actor, "alice");
        assert_eq!(harness.call(&mut service, as_actor("bob", "/x", 200)).status, 200, "bob has his own quota");
        harness.clock.advance(Duration::from_millis(500));
        assert_eq!(harness.call(&mut service, as_actor("alice", "/x", 200)).status, 200, "refilled");
    }
}
