//! The sandbox service behind `sandguard serve` (feature `serve`): an HTTP/JSON API over guarded
//! [`Sandbox`]es, in the spirit of a hosted sandbox SDK's control plane, on the
//! [`middleware`](crate::middleware).
//!
//! Every request under `/v1` passes, in order: bearer-token authentication (401), the sandbox ID
//! in the path (400 with the guard's code), the actor's rate limit (429), the lockout of the
//! actor on that sandbox after repeated refusals (429), and ownership (403 for another user's
//! sandbox, 404 for an unknown one). Each operation is then authorized by the [`Enforcer`] and
//! recorded, and runs on the blocking thread pool (the executor's calls block). The routes and
//! their JSON are documented by the OpenAPI 3.1 document served at `/openapi.json`
//! ([`OPENAPI`]); a test keeps the two in step.
//!
//! ```no_run
//! use std::sync::Arc;
//! use sandguard::audit::{AuditLog, FileSink, FileSinkOptions};
//! use sandguard::middleware::auth::BearerTokens;
//! use sandguard::service::SandboxService;
//! use sandguard::{Enforcer, Policy};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let audit = AuditLog::new(FileSink::open("audit.jsonl", FileSinkOptions::new())?);
//! let enforcer = Arc::new(Enforcer::new(Policy::default(), audit));
//! let service = Arc::new(SandboxService::new(enforcer));
//! let app = service.router(BearerTokens::from_file("keys".as_ref())?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! service.shutdown()?; // destroys every sandbox, flushes the audit log
//! # Ok(()) }
//! ```

mod handlers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use axum::Router;
use axum::routing::{MethodRouter, delete, get, post, put};
use http::StatusCode;
use sandguard_policy::{Lockout, RateLimit, SandboxId, SystemClock};
use tower::ServiceBuilder;

use crate::middleware::auth::{AuthLayer, Authenticator};
use crate::middleware::lockout::LockoutLayer;
use crate::middleware::ownership::{MemoryOwnershipStore, OwnershipLayer, OwnershipStore};
use crate::middleware::rate_limit::RateLimitLayer;
use crate::middleware::sandbox_id::SandboxIdLayer;
use crate::{Enforcer, Process, Sandbox, ShellSession};

/// The OpenAPI 3.1 document of the service, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("service/openapi.json");

/// Every route of the API: method and path (axum syntax). The router is built from this table,
/// and a test checks that it lists exactly the operations of [`OPENAPI`].
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/sandboxes"),
    ("DELETE", "/v1/sandboxes/{id}"),
    ("POST", "/v1/sandboxes/{id}/exec"),
    ("POST", "/v1/sandboxes/{id}/exec/stream"),
    ("POST", "/v1/sandboxes/{id}/sessions"),
    ("DELETE", "/v1/sandboxes/{id}/sessions/{sid}"),
    ("PUT", "/v1/sandboxes/{id}/files"),
    ("GET", "/v1/sandboxes/{id}/files"),
    ("DELETE", "/v1/sandboxes/{id}/files"),
    ("GET", "/v1/sandboxes/{id}/files/list"),
    ("POST", "/v1/sandboxes/{id}/files/mkdir"),
    ("POST", "/v1/sandboxes/{id}/processes"),
    ("GET", "/v1/sandboxes/{id}/processes/{pid}"),
    ("GET", "/v1/sandboxes/{id}/processes/{pid}/logs"),
    ("DELETE", "/v1/sandboxes/{id}/processes/{pid}"),
];

/// The prefix after which the sandbox ID stands in a path.
const SANDBOX_PREFIX: &str = "/v1/sandboxes/";

/// How many sandboxes, sessions and processes the service keeps, so that no user can exhaust
/// the host by asking (each sandbox also has the policy's resource limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceLimits {
    /// Sandboxes one actor may have at once (default 8).
    pub sandboxes_per_actor: usize,
    /// Sandboxes in the whole service (default 64).
    pub sandboxes: usize,
    /// Sessions per sandbox (default 16).
    pub sessions_per_sandbox: usize,
    /// Background processes per sandbox, running or ended but not deleted (default 32).
    pub processes_per_sandbox: usize,
}

impl Default for ServiceLimits {
    fn default() -> Self {
        Self { sandboxes_per_actor: 8, sandboxes: 64, sessions_per_sandbox: 16, processes_per_sandbox: 32 }
    }
}

/// The service's state: the enforcer, who owns which sandbox, and the sandboxes themselves.
#[derive(Debug)]
pub struct SandboxService {
    enforcer: Arc<Enforcer>,
    owners: Arc<MemoryOwnershipStore>,
    sandboxes: Mutex<HashMap<SandboxId, Arc<Hosted>>>,
    limits: ServiceLimits,
}

/// One sandbox and what lives in it. The sandbox is `None` once destroyed; operations hold the
/// read lock while they run, so destroying waits for them (each is bounded by its timeout).
#[derive(Debug)]
struct Hosted {
    owner: String,
    sandbox: RwLock<Option<Sandbox>>,
    sessions: Mutex<HashMap<String, Arc<ShellSession>>>,
    processes: Mutex<HashMap<u64, Arc<Process>>>,
}

impl SandboxService {
    /// A service with no sandboxes yet, under the enforcer's policy and the default limits.
    pub fn new(enforcer: Arc<Enforcer>) -> Self {
        Self::with_limits(enforcer, ServiceLimits::default())
    }

    /// As [`new`](Self::new), with `limits`.
    pub fn with_limits(enforcer: Arc<Enforcer>, limits: ServiceLimits) -> Self {
        Self { enforcer, owners: Arc::new(MemoryOwnershipStore::new()), sandboxes: Mutex::new(HashMap::new()), limits }
    }

    /// The enforcer.
    pub fn enforcer(&self) -> &Arc<Enforcer> {
        &self.enforcer
    }

    /// The API router: every route of [`ROUTES`] behind the middleware (authenticated by
    /// `authenticator`), plus `/openapi.json` (public) and a JSON 404 for anything else.
    ///
    /// # Panics
    /// Never for the built-in [`ROUTES`] (a test builds the router).
    pub fn router<A: Authenticator>(self: &Arc<Self>, authenticator: A) -> Router {
        let enforcer = Arc::clone(&self.enforcer);
        let mut api = Router::new();
        for (method, path) in ROUTES {
            api = api.route(path, handlers::route(method, path, self.enforcer.policy().limits().file_size));
        }
        let policy = enforcer.policy();
        let clock: Arc<dyn sandguard_policy::Clock> = Arc::new(SystemClock::default());
        // The same settings as the enforcer's: the middleware applies them per request (the
        // rate limit) and per actor and sandbox (the lockout), the enforcer per operation.
        let rate_limit = policy
            .rate_limit()
            .map(|quota| RateLimitLayer::new(RateLimit::new(quota, Arc::clone(&clock)), Arc::clone(&enforcer)));
        let lockout =
            policy.lockout().map(|config| LockoutLayer::new(Lockout::new(config, clock), Arc::clone(&enforcer)));
        let layers = ServiceBuilder::new()
            .layer(AuthLayer::new(authenticator, Arc::clone(&enforcer)))
            .layer(SandboxIdLayer::new(SANDBOX_PREFIX, Arc::clone(&enforcer)))
            .option_layer(rate_limit)
            .option_layer(lockout)
            .layer(OwnershipLayer::new(Arc::clone(&self.owners), Arc::clone(&enforcer)));
        api.layer(layers)
            .route("/openapi.json", get(handlers::openapi))
            .fallback(handlers::not_found)
            .with_state(Arc::clone(self))
    }

    /// Destroys every sandbox (closing its sessions and killing its processes) and flushes the
    /// audit log. Blocks until running operations on the sandboxes have ended.
    ///
    /// # Errors
    /// The first failure to destroy a sandbox or to flush the log; every sandbox is attempted.
    pub fn shutdown(&self) -> Result<(), crate::Error> {
        let hosted: Vec<(SandboxId, Arc<Hosted>)> = lock(&self.sandboxes).drain().collect();
        let mut first_error = None;
        for (id, hosted) in hosted {
            self.owners.release(&id);
            if let Err(error) = hosted.destroy() {
                first_error.get_or_insert(error);
            }
        }
        if let Err(error) = self.enforcer.audit().flush() {
            first_error.get_or_insert(error.into());
        }
        first_error.map_or(Ok(()), Err)
    }

    /// How many sandboxes are live.
    pub fn len(&self) -> usize {
        lock(&self.sandboxes).len()
    }

    /// Whether no sandbox is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn hosted(&self, id: &SandboxId) -> Option<Arc<Hosted>> {
        lock(&self.sandboxes).get(id).cloned()
    }
}

impl Hosted {
    fn destroy(&self) -> Result<(), crate::Error> {
        let sandbox = self.sandbox.write().unwrap_or_else(PoisonError::into_inner).take();
        let sessions: Vec<_> = lock(&self.sessions).drain().map(|(_, session)| session).collect();
        lock(&self.processes).clear();
        let Some(sandbox) = sandbox else { return Ok(()) };
        for session in sessions {
            if let Ok(session) = Arc::try_unwrap(session) {
                sandbox.close_session(session)?;
            }
        }
        sandbox.destroy()
    }
}

/// Locks a mutex; a poisoned one still holds a consistent map (each update is one insert or
/// remove), so its contents are used.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An API error: a status and the JSON body `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<std::time::Duration>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let mut response = crate::middleware::error_response(self.status, self.code, &self.message);
        if let Some(wait) = self.retry_after {
            let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            response.headers_mut().insert(http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<crate::Error> for ApiError {
    fn from(error: crate::Error) -> Self {
        use sandguard_policy::Error as Guard;
        let message = match &error {
            crate::Error::Denied(denial) => denial.message(),
            other => other.to_string(),
        };
        let (status, retry_after) = match &error {
            crate::Error::Denied(denial) => match denial.error() {
                Guard::RateLimited(limited) => (StatusCode::TOO_MANY_REQUESTS, Some(limited.retry_after)),
                Guard::Locked(locked) => (StatusCode::TOO_MANY_REQUESTS, Some(locked.retry_after)),
                _ => (denial_status(denial.code()), None),
            },
            crate::Error::Audit(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
            crate::Error::Exec(exec) => (exec_status(exec), None),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
        };
        let code = match &error {
            crate::Error::Exec(sandguard_exec::Error::File(file)) => file.code(),
            crate::Error::Exec(sandguard_exec::Error::Gone) => "SANDBOX_GONE",
            crate::Error::Exec(sandguard_exec::Error::Spawn(_)) => "COMMAND_NOT_STARTED",
            other => other.code(),
        };
        Self { status, code, message, retry_after }
    }
}

/// The status of a policy denial: 403 for what the policy forbids, 413 for too large, 400 for
/// what is malformed.
fn denial_status(code: &str) -> StatusCode {
    match code {
        "FILE_TOO_LARGE" => StatusCode::PAYLOAD_TOO_LARGE,
        "PATH_OUTSIDE_ROOTS"
        | "ENV_NOT_ALLOWED"
        | "SHELL_NOT_ALLOWED"
        | "LIMIT_EXCEEDS_POLICY"
        | "PORT_NOT_ALLOWED"
        | "RESERVED_PORT" => StatusCode::FORBIDDEN,
        code if code.starts_with("EGRESS_") => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn exec_status(error: &sandguard_exec::Error) -> StatusCode {
    match error {
        // What the sandbox's own filesystem refuses is the caller's doing, not the service's.
        sandguard_exec::Error::File(sandguard_exec::files::FileError::Io { source, .. }) => {
            match source.raw_os_error() {
                Some(libc_errno::EROFS | libc_errno::EACCES | libc_errno::EPERM) => StatusCode::FORBIDDEN,
                Some(libc_errno::ENOSPC | libc_errno::EDQUOT | libc_errno::EFBIG) => StatusCode::PAYLOAD_TOO_LARGE,
                Some(libc_errno::ENAMETOOLONG | libc_errno::ELOOP | libc_errno::EINVAL) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            }
        }
        sandguard_exec::Error::File(file) => match file.code() {
            "FILE_NOT_FOUND" => StatusCode::NOT_FOUND,
            "FILE_EXISTS" | "DIRECTORY_NOT_EMPTY" => StatusCode::CONFLICT,
            "SYMLINK_REFUSED" => StatusCode::FORBIDDEN,
            "FILE_TOO_LARGE" | "LIMIT_EXCEEDED" => StatusCode::PAYLOAD_TOO_LARGE,
            "NOT_A_DIRECTORY" | "IS_A_DIRECTORY" | "NOT_A_REGULAR_FILE" | "INVALID_PATH" | "PSEUDO_FILESYSTEM" => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        sandguard_exec::Error::Gone => StatusCode::GONE,
        sandguard_exec::Error::Spawn(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The Linux error numbers the status mapping names (the facade has no `libc` dependency).
mod libc_errno {
    pub(super) const EPERM: i32 = 1;
    pub(super) const EACCES: i32 = 13;
    pub(super) const EINVAL: i32 = 22;
    pub(super) const EFBIG: i32 = 27;
    pub(super) const ENOSPC: i32 = 28;
    pub(super) const EROFS: i32 = 30;
    pub(super) const ENAMETOOLONG: i32 = 36;
    pub(super) const ELOOP: i32 = 40;
    pub(super) const EDQUOT: i32 = 122;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_route_is_documented_and_every_documented_operation_is_routed() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert_eq!(document["openapi"].as_str().map(|v| v.starts_with("3.1")), Some(true));
        let mut documented = BTreeSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                    documented.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        let mut routed: BTreeSet<(String, String)> =
            ROUTES.iter().map(|(method, path)| ((*method).to_owned(), (*path).to_owned())).collect();
        routed.insert(("GET".to_owned(), "/openapi.json".to_owned()));
        assert_eq!(routed, documented);
    }

    #[test]
    fn the_router_builds_from_the_table() {
        use sandguard_audit::{AuditLog, MemorySink};
        let enforcer = Arc::new(Enforcer::new(crate::Policy::default(), AuditLog::new(Arc::new(MemorySink::new()))));
        let service = Arc::new(SandboxService::new(enforcer));
        let _router = service.router(|_: &http::HeaderMap| None);
    }
}
