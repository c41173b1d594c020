//! End-to-end tests of `sandguard run`: the command's exit status passes through, 124 means the
//! timeout fired, 128+N that signal N ended it, 125 that sandguard itself failed or refused.
//! Needs root (a real sandbox per test).

use std::ffi::OsStr;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_sandguard")).arg("run").args(args).output().expect("sandguard runs")
}

fn status(output: &Output) -> i32 {
    output.status.code().expect("exited")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_exit_code_and_both_streams_pass_through() {
    let out = run(["--", "/bin/sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(status(&out), 7, "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
    let ok = run(["--", "python3", "-c", "print(42)"]);
    assert_eq!(status(&ok), 0);
    assert_eq!(text(&ok.stdout), "42\n");
}

#[test]
fn a_fired_timeout_exits_124() {
    let started = Instant::now();
    let out = run(["--timeout", "1s", "--", "/bin/sh", "-c", "sleep 30 & sleep 30"]);
    assert_eq!(status(&out), 124);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[test]
fn death_by_signal_exits_128_plus_the_signal() {
    let out = run(["--", "/bin/sh", "-c", "kill -TERM $$"]);
    assert_eq!(status(&out), 128 + 15);
    let out = run(["--memory", "64MiB", "--", "python3", "-c", "x = bytearray(512 * 1024 * 1024)"]);
    assert_eq!(status(&out), 128 + 9, "the memory bomb is killed: {}", text(&out.stderr));
}

#[test]
fn sandguard_failures_and_refusals_exit_125_with_one_line() {
    for args in [
        vec!["--", "/no/such/program"],
        vec!["--timeout", "1h", "--", "true"],
        vec!["--timeout", "soon", "--", "true"],
        vec!["--workdir", "/etc", "--", "true"],
        vec!["--env", "LD_PRELOAD=/tmp/x.so", "--", "true"],
        vec!["--env", "NOEQUALS", "--", "true"],
    ] {
        let out = run(&args);
        assert_eq!(status(&out), 125, "{args:?}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with("sandguard: "), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    }
}

#[test]
fn no_host_variable_passes_unless_given() {
    let out = Command::new(env!("CARGO_BIN_EXE_sandguard"))
        .args(["run", "--env", "GIVEN=yes", "--", "env"])
        .env("HOST_ONLY_SECRET", "do-not-leak")
        .output()
        .expect("runs");
    assert_eq!(status(&out), 0);
    let env = text(&out.stdout);
    assert!(env.contains("GIVEN=yes"), "{env}");
    assert!(!env.contains("HOST_ONLY_SECRET"), "{env}");
    assert!(!env.contains("do-not-leak"));
}

#[test]
fn workdir_and_audit_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("audit.jsonl");
    let out = run([
        OsStr::new("--workdir"),
        OsStr::new("/tmp"),
        OsStr::new("--audit-log"),
        log.as_os_str(),
        OsStr::new("--"),
        OsStr::new("pwd"),
    ]);
    assert_eq!(status(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "/tmp\n");
    let events = std::fs::read_to_string(&log).expect("audit log");
    let actions: Vec<String> = events
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).expect("JSON")["action"].as_str().unwrap_or("").to_owned()
        })
        .collect();
    // The command is authorized before its sandbox is made: a refused one costs no sandbox.
    assert_eq!(actions, ["exec", "sandbox.create", "exec.result", "sandbox.destroy"]);
    let verify = Command::new(env!("CARGO_BIN_EXE_sandguard"))
        .args([OsStr::new("audit"), OsStr::new("verify"), log.as_os_str()])
        .output()
        .expect("verify runs");
    assert_eq!(status(&verify), 0, "{}", text(&verify.stdout));
}

/// `sandguard run` is single-threaded when it makes its sandbox, so its init is forked straight
/// into the namespaces, where a service (many threads) goes through a monitor, which the
/// library's isolation suite covers: this is that suite's gist, through the other door.
#[test]
fn the_sandbox_of_run_is_isolated_like_any_other() {
    let secret = tempfile::Builder::new().prefix("sandguard-run-secret").tempfile_in("/root").expect("file in /root");
    let script = format!(
        "echo pid $$; hostname; cat /proc/self/uid_map; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp|SigIgn):' \
         /proc/self/status; ls /sys/class/net 2>/dev/null || cat /proc/net/dev; test -e {} && echo host-file-visible; \
         touch /usr/probe 2>/dev/null && echo usr-writable; echo processes $(ls /proc | grep -c '^[0-9]')",
        secret.path().display()
    );
    let out = run(["--", "/bin/sh", "-c", script.as_str()]);
    assert_eq!(status(&out), 0, "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    // Its own PID namespace: PID 1 is the init, 2 went to the init's short-lived network thread.
    assert_eq!(lines[0], "pid 3", "{stdout}");
    assert!(lines[1].starts_with("run-"), "its own host name: {stdout}");
    let map: Vec<u64> = lines[2].split_whitespace().map(|n| n.parse().expect("uid map")).collect();
    assert_eq!(map[0], 0);
    assert!(map[1] > 0, "root inside is not root outside: {stdout}");
    for (field, value) in
        [("CapEff", "0000000000000000"), ("CapBnd", "0000000000000000"), ("NoNewPrivs", "1"), ("Seccomp", "2")]
    {
        assert!(lines.iter().any(|line| line.starts_with(field) && line.ends_with(value)), "{field}: {stdout}");
    }
    assert!(lines.iter().any(|line| line.starts_with("SigIgn") && line.ends_with("0000000000000000")), "{stdout}");
    assert!(!stdout.contains("host-file-visible") && !stdout.contains("usr-writable"), "{stdout}");
    assert!(!lines.iter().any(|line| line.starts_with("eth") || line.contains("eth0:")), "only loopback: {stdout}");
    // The init, the shell, its subshell, `ls` and `grep`: no host process is visible.
    let processes: usize =
        lines.last().and_then(|line| line.strip_prefix("processes ")).expect("count").parse().expect("n");
    assert!(processes <= 5, "{stdout}");
}
