//! The whole decision path: lockout, rate limit, policy, redaction and a hash-chained audit
//! record written to a file with group-commit fsync.
//!
//! `cargo bench -p sandguard --bench enforcer`; the README's performance table quotes it.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::ffi::OsStr;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sandguard::Enforcer;
use sandguard::audit::{AuditLog, FileSink, FileSinkOptions, FsyncPolicy};
use sandguard::policy::{Action, CommandSpec, ExecRequest, Policy};

fn enforcer_authorize(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options =
        FileSinkOptions::new().fsync(FsyncPolicy::GroupCommit { max_delay: std::time::Duration::from_millis(5) });
    let sink = FileSink::open(dir.path().join("audit.jsonl"), options).expect("audit log opens");
    // No rate limit: the bench measures the decision path, not the quota.
    let policy = Policy::builder().rate_limit(None).build();
    let enforcer = Enforcer::new(policy, AuditLog::new(sink));
    let env = vec![("PYTHONUNBUFFERED".to_owned(), "1".to_owned())];
    let action = Action::Exec(ExecRequest {
        command: CommandSpec::Shell("python3 main.py --input data.csv"),
        cwd: Some(OsStr::new("/workspace/project")),
        env: &env,
        limits: None,
    });
    c.bench_function("enforcer/authorize_exec_audited", |b| {
        b.iter(|| enforcer.authorize(black_box("alice"), None, black_box(&action)).map(|permit| permit.audit_seq()))
    });
    enforcer.audit().flush().expect("flush");
}

criterion_group!(benches, enforcer_authorize);
criterion_main!(benches);
