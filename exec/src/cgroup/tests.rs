//! Tests of the cgroup layer: argument validation, v1 and v2 against fake trees in a temporary
//! directory, and, as root, the real kernel (limits enforced, kill, removal).

use std::io::{Read as _, Write as _};
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

const MIB: u64 = 1 << 20;

/// A cgroup name no other test (or test run) uses.
fn unique(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!("sgtest-{}-{tag}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn limits(memory_bytes: u64, pids: u32, cpus: f64) -> CgroupLimits {
    CgroupLimits { memory_bytes, pids, cpus }
}

fn read(dir: &Path, file: &str) -> String {
    // sandguard:allow(path-traversal) -- the joined name is a constant or our own, never a user's
    fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
}

#[test]
fn names_must_be_one_plain_component() {
    for (name, reason) in [
        ("", "empty"),
        (".", "`.`"),
        ("..", "`..`"),
        ("a/b", "`/`"),
        ("/", "`/`"),
        ("../x", "`/`"),
        ("a\0b", "control"),
        ("a\nb", "control"),
    ] {
        let error = validate_name(name).unwrap_err();
        assert!(matches!(&error, CgroupError::InvalidName { .. }), "{name:?}: {error}");
        assert!(error.to_string().contains(reason), "{name:?}: {error}");
    }
    assert!(validate_name(&"x".repeat(256)).is_err());
    for name in ["sandbox-1", "a.b", "...", "x".repeat(255).as_str(), "with space", "ünïcode"] {
        validate_name(name).unwrap();
    }
    // Refused before anything is looked up or made.
    let error = Cgroup::create("..", None, &limits(MIB, 1, 1.0)).unwrap_err();
    assert!(matches!(error, CgroupError::InvalidName { .. }), "{error}");
}

#[test]
fn parents_must_be_plain_paths() {
    assert_eq!(parent_cgroup(Path::new("/a/b")).unwrap(), Path::new("/a/b"));
    assert_eq!(parent_cgroup(Path::new("a/b/")).unwrap(), Path::new("/a/b"));
    assert_eq!(parent_cgroup(Path::new("/")).unwrap(), Path::new("/"));
    for parent in ["/a/../..", "..", "a/..", "./a", "/a/./b\0", "/a\n/b"] {
        let error = parent_cgroup(Path::new(parent)).unwrap_err();
        assert!(matches!(error, CgroupError::InvalidParent { .. }), "{parent:?}: {error}");
    }
}

#[test]
fn limits_must_be_enforceable() {
    for bad in [
        limits(0, 1, 1.0),
        limits(MIB, 0, 1.0),
        limits(MIB, 1, 0.0),
        limits(MIB, 1, -1.0),
        limits(MIB, 1, f64::NAN),
        limits(MIB, 1, f64::INFINITY),
        limits(MIB, 1, 1e7),
    ] {
        let error = bad.validate().unwrap_err();
        assert!(matches!(error, CgroupError::InvalidLimit { .. }), "{bad:?}: {error}");
    }
    assert_eq!(limits(MIB, 1, 1.5).cpu_quota_us(), 150_000);
    assert_eq!(limits(MIB, 1, 0.012_34).cpu_quota_us(), 1_234);
    assert_eq!(limits(MIB, 1, 0.000_1).cpu_quota_us(), 1_000);
    assert_eq!(limits(MIB, 1, 64.0).cpu_quota_us(), 6_400_000);
}

#[test]
fn flat_keyed_files_are_read_by_key() {
    let events = "low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n";
    assert_eq!(flat_keyed(events, "oom_kill"), Some("1"));
    assert_eq!(flat_keyed(events, "oom"), Some("2"));
    assert_eq!(flat_keyed(events, "missing"), None);
    assert_eq!(flat_keyed("", "x"), None);
    assert!(parse_pids(Path::new("p"), "1\n22\n\n333\n").unwrap() == [1, 22, 333]);
    assert!(matches!(parse_pids(Path::new("p"), "1\nx\n"), Err(CgroupError::Parse { .. })));
}

// ----- cgroup v2 through its file interface, in a fake tree -----

/// A fake cgroup2 root: a temporary directory with the root cgroup's interface files.
fn fake_v2(controllers: &str, subtree_control: &str) -> (tempfile::TempDir, CgroupRoot) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("cgroup.controllers"), controllers).unwrap();
    fs::write(dir.path().join("cgroup.subtree_control"), subtree_control).unwrap();
    fs::write(dir.path().join("cgroup.procs"), "").unwrap();
    let root = CgroupRoot::v2(dir.path()).with_fake_files();
    (dir, root)
}

#[test]
fn v2_writes_limits_and_enables_controllers() {
    let (tree, root) = fake_v2("cpuset cpu io memory hugetlb pids rdma misc\n", "\n");
    assert_eq!(root.version(), CgroupVersion::V2);
    let cgroup = Cgroup::create_in(&root, "box", None, &limits(64 * MIB, 16, 1.5)).unwrap();
    let dir = tree.path().join("box");
    assert_eq!(cgroup.paths(), std::slice::from_ref(&dir));
    assert_eq!(cgroup.version(), CgroupVersion::V2);
    assert_eq!(read(tree.path(), "cgroup.subtree_control"), "+memory +pids +cpu");
    assert_eq!(read(&dir, "memory.max"), "67108864");
    assert_eq!(read(&dir, "memory.swap.max"), "0");
    assert_eq!(read(&dir, "memory.oom_group"), "1");
    assert_eq!(read(&dir, "pids.max"), "16");
    assert_eq!(read(&dir, "cpu.max"), "150000 100000");

    cgroup.add_pid(424_242).unwrap();
    assert_eq!(read(&dir, "cgroup.procs"), "424242");
    assert_eq!(cgroup.pids().unwrap(), [424_242]);
    // Nothing real is in a fake tree: empty it so that removal does not wait for that pid.
    fs::write(dir.join("cgroup.procs"), "").unwrap();

    fs::write(dir.join("memory.current"), "1234\n").unwrap();
    fs::write(dir.join("memory.peak"), "5678\n").unwrap();
    fs::write(dir.join("memory.events"), "low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\noom_group_kill 1\n").unwrap();
    fs::write(dir.join("cpu.stat"), "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n").unwrap();
    fs::write(dir.join("pids.current"), "3\n").unwrap();
    let usage = cgroup.usage().unwrap();
    assert_eq!(
        usage,
        CgroupUsage {
            memory_current_bytes: 1234,
            memory_peak_bytes: 5678,
            cpu_usage_ns: 2_500_000,
            pids_current: 3,
            oom_kills: 2
        }
    );
    // Kernels before 5.19 have no memory.peak.
    fs::remove_file(dir.join("memory.peak")).unwrap();
    assert_eq!(cgroup.usage().unwrap().memory_peak_bytes, 1234);

    cgroup.remove().unwrap();
    assert!(!dir.exists());
    assert!(tree.path().exists());
}

#[test]
fn v2_keeps_controllers_already_enabled_and_nests_children() {
    let (tree, root) = fake_v2("memory pids cpu", "cpu memory pids");
    let parent = Cgroup::create_in(&root, "outer", None, &limits(64 * MIB, 16, 2.0)).unwrap();
    assert_eq!(read(tree.path(), "cgroup.subtree_control"), "cpu memory pids");
    let outer = tree.path().join("outer");
    fs::write(outer.join("cgroup.controllers"), "memory pids cpu").unwrap();
    let child = parent.create_child("inner", &limits(32 * MIB, 8, 0.5)).unwrap();
    let inner = outer.join("inner");
    assert_eq!(child.paths(), std::slice::from_ref(&inner));
    assert_eq!(read(&outer, "cgroup.subtree_control"), "+memory +pids +cpu");
    assert_eq!(read(&inner, "cpu.max"), "50000 100000");
    assert_eq!(read(&inner, "pids.max"), "8");
    drop(parent);
    assert!(!outer.exists());
    // The child's own removal finds nothing left to do.
    child.remove().unwrap();
}

#[test]
fn v2_missing_controller_fails_closed_and_leaves_nothing() {
    for (controllers, missing) in
        [("cpu memory", "pids"), ("pids cpu", "memory"), ("memory pids io", "cpu"), ("", "memory")]
    {
        let (tree, root) = fake_v2(controllers, "");
        let error = Cgroup::create_in(&root, "box", None, &limits(64 * MIB, 16, 1.0)).unwrap_err();
        match &error {
            CgroupError::MissingController { controller, version: CgroupVersion::V2, looked_in } => {
                assert_eq!(*controller, missing);
                assert_eq!(looked_in, &tree.path().join("cgroup.controllers"));
            }
            other => panic!("{controllers:?}: expected MissingController, got {other}"),
        }
        assert!(error.to_string().contains(&format!("`{missing}`")), "{error}");
        assert!(!tree.path().join("box").exists());
        assert_eq!(read(tree.path(), "cgroup.subtree_control"), "");
    }
}

#[test]
fn v2_refuses_names_taken_and_parents_outside_the_tree() {
    let (tree, root) = fake_v2("memory pids cpu", "");
    fs::create_dir(tree.path().join("taken")).unwrap();
    fs::write(tree.path().join("taken/keep"), "x").unwrap();
    let error = Cgroup::create_in(&root, "taken", None, &limits(MIB, 1, 1.0)).unwrap_err();
    assert!(matches!(error, CgroupError::AlreadyExists { .. }), "{error}");
    assert!(tree.path().join("taken/keep").exists(), "a cgroup that already existed was touched");

    let error = Cgroup::create_in(&root, "box", Some(Path::new("/../etc")), &limits(MIB, 1, 1.0)).unwrap_err();
    assert!(matches!(error, CgroupError::InvalidParent { .. }), "{error}");
    let error = Cgroup::create_in(&root, "box", Some(Path::new("/absent")), &limits(MIB, 1, 1.0)).unwrap_err();
    assert!(matches!(error, CgroupError::ParentNotFound { .. }), "{error}");

    // A symlink cannot carry the new cgroup out of the hierarchy.
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("cgroup.controllers"), "memory pids cpu").unwrap();
    std::os::unix::fs::symlink(outside.path(), tree.path().join("link")).unwrap();
    let error = Cgroup::create_in(&root, "box", Some(Path::new("/link")), &limits(MIB, 1, 1.0)).unwrap_err();
    assert!(matches!(error, CgroupError::InvalidParent { .. }), "{error}");
    assert!(!outside.path().join("box").exists());

    // A configured parent inside the tree is used.
    fs::create_dir(tree.path().join("sandguard")).unwrap();
    fs::write(tree.path().join("sandguard/cgroup.controllers"), "memory pids cpu").unwrap();
    let cgroup = Cgroup::create_in(&root, "box", Some(Path::new("sandguard")), &limits(MIB, 1, 1.0)).unwrap();
    assert_eq!(cgroup.paths(), [tree.path().join("sandguard/box")]);
}

// ----- cgroup v1 through its file interface, in a fake tree -----

/// A fake v1 host: one directory per mounted controller in a temporary directory (mount points with
/// a space, escaped in mountinfo as the kernel does), this process in `/app` of each.
fn fake_v1(controllers: &[&str]) -> (tempfile::TempDir, CgroupRoot) {
    let dir = tempfile::tempdir().unwrap();
    let mut mountinfo = String::from("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
    let mut proc_cgroup = String::from("0::/\n");
    for (i, controllers) in controllers.iter().enumerate() {
        let mount_point = dir.path().join(format!("v1 {controllers}"));
        fs::create_dir_all(mount_point.join("app")).unwrap();
        let escaped = mount_point.to_str().unwrap().replace(' ', "\\040");
        mountinfo.push_str(&format!("{} 31 0:{} / {escaped} rw - cgroup cgroup rw,{controllers}\n", 40 + i, 40 + i));
        proc_cgroup.push_str(&format!("{}:{controllers}:/app\n", i + 1));
    }
    let root = CgroupRoot::parse(mountinfo.as_bytes(), proc_cgroup.as_bytes()).unwrap().with_fake_files();
    (dir, root)
}

#[test]
fn v1_writes_limits_in_each_hierarchy() {
    let (tree, root) = fake_v1(&["memory", "pids", "cpu,cpuacct", "freezer", "devices"]);
    assert_eq!(root.version(), CgroupVersion::V1);
    let cgroup = Cgroup::create_in(&root, "box", None, &limits(64 * MIB, 16, 1.5)).unwrap();
    let dir = |controllers: &str| tree.path().join(format!("v1 {controllers}/app/box"));
    assert_eq!(cgroup.paths(), [dir("memory"), dir("pids"), dir("cpu,cpuacct"), dir("freezer")]);
    assert_eq!(read(&dir("memory"), "memory.limit_in_bytes"), "67108864");
    assert_eq!(read(&dir("memory"), "memory.memsw.limit_in_bytes"), "67108864");
    assert_eq!(read(&dir("pids"), "pids.max"), "16");
    assert_eq!(read(&dir("cpu,cpuacct"), "cpu.cfs_period_us"), "100000");
    assert_eq!(read(&dir("cpu,cpuacct"), "cpu.cfs_quota_us"), "150000");
    assert!(!tree.path().join("v1 devices/app/box").exists(), "only the controllers sandguard uses");

    cgroup.add_pid(424_242).unwrap();
    for path in cgroup.paths() {
        assert_eq!(read(path, "cgroup.procs"), "424242");
        fs::write(path.join("cgroup.procs"), "").unwrap();
    }
    fs::write(dir("memory").join("memory.usage_in_bytes"), "100\n").unwrap();
    fs::write(dir("memory").join("memory.max_usage_in_bytes"), "200\n").unwrap();
    fs::write(dir("memory").join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n").unwrap();
    fs::write(dir("cpu,cpuacct").join("cpuacct.usage"), "987654321\n").unwrap();
    fs::write(dir("pids").join("pids.current"), "5\n").unwrap();
    assert_eq!(
        cgroup.usage().unwrap(),
        CgroupUsage {
            memory_current_bytes: 100,
            memory_peak_bytes: 200,
            cpu_usage_ns: 987_654_321,
            pids_current: 5,
            oom_kills: 4
        }
    );
    let paths = cgroup.paths().to_vec();
    drop(cgroup);
    assert!(paths.iter().all(|p| !p.exists()));
}

#[test]
fn v1_missing_controller_fails_closed_and_leaves_nothing() {
    for (mounted, missing) in [
        (&["memory", "cpu", "freezer"][..], "pids"),
        (&["pids", "cpu,cpuacct"][..], "memory"),
        (&["memory", "pids"][..], "cpu"),
    ] {
        let (tree, root) = fake_v1(mounted);
        let error = Cgroup::create_in(&root, "box", None, &limits(MIB, 1, 1.0)).unwrap_err();
        assert!(
            matches!(&error, CgroupError::MissingController { controller, version: CgroupVersion::V1, .. } if *controller == missing),
            "{mounted:?}: {error}"
        );
        for controllers in mounted {
            assert!(!tree.path().join(format!("v1 {controllers}/app/box")).exists());
        }
    }
}

#[test]
fn v1_refuses_to_create_above_or_outside_the_hierarchy() {
    let (tree, root) = fake_v1(&["memory", "pids", "cpu"]);
    for parent in ["/app/..", "/../..", "..", "/app/../../x"] {
        let error = Cgroup::create_in(&root, "box", Some(Path::new(parent)), &limits(MIB, 1, 1.0)).unwrap_err();
        assert!(matches!(error, CgroupError::InvalidParent { .. }), "{parent:?}: {error}");
    }
    let error = Cgroup::create_in(&root, "..", None, &limits(MIB, 1, 1.0)).unwrap_err();
    assert!(matches!(error, CgroupError::InvalidName { .. }), "{error}");
    // The parent must exist in every hierarchy.
    fs::create_dir(tree.path().join("v1 memory/only-here")).unwrap();
    let error = Cgroup::create_in(&root, "box", Some(Path::new("/only-here")), &limits(MIB, 1, 1.0)).unwrap_err();
    assert!(matches!(error, CgroupError::ParentNotFound { .. }), "{error}");
    assert!(!tree.path().join("v1 memory/only-here/box").exists());
}

// ----- the real kernel (root) -----

/// Whether this process can create cgroups in this host's own hierarchies; tests of the real kernel
/// are skipped (with a note) where it cannot, e.g. when not run as root.
fn real_cgroups() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipped: needs root to create cgroups");
    }
    root
}

fn gated_shell(script: &str) -> Child {
    // The script waits for "go" on stdin, so it only starts once it is inside the cgroup; if the test
    // fails before, stdin closes and the script exits without running.
    Command::new("sh")
        .arg("-c")
        // sandguard:allow(command-injection) -- a test drives a real shell on purpose, with input it quoted itself
        .arg(format!("IFS= read -r gate || exit 99; [ \"$gate\" = go ] || exit 99; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn start(child: &mut Child) {
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
}

fn pid_of(child: &Child) -> i32 {
    i32::try_from(child.id()).unwrap()
}

/// Waits up to `timeout` for `child` to end.
fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        sleep(Duration::from_millis(10));
    }
}

#[test]
fn real_lifecycle_limits_pids_usage_kill_remove() {
    if !real_cgroups() {
        return;
    }
    let cgroup = Cgroup::create(&unique("life"), None, &limits(64 * MIB, 16, 1.5)).unwrap();
    assert_eq!(cgroup.version(), CgroupRoot::detect().unwrap().version());
    assert!(cgroup.paths().iter().all(|p| p.is_dir()));
    match cgroup.version() {
        CgroupVersion::V1 => {
            let memory = cgroup.dir(Controller::Memory).unwrap();
            assert_eq!(read(memory, "memory.limit_in_bytes").trim(), "67108864");
            if memory.join("memory.memsw.limit_in_bytes").exists() {
                assert_eq!(read(memory, "memory.memsw.limit_in_bytes").trim(), "67108864");
            }
            assert_eq!(read(cgroup.dir(Controller::Pids).unwrap(), "pids.max").trim(), "16");
            let cpu = cgroup.dir(Controller::Cpu).unwrap();
            assert_eq!(read(cpu, "cpu.cfs_period_us").trim(), "100000");
            assert_eq!(read(cpu, "cpu.cfs_quota_us").trim(), "150000");
            assert!(cgroup.dir(Controller::Cpuacct).is_ok(), "cpuacct is mounted here, for usage");
        }
        CgroupVersion::V2 => {
            let dir = &cgroup.paths()[0];
            assert_eq!(read(dir, "memory.max").trim(), "67108864");
            assert_eq!(read(dir, "pids.max").trim(), "16");
            assert_eq!(read(dir, "cpu.max").trim(), "150000 100000");
        }
    }

    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    cgroup.add_pid(pid_of(&child)).unwrap();
    assert_eq!(cgroup.pids().unwrap(), [pid_of(&child)]);
    let usage = cgroup.usage().unwrap();
    assert_eq!(usage.pids_current, 1, "{usage:?}");
    assert_eq!(usage.oom_kills, 0, "{usage:?}");

    cgroup.kill_all().unwrap();
    assert!(cgroup.pids().unwrap().is_empty());
    let status = wait_timeout(&mut child, Duration::from_secs(5)).expect("the child survived kill_all");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");

    let paths = cgroup.paths().to_vec();
    cgroup.remove().unwrap();
    for path in paths {
        assert!(!path.exists(), "{} left behind", path.display());
    }
}

#[test]
fn real_kill_all_does_not_wait_for_the_parent_to_reap() {
    if !real_cgroups() {
        return;
    }
    let cgroup = Cgroup::create(&unique("zombie"), None, &limits(64 * MIB, 16, 1.0)).unwrap();
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    cgroup.add_pid(pid_of(&child)).unwrap();
    let paths = cgroup.paths().to_vec();
    // Removal while the killed child is still an unreaped zombie of this process.
    cgroup.remove().unwrap();
    assert!(paths.iter().all(|p| !p.exists()));
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn real_drop_kills_and_removes() {
    if !real_cgroups() {
        return;
    }
    let cgroup = Cgroup::create(&unique("drop"), None, &limits(64 * MIB, 16, 1.0)).unwrap();
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    cgroup.add_pid(pid_of(&child)).unwrap();
    let paths = cgroup.paths().to_vec();
    drop(cgroup);
    assert!(paths.iter().all(|p| !p.exists()));
    let status = wait_timeout(&mut child, Duration::from_secs(5)).expect("the child survived drop");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

#[test]
fn real_pids_limit_is_enforced() {
    if !real_cgroups() {
        return;
    }
    let cgroup = Cgroup::create(&unique("pids"), None, &limits(256 * MIB, 5, 1.0)).unwrap();
    let mut shell = gated_shell("for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done; wait");
    cgroup.add_pid(pid_of(&shell)).unwrap();
    start(&mut shell);

    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let pids = cgroup.pids().unwrap();
        most = most.max(pids.len());
        assert!(pids.len() <= 5, "{pids:?}");
        assert!(cgroup.usage().unwrap().pids_current <= 5);
        sleep(Duration::from_millis(20));
    }
    assert!(most >= 4, "the shell never started its children: at most {most} processes");
    let events = read(cgroup.dir(Controller::Pids).unwrap(), "pids.events");
    let refused: u64 = flat_keyed(&events, "max").unwrap().parse().unwrap();
    assert!(refused >= 1, "no fork was refused: {events}");

    cgroup.kill_all().unwrap();
    assert!(cgroup.pids().unwrap().is_empty());
    let mut stderr = String::new();
    shell.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(stderr.to_lowercase().contains("fork"), "the shell did not report a fork failure: {stderr:?}");
    shell.wait().unwrap();
    cgroup.remove().unwrap();
}

#[test]
fn real_fork_bomb_is_contained_and_killed() {
    if !real_cgroups() {
        return;
    }
    // The fence: an outer cgroup of this test's own; the bomb runs in a child with a lower limit.
    let fence = Cgroup::create(&unique("fence"), None, &limits(256 * MIB, 64, 1.0)).unwrap();
    let cgroup = fence.create_child("bomb", &limits(128 * MIB, 16, 0.5)).unwrap();
    assert_eq!(read(cgroup.dir(Controller::Pids).unwrap(), "pids.max").trim(), "16");
    let mut shell = gated_shell("bomb() { bomb | bomb & }; bomb; sleep 30");
    cgroup.add_pid(pid_of(&shell)).unwrap();
    start(&mut shell);
    for _ in 0..25 {
        let usage = fence.usage().unwrap();
        assert!(usage.pids_current <= 16, "{usage:?}");
        sleep(Duration::from_millis(20));
    }
    let child_paths = cgroup.paths().to_vec();
    // Killing and removing the fence takes the bomb's cgroup with it.
    fence.remove().unwrap();
    assert!(child_paths.iter().all(|p| !p.exists()));
    assert!(wait_timeout(&mut shell, Duration::from_secs(5)).is_some());
    cgroup.remove().unwrap();
}

#[test]
fn real_memory_limit_is_enforced() {
    if !real_cgroups() {
        return;
    }
    let limit = 32 * MIB;
    let cgroup = Cgroup::create(&unique("memory"), None, &limits(limit, 16, 1.0)).unwrap();
    // The shell itself holds 100 MB read from a pipe, so it is the process the OOM killer picks.
    let mut shell = gated_shell("x=$(head -c 100000000 /dev/zero | tr '\\000' a); echo ${#x}");
    cgroup.add_pid(pid_of(&shell)).unwrap();
    start(&mut shell);
    let status = wait_timeout(&mut shell, Duration::from_secs(30));
    let usage = cgroup.usage().unwrap();
    let status = status.expect("the memory hog was not killed within 30 s");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}, {usage:?}");
    // Every kernel since 4.13 counts OOM kills (v1 `memory.oom_control`, v2 `memory.events`).
    assert!(usage.oom_kills >= 1, "{usage:?}");
    assert!(usage.memory_peak_bytes <= limit, "{usage:?}");
    cgroup.remove().unwrap();
}

#[test]
fn real_refuses_bad_pids_and_taken_names() {
    if !real_cgroups() {
        return;
    }
    let name = unique("taken");
    let cgroup = Cgroup::create(&name, None, &limits(64 * MIB, 16, 1.0)).unwrap();
    for pid in [0, -1, i32::MIN, i32::try_from(std::process::id()).unwrap()] {
        assert!(matches!(cgroup.add_pid(pid), Err(CgroupError::InvalidPid { .. })), "{pid}");
    }
    let error = cgroup.add_pid(i32::MAX).unwrap_err();
    assert!(matches!(error, CgroupError::AddPid { .. }), "{error}");

    let error = Cgroup::create(&name, None, &limits(64 * MIB, 16, 1.0)).unwrap_err();
    assert!(matches!(error, CgroupError::AlreadyExists { .. }), "{error}");
    assert!(cgroup.paths().iter().all(|p| p.is_dir()), "the failed create removed the first one's directories");
    cgroup.remove().unwrap();
}

#[test]
fn real_v2_mount_without_controllers_fails_closed() {
    if !real_cgroups() {
        return;
    }
    // On this kind of hybrid host the cgroup2 mount holds no memory, pids or cpu.
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let cgroup2_only: String =
        mountinfo.lines().filter(|l| l.contains(" - cgroup2 ")).map(|l| format!("{l}\n")).collect();
    let Ok(root) = CgroupRoot::parse(cgroup2_only.as_bytes(), b"0::/\n") else {
        return eprintln!("skipped: no cgroup2 mount");
    };
    let Layout::V2(unified) = &root.layout else { unreachable!("only cgroup2 lines were given") };
    let controllers = fs::read_to_string(unified.mount_point.join("cgroup.controllers")).unwrap();
    if controllers.split_whitespace().any(|c| c == "memory") {
        return eprintln!("skipped: the cgroup2 mount has the memory controller");
    }
    let name = unique("v2");
    let error = Cgroup::create_in(&root, &name, None, &limits(MIB, 1, 1.0)).unwrap_err();
    assert!(
        matches!(error, CgroupError::MissingController { controller: "memory", version: CgroupVersion::V2, .. }),
        "{error}"
    );
    assert!(!unified.mount_point.join(&name).exists());
}

#[test]
fn abandoned_cgroups_go_but_not_a_young_one_a_busy_one_or_another_name() {
    let (tree, root) = fake_v2("memory pids cpu", "memory pids cpu");
    for name in ["sandguard-left", "sandguard-busy", "other-left"] {
        // sandguard:allow(path-traversal) -- names from the list above
        fs::create_dir(tree.path().join(name)).unwrap();
    }
    // In a fake tree, a file stands for what makes the kernel refuse: a process inside.
    fs::write(tree.path().join("sandguard-busy").join("cgroup.procs"), "77\n").unwrap();

    let young = Cgroup::remove_abandoned_in(&root, "sandguard-", None, Duration::from_secs(3600)).unwrap();
    assert_eq!(young, 0, "made just now: left to its owner");
    assert!(tree.path().join("sandguard-left").is_dir());

    let removed = Cgroup::remove_abandoned_in(&root, "sandguard-", None, Duration::ZERO).unwrap();
    assert_eq!(removed, 1);
    assert!(!tree.path().join("sandguard-left").exists());
    assert!(tree.path().join("sandguard-busy").is_dir() && tree.path().join("other-left").is_dir());
}

#[test]
fn real_abandoned_cgroups_go_and_a_busy_one_stays() {
    if !real_cgroups() {
        return;
    }
    // Names of this test's own: a sweep with no age guard must not meet another test's cgroups.
    let prefix = unique("sweep");
    let abandoned = Cgroup::create(&format!("{prefix}-left"), None, &limits(64 * MIB, 16, 1.0)).unwrap();
    let busy = Cgroup::create(&format!("{prefix}-busy"), None, &limits(64 * MIB, 16, 1.0)).unwrap();
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    busy.add_pid(pid_of(&child)).unwrap();
    let (left_dirs, busy_dirs) = (abandoned.paths().to_vec(), busy.paths().to_vec());
    // As if the owner had been killed: nothing removes it.
    std::mem::forget(abandoned);

    let removed = Cgroup::remove_abandoned(&prefix, None, Duration::ZERO).unwrap();
    assert_eq!(removed, left_dirs.len(), "one directory per hierarchy");
    assert!(left_dirs.iter().all(|dir| !dir.exists()));
    assert!(busy_dirs.iter().all(|dir| dir.is_dir()), "a process is inside: the kernel keeps it");

    busy.remove().unwrap();
    wait_timeout(&mut child, Duration::from_secs(5)).expect("the child was killed with its cgroup");
}
