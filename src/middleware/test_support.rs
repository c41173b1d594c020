//! What the layers' unit tests share: an enforcer over a memory sink and a fake clock, an inner
//! service that echoes the actor, and a way to call a service and read its answer.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{HeaderMap, Request, Response, StatusCode};
use sandguard_audit::{AuditLog, MemorySink, SecurityEvent};
use sandguard_policy::{FakeClock, Policy};
use tower::{Service, ServiceExt};

use super::Actor;
use crate::Enforcer;

/// What a service answered.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) code: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

pub(crate) struct Harness {
    pub(crate) sink: Arc<MemorySink>,
    pub(crate) clock: FakeClock,
    enforcer: Arc<Enforcer>,
    runtime: tokio::runtime::Runtime,
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with_policy(Policy::default())
    }

    pub(crate) fn with_policy(policy: Policy) -> Self {
        let sink = Arc::new(MemorySink::new());
        let clock = FakeClock::new(Duration::from_secs(3600));
        let log = AuditLog::new(Arc::clone(&sink));
        let enforcer = Arc::new(Enforcer::builder(policy, log).clock(Arc::new(clock.clone())).build());
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a test runtime");
        Self { sink, clock, enforcer, runtime }
    }

    pub(crate) fn enforcer(&self) -> Arc<Enforcer> {
        Arc::clone(&self.enforcer)
    }

    /// An inner service answering with the actor's name (or `-`), with the status given in the
    /// request's `x-status` header (200 without one).
    pub(crate) fn echo_actor(
        &self,
    ) -> impl Service<Request<()>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone {
        tower::service_fn(|request: Request<()>| async move {
            let status = request
                .headers()
                .get("x-status")
                .and_then(|value| value.to_str().ok()?.parse::<u16>().ok())
                .and_then(|code| StatusCode::from_u16(code).ok())
                .unwrap_or(StatusCode::OK);
            let name = request.extensions().get::<Actor>().map_or("-".to_owned(), |a| a.name().to_owned());
            let mut response = Response::new(Body::from(name));
            *response.status_mut() = status;
            Ok::<_, Infallible>(response)
        })
    }

    pub(crate) fn call<S>(&self, service: &mut S, request: Request<()>) -> Reply
    where
        S: Service<Request<()>, Response = Response<Body>, Error = Infallible>,
    {
        self.runtime.block_on(async {
            let response = service.ready().await.unwrap().call(request).await.unwrap();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            let body = String::from_utf8_lossy(&bytes).into_owned();
            let code = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|json| json["error"]["code"].as_str().map(str::to_owned));
            Reply { status, code, headers, body }
        })
    }

    pub(crate) fn last_event(&self) -> SecurityEvent {
        self.sink.events().pop().expect("an audit event")
    }
}

/// A GET request builder.
pub(crate) fn get(uri: &str) -> http::request::Builder {
    Request::get(uri)
}

/// A request for `uri` made by `actor` (as if authenticated), with the inner status `status`.
pub(crate) fn as_actor(actor: &str, uri: &str, status: u16) -> Request<()> {
    let mut request = Request::get(uri).header("x-status", status.to_string()).body(()).unwrap();
    request.extensions_mut().insert(Actor::new(actor));
    request
}
