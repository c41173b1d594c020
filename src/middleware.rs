//! Tower middleware for services that run sandboxes (feature `tower`), usable as axum 0.8
//! `Router::layer`s. One module per layer, in the order a request meets them:
//!
//! 1. [`auth`]: an [`Authenticator`](auth::Authenticator) turns the request into an [`Actor`]
//!    or answers 401 (`UNAUTHENTICATED`); [`BearerTokens`](auth::BearerTokens) checks bearer
//!    tokens against SHA-256 hashes, in constant time.
//! 2. [`sandbox_id`]: the path segment after a prefix (`/v1/sandboxes/{id}/…`) must be a valid
//!    [`SandboxId`] under the policy's rules, or 400 with the guard's
//!    code (`INVALID_SANDBOX_ID_CHARS`, `RESERVED_SANDBOX_ID`, …).
//! 3. [`rate_limit`]: a per-actor quota, or 429 `RATE_LIMITED` with `Retry-After`.
//! 4. [`lockout`]: an actor refused (403) too often on one sandbox is locked out of it, 429
//!    `LOCKED_OUT` with `Retry-After`.
//! 5. [`ownership`]: the actor must own the sandbox (an [`OwnershipStore`](ownership::OwnershipStore)
//!    says who does): 403 `NOT_OWNER` otherwise, 404 `SANDBOX_NOT_FOUND` for an unknown one.
//!
//! Every refusal is recorded in the [`Enforcer`]'s audit log by the layer that
//! refused, with the actor, the sandbox, the method and the path (never the query string, which
//! may carry secrets); the ownership layer records allowed access too, and the operation behind
//! it is recorded by the `Enforcer` when it is authorized. A refusal that cannot be recorded
//! becomes 503 `AUDIT_FAILURE`: nothing is refused or allowed without a record. Refusals are JSON:
//! `{"error": {"code": "…", "message": "…"}}`.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use sandguard::audit::{AuditLog, MemorySink};
//! use sandguard::middleware::{auth::{AuthLayer, BearerTokens}, ownership::{MemoryOwnershipStore, OwnershipLayer},
//!     sandbox_id::SandboxIdLayer};
//! use sandguard::{Enforcer, Policy};
//! use tower::ServiceBuilder;
//!
//! let enforcer = Arc::new(Enforcer::new(Policy::default(), AuditLog::new(Arc::new(MemorySink::new()))));
//! let tokens = BearerTokens::parse("alice 0123456789abcdef0123", "inline".as_ref())?;
//! let owners = Arc::new(MemoryOwnershipStore::new());
//! let app: Router = Router::new().route("/v1/sandboxes/{id}", get(|| async { "yours" })).layer(
//!     ServiceBuilder::new()
//!         .layer(AuthLayer::new(tokens, Arc::clone(&enforcer)))
//!         .layer(SandboxIdLayer::new("/v1/sandboxes/", Arc::clone(&enforcer)))
//!         .layer(OwnershipLayer::new(owners, Arc::clone(&enforcer))),
//! );
//! # drop(app);
//! # Ok::<(), sandguard::Error>(())
//! ```

pub mod auth;
pub mod future;
pub mod guard;
pub mod lockout;
pub mod ownership;
pub mod rate_limit;
pub mod sandbox_id;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{HeaderValue, Request, Response, StatusCode, header};
use sandguard_audit::{AuditError, NewEvent, Outcome};
use sandguard_policy::SandboxId;

use crate::Enforcer;

/// Who is asking: the authenticated principal, put into the request's extensions by
/// [`auth::AuthLayer`] for the layers and handlers after it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Actor(Arc<str>);

impl Actor {
    /// An actor named `name`.
    ///
    /// ```
    /// assert_eq!(sandguard::middleware::Actor::new("alice").name(), "alice");
    /// ```
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    /// The actor's name, as recorded in the audit log.
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Actor({:?})", self.name())
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The actor name recorded for requests refused before anyone was authenticated.
pub const ANONYMOUS: &str = "anonymous";

/// A JSON error response: `{"error": {"code": code, "message": message}}`.
///
/// ```
/// let response = sandguard::middleware::error_response(http::StatusCode::FORBIDDEN, "NOT_OWNER", "not yours");
/// assert_eq!(response.status(), 403);
/// assert_eq!(response.headers()["content-type"], "application/json");
/// ```
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A 429 response with `Retry-After` in whole seconds, rounded up (at least 1).
fn too_many_requests(code: &str, message: &str, retry_after: Duration) -> Response<Body> {
    let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, code, message);
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// The longest path recorded in an audit event; longer ones are cut (on a character boundary).
const MAX_RECORDED_PATH: usize = 256;

/// One middleware decision, for the audit log.
struct Decision<'a> {
    action: &'static str,
    outcome: Outcome,
    code: Option<&'a str>,
    message: &'a str,
}

/// Records `decision` about `request`.
fn record<B>(enforcer: &Enforcer, request: &Request<B>, decision: &Decision<'_>) -> Result<(), AuditError> {
    let actor = request.extensions().get::<Actor>().map_or(ANONYMOUS, Actor::name);
    let mut path = request.uri().path();
    if path.len() > MAX_RECORDED_PATH {
        let mut end = MAX_RECORDED_PATH;
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        path = &path[..end];
    }
    let mut event = NewEvent::new(actor, decision.action, decision.outcome)
        .detail("method", request.method().as_str())
        .detail("path", path);
    if let Some(sandbox) = request.extensions().get::<SandboxId>() {
        event = event.sandbox(sandbox.as_str());
    }
    if let Some(code) = decision.code {
        event = event.reason(code, decision.message);
    }
    enforcer.audit().record(event).map(drop)
}

/// The 503 sent instead of any answer whose decision could not be recorded.
fn audit_unavailable(error: &AuditError) -> Response<Body> {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "AUDIT_FAILURE",
        &format!("the decision could not be recorded, so the request is refused: {error}"),
    )
}

/// Records a refusal and returns the response to send: `refusal`, or a 503 if the record failed.
fn refuse<B>(
    enforcer: &Enforcer,
    request: &Request<B>,
    action: &'static str,
    code: &str,
    message: &str,
    refusal: Response<Body>,
) -> Response<Body> {
    let decision = Decision { action, outcome: Outcome::Denied, code: Some(code), message };
    match record(enforcer, request, &decision) {
        Ok(()) => refusal,
        Err(error) => audit_unavailable(&error),
    }
}

#[cfg(test)]
mod test_support;
