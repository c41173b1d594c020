//! Rate limit per actor: each authenticated actor gets its own quota (GCRA, see
//! [`RateLimit`]); a request over it is refused with 429 `RATE_LIMITED` and `Retry-After`
//! before it reaches the layers behind. Requests without an actor pass (place the layer after
//! authentication).

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use http::{Request, Response};
use sandguard_policy::RateLimit;
use tower::{Layer, Service};

use super::future::ResponseFuture;
use super::{Actor, refuse, too_many_requests};
use crate::Enforcer;

/// Limits each actor's request rate; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    limit: Arc<RateLimit>,
    enforcer: Arc<Enforcer>,
}

impl RateLimitLayer {
    /// A layer applying `limit` per actor, recording refusals through `enforcer`.
    pub fn new(limit: RateLimit, enforcer: Arc<Enforcer>) -> Self {
        Self { limit: Arc::new(limit), enforcer }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitCheck<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitCheck { inner, layer: self.clone() }
    }
}

/// The service made by [`RateLimitLayer`].
#[derive(Debug, Clone)]
pub struct RateLimitCheck<S> {
    inner: S,
    layer: RateLimitLayer,
}

impl<S, B> Service<Request<B>> for RateLimitCheck<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let Some(actor) = request.extensions().get::<Actor>() else {
            return ResponseFuture::inner(self.inner.call(request));
        };
        match self.layer.limit.check(actor.name()) {
            Ok(()) => ResponseFuture::inner(self.inner.call(request)),
            Err(limited) => {
                let message = limited.to_string();
                let refusal = too_many_requests(limited.code(), &message, limited.retry_after);
                let enforcer = &self.layer.enforcer;
                ResponseFuture::refused(refuse(
                    enforcer,
                    &request,
                    "request.rate_limit",
                    limited.code(),
                    &message,
                    refusal,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sandguard_policy::Quota;

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
