//! Density and leaks: 200 idle sandboxes at once (extra memory, measured two ways), then 1000
//! sandboxes created and destroyed one after another (descriptors, cgroups, processes and mounts
//! counted before and after). Needs root.
//!
//! `cargo bench -p sandguard-exec --bench density`
#![allow(missing_docs)]

use std::time::Instant;

use sandguard_exec::{Command, Sandbox, SandboxConfig};
use sandguard_policy::ResourceLimits;

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let (idle, churn) = if full { (200, 1000) } else { (5, 10) };
    let limits = ResourceLimits { memory: 64 << 20, pids: 32, disk: 16 << 20, ..ResourceLimits::default() };
    let prefix = format!("density-{}", std::process::id());

    let before = Counts::now(&prefix);
    let available_before = mem_available_kib();
    let started = Instant::now();
    let mut sandboxes = Vec::with_capacity(idle);
    for i in 0..idle {
        match Sandbox::create(&SandboxConfig::new(format!("{prefix}-idle-{i}"), limits)) {
            Ok(sandbox) => sandboxes.push(sandbox),
            Err(error) => {
                eprintln!("density: cannot create sandbox {i}: {error}");
                return;
            }
        }
    }
    let created_in = started.elapsed();
    // Every sandbox answers, so none is a shell of one.
    let probe = Command::new(["/bin/true"], &limits);
    for sandbox in &sandboxes {
        assert_eq!(sandbox.exec(&probe).expect("exec").exit_code, Some(0));
    }
    let pss_kib: u64 = sandboxes.iter().map(|s| pss_of_tree(s.init_pid())).sum();
    let available_after = mem_available_kib();
    let extra_kib = available_before.saturating_sub(available_after);
    println!(
        "{idle} idle sandboxes: created in {:.2} s; PSS of their processes {:.1} MiB; MemAvailable dropped {:.1} MiB (target: <= 2048 MiB)",
        created_in.as_secs_f64(),
        pss_kib as f64 / 1024.0,
        extra_kib as f64 / 1024.0
    );
    for sandbox in sandboxes {
        sandbox.destroy().expect("destroy");
    }

    let started = Instant::now();
    for i in 0..churn {
        let sandbox = Sandbox::create(&SandboxConfig::new(format!("{prefix}-churn-{i}"), limits)).expect("create");
        sandbox.destroy().expect("destroy");
    }
    let after = Counts::now(&prefix);
    println!(
        "{churn} sandboxes created and destroyed in {:.2} s; left behind: {} descriptors, {} cgroup directories, {} child processes, {} mounts",
        started.elapsed().as_secs_f64(),
        after.fds.saturating_sub(before.fds),
        after.cgroups,
        after.children,
        after.mounts.saturating_sub(before.mounts),
    );
    assert_eq!(after.fds, before.fds, "descriptors leaked");
    assert_eq!(after.cgroups, 0, "cgroups left behind");
    assert_eq!(after.children, 0, "processes left behind");
    assert_eq!(after.mounts, before.mounts, "mounts left behind");
}

struct Counts {
    fds: usize,
    cgroups: usize,
    children: usize,
    mounts: usize,
}

impl Counts {
    fn now(prefix: &str) -> Self {
        let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").map(|m| m.lines().count()).unwrap_or(0);
        let me = std::process::id().to_string();
        let children = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| {
                std::fs::read_to_string(entry.path().join("stat"))
                    .ok()
                    .and_then(|stat| {
                        stat.rfind(')').map(|i| stat[i + 1..].split_whitespace().nth(1).map(str::to_owned))
                    })
                    .flatten()
                    .is_some_and(|ppid| ppid == me)
            })
            .count();
        let mut cgroups = 0;
        let mut stack: Vec<std::path::PathBuf> = vec!["/sys/fs/cgroup".into()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    if entry.file_name().to_string_lossy().contains(prefix) {
                        cgroups += 1;
                    }
                    stack.push(entry.path());
                }
            }
        }
        Self { fds, cgroups, children, mounts }
    }
}

/// Proportional set size of a sandbox's processes, in KiB: its init (our child, the only one left
/// once the sandbox is set up: the monitor that forked it has exited) and its commands' processes,
/// which an idle sandbox has none of.
fn pss_of_tree(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| line.strip_prefix("Pss:")?.trim().strip_suffix("kB")?.trim().parse().ok())
        })
        .unwrap_or(0u64)
}

fn mem_available_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemAvailable:")?.trim().strip_suffix("kB")?.trim().parse().ok())
        })
        .unwrap_or(0)
}
