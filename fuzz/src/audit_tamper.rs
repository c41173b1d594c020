//! `audit_verify`: the verifier never panics on any file, and any single-byte change to a valid
//! chained log (a byte replaced, removed or added, anywhere, newlines included) is detected, with
//! and without an HMAC key.
//!
//! The input plays two parts. As a file, it is verified as it is (no panic; and if it is called
//! intact, it must really consist of that many complete lines). As a script, it writes a valid log
//! through the real `FileSink` (events whose actor, sandbox and details come from the input, so
//! JSON escaping of quotes, control characters and non-UTF-8 bytes is exercised), checks that the
//! log verifies, then changes one byte where the input says and checks that verification fails.

use std::io::Cursor;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use sandguard_audit::{
    AuditLog, ChainKey, FileSink, FileSinkOptions, FsyncPolicy, NewEvent, Outcome, VerifyReport, verify_reader,
};

use crate::{Violation, violation};

/// The HMAC key of keyed logs in the target.
pub const KEY: &[u8; 32] = b"sandguard-fuzz-audit-key-0123456";

/// Most events one input writes.
const MAX_EVENTS: usize = 6;

/// How one byte of the log is changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// The byte at the offset is XORed with a non-zero value.
    Replace { offset: usize, xor: u8 },
    /// The byte at the offset is removed.
    Remove { offset: usize },
    /// A byte is inserted before the offset (at the end when it equals the length).
    Insert { offset: usize, byte: u8 },
}

impl Edit {
    /// The edited copy of `log`.
    pub fn apply(self, log: &[u8]) -> Vec<u8> {
        let mut out = log.to_vec();
        match self {
            Self::Replace { offset, xor } => out[offset] ^= xor,
            Self::Remove { offset } => {
                out.remove(offset);
            }
            Self::Insert { offset, byte } => out.insert(offset, byte),
        }
        out
    }
}

fn verify_bytes(bytes: &[u8], key: Option<&[u8]>) -> Result<VerifyReport, Violation> {
    verify_reader(Cursor::new(bytes), key)
        .map_err(|e| Violation(format!("verify_reader failed on bytes in memory: {e}")))
}

/// Any file: no panic, and "intact" only for whole lines that are all records.
pub fn check_arbitrary(bytes: &[u8]) -> Result<(), Violation> {
    for key in [None, Some(&KEY[..])] {
        let report = verify_bytes(bytes, key)?;
        if report.is_intact() {
            let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
            if !bytes.is_empty() && bytes.last() != Some(&b'\n') {
                violation!("a file ending inside a line was called intact ({} records)", report.records);
            }
            if report.records != lines {
                violation!("{lines} lines were called intact as {} records", report.records);
            }
        }
    }
    Ok(())
}

/// Writes a valid log of events built from `fields` through `FileSink`, and returns its bytes.
pub fn write_log(fields: &[&[u8]], keyed: bool) -> Vec<u8> {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let parent = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        tempfile::Builder::new()
            .prefix("sandguard-fuzz-audit")
            .tempdir_in(parent)
            .expect("a temporary directory for audit logs")
    });
    // One file per call: tests call this from several threads of one process at once.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = dir.path().join(format!("log-{}.jsonl", NEXT.fetch_add(1, Ordering::Relaxed)));
    let mut options = FileSinkOptions::new().fsync(FsyncPolicy::Never);
    if keyed {
        options = options.key(ChainKey::new(KEY).expect("a long enough key"));
    }
    {
        let log = AuditLog::new(FileSink::open(&path, options).expect("a new log opens"));
        for (i, field) in fields.iter().enumerate() {
            let text = String::from_utf8_lossy(field).into_owned();
            let outcome = if i % 2 == 0 { Outcome::Allowed } else { Outcome::Denied };
            let mut event = NewEvent::new(text.clone(), "exec", outcome).detail("input", text.clone());
            if !field.is_empty() {
                event = event.sandbox(text.clone()).reason("FUZZ", text);
            }
            log.record(event).expect("an event of a few KiB is recorded");
        }
    }
    let bytes = std::fs::read(&path).expect("the log reads back");
    let _ = std::fs::remove_file(&path);
    bytes
}

/// A valid log and one edit of it: the log must verify, the edited copy must not.
pub fn check_edit(log: &[u8], records: usize, edit: Edit, keyed: bool) -> Result<(), Violation> {
    let key = keyed.then_some(&KEY[..]);
    let report = verify_bytes(log, key)?;
    if !report.is_intact() || report.records != records as u64 {
        violation!("a freshly written log of {records} records does not verify: {report:?}");
    }
    let edited = edit.apply(log);
    let report = verify_bytes(&edited, key)?;
    if report.is_intact() {
        violation!("{edit:?} was not detected (keyed: {keyed}); edited log:\n{}", String::from_utf8_lossy(&edited));
    }
    if keyed {
        // The same log checked without its key, or an unkeyed log with a key, never verifies.
        if verify_bytes(log, None)?.is_intact() {
            violation!("a keyed log verifies without its key");
        }
    } else if verify_bytes(log, Some(KEY))?.is_intact() {
        violation!("an unkeyed log verifies under a key");
    }
    Ok(())
}

/// The target's oracle. Bytes 0-1: the edit's offset; 2: the XOR value or inserted byte; 3: flags
/// (bit 0 keyed, bits 1-2 the kind of edit); the rest, split at 0xff, the events' fields.
pub fn check(data: &[u8]) -> Result<(), Violation> {
    check_arbitrary(data)?;
    let Some((header, rest)) = data.split_first_chunk::<4>() else { return Ok(()) };
    let fields: Vec<&[u8]> = rest.split(|&b| b == 0xff).take(MAX_EVENTS).collect();
    let keyed = header[3] & 1 == 1;
    let log = write_log(&fields, keyed);
    let offset = usize::from(u16::from_le_bytes([header[0], header[1]]));
    let edit = match (header[3] >> 1) % 3 {
        0 => Edit::Replace { offset: offset % log.len(), xor: header[2].max(1) },
        1 => Edit::Remove { offset: offset % log.len() },
        _ => Edit::Insert { offset: offset % (log.len() + 1), byte: header[2] },
    };
    check_edit(&log, fields.len(), edit, keyed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_single_byte_edit_of_a_small_log_is_detected() {
        let log = write_log(&[b"alice", b"b\"o\\b\n", b""], false);
        for offset in 0..log.len() {
            for edit in
                [Edit::Replace { offset, xor: 0x20 }, Edit::Remove { offset }, Edit::Insert { offset, byte: b' ' }]
            {
                check_edit(&log, 3, edit, false).unwrap();
            }
        }
    }

    #[test]
    fn the_oracle_fails_on_an_undetected_or_missing_change() {
        let log = write_log(&[b"alice"], true);
        // Removing a whole record is not a single-byte edit, and the verifier cannot see it:
        // the oracle must report exactly that when it is handed such a "log".
        let two = write_log(&[b"alice", b"bob"], false);
        let first_line = two.iter().position(|&b| b == b'\n').unwrap() + 1;
        assert!(check_edit(&two[..first_line], 2, Edit::Replace { offset: 0, xor: 1 }, false).is_err());
        // A keyed log checked as unkeyed does not verify in the first place.
        assert!(check_edit(&log, 1, Edit::Replace { offset: 0, xor: 1 }, false).is_err());
        // An "edit" that changes nothing leaves the log intact, which the oracle reports.
        assert!(check_edit(&log, 1, Edit::Replace { offset: 3, xor: 0 }, true).is_err());
        assert!(check_arbitrary(b"not a log\n").is_ok());
    }
}
