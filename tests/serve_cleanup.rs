//! `sandguard serve` removes, when it starts, the cgroups a killed server left. Its own test
//! binary: cargo runs test binaries one at a time, so no other server (each sweeps the cgroup all
//! of them run in) can remove the directories first. Needs root.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use sandguard::exec::cgroup::{Cgroup, CgroupLimits};

#[test]
fn a_starting_server_removes_the_cgroups_a_killed_one_left() {
    let limits = CgroupLimits { memory_bytes: 64 << 20, pids: 16, cpus: 1.0 };
    let name = format!("sandguard-left-by-a-killed-server-{}", std::process::id());
    let left = Cgroup::create(&name, None, &limits).unwrap();
    let dirs = left.paths().to_vec();
    // Nothing removes it, as when its owner died; and it has been empty for an hour.
    std::mem::forget(left);
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for dir in &dirs {
        std::fs::File::open(dir).unwrap().set_modified(an_hour_ago).unwrap();
    }

    let files = tempfile::tempdir().unwrap();
    let (keys, log) = (files.path().join("keys"), files.path().join("audit.jsonl"));
    std::fs::write(&keys, "alice alice-token-0000000000000001\n").unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_sandguard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--keys"])
        .arg(&keys)
        .arg("--audit-log")
        .arg(&log)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // It listens once it has started, the sweep done.
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on "), "{line:?}");
    let stopped = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(stopped.success());
    assert!(server.wait().unwrap().success());

    assert!(dirs.iter().all(|dir| !dir.exists()), "{dirs:?}");
    let events: Vec<serde_json::Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let cleanup = events.iter().find(|event| event["action"] == "cgroup.cleanup").expect("recorded");
    // At least these: anything else such a server left in this cgroup goes too.
    let removed = cleanup["details"]["abandoned_directories"].as_u64().expect("a count");
    assert!(removed >= dirs.len() as u64, "{cleanup}");
}
