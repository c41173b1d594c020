//! The isolation suite: each promise of the executor, proved against the real kernel.
//!
//! These tests need root (user namespaces with a subordinate id range, cgroups); CI runs them
//! as root. A test whose failure could harm the machine (fork bomb) runs inside a cgroup of its
//! own with a hard pids limit, so a bug fails the test rather than the machine.

use std::ffi::OsString;
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sandguard::exec::cgroup::{Cgroup, CgroupLimits};
use sandguard::exec::{Command, Output, Sandbox, SandboxConfig};
use sandguard::policy::ResourceLimits;

fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn limits() -> ResourceLimits {
    ResourceLimits {
        timeout: Duration::from_secs(20),
        memory: 256 << 20,
        pids: 64,
        disk: 64 << 20,
        ..ResourceLimits::default()
    }
}

fn sandbox() -> Sandbox {
    sandbox_with(limits())
}

fn sandbox_with(limits: ResourceLimits) -> Sandbox {
    Sandbox::create(&SandboxConfig::new(unique("iso"), limits)).expect("sandbox starts")
}

fn sh(sandbox: &Sandbox, script: &str) -> Output {
    let command = Command::new(["/bin/sh", "-c", script], &limits());
    sandbox.exec(&command).expect("command runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_command_runs_and_its_status_and_output_come_back() {
    let sandbox = sandbox();
    let output = sh(&sandbox, "echo out; echo err >&2; exit 7");
    assert_eq!(output.exit_code, Some(7));
    assert_eq!(stdout(&output), "out\n");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "err\n");
    assert!(!output.timed_out);
    let python = sandbox.exec(&Command::new(["python3", "-c", "print(6*7)"], &limits())).expect("python runs");
    assert_eq!(stdout(&python), "42\n", "stderr: {}", String::from_utf8_lossy(&python.stderr));
}

#[test]
fn two_sandboxes_share_nothing() {
    let first = sandbox();
    let second = sandbox();
    assert_eq!(sh(&first, "echo secret > /workspace/mine && sleep 30 & echo started").exit_code, Some(0));
    let seen = sh(&second, "ls -A /workspace; ls /proc | grep -c '^[0-9]'");
    assert!(!stdout(&seen).contains("mine"), "{}", stdout(&seen));
    let processes: u32 = stdout(&seen).lines().last().and_then(|n| n.trim().parse().ok()).expect("a count");
    assert!(processes <= 4, "the second sandbox sees {processes} processes: only its own init and command");
}

#[test]
fn no_host_files_processes_or_environment() {
    let marker = unique("host-secret");
    let in_root = Path::new("/root").join(&marker);
    let in_tmp = Path::new("/tmp").join(&marker);
    std::fs::write(&in_root, "TOP-SECRET").expect("write in /root");
    std::fs::write(&in_tmp, "TOP-SECRET").expect("write in /tmp");
    let sandbox = sandbox();
    let script = format!(
        "cat /root/{marker} /tmp/{marker} 2>&1; ls /proc | grep -c '^[0-9]'; env; test -e /etc/shadow && echo SHADOW"
    );
    let output = sh(&sandbox, &script);
    let text = stdout(&output);
    let _ = std::fs::remove_file(&in_root);
    let _ = std::fs::remove_file(&in_tmp);
    assert!(!text.contains("TOP-SECRET"), "{text}");
    assert!(!text.contains("SHADOW"), "/etc/shadow is not in the sandbox");
    assert!(!text.contains("CARGO"), "no host environment variable passes: {text}");
    let host_pid = std::process::id().to_string();
    let proc_list = sh(&sandbox, "ls /proc");
    assert!(!stdout(&proc_list).lines().any(|line| line == host_pid), "the test process is invisible");
}

#[test]
fn own_hostname_and_no_network_but_loopback() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("host listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let sandbox = sandbox();
    let output = sandbox
        .exec(&Command::new(
            [
                "/bin/bash",
                "-c",
                &format!(
                    "cat /proc/sys/kernel/hostname; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; \
                     (echo hi > /dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo CONNECTED || echo refused"
                ),
            ],
            &limits(),
        ))
        .expect("bash runs");
    let text = stdout(&output);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(sandbox.name()), "own hostname: {text}");
    let interfaces: Vec<&str> = lines.by_ref().take_while(|line| *line != "refused" && *line != "CONNECTED").collect();
    assert_eq!(interfaces, ["lo"], "only loopback exists: {text}");
    assert!(text.ends_with("refused\n"), "the host's loopback listener is unreachable: {text}");
    assert!(listener.accept().is_err(), "nothing reached the host listener");
}

#[test]
fn commands_have_no_capabilities_no_new_privs_seccomp_and_default_signals() {
    let sandbox = sandbox();
    let status = stdout(&sh(&sandbox, "cat /proc/self/status"));
    let field = |name: &str| {
        status.lines().find_map(|line| line.strip_prefix(name)).map(str::trim).unwrap_or_default().to_owned()
    };
    assert_eq!(field("CapEff:"), "0000000000000000");
    assert_eq!(field("CapPrm:"), "0000000000000000");
    assert_eq!(field("CapBnd:"), "0000000000000000");
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Seccomp:"), "2");
    // Nothing ignored or blocked is inherited from the host (Rust ignores SIGPIPE) or the init.
    assert_eq!(field("SigIgn:"), "0000000000000000");
    assert_eq!(field("SigBlk:"), "0000000000000000");
}

#[test]
fn privileged_operations_all_fail() {
    let sandbox = sandbox();
    let attempts = [
        ("mount", "mount -t tmpfs none /tmp"),
        ("nested user namespace", "unshare -U true"),
        ("write /usr", "touch /usr/sandguard-probe"),
        ("write /etc", "touch /etc/sandguard-probe"),
        ("write /proc/sys", "echo 1 > /proc/sys/kernel/sysrq"),
        ("sysrq-trigger", "echo h > /proc/sysrq-trigger"),
        ("read kcore", "head -c 1 /proc/kcore > /dev/null"),
        ("dmesg", "dmesg"),
        ("cgroup files", "echo 1 > /sys/fs/cgroup/pids/pids.max"),
        ("/dev/mem", "head -c 1 /dev/mem > /dev/null"),
    ];
    for (what, script) in attempts {
        let output = sh(&sandbox, &format!("{script} 2>/dev/null"));
        assert_ne!(output.exit_code, Some(0), "{what} must fail inside the sandbox");
    }
}

#[test]
fn every_mount_but_the_writable_ones_is_read_only_and_nosuid() {
    let sandbox = sandbox();
    // Mount point and options of each mount, as the sandbox sees them.
    let mounts = stdout(&sh(&sandbox, "cut -d' ' -f5,6 /proc/self/mountinfo"));
    let writable = |point: &str| {
        ["/workspace", "/tmp", "/home", "/proc", "/dev/shm", "/dev/pts"].contains(&point)
            || point.strip_prefix("/dev/").is_some_and(|device| !device.contains('/'))
    };
    let mut checked = 0;
    for line in mounts.lines() {
        let (point, options) = line.split_once(' ').expect("point and options");
        let options: Vec<&str> = options.split(',').collect();
        if !writable(point) {
            assert!(options.contains(&"ro") && options.contains(&"nosuid"), "{point}: {options:?}");
            checked += 1;
        }
    }
    assert!(checked >= 3, "/, /usr and /proc/sys at least: {mounts}");
}

#[test]
fn sandbox_processes_run_as_an_unprivileged_host_uid() {
    let sandbox = sandbox();
    let status = std::fs::read_to_string(format!("/proc/{}/status", sandbox.init_pid())).expect("init status");
    let uid: u32 = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next()?.parse().ok())
        .expect("uid");
    assert_ne!(uid, 0, "the sandbox's root is not host root");
    assert!(uid >= 0x1000_0000, "the sandbox's root maps into a subordinate range, got {uid}");
}

#[test]
fn the_timeout_kills_background_children_too() {
    let sandbox = sandbox();
    let mut command = Command::new(["/bin/sh", "-c", "sleep 100 & sleep 100"], &limits());
    command.timeout = Duration::from_secs(1);
    let started = Instant::now();
    let output = sandbox.exec(&command).expect("runs");
    assert!(output.timed_out);
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    let left = sh(&sandbox, "for p in /proc/[0-9]*; do cat $p/comm; done");
    assert!(!stdout(&left).contains("sleep"), "no sleep survives the timeout: {}", stdout(&left));
}

#[test]
fn a_memory_bomb_is_killed() {
    let limits = ResourceLimits { memory: 64 << 20, ..limits() };
    let sandbox = sandbox_with(limits);
    let bomb = Command::new(["python3", "-c", "x = bytearray(512 * 1024 * 1024); print('survived')"], &limits);
    let output = sandbox.exec(&bomb).expect("runs");
    assert!(!stdout(&output).contains("survived"));
    assert!(output.signal == Some(9) || output.exit_code != Some(0), "{output:?}");
    let usage = sandbox.usage().expect("usage");
    assert!(usage.memory_peak_bytes <= 64 << 20, "peak {} stays under the limit", usage.memory_peak_bytes);
}

#[test]
fn a_fork_bomb_is_contained_by_the_pids_limit() {
    // The fence: a parent cgroup of the test's own that no bug in the sandbox can exceed.
    let fence_name = unique("fence");
    let fence = Cgroup::create(&fence_name, None, &CgroupLimits { memory_bytes: 512 << 20, pids: 128, cpus: 1.0 })
        .expect("fence cgroup");
    let limits = ResourceLimits { pids: 32, ..limits() };
    let config = SandboxConfig::new(unique("bomb"), limits);
    let sandbox = Sandbox::create_inside(&config, &fence).expect("sandbox inside the fence");
    let mut bomb = Command::new(["/bin/bash", "-c", "bomb() { bomb | bomb & }; bomb; sleep 3"], &limits);
    bomb.timeout = Duration::from_secs(4);
    // Watch the sandbox's process count from the host while the bomb goes off.
    let done = std::sync::atomic::AtomicBool::new(false);
    let most = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut most = 0;
            while !done.load(Ordering::Relaxed) {
                if let Ok(usage) = sandbox.usage() {
                    most = most.max(usage.pids_current);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            most
        });
        let output = sandbox.exec(&bomb);
        done.store(true, Ordering::Relaxed);
        assert!(output.is_ok(), "{output:?}");
        watcher.join().expect("watcher")
    });
    assert!(most > 16, "the bomb really forked (saw at most {most} processes)");
    assert!(most <= 32, "the pids limit held: saw {most} processes");
    sandbox.destroy().expect("destroy");
    fence.remove().expect("fence removed");
}

#[test]
fn disk_writes_are_capped() {
    let limits = ResourceLimits { disk: 8 << 20, ..limits() };
    let sandbox = sandbox_with(limits);
    let output = sh(&sandbox, "head -c 20M /dev/zero > /workspace/big; echo status=$?; du -k /workspace/big | cut -f1");
    let text = stdout(&output);
    assert!(!text.contains("status=0"), "the write fails: {text}");
    let kib: u64 = text.lines().last().and_then(|n| n.trim().parse().ok()).expect("size");
    assert!(kib <= 8 * 1024, "at most the disk limit was written: {kib} KiB");
}

#[test]
fn destroy_leaves_nothing_behind() {
    let sandbox = sandbox();
    let init = sandbox.init_pid();
    assert_eq!(sh(&sandbox, "sleep 60 & echo ok").exit_code, Some(0));
    let cgroups: Vec<std::path::PathBuf> = cgroup_dirs_of(&sandbox);
    assert!(!cgroups.is_empty());
    let mounts_before = mount_count();
    sandbox.destroy().expect("destroy");
    assert!(!Path::new(&format!("/proc/{init}")).exists(), "the init is gone");
    for dir in cgroups {
        assert!(!dir.exists(), "{} removed", dir.display());
    }
    assert_eq!(mount_count(), mounts_before, "no mount was ever made on the host");
}

#[test]
fn a_one_shot_sandbox_runs_its_command_and_leaves_nothing_behind() {
    let name = unique("once");
    let mounts_before = mount_count();
    // The background sleeper outlives the command: ending the sandbox must end it too.
    let command = Command::new(["/bin/sh", "-c", "sleep 60 & echo out; echo err >&2; exit 3"], &limits());
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let run =
        Sandbox::run_once(&SandboxConfig::new(name.clone(), limits()), &command, &mut |stream, chunk| match stream {
            sandguard::exec::Stream::Stdout => stdout.extend_from_slice(chunk),
            sandguard::exec::Stream::Stderr => stderr.extend_from_slice(chunk),
        })
        .expect("sandbox starts");
    let output = run.output.expect("command runs");
    assert_eq!(output.exit_code, Some(3));
    assert_eq!((stdout.as_slice(), stderr.as_slice()), (&b"out\n"[..], &b"err\n"[..]));
    assert!(run.landlock_abi > 0 && run.has_cgroup, "{} {}", run.landlock_abi, run.has_cgroup);
    run.destroyed.expect("destroyed");
    assert!(started.elapsed() < Duration::from_secs(10), "the sleeper did not hold the sandbox up");
    // A cgroup is removed only once no process is left in it: the sleeper is gone too.
    assert_eq!(cgroup_dirs_named(&name), Vec::<std::path::PathBuf>::new());
    assert_eq!(mount_count(), mounts_before, "no mount was ever made on the host");
}

#[test]
fn a_one_shot_sandbox_reports_a_command_that_cannot_start_and_still_goes() {
    let name = unique("once");
    let command = Command::new(["/no/such/program"], &limits());
    let run = Sandbox::run_once(&SandboxConfig::new(name.clone(), limits()), &command, &mut |_, _| {})
        .expect("sandbox starts");
    let error = run.output.expect_err("no such program").to_string();
    assert!(error.contains("/no/such/program") && error.contains("No such file"), "{error}");
    run.destroyed.expect("destroyed");
    assert_eq!(cgroup_dirs_named(&name), Vec::<std::path::PathBuf>::new());
}

#[test]
fn a_one_shot_sandbox_times_out_like_any_other() {
    let name = unique("once");
    let limits = ResourceLimits { timeout: Duration::from_secs(1), ..limits() };
    let command = Command::new(["/bin/sh", "-c", "sleep 100 & sleep 100"], &limits);
    let run =
        Sandbox::run_once(&SandboxConfig::new(name.clone(), limits), &command, &mut |_, _| {}).expect("sandbox starts");
    let output = run.output.expect("command ran");
    assert!(output.timed_out);
    assert!(output.duration < Duration::from_secs(5), "{:?}", output.duration);
    run.destroyed.expect("destroyed");
    assert_eq!(cgroup_dirs_named(&name), Vec::<std::path::PathBuf>::new());
}

#[test]
fn the_init_is_our_child_and_in_the_sandbox_cgroup_once_ready() {
    let sandbox = sandbox();
    let init = sandbox.init_pid();
    // sandguard:allow(path-traversal) -- a PID, a number
    let stat = std::fs::read_to_string(format!("/proc/{init}/stat")).expect("the init's stat");
    let parent: u32 = stat[stat.rfind(')').unwrap() + 1..].split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(parent, std::process::id(), "the init is the creator's child: the monitor that forked it is gone");
    // Joined before `create` returned, so before any command could run.
    // sandguard:allow(path-traversal) -- a PID, a number
    let cgroups = std::fs::read_to_string(format!("/proc/{init}/cgroup")).expect("the init's cgroups");
    let name = format!("sandguard-{}", sandbox.name());
    for controller in ["memory", "pids", "cpu"] {
        let line = cgroups
            .lines()
            .find(|line| line.split(':').nth(1).is_some_and(|list| list.split(',').any(|c| c == controller)));
        // On cgroup v2 the one line is `0::/path`.
        let line = line.or_else(|| cgroups.lines().find(|line| line.starts_with("0::")));
        assert!(line.is_some_and(|line| line.ends_with(&name)), "{controller}: {cgroups}");
    }
}

fn cgroup_dirs_of(sandbox: &Sandbox) -> Vec<std::path::PathBuf> {
    cgroup_dirs_named(sandbox.name())
}

/// Every cgroup directory, in any hierarchy, of the sandbox named `name`.
fn cgroup_dirs_named(name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let name = format!("sandguard-{name}");
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
        let mut stack = vec![hierarchy.path()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    if entry.file_name().to_string_lossy() == name {
                        found.push(entry.path());
                    } else {
                        stack.push(entry.path());
                    }
                }
            }
        }
    }
    found
}

fn mount_count() -> usize {
    let mut text = String::new();
    std::fs::File::open("/proc/self/mountinfo").and_then(|mut f| f.read_to_string(&mut text)).expect("mountinfo");
    text.lines().count()
}

#[test]
fn output_beyond_the_limit_is_dropped_and_flagged() {
    let sandbox = sandbox();
    let mut command = Command::new(["/bin/sh", "-c", "head -c 100000 /dev/zero"], &limits());
    command.output_limit = 1000;
    let output = sandbox.exec(&command).expect("runs");
    assert_eq!(output.stdout.len(), 1000);
    assert!(output.truncated);
    assert_eq!(output.output_bytes, 100_000);
}

#[test]
fn argv_is_passed_without_a_shell() {
    let sandbox = sandbox();
    let args: Vec<OsString> = vec!["printf".into(), "%s|".into(), "$(id)".into(), "a b".into(), "'".into()];
    let output = sandbox.exec(&Command::new(args, &limits())).expect("runs");
    assert_eq!(stdout(&output), "$(id)|a b|'|");
}

#[test]
fn stdin_is_fed_then_closed() {
    let sandbox = sandbox();
    let mut command = Command::new(["cat"], &limits());
    command.timeout = Duration::from_secs(5);
    let empty = sandbox.exec(&command).expect("runs");
    assert!(!empty.timed_out, "with no input, stdin is at EOF at once");
    command.stdin = b"fed through stdin".to_vec();
    let fed = sandbox.exec(&command).expect("runs");
    assert_eq!(stdout(&fed), "fed through stdin");
}

#[test]
fn symlink_and_dotdot_escapes_through_the_file_api_fail() {
    let marker = unique("escape");
    let host_file = Path::new("/tmp").join(&marker);
    std::fs::write(&host_file, "HOST-ONLY").expect("host file");
    let sandbox = sandbox();
    let setup = sh(
        &sandbox,
        &format!(
            "ln -s /tmp/{marker} /workspace/to-host && ln -s / /workspace/root && ln -s ../../../.. /workspace/up"
        ),
    );
    assert_eq!(setup.exit_code, Some(0), "{}", String::from_utf8_lossy(&setup.stderr));
    let files = sandbox.files().expect("file operations");

    // Reading through links and `..` reaches only the sandbox's own files.
    for path in [
        "/workspace/to-host".to_owned(),
        format!("/workspace/root/tmp/{marker}"),
        format!("/workspace/../../tmp/{marker}"),
        format!("/workspace/up/tmp/{marker}"),
    ] {
        let read = files.read(Path::new(&path), 1 << 20);
        assert!(read.as_deref().map_or(true, |bytes| bytes != b"HOST-ONLY"), "{path} reached the host file");
    }
    // Writing through a final-component link is refused; through a directory link it lands inside.
    assert!(files.write(Path::new("/workspace/to-host"), b"OVERWRITTEN", None).is_err());
    files.write(Path::new(&format!("/workspace/root/tmp/{marker}")), b"inside", None).expect("write inside");
    files.write(Path::new(&format!("/workspace/up/../../etc/{marker}")), b"x", None).ok();
    assert_eq!(std::fs::read_to_string(&host_file).expect("host file"), "HOST-ONLY", "the host file is untouched");
    assert!(!Path::new("/etc").join(&marker).exists(), "nothing was created in the host's /etc");
    let inside = sh(&sandbox, &format!("cat /tmp/{marker}; echo; stat -c %U /tmp/{marker}"));
    assert_eq!(stdout(&inside), "inside\nsandbox\n", "the write landed in the sandbox, owned by its user");
    let _ = std::fs::remove_file(&host_file);
}

#[test]
fn a_proxied_network_is_refused_until_the_proxy_exists() {
    let mut config = SandboxConfig::new(unique("proxy"), limits());
    config.network = sandguard::policy::NetworkPolicy::Proxied(sandguard::policy::EgressPolicy::default());
    let refused = Sandbox::create(&config).expect_err("fails closed");
    assert!(refused.to_string().contains("proxy"), "{refused}");
}
