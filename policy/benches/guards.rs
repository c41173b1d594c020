#![allow(missing_docs)] // criterion_group! generates undocumented items
//! Each guard's hot path, and a full `Policy::authorize` of a typical exec.
//!
//! `cargo bench -p sandguard-policy --bench guards`; the README's performance table quotes it.

use std::ffi::{OsStr, OsString};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use sandguard_policy::{
    Action, CommandSpec, EgressPolicy, ExecRequest, IdRules, PathGuard, Policy, Quota, RateLimit, SystemClock, shell,
};

fn sandbox_id(c: &mut Criterion) {
    let rules = IdRules::default();
    c.bench_function("sandbox_id/check", |b| b.iter(|| rules.check(black_box("user-42-k3v9q2m7x8w1z5n4"))));
}

fn quote(c: &mut Criterion) {
    // 64 bytes with a quote in it, so the slow path (quoting and escaping) is what is measured.
    let arg = OsString::from("it's a 64-byte argument with $(danger) and spaces in it, quoted!");
    assert_eq!(arg.len(), 64);
    c.bench_function("shell/quote_64B", |b| b.iter(|| shell::quote(black_box(arg.as_os_str()))));
}

fn path(c: &mut Criterion) {
    let guard = PathGuard::default();
    let path = OsStr::new("/workspace/src/./lib/../main.py");
    c.bench_function("path/check", |b| b.iter(|| guard.check(black_box(path))));
}

fn egress(c: &mut Criterion) {
    let policy = EgressPolicy::new(["https"], ["*.example.com", "pypi.org", "files.pythonhosted.org"], None)
        .expect("valid egress policy");
    let url = "https://files.example.com/packages/sandguard-0.1.0.tar.gz?sha=abc";
    assert!(policy.check_url(url).is_ok());
    c.bench_function("egress/check_url", |b| b.iter(|| policy.check_url(black_box(url))));
}

fn rate_limit(c: &mut Criterion) {
    // A quota no key exhausts during the run, so every check takes the same (allowing) path.
    let quota = Quota::new(1_000_000_000, Duration::from_secs(1), 1_000_000_000).expect("valid quota");
    let limiter = RateLimit::new(quota, Arc::new(SystemClock::default()));
    let keys: Vec<String> = (0..10_000).map(|i| format!("actor-{i}")).collect();
    for key in &keys {
        let _ = limiter.check(key);
    }
    let mut next = 0usize;
    c.bench_function("rate_limit/check_10k_keys", |b| {
        b.iter(|| {
            next = (next + 1) % keys.len();
            limiter.check(black_box(&keys[next]))
        })
    });
}

fn authorize(c: &mut Criterion) {
    let policy = Policy::default();
    let env = vec![("PYTHONUNBUFFERED".to_owned(), "1".to_owned()), ("LANG".to_owned(), "C.UTF-8".to_owned())];
    let request = ExecRequest {
        command: CommandSpec::Shell("python3 main.py --input data.csv"),
        cwd: Some(OsStr::new("/workspace/project")),
        env: &env,
        limits: None,
    };
    let action = Action::Exec(request);
    assert!(policy.authorize(&action).is_ok());
    c.bench_function("policy/authorize_exec", |b| b.iter(|| policy.authorize(black_box(&action))));
}

criterion_group!(guards, sandbox_id, quote, path, egress, rate_limit, authorize);
criterion_main!(guards);
