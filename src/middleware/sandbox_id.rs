//! Sandbox ID extraction: the path segment after a prefix (e.g. `/v1/sandboxes/`) must pass the
//! policy's [`IdRules`](sandguard_policy::IdRules); the parsed [`SandboxId`](sandguard_policy::SandboxId) goes into the
//! request's extensions for the layers and handlers after it, and an invalid one is refused
//! with 400 and the guard's code before any handler runs. The segment is checked as it appears
//! on the wire: a percent-encoded ID is invalid (`%` is not a DNS-label character).
//!
//! ```
//! use std::sync::Arc;
//! use sandguard::audit::{AuditLog, MemorySink};
//! use sandguard::middleware::sandbox_id::SandboxIdLayer;
//! use sandguard::{Enforcer, Policy};
//!
//! let enforcer = Arc::new(Enforcer::new(Policy::default(), AuditLog::new(Arc::new(MemorySink::new()))));
//! let layer = SandboxIdLayer::new("/v1/sandboxes/", enforcer);
//! assert_eq!(layer.segment("/v1/sandboxes/box-1/exec"), Some("box-1"));
//! assert_eq!(layer.segment("/v1/sandboxes"), None);
//! ```

use std::sync::Arc;

use axum::body::Body;
use http::{Request, Response, StatusCode};

use super::guard::{Guard, GuardLayer, GuardService};
use super::{error_response, refuse};
use crate::Enforcer;

/// Validates the sandbox ID in the path; see the [module docs](self).
pub type SandboxIdLayer = GuardLayer<SandboxIdGuard>;

/// The service made by [`SandboxIdLayer`].
pub type SandboxIdCheck<S> = GuardService<SandboxIdGuard, S>;

/// The decision of a [`SandboxIdLayer`].
#[derive(Debug, Clone)]
pub struct SandboxIdGuard {
    prefix: Arc<str>,
    enforcer: Arc<Enforcer>,
}

impl SandboxIdLayer {
    /// IDs follow `prefix` (which should end with `/`), checked by the `enforcer`'s policy.
    pub fn new(prefix: impl Into<Arc<str>>, enforcer: Arc<Enforcer>) -> Self {
        Self::with(SandboxIdGuard { prefix: prefix.into(), enforcer })
    }

    /// The ID segment of `path`, if the path has one.
    pub fn segment<'p>(&self, path: &'p str) -> Option<&'p str> {
        self.guard().segment(path)
    }
}

impl SandboxIdGuard {
    fn segment<'p>(&self, path: &'p str) -> Option<&'p str> {
        let rest = path.strip_prefix(&*self.prefix)?;
        let segment = rest.split('/').next()?;
        (!segment.is_empty()).then_some(segment)
    }
}

impl Guard for SandboxIdGuard {
    fn check<B>(&self, request: &mut Request<B>) -> Result<(), Response<Body>> {
        let Some(segment) = self.segment(request.uri().path()) else { return Ok(()) };
        match self.enforcer.policy().ids().check(segment) {
            Ok(id) => {
                request.extensions_mut().insert(id);
                Ok(())
            }
            Err(error) => {
                let message = error.to_string();
                let refusal = error_response(StatusCode::BAD_REQUEST, error.code(), &message);
                Err(refuse(&self.enforcer, request, "request.sandbox_id", error.code(), &message, refusal))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tower::Layer;

    use super::*;
    use crate::middleware::test_support::{Harness, as_actor};
    use sandguard_policy::SandboxId;

    #[test]
    fn invalid_and_reserved_ids_are_400_with_the_guards_code() {
        let harness = Harness::new();
        let mut service = SandboxIdLayer::new("/v1/sandboxes/", harness.enforcer()).layer(harness.echo_actor());
        for (path, code) in [
            ("/v1/sandboxes/Box/exec", "INVALID_SANDBOX_ID_CASE"),
            ("/v1/sandboxes/a%2fb", "INVALID_SANDBOX_ID_CHARS"),
            ("/v1/sandboxes/admin", "RESERVED_SANDBOX_ID"),
            ("/v1/sandboxes/-a/files", "INVALID_SANDBOX_ID_HYPHENS"),
        ] {
            let reply = harness.call(&mut service, as_actor("alice", path, 200));
            assert_eq!((reply.status, reply.code.as_deref()), (400, Some(code)), "{path}");
            let event = harness.last_event();
            assert_eq!((event.actor.as_str(), event.reason.as_ref().map(|r| r.code.as_str())), ("alice", Some(code)));
        }
        let events = harness.sink.events().len();
        for path in ["/v1/sandboxes", "/v1/sandboxes/", "/openapi.json", "/v1/sandboxes/box-1/exec"] {
            assert_eq!(harness.call(&mut service, as_actor("alice", path, 200)).status, 200, "{path}");
        }
        assert_eq!(harness.sink.events().len(), events, "passing requests are not recorded here");
    }

    #[test]
    fn the_parsed_id_reaches_the_inner_service() {
        let harness = Harness::new();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let record = std::sync::Arc::clone(&seen);
        let inner = tower::service_fn(move |request: Request<()>| {
            *record.lock().unwrap() = request.extensions().get::<SandboxId>().cloned();
            std::future::ready(Ok::<_, std::convert::Infallible>(Response::new(Body::empty())))
        });
        let mut service = SandboxIdLayer::new("/v1/sandboxes/", harness.enforcer()).layer(inner);
        harness.call(&mut service, as_actor("alice", "/v1/sandboxes/box-1/files", 200));
        assert_eq!(seen.lock().unwrap().as_ref().map(SandboxId::as_str), Some("box-1"));
    }
}
