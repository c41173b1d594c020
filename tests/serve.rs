//! End to end: `sandguard serve` as a real process on loopback, driven by a real HTTP client.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ALICE: &str = "alice-token-0000000000000001";
const BOB: &str = "bob-token-000000000000000002";
const CAROL: &str = "carol-token-00000000000000003";

/// A running `sandguard serve` with its files; killed when dropped.
struct Server {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
    agent: ureq::Agent,
}

/// What the server answered.
struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
}

impl Server {
    fn start() -> Self {
        Self::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::write(&keys, format!("alice {ALICE}\nbob {BOB}\ncarol {CAROL}\n")).unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sandguard"))
            .args(["serve", "--listen", "127.0.0.1:0", "--keys"])
            .arg(&keys)
            .arg("--audit-log")
            .arg(dir.path().join("audit.jsonl"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("no address: {line:?}")).to_owned();
        // A fresh connection per request: a server may close a connection whose request body it
        // refused to read, and a pooled connection can be picked just as that happens.
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Self { child, base, dir, agent }
    }

    fn audit_log(&self) -> PathBuf {
        self.dir.path().join("audit.jsonl")
    }

    fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<&[u8]>, json: bool) -> Reply {
        let uri = format!("{}{path}", self.base);
        let mut request = http::Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if json {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(body.map(<[u8]>::to_vec).unwrap_or_default()).unwrap();
        let mut response = self.agent.run(request).unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.body_mut().with_config().limit(1 << 30).read_to_vec().unwrap();
        Reply { status, headers, body }
    }

    fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.send("POST", path, Some(token), Some(body.to_string().as_bytes()), true)
    }

    fn get(&self, path: &str, token: &str) -> Reply {
        self.send("GET", path, Some(token), None, false)
    }

    fn delete(&self, path: &str, token: &str) -> Reply {
        self.send("DELETE", path, Some(token), None, false)
    }

    fn put(&self, path: &str, token: &str, data: &[u8]) -> Reply {
        self.send("PUT", path, Some(token), Some(data), false)
    }

    fn create_sandbox(&self, token: &str) -> String {
        let reply = self.send("POST", "/v1/sandboxes", Some(token), None, false);
        assert_eq!(reply.status, 201, "{}", reply.text());
        reply.json()["id"].as_str().unwrap().to_owned()
    }

    fn exec(&self, id: &str, token: &str, body: Value) -> Reply {
        self.post(&format!("/v1/sandboxes/{id}/exec"), token, &body)
    }

    fn stdout(&self, id: &str, token: &str, command: &str) -> String {
        let reply = self.exec(id, token, json!({ "command": command }));
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["stdout"].as_str().unwrap().to_owned()
    }

    /// Sends SIGTERM and waits for the exit status.
    fn stop(mut self) -> (std::process::ExitStatus, PathBuf, tempfile::TempDir) {
        let exit = self.terminate().expect("the server stops within 30 s of SIGTERM");
        let log = self.audit_log();
        let dir = tempfile::tempdir().unwrap();
        let kept = std::mem::replace(&mut self.dir, dir);
        (exit, log, kept)
    }
}

impl Server {
    /// SIGTERM, and the exit status once the server has destroyed its sandboxes (`None` after 30 s).
    fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        if let Ok(Some(exit)) = self.child.try_wait() {
            return Some(exit);
        }
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().ok()?;
        if !status.success() {
            return None;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(exit)) = self.child.try_wait() {
                return Some(exit);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    /// Stops the server the way an operator would, so it destroys its sandboxes (a SIGKILLed
    /// server leaves their empty cgroups behind); SIGKILL only if that fails.
    fn drop(&mut self) {
        if self.terminate().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn sandguard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sandguard")).args(args).output().unwrap()
}

/// Whether a `sleep 97` runs anywhere on the host.
fn sleep_97_running() -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|entry| std::fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| cmdline == b"sleep\097\0"))
}

fn events(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[test]
fn requests_without_valid_credentials_are_401() {
    let server = Server::start();
    for token in [None, Some("wrong-token-0000000000000000"), Some("")] {
        let reply = server.send("POST", "/v1/sandboxes", token, None, false);
        assert_eq!((reply.status, reply.code().as_str()), (401, "UNAUTHENTICATED"), "{token:?}");
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
    }
    let reply =
        server.send("GET", "/v1/sandboxes/abc/files?path=/workspace/x", Some("Basic YWxpY2U6eA=="), None, false);
    assert_eq!(reply.status, 401);
    // The document is public.
    let document = server.send("GET", "/openapi.json", None, None, false);
    assert_eq!(document.status, 200);
    assert_eq!(document.json()["openapi"], "3.1.0");
}

#[test]
fn another_users_sandbox_is_403_and_nothing_runs() {
    let server = Server::start();
    let id = server.create_sandbox(ALICE);
    let base = format!("/v1/sandboxes/{id}");
    let attempts = [
        server.exec(&id, BOB, json!({ "command": "touch /workspace/pwned" })),
        server.put(&format!("{base}/files?path=/workspace/pwned"), BOB, b"x"),
        server.get(&format!("{base}/files?path=/workspace/owned"), BOB),
        server.post(&format!("{base}/sessions"), BOB, &json!({ "id": "s" })),
        server.post(&format!("{base}/processes"), BOB, &json!({ "command": "touch /workspace/pwned" })),
    ];
    for reply in &attempts {
        assert_eq!((reply.status, reply.code().as_str()), (403, "NOT_OWNER"), "{}", reply.text());
    }
    // The fifth refusal locked bob out of this sandbox.
    let delete = server.delete(&base, BOB);
    assert_eq!((delete.status, delete.code().as_str()), (429, "LOCKED_OUT"));
    // Nothing ran, nothing was written, and the sandbox is still alice's.
    assert_eq!(server.stdout(&id, ALICE, "ls -A /workspace"), "");
    // Bob's own sandbox is a different one.
    let bobs = server.create_sandbox(BOB);
    assert_ne!(bobs, id);
    assert_eq!(server.exec(&bobs, ALICE, json!({ "command": "true" })).status, 403);
    let (_, log, _dir) = server.stop();
    let denied: Vec<Value> = events(&log)
        .into_iter()
        .filter(|e| e["actor"] == "bob" && e["outcome"] == "denied" && e["sandbox"] == id.as_str())
        .collect();
    assert!(denied.len() >= attempts.len(), "every refusal is recorded: {denied:?}");
}

#[test]
fn malformed_and_reserved_sandbox_ids_are_400_with_the_guards_code() {
    let server = Server::start();
    for (id, code) in [
        ("Sandbox1", "INVALID_SANDBOX_ID_CASE"),
        ("a_b", "INVALID_SANDBOX_ID_CHARS"),
        ("a%20b", "INVALID_SANDBOX_ID_CHARS"),
        ("-abc", "INVALID_SANDBOX_ID_HYPHENS"),
        ("xn--abc", "INVALID_SANDBOX_ID_HYPHENS"),
        ("admin", "RESERVED_SANDBOX_ID"),
        ("www", "RESERVED_SANDBOX_ID"),
        (&"a".repeat(64), "INVALID_SANDBOX_ID_LENGTH"),
    ] {
        let reply = server.exec(id, ALICE, json!({ "command": "true" }));
        assert_eq!((reply.status, reply.code()), (400, code.to_owned()), "{id}");
    }
    // Well-formed but unknown: 404.
    let reply = server.exec("sb-doesnotexist", ALICE, json!({ "command": "true" }));
    assert_eq!((reply.status, reply.code().as_str()), (404, "SANDBOX_NOT_FOUND"));
}

#[test]
fn repeated_forbidden_attempts_are_locked_out_with_429() {
    let server = Server::start();
    let id = server.create_sandbox(ALICE);
    // The default policy locks after 5 refusals in 5 minutes, for 15 minutes.
    for _ in 0..5 {
        assert_eq!(server.exec(&id, CAROL, json!({ "command": "true" })).status, 403);
    }
    let locked = server.exec(&id, CAROL, json!({ "command": "true" }));
    assert_eq!((locked.status, locked.code().as_str()), (429, "LOCKED_OUT"), "{}", locked.text());
    let retry: u64 = locked.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((890..=900).contains(&retry), "{retry}");
    // The owner is not affected, nor is carol elsewhere.
    assert_eq!(server.stdout(&id, ALICE, "echo ok"), "ok\n");
    let carols = server.create_sandbox(CAROL);
    assert_eq!(server.stdout(&carols, CAROL, "echo mine"), "mine\n");
}

#[test]
fn sessions_keep_exported_variables_and_cwd_and_share_files() {
    let server = Server::start();
    let id = server.create_sandbox(ALICE);
    let sessions = format!("/v1/sandboxes/{id}/sessions");
    let created = server.post(&sessions, ALICE, &json!({ "id": "build", "env": { "STAGE": "one" } }));
    assert_eq!((created.status, created.json()["id"].clone()), (201, json!("build")), "{}", created.text());
    assert_eq!(server.post(&sessions, ALICE, &json!({ "id": "build" })).status, 409);
    assert_eq!(server.post(&sessions, ALICE, &json!({ "id": "other", "cwd": "/tmp" })).status, 201);
    assert_eq!(server.post(&sessions, ALICE, &json!({ "id": "bad id" })).code(), "INVALID_SESSION_ID");

    let run = |session: &str, command: &str| {
        let reply = server.exec(&id, ALICE, json!({ "command": command, "session": session }));
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["stdout"].as_str().unwrap().to_owned()
    };
    run("build", "mkdir -p /workspace/src && cd /workspace/src && export GREETING=hello && echo shared > f");
    assert_eq!(run("build", "echo $GREETING $STAGE $(pwd)"), "hello one /workspace/src\n");
    // Another session has its own variables and directory, but the same files.
    assert_eq!(run("other", "echo \"[$GREETING]\" $(pwd); cat /workspace/src/f"), "[] /tmp\nshared\n");
    // A plain exec is not in any session.
    assert_eq!(server.stdout(&id, ALICE, "echo \"[$GREETING]\" $(pwd)"), "[] /workspace\n");
    // Options that belong to the session are refused per call.
    let reply = server.exec(&id, ALICE, json!({ "command": "true", "session": "build", "cwd": "/tmp" }));
    assert_eq!((reply.status, reply.code().as_str()), (400, "SESSION_OPTIONS"));

    assert_eq!(server.delete(&format!("{sessions}/build"), ALICE).status, 204);
    let gone = server.exec(&id, ALICE, json!({ "command": "true", "session": "build" }));
    assert_eq!((gone.status, gone.code().as_str()), (404, "SESSION_NOT_FOUND"));
    assert_eq!(server.delete(&format!("{sessions}/build"), ALICE).status, 404);
}

#[test]
fn timeouts_kill_the_command_and_cannot_exceed_the_policy() {
    let server = Server::start();
    let id = server.create_sandbox(ALICE);
    let started = Instant::now();
    let reply = server.exec(&id, ALICE, json!({ "command": "sleep 30 & sleep 30", "timeout_ms": 300 }));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let result = reply.json();
    assert_eq!(result["timed_out"], true);
    assert!(result["duration_ms"].as_u64().unwrap() < 5_000, "{result}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Nothing of it is left running.
    assert_eq!(server.stdout(&id, ALICE, "ps -e -o comm= | grep -c sleep || true"), "0\n");

    let over = server.exec(&id, ALICE, json!({ "command": "true", "timeout_ms": 3_600_000 }));
    assert_eq!((over.status, over.code().as_str()), (403, "LIMIT_EXCEEDS_POLICY"), "{}", over.text());
    let zero = server.exec(&id, ALICE, json!({ "command": "true", "timeout_ms": 0 }));
    assert_eq!(zero.status, 400);
    // Sessions honour the timeout too.
    assert_eq!(server.post(&format!("/v1/sandboxes/{id}/sessions"), ALICE, &json!({ "id": "s" })).status, 201);
    let reply = server.exec(&id, ALICE, json!({ "command": "sleep 30", "session": "s", "timeout_ms": 300 }));
    assert_eq!(reply.json()["timed_out"], true, "{}", reply.text());
}

#[test]
fn exec_results_env_cwd_and_argv() {
    let server = Server::start();
    let id = server.create_sandbox(ALICE);
    let reply = server.exec(
        &id,
        ALICE,
        json!({ "command": "echo $NAME; pwd; echo err >&2; exit 3", "env": { "NAME": "v a l" }, "cwd": "/tmp" }),
    );
    let result = reply.json();
    assert_eq!((result["exit_code"].clone(), result["stdout"].clone()), (json!(3), json!("v a l\n/tmp\n")));
    assert_eq!((result["stderr"].clone(), result["timed_out"].clone()), (json!("err\n"), json!(false)));
    // An argument vector runs without a shell: `$NAME;` is one literal argument.
    let reply = server.exec(&id, ALICE, json!({ "command": ["/bin/echo", "$NAME;", "x"] }));
    assert_eq!(reply.json()["stdout"], "$NAME; x\n");
    let outside = server.exec(&id, ALICE, json!({ "command": "true", "cwd": "/etc" }));
    assert_eq!((outside.status, outside.code().as_str()), (403, "PATH_OUTSIDE_ROOTS"));
    let misspelt = server.exec(&id, ALICE, json!({ "command": "true", "timeout": 5 }));
    assert_eq!((misspelt.status, misspelt.code().as_str()), (422, "INVALID_BODY"), "{}", misspelt.text());
    let not_json = server.send("POST", &format!("/v1/sandboxes/{id}/exec"), Some(ALICE), Some(b"{"), true);
    assert_eq!((not_json.status, not_json.code().as_str()), (400, "INVALID_BODY"));
}

#[test]
fn exec_streams_output_as_server_sent_events() {
    let server = Server::start();
    let id = server.create_sandbox(ALICE);
    let reply = server.post(
        &format!("/v1/sandboxes/{id}/exec/stream"),
        ALICE,
        &json!({ "command": "echo one; sleep 0.1; echo two >&2; exit 4" }),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "text/event-stream");
    let text = reply.text();
    let events: Vec<(String, Value)> = text
        .split("\n\n")
        .filter_map(|block| {
            let event = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((event.to_owned(), serde_json::from_str(data).unwrap()))
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["stdout", "stderr", "exit"], "{text}");
    assert_eq!(events[0].1["data"], "one\n");
    assert_eq!(events[1].1["data"], "two\n");
    assert_eq!(events[2].1["exit_code"], 4);
    // A refused command is an error status, not a stream.
    let refused =
        server.post(&format!("/v1/sandboxes/{id}/exec/stream"), ALICE, &json!({ "command": "true", "cwd": "/etc" }));
    assert_eq!((refused.status, refused.code().as_str()), (403, "PATH_OUTSIDE_ROOTS"));
}

#[test]
fn files_hold_any_bytes_and_stay_inside_the_roots() {
    let server = Server::start();
    let id = server.create_sandbox(ALICE);
    let files = format!("/v1/sandboxes/{id}/files");
    let bytes: Vec<u8> = (0..=255u8).chain([0, 0, b'\n', 0]).collect();
    assert_eq!(server.put(&format!("{files}?path=/workspace/data.bin"), ALICE, &bytes).status, 204);
    let read = server.get(&format!("{files}?path=/workspace/data.bin"), ALICE);
    assert_eq!((read.status, &read.body), (200, &bytes));
    assert_eq!(server.stdout(&id, ALICE, "wc -c < /workspace/data.bin"), "260\n");
    assert_eq!(server.put(&format!("{files}?path=/workspace/empty"), ALICE, b"").status, 204);

    let mkdir = server.post(&format!("{files}/mkdir"), ALICE, &json!({ "path": "/workspace/a/b", "recursive": true }));
    assert_eq!(mkdir.status, 204, "{}", mkdir.text());
    let list = server.get(&format!("{files}/list?path=/workspace"), ALICE).json();
    let mut names: Vec<(String, String)> = list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["kind"].as_str().unwrap().to_owned()))
        .collect();
    names.sort();
    let expected = [("a", "dir"), ("data.bin", "file"), ("empty", "file")].map(|(n, k)| (n.to_owned(), k.to_owned()));
    assert_eq!(names, expected);

    assert_eq!(server.delete(&format!("{files}?path=/workspace/data.bin"), ALICE).status, 204);
    let missing = server.get(&format!("{files}?path=/workspace/data.bin"), ALICE);
    assert_eq!((missing.status, missing.code().as_str()), (404, "FILE_NOT_FOUND"));
    let not_empty = server.delete(&format!("{files}?path=/workspace/a"), ALICE);
    assert_eq!(not_empty.status, 409, "{}", not_empty.text());
    assert_eq!(server.delete(&format!("{files}?path=/workspace/a&recursive=true"), ALICE).status, 204);

    for (path, status, code) in [
        ("/etc/passwd", 403, "PATH_OUTSIDE_ROOTS"),
        ("/workspace/../etc/passwd", 403, "PATH_OUTSIDE_ROOTS"),
        ("/workspace-evil/x", 403, "PATH_OUTSIDE_ROOTS"),
        ("/workspace/a%00b", 400, "PATH_CONTAINS_NUL"),
        ("workspace/x", 400, "PATH_NOT_ABSOLUTE"),
    ] {
        let reply = server.get(&format!("{files}?path={path}"), ALICE);
        assert_eq!((reply.status, reply.code()), (status, code.to_owned()), "{path}");
    }
    assert_eq!(server.get(&files, ALICE).code(), "INVALID_QUERY");
}

#[test]
fn symlinks_inside_the_sandbox_cannot_reach_the_host() {
    let server = Server::start();
    let id = server.create_sandbox(BOB);
    let host = tempfile::tempdir().unwrap();
    let secret = host.path().join("secret.txt");
    std::fs::write(&secret, "host secret\n").unwrap();
    std::fs::set_permissions(host.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o666)).unwrap();
    let target = secret.to_str().unwrap();
    let dir = host.path().to_str().unwrap();
    server.stdout(
        &id,
        BOB,
        &format!("ln -s {target} /workspace/link && ln -s / /workspace/root && ln -s {dir} /workspace/dir"),
    );

    let files = format!("/v1/sandboxes/{id}/files");
    for path in
        ["/workspace/link".to_owned(), format!("/workspace/root{target}"), "/workspace/dir/secret.txt".to_owned()]
    {
        let read = server.get(&format!("{files}?path={path}"), BOB);
        assert_ne!(read.status, 200, "{path}: {}", read.text());
        assert!(!read.text().contains("host secret"), "{path}");
        let write = server.put(&format!("{files}?path={path}"), BOB, b"overwritten");
        assert_ne!(write.status, 204, "{path}");
        assert!(write.status < 500, "{path}: {}", write.text());
    }
    let write = server.put(&format!("{files}?path=/workspace/link"), BOB, b"overwritten");
    assert_eq!((write.status, write.code().as_str()), (403, "SYMLINK_REFUSED"), "{}", write.text());
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "host secret\n");
    assert_eq!(std::fs::read_dir(host.path()).unwrap().count(), 1, "nothing created on the host");
    // Removing the link removes the link, not its target.
    assert_eq!(server.delete(&format!("{files}?path=/workspace/link"), BOB).status, 204);
    assert!(secret.exists());
}

#[test]
fn background_processes_report_status_and_logs_and_can_be_killed() {
    let server = Server::start();
    let id = server.create_sandbox(ALICE);
    let processes = format!("/v1/sandboxes/{id}/processes");
    let started = server.post(&processes, ALICE, &json!({ "command": "echo ready; sleep 30" }));
    assert_eq!(started.status, 201, "{}", started.text());
    let pid = started.json()["pid"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = server.get(&format!("{processes}/{pid}/logs"), ALICE).json();
        if logs["stdout"] == "ready\n" {
            break;
        }
        assert!(Instant::now() < deadline, "{logs}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.get(&format!("{processes}/{pid}"), ALICE).json()["status"], "running");
    let quick = server.post(&processes, ALICE, &json!({ "command": ["/bin/sh", "-c", "exit 7"] })).json();
    let quick_pid = quick["pid"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = server.get(&format!("{processes}/{quick_pid}"), ALICE).json();
        if status["status"] != "running" || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!((status["status"].clone(), status["exit_code"].clone()), (json!("exited"), json!(7)));

    assert_eq!(server.delete(&format!("{processes}/{pid}"), ALICE).status, 204);
    assert_eq!(server.get(&format!("{processes}/{pid}"), ALICE).code(), "PROCESS_NOT_FOUND");
    assert_eq!(server.stdout(&id, ALICE, "ps -e -o comm= | grep -c sleep || true"), "0\n");
    assert_eq!(server.get(&format!("{processes}/nope"), ALICE).status, 404);
    assert_eq!(server.get(&format!("{processes}/{pid}"), BOB).status, 403);
}

#[test]
fn a_deleted_sandbox_is_404() {
    let server = Server::start();
    let id = server.create_sandbox(ALICE);
    assert_eq!(server.delete(&format!("/v1/sandboxes/{id}"), ALICE).status, 204);
    for reply in [
        server.exec(&id, ALICE, json!({ "command": "true" })),
        server.get(&format!("/v1/sandboxes/{id}/files?path=/workspace/x"), ALICE),
        server.delete(&format!("/v1/sandboxes/{id}"), ALICE),
    ] {
        assert_eq!((reply.status, reply.code().as_str()), (404, "SANDBOX_NOT_FOUND"));
    }
    let unknown = server.get("/v1/nothing", ALICE);
    assert_eq!((unknown.status, unknown.code().as_str()), (404, "ROUTE_NOT_FOUND"));
}

#[test]
fn shutdown_destroys_every_sandbox_and_the_audit_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit.key");
    std::fs::write(&key, "an audit key of enough bytes\n").unwrap();
    let server = Server::start_with(&["--audit-key", key.to_str().unwrap()]);
    let first = server.create_sandbox(ALICE);
    let second = server.create_sandbox(BOB);
    // A duration no other test uses, so its process can be looked for on the host.
    let started = server.post(&format!("/v1/sandboxes/{first}/processes"), ALICE, &json!({ "command": "sleep 97" }));
    assert_eq!(started.status, 201);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sleep_97_running() {
        assert!(Instant::now() < deadline, "the background process runs on the host, in its namespaces");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.post(&format!("/v1/sandboxes/{second}/sessions"), BOB, &json!({ "id": "s" })).status, 201);
    assert_eq!(server.exec(&first, BOB, json!({ "command": "true" })).status, 403);

    let (exit, log, _kept) = server.stop();
    assert!(exit.success(), "{exit:?}");
    assert!(!sleep_97_running(), "shutdown killed everything in the sandboxes");
    let records = events(&log);
    for id in [&first, &second] {
        let destroyed = records.iter().any(|e| e["action"] == "sandbox.destroy" && e["sandbox"] == id.as_str());
        assert!(destroyed, "{id} destroyed on shutdown");
    }
    let verify = sandguard(&["audit", "verify", log.to_str().unwrap(), "--key-file", key.to_str().unwrap()]);
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
    assert!(String::from_utf8_lossy(&verify.stdout).starts_with(&format!("intact: {} records", records.len())));
    // Without the key the chain does not verify; with a record changed, it is found.
    assert_eq!(sandguard(&["audit", "verify", log.to_str().unwrap()]).status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    let tampered = text.replacen("\"actor\":\"bob\"", "\"actor\":\"eve\"", 1);
    assert_ne!(tampered, text);
    std::fs::write(&log, tampered).unwrap();
    let verify = sandguard(&["audit", "verify", log.to_str().unwrap(), "--key-file", key.to_str().unwrap()]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&verify.stdout).starts_with("tampered:"));
}

#[test]
fn an_open_keys_file_or_a_bad_flag_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, format!("alice {ALICE}\n")).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = dir.path().join("audit.jsonl");
    let args =
        ["serve", "--listen", "127.0.0.1:0", "--keys", keys.to_str().unwrap(), "--audit-log", log.to_str().unwrap()];
    let output = sandguard(&args);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("group or others") && stderr.contains("chmod 600"), "{stderr}");
    assert!(!stderr.contains(ALICE));

    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut bad_listen = args;
    bad_listen[2] = "not-an-address";
    let output = sandguard(&bad_listen);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot listen on not-an-address"));
}

#[test]
fn each_user_has_a_sandbox_quota() {
    let server = Server::start();
    let ids: Vec<String> = (0..8).map(|_| server.create_sandbox(CAROL)).collect();
    let over = server.send("POST", "/v1/sandboxes", Some(CAROL), None, false);
    assert_eq!((over.status, over.code().as_str()), (403, "QUOTA_EXCEEDED"));
    // Another user is not affected; deleting one makes room again.
    server.create_sandbox(ALICE);
    assert_eq!(server.delete(&format!("/v1/sandboxes/{}", ids[0]), CAROL).status, 204);
    server.create_sandbox(CAROL);
}

#[test]
fn filesystem_traps_made_inside_the_sandbox_are_client_errors() {
    let server = Server::start();
    let id = server.create_sandbox(ALICE);
    server.stdout(
        &id,
        ALICE,
        "cd /workspace && ln -s a b && ln -s b a && ln -s / root && mkfifo fifo && mkdir shut && chmod 000 shut",
    );
    let files = format!("/v1/sandboxes/{id}/files");
    let loop_read = server.get(&format!("{files}?path=/workspace/a"), ALICE);
    assert_eq!(loop_read.status, 400, "{}", loop_read.text());
    let fifo = server.get(&format!("{files}?path=/workspace/fifo"), ALICE);
    assert_eq!((fifo.status, fifo.code().as_str()), (400, "NOT_A_REGULAR_FILE"));
    let read_only = server.put(&format!("{files}?path=/workspace/root/etc/planted"), ALICE, b"x");
    assert_eq!(read_only.status, 403, "{}", read_only.text());
    let shut = server.get(&format!("{files}?path=/workspace/shut/x"), ALICE);
    assert_eq!(shut.status, 403, "{}", shut.text());
}

#[test]
fn secret_environment_values_are_redacted_from_output_logs_and_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "version = 1\n[redact]\nsecret_env = [\"API_TOKEN\"]\n").unwrap();
    let server = Server::start_with(&["--policy", policy.to_str().unwrap()]);
    let id = server.create_sandbox(ALICE);
    let secret = "s3cr3t-value-only-in-this-test";
    let env = json!({ "API_TOKEN": secret });
    let reply = server.exec(&id, ALICE, json!({ "command": "echo token=$API_TOKEN", "env": env }));
    let stdout = reply.json()["stdout"].as_str().unwrap().to_owned();
    assert!(stdout.starts_with("token=") && !stdout.contains(secret), "{stdout}");

    let processes = format!("/v1/sandboxes/{id}/processes");
    let started = server.post(&processes, ALICE, &json!({ "command": "echo token=$API_TOKEN; sleep 30", "env": env }));
    let pid = started.json()["pid"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let logs = loop {
        let logs = server.get(&format!("{processes}/{pid}/logs"), ALICE).json();
        if logs["stdout"].as_str().unwrap().contains('\n') || Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let logged = logs["stdout"].as_str().unwrap();
    assert!(logged.starts_with("token=") && !logged.contains(secret), "{logged}");

    let (_, log, _kept) = server.stop();
    assert!(!std::fs::read_to_string(log).unwrap().contains(secret));
}
