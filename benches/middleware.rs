//! Middleware overhead per request: the same axum handler served bare and behind the whole
//! sandguard stack (bearer auth, sandbox-ID check, rate limit, lockout, ownership with an audit
//! record to a hash-chained file), each request driven through `tower::ServiceExt::oneshot`.
//! The difference of the two medians is the overhead; `bench/serve.sh` prints it.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use sandguard::audit::{AuditLog, FileSink, FileSinkOptions};
use sandguard::middleware::auth::{AuthLayer, BearerTokens};
use sandguard::middleware::lockout::LockoutLayer;
use sandguard::middleware::ownership::{MemoryOwnershipStore, OwnershipLayer, OwnershipStore};
use sandguard::middleware::rate_limit::RateLimitLayer;
use sandguard::middleware::sandbox_id::SandboxIdLayer;
use sandguard::policy::{Lockout, LockoutConfig, Quota, RateLimit, SandboxId, SystemClock};
use sandguard::{Enforcer, Policy};
use tower::{ServiceBuilder, ServiceExt};

const TOKEN: &str = "bench-token-0123456789abcdef";

fn request(uri: &str) -> Request<Body> {
    Request::post(uri).header("authorization", format!("Bearer {TOKEN}")).body(Body::empty()).expect("a request")
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = FileSink::open(dir.path().join("audit.jsonl"), FileSinkOptions::new()).expect("audit log");
    let enforcer = Arc::new(Enforcer::new(Policy::default(), AuditLog::new(sink)));
    let clock = Arc::new(SystemClock::default());
    // A quota no benchmark reaches: the check runs, and never refuses.
    let quota = Quota::new(1_000_000_000, Duration::from_secs(1), 1_000_000_000).expect("quota");
    let owners = Arc::new(MemoryOwnershipStore::new());
    let id = SandboxId::parse("sb-bench").expect("id");
    owners.claim(&id, "bench");
    let handler = || async { "ok" };

    let bare: Router = Router::new().route("/v1/sandboxes/{id}/exec", post(handler));
    let layered: Router = Router::new().route("/v1/sandboxes/{id}/exec", post(handler)).layer(
        ServiceBuilder::new()
            .layer(AuthLayer::new(
                BearerTokens::parse(&format!("bench {TOKEN}\nother other-token-0123456789ab\n"), "keys".as_ref())
                    .expect("keys"),
                Arc::clone(&enforcer),
            ))
            .layer(SandboxIdLayer::new("/v1/sandboxes/", Arc::clone(&enforcer)))
            .layer(RateLimitLayer::new(RateLimit::new(quota, clock.clone()), Arc::clone(&enforcer)))
            .layer(LockoutLayer::new(Lockout::new(LockoutConfig::default(), clock), Arc::clone(&enforcer)))
            .layer(OwnershipLayer::new(owners, Arc::clone(&enforcer))),
    );
    let uri = "/v1/sandboxes/sb-bench/exec";
    let check = runtime.block_on(layered.clone().oneshot(request(uri))).expect("response");
    assert_eq!(check.status(), 200, "the layered route must pass");

    let mut group = c.benchmark_group("middleware");
    group.bench_function("bare", |b| {
        b.iter(|| runtime.block_on(bare.clone().oneshot(request(uri))).expect("response"));
    });
    group.bench_function("layered", |b| {
        b.iter(|| runtime.block_on(layered.clone().oneshot(request(uri))).expect("response"));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
