//! End-to-end tests of the `sandguard` command's contract: exit codes, JSON shape, stdin mode.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn sandguard<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_sandguard")).args(args).output().expect("sandguard runs")
}

fn sandguard_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandguard"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sandguard starts");
    child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
    child.wait_with_output().expect("sandguard finishes")
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}")))
        .collect()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

#[test]
fn check_json_has_exactly_the_contract_fields() {
    let out = sandguard(["check", "id", "--json", "good-id", "x;rm -rf /"]);
    assert_eq!(code(&out), 1, "one input denied");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    for line in &lines {
        let mut keys: Vec<&str> = line.as_object().expect("object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["allowed", "code", "input", "message", "normalized"]);
    }
    assert_eq!(lines[0]["input"], "good-id");
    assert_eq!(lines[0]["allowed"], true);
    assert_eq!(lines[0]["normalized"], "good-id");
    assert_eq!(lines[0]["code"], Value::Null);
    assert_eq!(lines[0]["message"], Value::Null);
    assert_eq!(lines[1]["input"], "x;rm -rf /");
    assert_eq!(lines[1]["allowed"], false);
    assert_eq!(lines[1]["normalized"], Value::Null);
    assert_eq!(lines[1]["code"], "INVALID_SANDBOX_ID_CHARS");
    assert!(lines[1]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[test]
fn check_id_codes() {
    let cases = [
        ("", "INVALID_SANDBOX_ID_LENGTH"),
        (&"a".repeat(64), "INVALID_SANDBOX_ID_LENGTH"),
        ("-abc", "INVALID_SANDBOX_ID_HYPHENS"),
        ("ab--cd", "INVALID_SANDBOX_ID_HYPHENS"),
        ("admin", "RESERVED_SANDBOX_ID"),
        ("localhost", "RESERVED_SANDBOX_ID"),
    ];
    for (input, expected) in cases {
        let out = sandguard(["check", "id", "--json", "--", input]);
        assert_eq!(code(&out), 1, "{input:?} must be denied");
        assert_eq!(json_lines(&out)[0]["code"], expected, "{input:?}");
    }
    let out = sandguard(["check", "id", "--json", "MyBox"]);
    let line = &json_lines(&out)[0];
    assert_eq!(line["allowed"], false);
    assert!(line["message"].as_str().expect("message").contains("mybox"), "hint to lowercase: {line}");
    assert_eq!(code(&sandguard(["check", "id", "a", "user-42-x", &"z".repeat(63)])), 0);
}

#[test]
fn check_path_roots_and_normalisation() {
    let out = sandguard([
        "check",
        "path",
        "--json",
        "/workspace/./src//../main.py",
        "/workspace-evil/x",
        "/workspace/../etc/shadow",
    ]);
    assert_eq!(code(&out), 1);
    let lines = json_lines(&out);
    assert_eq!(lines[0]["normalized"], "/workspace/main.py");
    assert_eq!(lines[1]["code"], "PATH_OUTSIDE_ROOTS");
    assert_eq!(lines[2]["code"], "PATH_OUTSIDE_ROOTS");

    let out = sandguard(["check", "path", "--json", "--root", "/data", "/data/a/../b", "/workspace/x"]);
    let lines = json_lines(&out);
    assert_eq!(lines[0]["normalized"], "/data/b");
    assert_eq!(lines[1]["allowed"], false, "--root replaces the default roots");
    assert_eq!(code(&sandguard(["check", "path", "relative/x"])), 1);
}

#[test]
fn check_port_strict_parsing_and_allowlist() {
    for bad in ["+80", " 80", "80.0", "0x50", "1e2", "８０", "", "65536", "0"] {
        let out = sandguard(["check", "port", "--json", "--", bad]);
        assert_eq!(code(&out), 1, "{bad:?} must be denied");
        assert_eq!(json_lines(&out)[0]["allowed"], false);
    }
    let out = sandguard(["check", "port", "--json", "3000", "8080"]);
    let lines = json_lines(&out);
    assert_eq!(lines[0]["code"], "RESERVED_PORT");
    assert_eq!(lines[1]["normalized"], "8080");

    let out = sandguard(["check", "port", "--json", "--allow", "8080", "--allow", "9000-9010", "9005", "8081"]);
    let lines = json_lines(&out);
    assert_eq!(lines[0]["allowed"], true);
    assert_eq!(lines[1]["code"], "PORT_NOT_ALLOWED");
    assert_eq!(code(&sandguard(["check", "port", "--allow", "nope", "8080"])), 2, "bad --allow is a usage error");
}

#[test]
fn check_url_allowlist_and_special_addresses() {
    let out = sandguard(["check", "url", "--json", "https://example.com/x"]);
    assert_eq!(json_lines(&out)[0]["code"], "EGRESS_HOST_NOT_ALLOWED", "no host is allowed by default");

    let args = [
        "check",
        "url",
        "--json",
        "--allow",
        "*.example.com",
        "https://api.example.com/v1",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433/",
        "http://[::ffff:127.0.0.1]/",
        "http://user@api.example.com/",
    ];
    let out = sandguard(args);
    assert_eq!(code(&out), 1);
    let lines = json_lines(&out);
    assert_eq!(lines[0]["allowed"], true);
    assert_eq!(lines[1]["code"], "EGRESS_ADDRESS_DENIED");
    assert_eq!(lines[2]["code"], "EGRESS_ADDRESS_DENIED");
    assert_eq!(lines[3]["code"], "EGRESS_ADDRESS_DENIED");
    assert_eq!(lines[4]["code"], "EGRESS_USERINFO");
}

#[test]
fn stdin_mode_carries_nul_and_control_characters() {
    let stdin = b"\"/workspace/a\\u0000b\"\n\n\"/workspace/ok\"\n\"/tmp/\\u001b[2J\"\n";
    let out = sandguard_stdin(&["check", "path", "--stdin", "--json"], stdin);
    assert_eq!(code(&out), 1);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3, "blank lines are skipped");
    assert_eq!(lines[0]["input"], "/workspace/a\u{0}b");
    assert_eq!(lines[0]["code"], "PATH_CONTAINS_NUL");
    assert_eq!(lines[1]["allowed"], true);
    assert_eq!(lines[2]["normalized"], "/tmp/\u{1b}[2J");

    let out = sandguard_stdin(&["check", "path", "--stdin"], b"\"/tmp/\\u001b[2J\"\n");
    assert_eq!(code(&out), 0);
    assert!(!out.stdout.contains(&0x1b), "human output escapes control characters");
}

#[test]
fn stdin_mode_rejects_lines_that_are_not_json_strings() {
    let out = sandguard_stdin(&["check", "id", "--stdin"], b"\"ok\"\nnot-json\n");
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
    let out = sandguard_stdin(&["check", "id", "--stdin"], b"42\n");
    assert_eq!(code(&out), 2);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(code(&sandguard(["check", "id"])), 2, "nothing to check");
    assert_eq!(code(&sandguard(["check", "colour", "x"])), 2);
    assert_eq!(code(&sandguard(["check", "id", "--root", "/x", "abc"])), 2);
    assert_eq!(code(&sandguard(["check", "path", "--allow", "x", "/tmp"])), 2);
    assert_eq!(code(&sandguard(["check", "id", "--policy", "/nonexistent/policy.toml", "abc"])), 2);
    assert_eq!(code(&sandguard(["frobnicate"])), 2);
}

#[test]
fn quote_round_trips_through_sh_for_any_bytes() {
    let args: Vec<&OsStr> = vec![
        OsStr::new("plain"),
        OsStr::new(""),
        OsStr::new("it's"),
        OsStr::new("=ls"),
        OsStr::new("a=b"),
        OsStr::new("$(id) `id` ; | & > <"),
        OsStr::new("new\nline"),
        OsStr::from_bytes(b"\xff\xfe not utf-8"),
        OsStr::new("--"),
        OsStr::new("-n"),
    ];
    let mut cmd_args: Vec<&OsStr> = vec![OsStr::new("quote"), OsStr::new("--")];
    cmd_args.extend(args.iter().copied());
    let out = sandguard(cmd_args);
    assert_eq!(code(&out), 0);
    let line = out.stdout.strip_suffix(b"\n").expect("ends with a newline");
    let mut script = b"printf '%s\\0' ".to_vec();
    script.extend_from_slice(line);
    // sandguard:allow(command-injection) -- a test drives a real shell on purpose, with input it quoted itself
    let shell = Command::new("/bin/sh").arg("-c").arg(OsStr::from_bytes(&script)).output().expect("sh runs");
    let words: Vec<&[u8]> = shell.stdout.split(|&b| b == 0).collect();
    let expected: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).chain([&b""[..]]).collect();
    assert_eq!(words, expected);
}

#[test]
fn id_new_is_valid_and_unpredictable() {
    let first = sandguard(["id", "new", "--prefix", "user-7"]);
    let second = sandguard(["id", "new", "--prefix", "user-7"]);
    assert_eq!(code(&first), 0);
    let first = String::from_utf8(first.stdout).expect("utf-8");
    let second = String::from_utf8(second.stdout).expect("utf-8");
    assert_ne!(first, second);
    let id = first.trim_end();
    assert!(id.starts_with("user-7-"), "{id}");
    assert_eq!(code(&sandguard(["check", "id", id])), 0, "a generated ID passes the guard");
    assert_eq!(code(&sandguard(["id", "new", "--prefix", "Bad Prefix"])), 2);
}

#[test]
fn policy_check_reports_every_error_with_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = sandguard(["policy", "check", concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml")]);
    assert_eq!(code(&good), 0, "{}", String::from_utf8_lossy(&good.stderr));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[paths]\nrootz = [\"/x\"]\n\n[limits]\nmemory = \"lots\"\ntimeout = 30\n\n[colour]\n")
        .expect("write");
    let out = sandguard([OsStr::new("policy"), OsStr::new("check"), bad.as_os_str()]);
    assert_eq!(code(&out), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = bad.display().to_string();
    assert!(stderr.contains(&format!("{name}:2:1: unknown key `rootz`")), "{stderr}");
    assert!(stderr.contains("did you mean `roots`"), "{stderr}");
    assert!(stderr.contains(&format!("{name}:5:10:")), "{stderr}");
    assert!(stderr.contains(&format!("{name}:6:11:")), "{stderr}");
    assert!(stderr.contains(&format!("{name}:8:2: unknown key `colour`")), "{stderr}");
}

#[test]
fn the_sandbox_section_is_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("sandbox.toml");
    std::fs::write(&file, "[sandbox]\nallow_weaker = false\nnetwork = \"proxy\"\n").expect("write");
    let out = sandguard([OsStr::new("policy"), OsStr::new("check"), file.as_os_str()]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains(":3:11: `sandbox.network = \"proxy\"` is not available yet"));
    std::fs::write(&file, "[sandbox]\nnetwork = \"none\"\n").expect("write");
    let out = sandguard([OsStr::new("policy"), OsStr::new("check"), file.as_os_str()]);
    assert_eq!(code(&out), 0);
}

#[test]
fn version_is_printed() {
    let out = sandguard(["--version"]);
    assert_eq!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sandguard "));
}
