//! Background processes and sessions, in real sandboxes (run as root, like the isolation suite).

use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sandguard_exec::process::{Condition, Process, ProcessStatus, WaitError};
use sandguard_exec::session::Session;
use sandguard_exec::{Command, Error, Sandbox, SandboxConfig, Stream};
use sandguard_policy::ResourceLimits;

const LONG: Duration = Duration::from_secs(10);
/// The names of the sandbox's processes (there may be no `ps`).
const PROCESSES: &str = "cat /proc/[0-9]*/comm";

fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn limits() -> ResourceLimits {
    ResourceLimits {
        timeout: Duration::from_secs(30),
        memory: 256 << 20,
        pids: 64,
        disk: 64 << 20,
        ..ResourceLimits::default()
    }
}

fn sandbox(prefix: &str) -> Sandbox {
    Sandbox::create(&SandboxConfig::new(unique(prefix), limits())).expect("sandbox starts")
}

fn sh(script: &str) -> Command {
    Command::new(["/bin/sh", "-c", script], &limits())
}

fn start(sandbox: &Sandbox, script: &str) -> Process {
    sandbox.start_process(&sh(script)).expect("process starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn session(sandbox: &Sandbox) -> Session {
    sandbox.create_session(Path::new("/workspace"), &[]).expect("session starts")
}

fn run(session: &Session, script: &str) -> sandguard_exec::Output {
    session.exec(script, LONG).expect("script runs")
}

#[test]
fn handles_are_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Process>();
    shareable::<Session>();
}

#[test]
fn a_process_that_prints_ready_is_running_until_killed() {
    let sandbox = sandbox("proc-ready");
    let process = start(&sandbox, "echo ready; sleep 30");
    process.wait_for_log("ready", Some(Stream::Stdout), LONG).expect("ready is printed");
    assert_eq!(process.status(), ProcessStatus::Running);
    assert!(process.pid() > 1);
    let started = Instant::now();
    process.kill(libc::SIGKILL).expect("kill");
    let status = process.wait(LONG).expect("it ends");
    assert_eq!(status.signal, Some(libc::SIGKILL));
    assert_eq!(status.code, None);
    assert!(!status.timed_out);
    assert!(started.elapsed() < Duration::from_secs(2), "killed promptly: {:?}", started.elapsed());
    assert_eq!(process.status(), ProcessStatus::Exited(status));
    assert_eq!(text(&process.logs().stdout), "ready\n");
    // The whole session went: the `sleep` child too.
    let left = sandbox.exec(&sh(PROCESSES)).expect("ps runs");
    assert!(!text(&left.stdout).contains("sleep"), "{}", text(&left.stdout));
}

#[test]
fn a_log_line_split_across_writes_or_printed_before_the_wait_is_found() {
    let sandbox = sandbox("proc-split");
    let split = start(&sandbox, "printf 'rea'; sleep 0.2; printf 'dy' >&2; sleep 0.2; printf 'dy\\n'; sleep 30");
    // Stdout holds "rea" then "dy": the stream matters, so stderr's "dy" does not complete it early.
    split.wait_for_log("ready", Some(Stream::Stdout), LONG).expect("found across writes");
    assert_eq!(text(&split.logs().stdout), "ready\n");
    let early = start(&sandbox, "echo listening on 1234; sleep 30");
    std::thread::sleep(Duration::from_millis(300));
    early.wait_for_log(b"listening on", None, LONG).expect("already printed counts");
    for process in [split, early] {
        process.kill(libc::SIGTERM).expect("kill");
        assert_eq!(process.wait(LONG).expect("ends").signal, Some(libc::SIGTERM));
    }
}

#[test]
fn waiting_for_a_log_that_never_comes_times_out_or_sees_the_end() {
    let sandbox = sandbox("proc-nolog");
    let quiet = start(&sandbox, "sleep 30");
    let started = Instant::now();
    let error = quiet.wait_for_log("ready", None, Duration::from_millis(200)).expect_err("nothing printed");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(matches!(&error, WaitError::Timeout { condition: Condition::Log { .. }, .. }), "{error}");
    quiet.kill(libc::SIGKILL).expect("kill");
    let finished = start(&sandbox, "echo something else; exit 4");
    match finished.wait_for_log("ready", None, LONG) {
        Err(WaitError::Ended { status, .. }) => assert_eq!(status.code, Some(4)),
        other => panic!("expected the end, got {other:?}"),
    }
}

#[test]
fn a_process_that_exits_by_itself_reports_its_code_and_all_its_output() {
    let sandbox = sandbox("proc-exit");
    let process = start(&sandbox, "echo out; echo err >&2; exit 5");
    let status = process.wait(LONG).expect("it ends");
    assert_eq!(status.code, Some(5));
    assert_eq!(status.signal, None);
    assert!(!status.success());
    let logs = process.logs();
    assert_eq!(text(&logs.stdout), "out\n");
    assert_eq!(text(&logs.stderr), "err\n");
    assert!(!logs.truncated);
    assert_eq!(logs.total_bytes, 8);
    process.kill(libc::SIGKILL).expect("killing an ended process is a no-op");
}

#[test]
fn wait_times_out_with_a_typed_error_and_the_process_keeps_running() {
    let sandbox = sandbox("proc-wait");
    let process = start(&sandbox, "sleep 30");
    let error = process.wait(Duration::from_millis(150)).expect_err("still running");
    assert_eq!(error, WaitError::Timeout { condition: Condition::Exit, waited: Duration::from_millis(150) });
    assert_eq!(error.to_string(), "timed out after 150ms waiting for the process to exit");
    assert_eq!(process.status(), ProcessStatus::Running);
    process.kill(libc::SIGKILL).expect("kill");
    process.wait(LONG).expect("ends");
}

#[test]
fn the_command_timeout_kills_a_background_process_and_its_children() {
    let sandbox = sandbox("proc-timeout");
    let mut command = sh("sleep 100 & sleep 100");
    command.timeout = Duration::from_millis(300);
    let process = sandbox.start_process(&command).expect("starts");
    let status = process.wait(LONG).expect("killed at its timeout");
    assert!(status.timed_out);
    assert_eq!(status.signal, Some(libc::SIGKILL));
    assert!(status.duration >= Duration::from_millis(300) && status.duration < Duration::from_secs(3));
    let left = sandbox.exec(&sh(PROCESSES)).expect("ps runs");
    assert!(!text(&left.stdout).contains("sleep"), "{}", text(&left.stdout));
}

#[test]
fn logs_capture_both_streams_and_keep_only_the_last_bytes() {
    let sandbox = sandbox("proc-logs");
    let mut command = sh("i=0; while [ $i -lt 500 ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); done");
    command.output_limit = 1000;
    let process = sandbox.start_process(&command).expect("starts");
    assert_eq!(process.wait(LONG).expect("ends").code, Some(0));
    let logs = process.logs();
    assert!(logs.truncated);
    assert!(logs.stdout.len() + logs.stderr.len() <= 1000);
    assert!(logs.total_bytes > 5000, "{}", logs.total_bytes);
    // The newest bytes are kept in the order the two pipes were read, so the stream read last
    // ends with its final line (which one that is depends on scheduling).
    assert!(
        text(&logs.stdout).ends_with("out-499\n") || text(&logs.stderr).ends_with("err-499\n"),
        "stdout: {} stderr: {}",
        text(&logs.stdout),
        text(&logs.stderr)
    );
    assert!(!text(&logs.stdout).contains("out-1\n"));
    assert!(!text(&logs.stderr).contains("err-1\n"));
}

#[test]
fn a_chatty_process_never_blocks_on_its_pipes() {
    let sandbox = sandbox("proc-chatty");
    let mut command = sh("head -c 20000000 /dev/zero; echo done >&2");
    command.output_limit = 4096;
    let process = sandbox.start_process(&command).expect("starts");
    process.wait_for_log("done", Some(Stream::Stderr), LONG).expect("it got through 20 MB");
    let status = process.wait(LONG).expect("ends");
    assert_eq!(status.code, Some(0));
    assert_eq!(process.logs().total_bytes, 20_000_005);
}

#[test]
fn a_server_is_found_listening_and_an_unused_port_times_out() {
    let sandbox = sandbox("proc-port");
    let command = Command::new(["python3", "-m", "http.server", "8000", "--bind", "127.0.0.1"], &limits());
    let server = sandbox.start_process(&command).expect("server starts");
    let started = Instant::now();
    server.wait_for_port(8000, LONG).expect("port 8000 listens");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let fetched = sandbox
        .exec(&Command::new(
            ["python3", "-c", "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/').status)"],
            &limits(),
        ))
        .expect("client runs");
    assert_eq!(text(&fetched.stdout), "200\n", "{}", text(&fetched.stderr));
    let error = server.wait_for_port(8001, Duration::from_millis(200)).expect_err("nobody listens on 8001");
    assert_eq!(error, WaitError::Timeout { condition: Condition::Port(8001), waited: Duration::from_millis(200) });
    server.kill(libc::SIGTERM).expect("kill");
    server.wait(LONG).expect("ends");
    // The host's own listeners are not the sandbox's.
    let host = std::net::TcpListener::bind("127.0.0.1:0").expect("host listener");
    let port = host.local_addr().expect("address").port();
    let idle = start(&sandbox, "sleep 30");
    assert!(matches!(idle.wait_for_port(port, Duration::from_millis(100)), Err(WaitError::Timeout { .. })));
    idle.kill(libc::SIGKILL).expect("kill");
}

#[test]
fn a_port_wait_ends_when_the_process_does() {
    let sandbox = sandbox("proc-port-exit");
    let process = start(&sandbox, "exit 3");
    match process.wait_for_port(8000, LONG) {
        Err(WaitError::Ended { condition: Condition::Port(8000), status }) => assert_eq!(status.code, Some(3)),
        other => panic!("expected the end, got {other:?}"),
    }
}

#[test]
fn stdin_can_be_fed_and_closed() {
    let sandbox = sandbox("proc-stdin");
    let mut command = Command::new(["cat"], &limits());
    command.stdin = b"first\n".to_vec();
    let process = sandbox.start_process(&command).expect("starts");
    process.write_stdin(b"second\n").expect("write");
    process.wait_for_log("second\n", Some(Stream::Stdout), LONG).expect("echoed");
    assert_eq!(process.status(), ProcessStatus::Running);
    process.close_stdin();
    assert_eq!(process.wait(LONG).expect("cat ends at end of file").code, Some(0));
    assert_eq!(text(&process.logs().stdout), "first\nsecond\n");
    assert!(process.write_stdin(b"more").is_err());
}

#[test]
fn a_dropped_process_keeps_running_and_the_sandbox_end_is_reported() {
    let sandbox = sandbox("proc-detach");
    drop(start(&sandbox, "sleep 0.3; echo done > /workspace/flag"));
    std::thread::sleep(Duration::from_millis(800));
    let flag = sandbox.exec(&sh("cat /workspace/flag")).expect("cat runs");
    assert_eq!(text(&flag.stdout), "done\n");
    let survivor = start(&sandbox, "sleep 30");
    sandbox.destroy().expect("destroy");
    assert_eq!(survivor.wait(LONG), Err(WaitError::Gone));
    assert_eq!(survivor.status(), ProcessStatus::Gone);
    assert!(matches!(survivor.wait_for_port(80, LONG), Err(WaitError::Gone)));
    survivor.kill(libc::SIGKILL).expect("a no-op");
}

#[test]
fn a_process_that_cannot_start_is_an_error() {
    let sandbox = sandbox("proc-missing");
    let missing = Command::new(["/no/such/program"], &limits());
    assert!(matches!(sandbox.start_process(&missing), Err(Error::Spawn(_))));
    assert!(start(&sandbox, "true").kill(12345).is_err(), "not a signal");
}

#[test]
fn a_session_keeps_its_directory_variables_and_functions() {
    let sandbox = sandbox("sess-state");
    let session = session(&sandbox);
    assert!(session.is_alive());
    assert_eq!(text(&run(&session, "pwd").stdout), "/workspace\n");
    let changed = run(&session, "cd /tmp && export A=1 && B=2 && greet() { echo hello \"$1\"; }");
    assert_eq!(changed.exit_code, Some(0));
    assert!(changed.stdout.is_empty() && changed.stderr.is_empty());
    let seen = run(&session, "pwd; echo $A $B; greet you; sh -c 'echo child sees ${A:-nothing} ${B:-nothing}'");
    assert_eq!(text(&seen.stdout), "/tmp\n1 2\nhello you\nchild sees 1 nothing\n");
    let other = sandbox
        .create_session(Path::new("/home"), &[(OsString::from("GREETING"), OsString::from("hi there"))])
        .expect("second session");
    assert_eq!(text(&run(&other, "pwd; echo \"$GREETING\"; echo ${A:-unset}").stdout), "/home\nhi there\nunset\n");
    assert_eq!(text(&run(&session, "echo ${GREETING:-unset}").stdout), "unset\n");
}

#[test]
fn sessions_share_files() {
    let sandbox = sandbox("sess-files");
    let writer = session(&sandbox);
    let reader = session(&sandbox);
    assert_eq!(run(&writer, "echo shared > /workspace/note").exit_code, Some(0));
    assert_eq!(text(&run(&reader, "cat /workspace/note").stdout), "shared\n");
    let direct = sandbox.exec(&sh("cat /workspace/note")).expect("exec");
    assert_eq!(text(&direct.stdout), "shared\n");
}

#[test]
fn a_session_reports_exit_codes_and_keeps_output_exact() {
    let sandbox = sandbox("sess-codes");
    let session = session(&sandbox);
    let failed = run(&session, "echo partial; echo problem >&2; false");
    assert_eq!(failed.exit_code, Some(1));
    assert_eq!(text(&failed.stdout), "partial\n");
    assert_eq!(text(&failed.stderr), "problem\n");
    assert_eq!(run(&session, "(exit 42)").exit_code, Some(42));
    let no_newline = run(&session, "printf 'no newline'; printf 'at the end' >&2");
    assert_eq!(text(&no_newline.stdout), "no newline");
    assert_eq!(text(&no_newline.stderr), "at the end");
    let quoted = run(&session, "echo 'single' \"double\" it\\'s; echo \"\\$HOME=$HOME\"");
    assert_eq!(text(&quoted.stdout), "single double it's\n$HOME=/home/sandbox\n");
    let newlines = run(&session, "printf '\\n\\n'");
    assert_eq!(text(&newlines.stdout), "\n\n");
    let syntax = run(&session, "echo 'unterminated");
    assert_eq!(syntax.exit_code, Some(2), "{}", text(&syntax.stderr));
    assert!(session.is_alive(), "a syntax error does not end the session");
    assert_eq!(text(&run(&session, "echo still here").stdout), "still here\n");
    assert_eq!(run(&session, "").exit_code, Some(0));
}

#[test]
fn output_that_looks_like_framing_cannot_end_a_call() {
    let sandbox = sandbox("sess-marker");
    let session = session(&sandbox);
    let fake = "printf '\\n%s:0\\n' 0123456789abcdef0123456789abcdef; \
                printf '\\n%s:\\n' 0123456789abcdef0123456789abcdef >&2; \
                printf ':0\\n:\\n'; sleep 0.2; echo after; (exit 9)";
    let output = run(&session, fake);
    assert_eq!(output.exit_code, Some(9));
    assert_eq!(text(&output.stdout), "\n0123456789abcdef0123456789abcdef:0\n:0\n:\nafter\n");
    assert_eq!(text(&output.stderr), "\n0123456789abcdef0123456789abcdef:\n");
}

#[test]
fn a_script_that_reads_stdin_gets_end_of_file_and_cannot_eat_the_framing() {
    let sandbox = sandbox("sess-stdin");
    let session = session(&sandbox);
    let started = Instant::now();
    let output = run(&session, "read line; echo \"read:$line\"; cat; echo done");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(text(&output.stdout), "read:\ndone\n");
    assert_eq!(output.exit_code, Some(0));
    assert_eq!(text(&run(&session, "echo next").stdout), "next\n");
}

#[test]
fn exit_ends_the_session_and_is_reported() {
    let sandbox = sandbox("sess-exit");
    let session = session(&sandbox);
    let output = run(&session, "echo bye; exit 3");
    assert_eq!(output.exit_code, Some(3));
    assert_eq!(text(&output.stdout), "bye\n");
    assert!(!output.timed_out);
    assert!(!session.is_alive());
    let error = session.exec("echo again", LONG).expect_err("the session is over");
    assert!(matches!(&error, Error::Exec(message) if message.contains("exit code 3")), "{error}");
}

#[test]
fn a_timeout_kills_the_session_and_everything_it_started() {
    let sandbox = sandbox("sess-timeout");
    let session = session(&sandbox);
    run(&session, "sleep 100 & echo started");
    let started = Instant::now();
    let output = session.exec("echo before; sleep 30", Duration::from_millis(300)).expect("returns");
    assert!(output.timed_out);
    assert_eq!(output.signal, Some(libc::SIGKILL));
    assert_eq!(output.exit_code, None);
    assert_eq!(text(&output.stdout), "before\n");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(!session.is_alive());
    assert!(session.exec("echo again", LONG).is_err());
    let left = sandbox.exec(&sh(PROCESSES)).expect("ps");
    assert!(!text(&left.stdout).contains("sleep"), "{}", text(&left.stdout));
}

#[test]
fn a_session_timeout_is_capped_by_the_sandbox_limit() {
    let limits = ResourceLimits { timeout: Duration::from_millis(300), ..limits() };
    let sandbox = Sandbox::create(&SandboxConfig::new(unique("sess-cap"), limits)).expect("sandbox");
    let session = sandbox.create_session(Path::new("/workspace"), &[]).expect("session");
    let started = Instant::now();
    let output = session.exec("sleep 30", Duration::from_secs(60)).expect("returns");
    assert!(output.timed_out);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_session_output_is_limited_but_the_call_still_ends() {
    let sandbox = sandbox("sess-limit");
    let session = session(&sandbox);
    let limit = usize::try_from(limits().output).expect("fits");
    let output = run(&session, "head -c 3000000 /dev/zero; echo tail");
    assert_eq!(output.exit_code, Some(0));
    assert!(output.truncated);
    assert_eq!(output.stdout.len(), limit);
    assert_eq!(output.output_bytes, 3_000_005);
    assert_eq!(text(&run(&session, "echo fine").stdout), "fine\n");
}

#[test]
fn closing_a_session_kills_its_shell_and_jobs() {
    let sandbox = sandbox("sess-close");
    let session = session(&sandbox);
    run(&session, "sleep 100 &");
    session.close();
    let left = sandbox.exec(&sh(PROCESSES)).expect("ps");
    assert!(!text(&left.stdout).contains("sleep"), "{}", text(&left.stdout));
    let dropped = self::session(&sandbox);
    run(&dropped, "sleep 200 &");
    drop(dropped);
    std::thread::sleep(Duration::from_millis(100));
    let left = sandbox.exec(&sh(PROCESSES)).expect("ps");
    assert!(!text(&left.stdout).contains("sleep"), "{}", text(&left.stdout));
}

#[test]
fn a_session_in_a_missing_directory_fails_to_start() {
    let sandbox = sandbox("sess-nodir");
    assert!(matches!(sandbox.create_session(Path::new("/nowhere"), &[]), Err(Error::Spawn(_))));
}

#[test]
fn calls_from_several_threads_take_turns() {
    let sandbox = sandbox("sess-threads");
    let session = session(&sandbox);
    std::thread::scope(|scope| {
        for i in 0..4 {
            let session = &session;
            scope.spawn(move || {
                // sandguard:allow(command-injection) -- a test drives a real shell on purpose, with input it quoted itself
                let output = session.exec(&format!("x={i}; sleep 0.05; echo $x"), LONG).expect("runs");
                assert_eq!(text(&output.stdout), format!("{i}\n"));
            });
        }
    });
}
