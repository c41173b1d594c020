//! End-to-end tests of `sandguard audit verify FILE [--key-file K]`: exit 0 when the log is intact,
//! 1 when it was tampered with (the first bad record named on stdout), 2 when the log or the key
//! file cannot be used.

use std::path::Path;
use std::process::{Command, Output};

use sandguard::audit::{AuditLog, ChainKey, FileSink, FileSinkOptions, FsyncPolicy, NewEvent, Outcome};

/// An HMAC key of exactly the minimum length, 16 bytes.
const KEY: &[u8] = b"0123456789abcdef";

/// Writes a log of `records` records at `path`, HMAC-keyed when `key` is given.
fn write_log(path: &Path, records: u64, key: Option<&[u8]>) {
    let mut options = FileSinkOptions::new().fsync(FsyncPolicy::Never);
    if let Some(key) = key {
        options = options.key(ChainKey::new(key).expect("a valid key"));
    }
    let log = AuditLog::new(FileSink::open(path, options).expect("the log opens"));
    for n in 1..=records {
        let outcome = if n % 2 == 0 { Outcome::Denied } else { Outcome::Allowed };
        log.record(NewEvent::new("alice", "file.read", outcome).detail("n", n)).expect("the event is recorded");
    }
    log.flush().expect("the log flushes");
}

fn verify(log: &Path, key_file: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sandguard"));
    command.args(["audit", "verify"]).arg(log);
    if let Some(key_file) = key_file {
        command.arg("--key-file").arg(key_file);
    }
    command.output().expect("sandguard runs")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The log's lines, each with its newline.
fn lines(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read(path).expect("the log is readable").split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

#[test]
fn an_intact_log_exits_0_with_its_record_count() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    write_log(&log, 5, None);

    let out = verify(&log, None);
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(stdout(&out).starts_with("intact: 5 records"), "{out:?}");
}

#[test]
fn one_flipped_byte_in_record_3_exits_1_naming_line_3() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    write_log(&log, 5, None);
    let mut lines = lines(&log);
    let third = &mut lines[2];
    let at = third.windows(7).position(|w| w == b"\"alice\"").expect("line 3 names alice") + 1;
    third[at] ^= 0x01; // "alice" becomes "`lice": still JSON, no longer the recorded bytes
    std::fs::write(&log, lines.concat()).unwrap();

    let out = verify(&log, None);
    assert_eq!(code(&out), 1, "{out:?}");
    let stdout = stdout(&out);
    assert!(stdout.contains("line 3 (seq 3)"), "{stdout}");
    assert!(stdout.contains("hash mismatch"), "{stdout}");
}

#[test]
fn a_deleted_record_exits_1_naming_where_the_gap_is() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    write_log(&log, 5, None);
    let mut lines = lines(&log);
    lines.remove(2);
    std::fs::write(&log, lines.concat()).unwrap();

    let out = verify(&log, None);
    assert_eq!(code(&out), 1, "{out:?}");
    let stdout = stdout(&out);
    assert!(stdout.contains("line 3 (seq 4)"), "{stdout}");
    assert!(stdout.contains("deleted"), "{stdout}");
}

#[test]
fn a_keyed_log_verifies_only_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    write_log(&log, 5, Some(KEY));
    let right = dir.path().join("right.key");
    std::fs::write(&right, [KEY, b"\n"].concat()).unwrap(); // as `echo` writes it
    let wrong = dir.path().join("wrong.key");
    std::fs::write(&wrong, b"fedcba9876543210").unwrap();

    let out = verify(&log, Some(&right));
    assert_eq!(code(&out), 0, "{out:?}");
    assert!(stdout(&out).starts_with("intact: 5 records"), "{out:?}");

    let out = verify(&log, Some(&wrong));
    assert_eq!(code(&out), 1, "{out:?}");
    assert!(stdout(&out).contains("line 1 (seq 1): hash mismatch under the given key"), "{out:?}");

    let out = verify(&log, None);
    assert_eq!(code(&out), 1, "{out:?}");
    assert!(stdout(&out).contains("the log is HMAC-keyed"), "{out:?}");
}

#[test]
fn a_plain_log_checked_with_a_key_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    write_log(&log, 2, None);
    let key = dir.path().join("audit.key");
    std::fs::write(&key, KEY).unwrap();

    let out = verify(&log, Some(&key));
    assert_eq!(code(&out), 1, "{out:?}");
    assert!(stdout(&out).contains("not HMAC-keyed"), "{out:?}");
}

#[test]
fn a_missing_log_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = verify(&dir.path().join("missing.jsonl"), None);
    assert_eq!(code(&out), 2, "{out:?}");
    assert_eq!(stdout(&out), "", "nothing is claimed about a log that was not read");
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.jsonl"), "{out:?}");
}

#[test]
fn an_unusable_key_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    write_log(&log, 2, Some(KEY));
    // 15 bytes; the trailing newline is not part of the key.
    let short = dir.path().join("short.key");
    std::fs::write(&short, b"0123456789abcde\n").unwrap();

    for key_file in [short, dir.path().join("missing.key")] {
        let out = verify(&log, Some(&key_file));
        assert_eq!(code(&out), 2, "{key_file:?}: {out:?}");
        assert_eq!(stdout(&out), "", "{key_file:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("key file"), "{key_file:?}: {out:?}");
    }
}
