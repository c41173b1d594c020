//! Warm exec: `true` in an existing sandbox, timed end to end (request, fork, hardening,
//! execve, exit, reply). Prints p50 and p99 over many runs; needs root.
//!
//! `cargo bench -p sandguard-exec --bench warm_exec`
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use sandguard_exec::{Command, Sandbox, SandboxConfig};
use sandguard_policy::ResourceLimits;

fn main() {
    // `cargo test --benches` runs this in test mode: one quick round is enough there.
    let runs: usize = if std::env::args().any(|arg| arg == "--bench") { 2000 } else { 20 };
    let limits = ResourceLimits::default();
    let name = format!("bench-{}", std::process::id());
    let sandbox = match Sandbox::create(&SandboxConfig::new(name, limits)) {
        Ok(sandbox) => sandbox,
        Err(error) => {
            eprintln!("warm_exec: cannot create a sandbox here: {error}");
            return;
        }
    };
    let command = Command::new(["/bin/true"], &limits);
    for _ in 0..20 {
        sandbox.exec(&command).expect("warm-up exec");
    }
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            let output = sandbox.exec(&command).expect("exec");
            assert_eq!(output.exit_code, Some(0));
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "warm exec of /bin/true over {runs} runs: p50 {:.3} ms, p99 {:.3} ms (targets: p50 <= 1 ms, p99 <= 5 ms)",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    );
}
