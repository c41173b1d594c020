//! Lockout per actor and sandbox: an actor whose requests on one sandbox are refused with 403
//! `max_failures` times within the window is refused on that sandbox for `lock_for`, with 429
//! `LOCKED_OUT` and `Retry-After`, without the request reaching the layers behind. A success
//! (2xx) clears the count. Refusals while locked do not extend the lock. Place it before (outside)
//! the [`ownership`](super::ownership) layer so that it sees that layer's 403s.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use sandguard_audit::{NewEvent, Outcome};
use sandguard_policy::{Lockout, SandboxId};
use tower::{Layer, Service};

use super::future::ResponseFuture;
use super::{Actor, refuse, too_many_requests};
use crate::Enforcer;

/// Locks an actor out of a sandbox after repeated refusals; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct LockoutLayer {
    lockout: Arc<Lockout>,
    enforcer: Arc<Enforcer>,
}

impl LockoutLayer {
    /// A layer keeping failures in `lockout` (its clock and settings), recording through `enforcer`.
    pub fn new(lockout: Lockout, enforcer: Arc<Enforcer>) -> Self {
        Self { lockout: Arc::new(lockout), enforcer }
    }
}

impl<S> Layer<S> for LockoutLayer {
    type Service = LockoutCheck<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LockoutCheck { inner, layer: self.clone() }
    }
}

/// The service made by [`LockoutLayer`].
#[derive(Debug, Clone)]
pub struct LockoutCheck<S> {
    inner: S,
    layer: LockoutLayer,
}

/// The key of an actor on a sandbox: the NUL cannot occur in an ID, so keys cannot collide.
fn key(actor: &Actor, sandbox: &SandboxId) -> String {
    format!("{}\0{}", actor.name(), sandbox.as_str())
}

impl<S, B> Service<Request<B>> for LockoutCheck<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = LockoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let extensions = request.extensions();
        let (Some(actor), Some(sandbox)) = (extensions.get::<Actor>(), extensions.get::<SandboxId>()) else {
            return LockoutFuture { inner: ResponseFuture::inner(self.inner.call(request)), state: None };
        };
        let key = key(actor, sandbox);
        if let Err(locked) = self.layer.lockout.check(&key) {
            let message = locked.to_string();
            let refusal = too_many_requests(locked.code(), &message, locked.retry_after);
            let response = refuse(&self.layer.enforcer, &request, "request.lockout", locked.code(), &message, refusal);
            return LockoutFuture { inner: ResponseFuture::refused(response), state: None };
        }
        let state = Some(Pending { layer: self.layer.clone(), key, actor: actor.clone(), sandbox: sandbox.clone() });
        LockoutFuture { inner: ResponseFuture::inner(self.inner.call(request)), state }
    }
}

/// What the response future needs to count the answer.
#[derive(Debug)]
struct Pending {
    layer: LockoutLayer,
    key: String,
    actor: Actor,
    sandbox: SandboxId,
}

impl Pending {
    fn count(self, status: StatusCode) {
        if status == StatusCode::FORBIDDEN {
            if let Some(locked) = self.layer.lockout.record_failure(&self.key) {
                // The lock itself is a decision worth a record; a failure to write it cannot
                // change the response already made, and the next request's check refuses anyway.
                let event = NewEvent::new(self.actor.name(), "request.lockout", Outcome::Denied)
                    .sandbox(self.sandbox.as_str())
                    .reason(locked.code(), locked.to_string())
                    .detail("locked_out", true);
                let _ = self.layer.enforcer.audit().record(event);
            }
        } else if status.is_success() {
            self.layer.lockout.record_success(&self.key);
        }
    }
}

pin_project! {
    /// The response future of [`LockoutCheck`]: counts the inner service's 403s.
    pub struct LockoutFuture<F> {
        #[pin]
        inner: ResponseFuture<F>,
        state: Option<Pending>,
    }
}

impl<F, E> Future for LockoutFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let (Ok(response), Some(pending)) = (&result, this.state.take()) {
            pending.count(response.status());
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sandguard_policy::LockoutConfig;

    use super::*;
    use crate::middleware::sandbox_id::SandboxIdLayer;
    use crate::middleware::test_support::{Harness, as_actor};
    use tower::ServiceBuilder;

    #[test]
    fn repeated_refusals_lock_the_actor_out_of_that_sandbox_only() {
        let harness = Harness::new();
        let config = LockoutConfig::new(3, Duration::from_secs(60), Duration::from_secs(300)).unwrap();
        let lockout = Lockout::new(config, Arc::new(harness.clock.clone()));
        let mut service = ServiceBuilder::new()
            .layer(SandboxIdLayer::new("/v1/sandboxes/", harness.enforcer()))
            .layer(LockoutLayer::new(lockout, harness.enforcer()))
            .service(harness.echo_actor());
        let box1 = "/v1/sandboxes/box-1/exec";

        // A success clears earlier failures.
        for status in [403, 403, 200, 403, 403] {
            assert_eq!(harness.call(&mut service, as_actor("bob", box1, status)).status, status);
        }
        assert_eq!(harness.call(&mut service, as_actor("bob", box1, 403)).status, 403, "third failure locks");
        let locked = harness.call(&mut service, as_actor("bob", box1, 200));
        assert_eq!((locked.status, locked.code.as_deref()), (429, Some("LOCKED_OUT")));
        assert_eq!(locked.headers["retry-after"], "300");
        let event = harness.last_event();
        assert_eq!((event.actor.as_str(), event.sandbox.as_deref()), ("bob", Some("box-1")));

        // Other sandboxes, other actors, and requests naming no sandbox pass.
        assert_eq!(harness.call(&mut service, as_actor("bob", "/v1/sandboxes/box-2", 200)).status, 200);
        assert_eq!(harness.call(&mut service, as_actor("alice", box1, 200)).status, 200);
        assert_eq!(harness.call(&mut service, as_actor("bob", "/v1/sandboxes", 200)).status, 200);

        // Retries while locked do not extend the lock: it lifts when it said it would.
        harness.clock.advance(Duration::from_secs(299));
        let reply = harness.call(&mut service, as_actor("bob", box1, 200));
        assert_eq!((reply.status, reply.headers["retry-after"].to_str().unwrap()), (429, "1"));
        harness.clock.advance(Duration::from_secs(1));
        assert_eq!(harness.call(&mut service, as_actor("bob", box1, 200)).status, 200);
    }
}
