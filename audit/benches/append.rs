//! Throughput of the tamper-evident file log: appending through `AuditLog::record` under
//! each fsync policy, and verifying.
//!
//! Each append sample writes to a fresh file and includes the final `flush`, so the
//! figures are for records made durable (as far as the policy promises), and the disk
//! never holds more than one sample's file.
#![allow(missing_docs, reason = "criterion_group! generates an undocumented public function")]

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sandguard_audit::{AuditLog, ChainKey, FileSink, FileSinkOptions, FsyncPolicy, NewEvent, Outcome, verify};
use serde_json::json;

const KEY: &[u8; 32] = b"bench-key-bench-key-bench-key-32";

/// A typical exec event: about 260 bytes on disk with the chain fields.
fn event(i: u64) -> NewEvent {
    let outcome = if i % 10 == 0 { Outcome::Denied } else { Outcome::Allowed };
    NewEvent::new("alice@example.com", "exec", outcome)
        .sandbox("sbx-7f3a9c")
        .detail("argv", json!(["python3", "main.py", "--fast"]))
        .detail("cwd", "/workspace")
}

fn options(policy: FsyncPolicy, keyed: bool) -> FileSinkOptions {
    let options = FileSinkOptions::new().fsync(policy);
    if keyed { options.key(ChainKey::new(KEY).expect("a 32-byte key")) } else { options }
}

/// Appends `iters` events to a fresh log and flushes; returns the time taken.
fn append_durably(iters: u64, options: FileSinkOptions) -> Duration {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sink = FileSink::open(dir.path().join("audit.jsonl"), options).expect("a new log");
    let log = AuditLog::new(sink);
    let start = Instant::now();
    for i in 0..iters {
        log.record(event(i)).expect("record");
    }
    log.flush().expect("flush");
    start.elapsed()
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(1));
    let group_commit = FsyncPolicy::GroupCommit { max_delay: Duration::from_millis(5) };
    for (name, policy, keyed) in [
        ("group_commit_5ms", group_commit, false),
        ("group_commit_5ms_hmac", group_commit, true),
        ("never", FsyncPolicy::Never, false),
    ] {
        group.bench_function(name, |b| b.iter_custom(|iters| append_durably(iters, options(policy, keyed))));
    }
    group.finish();

    // One disk round trip per record: few samples, or the run takes minutes.
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(1)).sample_size(10);
    group.bench_function("always", |b| {
        b.iter_custom(|iters| append_durably(iters, options(FsyncPolicy::Always, false)))
    });
    group.finish();
}

fn write_log(path: &Path, records: u64, keyed: bool) {
    let log = AuditLog::new(FileSink::open(path, options(FsyncPolicy::Never, keyed)).expect("a new log"));
    for i in 0..records {
        log.record(event(i)).expect("record");
    }
}

fn verify_throughput(c: &mut Criterion) {
    const RECORDS: u64 = 10_000;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(RECORDS));
    for (name, keyed) in [("sha256", false), ("hmac", true)] {
        let path = dir.path().join(format!("{name}.jsonl"));
        write_log(&path, RECORDS, keyed);
        let key = keyed.then_some(&KEY[..]);
        group.bench_function(name, |b| {
            b.iter(|| {
                let report = verify(&path, key).expect("readable");
                assert!(report.is_intact());
                report
            })
        });
    }
    group.finish();
}

criterion_group!(benches, append, verify_throughput);
criterion_main!(benches);
