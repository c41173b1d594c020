//! End-to-end tests of the guarded `sandguard::Sandbox`: every operation is authorized and
//! recorded; denied operations never reach the executor; output is redacted. Needs root.

use std::ffi::OsString;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sandguard::audit::{AuditLog, MemorySink, Outcome, SecurityEvent};
use sandguard::policy::{CommandSpec, ExecRequest, Policy, SandboxId};
use sandguard::{Enforcer, Sandbox};

fn setup(policy_toml: &str) -> (Sandbox, Arc<MemorySink>) {
    let (enforcer, id, sink) = enforcer(policy_toml);
    let sandbox = Sandbox::create(enforcer, "alice", id).expect("sandbox");
    (sandbox, sink)
}

/// An enforcer under `policy_toml` recording into the sink returned, and a fresh sandbox ID.
fn enforcer(policy_toml: &str) -> (Arc<Enforcer>, SandboxId, Arc<MemorySink>) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let sink = Arc::new(MemorySink::new());
    let policy = Policy::from_toml(policy_toml, "test.toml").expect("policy");
    let enforcer = Arc::new(Enforcer::new(policy, AuditLog::new(Arc::clone(&sink))));
    let id = SandboxId::parse(&format!("guarded-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)))
        .expect("valid id");
    (enforcer, id, sink)
}

fn shell(line: &str) -> ExecRequest<'_> {
    ExecRequest { command: CommandSpec::Shell(line), cwd: None, env: &[], limits: None }
}

fn actions(events: &[SecurityEvent]) -> Vec<(String, Outcome)> {
    events.iter().map(|event| (event.action.clone(), event.outcome)).collect()
}

#[test]
fn a_denied_command_never_reaches_the_executor() {
    let (sandbox, sink) = setup("[exec]\nshell = false\n");
    let denied = sandbox.exec(&shell("touch /workspace/ran"), &[]);
    assert_eq!(denied.expect_err("denied").code(), "SHELL_NOT_ALLOWED");
    let argv: Vec<OsString> = vec!["ls".into(), "-A".into(), "/workspace".into()];
    let listing = sandbox
        .exec(&ExecRequest { command: CommandSpec::Argv(&argv), cwd: None, env: &[], limits: None }, &[])
        .expect("argv is allowed");
    assert!(listing.output.stdout.is_empty(), "the denied command did not run: {:?}", listing.output);
    let events = sink.events();
    assert_eq!(
        actions(&events),
        [
            ("sandbox.create".to_owned(), Outcome::Allowed),
            ("exec".to_owned(), Outcome::Denied),
            ("exec".to_owned(), Outcome::Allowed),
            ("exec.result".to_owned(), Outcome::Allowed),
        ]
    );
}

#[test]
fn a_one_shot_run_is_authorized_first_redacted_and_recorded_whole() {
    let (enforcer, id, sink) = enforcer("[exec]\nshell = false\n[redact]\nsecret_env = [\"SERVICE_TOKEN\"]\n");
    let denied = Sandbox::run_once(Arc::clone(&enforcer), "alice", id.clone(), &shell("true"), &[], &mut |_, _| {});
    assert_eq!(denied.expect_err("denied").code(), "SHELL_NOT_ALLOWED");
    assert_eq!(actions(&sink.events()), [("exec".to_owned(), Outcome::Denied)], "a refused command costs no sandbox");

    let env = vec![("SERVICE_TOKEN".to_owned(), "tok-5e0c9a7b31d2f4".to_owned())];
    let argv: Vec<OsString> = vec!["/bin/sh".into(), "-c".into(), "echo token=$SERVICE_TOKEN; exit 4".into()];
    let request = ExecRequest { command: CommandSpec::Argv(&argv), cwd: None, env: &env, limits: None };
    let mut streamed = Vec::new();
    let result = Sandbox::run_once(enforcer, "alice", id, &request, &[], &mut |_, chunk| {
        streamed.extend_from_slice(chunk);
    })
    .expect("runs");
    assert_eq!(result.output.exit_code, Some(4));
    let streamed = String::from_utf8_lossy(&streamed);
    assert!(streamed.starts_with("token=[REDACTED") && !streamed.contains("tok-5e0c9a7b31d2f4"), "{streamed}");
    let events = sink.events();
    assert_eq!(
        actions(&events[1..]),
        [
            ("exec".to_owned(), Outcome::Allowed),
            ("sandbox.create".to_owned(), Outcome::Allowed),
            ("exec.result".to_owned(), Outcome::Allowed),
            ("sandbox.destroy".to_owned(), Outcome::Allowed),
        ]
    );
    assert_eq!(events[3].details["permit_seq"], result.audit_seq);
    assert!(events[3].usage.as_ref().is_some_and(|usage| usage.wall_ms.is_some()));
}

#[test]
fn output_is_redacted_and_usage_recorded() {
    let (sandbox, sink) = setup("[redact]\nsecret_env = [\"SERVICE_TOKEN\"]\n");
    let env = vec![("SERVICE_TOKEN".to_owned(), "tok-93f1c2d8e7a6b5".to_owned())];
    let request = ExecRequest {
        command: CommandSpec::Shell("echo token=$SERVICE_TOKEN; echo key=AKIAZZZZEXAMPLEKEY12"),
        cwd: None,
        env: &env,
        limits: None,
    };
    let result = sandbox.exec(&request, &[]).expect("runs");
    let stdout = String::from_utf8_lossy(&result.output.stdout);
    assert!(!stdout.contains("tok-93f1c2d8e7a6b5"), "{stdout}");
    assert!(!stdout.contains("AKIAZZZZEXAMPLEKEY12"), "{stdout}");
    assert!(stdout.contains("token=[REDACTED"), "{stdout}");
    let events = sink.events();
    let result_event = events.iter().find(|event| event.action == "exec.result").expect("exec.result");
    let usage = result_event.usage.as_ref().expect("usage recorded");
    assert!(usage.wall_ms.is_some());
    assert_eq!(result_event.details["permit_seq"], result.audit_seq);
    let serialized: Vec<String> = events.iter().map(|e| serde_json::to_string(e).expect("json")).collect();
    assert!(!serialized.iter().any(|line| line.contains("tok-93f1c2d8e7a6b5")), "no event carries the secret");
}

#[test]
fn file_operations_pass_the_path_guard_and_land_in_the_sandbox() {
    let (sandbox, _sink) = setup("");
    let outside = sandbox.write_file("/etc/motd".as_ref(), b"x", None);
    assert_eq!(outside.expect_err("outside the roots").code(), "PATH_OUTSIDE_ROOTS");
    let sneaky = sandbox.write_file("/workspace/../etc/motd".as_ref(), b"x", None);
    assert_eq!(sneaky.expect_err("outside the roots").code(), "PATH_OUTSIDE_ROOTS");
    sandbox.write_file("/workspace/hello.txt".as_ref(), b"hello", None).expect("write");
    let seen = sandbox.exec(&shell("cat /workspace/hello.txt"), &[]).expect("runs");
    assert_eq!(seen.output.stdout, b"hello");
    assert_eq!(sandbox.read_file("/workspace/./hello.txt".as_ref()).expect("read"), b"hello");
    let too_big = vec![b'x'; 65 << 20];
    let refused = sandbox.write_file("/workspace/big".as_ref(), &too_big, None);
    assert_eq!(refused.expect_err("over the file size limit").code(), "FILE_TOO_LARGE");
}

#[test]
fn sessions_keep_state_and_every_script_passes_the_policy() {
    let (sandbox, sink) = setup("[exec]\ndeny_env = [\"FORBIDDEN\"]\n");
    let forbidden = [("FORBIDDEN".to_owned(), "1".to_owned())];
    assert_eq!(
        sandbox.create_session("/workspace".as_ref(), &forbidden).expect_err("denied env").code(),
        "ENV_NOT_ALLOWED"
    );
    assert_eq!(sandbox.create_session("/etc".as_ref(), &[]).expect_err("cwd outside").code(), "PATH_OUTSIDE_ROOTS");
    let session = sandbox.create_session("/workspace".as_ref(), &[]).expect("session");
    session.exec("cd /tmp && export GREETING=hello").expect("first call");
    let output = session.exec("echo $GREETING from $(pwd)").expect("second call");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello from /tmp\n");
    let events = sink.events();
    assert_eq!(events.iter().filter(|e| e.action == "exec.result").count(), 2);
}

#[test]
fn background_processes_are_authorized_and_observable() {
    let (sandbox, _sink) = setup("[exec]\nshell = false\n");
    assert_eq!(sandbox.start_process(&shell("sleep 5"), &[]).expect_err("shell refused").code(), "SHELL_NOT_ALLOWED");
    let argv: Vec<OsString> = vec!["/bin/sh".into(), "-c".into(), "echo ready; sleep 30".into()];
    let request = ExecRequest { command: CommandSpec::Argv(&argv), cwd: None, env: &[], limits: None };
    let process = sandbox.start_process(&request, &[]).expect("started");
    process.wait_for_log("ready", None, std::time::Duration::from_secs(5)).expect("ready");
    process.kill(9).expect("kill");
    let status = process.wait(std::time::Duration::from_secs(5)).expect("ended");
    assert_eq!(status.signal, Some(9));
}
