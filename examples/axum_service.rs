//! An axum service guarded by sandguard's middleware: bearer tokens, sandbox-ID validation,
//! per-actor rate limit, lockout after repeated refusals, and ownership, all recorded in an
//! audit log. Each user may claim sandbox IDs and then run commands in their own sandboxes only.
//!
//! ```text
//! cargo run --example axum_service -- 127.0.0.1:3001 &
//! curl -X PUT  -H 'Authorization: Bearer alice-example-token-01' localhost:3001/v1/sandboxes/demo-1
//! curl -X POST -H 'Authorization: Bearer alice-example-token-01' localhost:3001/v1/sandboxes/demo-1/run -d 'echo hi'
//! curl -X POST -H 'Authorization: Bearer bob-example-token-0002' localhost:3001/v1/sandboxes/demo-1/run -d 'id'   # 403
//! curl -X POST -H 'Authorization: Bearer alice-example-token-01' localhost:3001/v1/sandboxes/Admin/run -d 'id'    # 400
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::routing::{post, put};
use sandguard::audit::{AuditLog, TracingSink};
use sandguard::middleware::Actor;
use sandguard::middleware::auth::{AuthLayer, BearerTokens};
use sandguard::middleware::lockout::LockoutLayer;
use sandguard::middleware::ownership::{MemoryOwnershipStore, OwnershipLayer, OwnershipStore};
use sandguard::middleware::rate_limit::RateLimitLayer;
use sandguard::middleware::sandbox_id::SandboxIdLayer;
use sandguard::policy::{Lockout, RateLimit, SandboxId, SystemClock};
use sandguard::{Enforcer, Policy, Sandbox};
use tower::ServiceBuilder;

/// Example credentials; a real service reads a keys file with `BearerTokens::from_file`.
const KEYS: &str = "alice alice-example-token-01\nbob bob-example-token-0002\n";

struct App {
    enforcer: Arc<Enforcer>,
    owners: Arc<MemoryOwnershipStore>,
    sandboxes: Mutex<HashMap<SandboxId, Arc<Sandbox>>>,
}

/// `PUT /v1/sandboxes/{id}`: claims the (validated) ID and builds the sandbox. This route sits
/// outside the ownership layer, which would answer 404 for an ID nobody owns yet.
async fn claim(
    State(app): State<Arc<App>>,
    Extension(actor): Extension<Actor>,
    Extension(id): Extension<SandboxId>,
) -> (StatusCode, String) {
    if !app.owners.claim(&id, actor.name()) {
        return (StatusCode::CONFLICT, "taken\n".into());
    }
    let enforcer = Arc::clone(&app.enforcer);
    let sandbox_id = id.clone();
    let name = actor.name().to_owned();
    match tokio::task::spawn_blocking(move || Sandbox::create(enforcer, &name, sandbox_id)).await {
        Ok(Ok(sandbox)) => {
            app.sandboxes.lock().unwrap().insert(id, Arc::new(sandbox));
            (StatusCode::CREATED, "created\n".into())
        }
        Ok(Err(error)) => {
            app.owners.release(&id);
            (StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n"))
        }
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
    }
}

/// `POST /v1/sandboxes/{id}/run`: runs the body as a shell command in the caller's sandbox.
async fn run(
    State(app): State<Arc<App>>,
    Extension(id): Extension<SandboxId>,
    command: String,
) -> (StatusCode, String) {
    let Some(sandbox) = app.sandboxes.lock().unwrap().get(&id).cloned() else {
        return (StatusCode::NOT_FOUND, "no such sandbox\n".into());
    };
    let result = tokio::task::spawn_blocking(move || {
        let request = sandguard::policy::ExecRequest {
            command: sandguard::policy::CommandSpec::Shell(&command),
            cwd: None,
            env: &[],
            limits: None,
        };
        sandbox.exec(&request, &[])
    })
    .await;
    match result {
        Ok(Ok(result)) => (StatusCode::OK, String::from_utf8_lossy(&result.output.stdout).into_owned()),
        Ok(Err(error)) => (StatusCode::FORBIDDEN, format!("{error}\n")),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3001".to_owned());
    let policy = Policy::default();
    let enforcer = Arc::new(Enforcer::new(policy, AuditLog::new(TracingSink)));
    let clock = Arc::new(SystemClock::default());
    let owners = Arc::new(MemoryOwnershipStore::new());
    let app =
        Arc::new(App { enforcer: Arc::clone(&enforcer), owners: Arc::clone(&owners), sandboxes: Mutex::default() });
    let front = ServiceBuilder::new()
        .layer(AuthLayer::new(BearerTokens::parse(KEYS, "example keys".as_ref())?, Arc::clone(&enforcer)))
        .layer(SandboxIdLayer::new("/v1/sandboxes/", Arc::clone(&enforcer)))
        .layer(RateLimitLayer::new(
            RateLimit::new(
                enforcer.policy().rate_limit().unwrap_or(sandguard::policy::Quota::per_second(20)?),
                clock.clone(),
            ),
            Arc::clone(&enforcer),
        ));
    let owned = Router::new().route("/v1/sandboxes/{id}/run", post(run)).layer(
        ServiceBuilder::new()
            .layer(LockoutLayer::new(
                Lockout::new(enforcer.policy().lockout().unwrap_or_default(), clock),
                Arc::clone(&enforcer),
            ))
            .layer(OwnershipLayer::new(owners, Arc::clone(&enforcer))),
    );
    let router = Router::new().route("/v1/sandboxes/{id}", put(claim)).merge(owned).layer(front).with_state(app);
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}
