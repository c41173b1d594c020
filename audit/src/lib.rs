//! Security events for sandguard: a structured record of every allowed and denied
//! operation, sinks that store them, a hash-chained log file in which tampering is
//! detectable by [`verify`], and alerts and threat detection on denials.
//!
//! # Recording
//!
//! Callers describe what happened with a [`NewEvent`]; an [`AuditLog`] gives it the
//! next seq and the time and writes it to an [`AuditSink`]: a [`FileSink`] for
//! evidence, a [`TracingSink`] for operators, a [`MemorySink`] for tests, or several at
//! once through [`FanOut`]. Denials call the log's [`Alert`] hooks, and a
//! [`ThreatDetector`] turns bursts of denials into `threat.detected` events.
//!
//! ```
//! use sandguard_audit::{AuditLog, FileSink, FileSinkOptions, NewEvent, Outcome, Usage, verify};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("audit.jsonl");
//! let log = AuditLog::new(FileSink::open(&path, FileSinkOptions::new())?);
//!
//! log.record(NewEvent::new("alice", "exec", Outcome::Allowed)
//!     .sandbox("sbx-7")
//!     .detail("argv", serde_json::json!(["python3", "main.py"]))
//!     .usage(Usage::new().wall_ms(840).cpu_ms(610)))?;
//! log.record(NewEvent::new("alice", "egress.connect", Outcome::Denied)
//!     .sandbox("sbx-7")
//!     .reason("egress-private-address", "169.254.169.254 is a metadata address"))?;
//! log.flush()?;
//!
//! assert!(verify(&path, None)?.is_intact());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The log file
//!
//! One record per line (JSON Lines). A record is the event's JSON object, exactly as
//! [`SecurityEvent`] serialises, with two more fields before the closing brace. This
//! two-record log was written by a separate implementation of the rules below (a few
//! lines of Python), so the test checks that the rules and the verifier agree:
//!
//! ```
//! # use sandguard_audit::verify_reader;
//! let log = r#"
//! {"seq":1,"time":"2025-01-31T12:00:00.000000001Z","actor":"alice","sandbox":"sbx-7","action":"exec","outcome":"allowed","details":{"argv":["python3","main.py"]},"usage":{"wall_ms":840,"cpu_ms":610},"prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"f6b2db89b6bfd36e976578da22df15986d788ea37e10120092d69e67f5c60d17"}
//! {"seq":2,"time":"2025-01-31T12:00:01.250000000Z","actor":"alice","sandbox":"sbx-7","action":"egress.connect","outcome":"denied","reason":{"code":"egress-private-address","message":"169.254.169.254 is a metadata address"},"prev":"f6b2db89b6bfd36e976578da22df15986d788ea37e10120092d69e67f5c60d17","hash":"78f4a1eef9641dd6c26cdb898c53cfc39b01160502fcc00609d99a9f5e1bc35f"}
//! "#.trim_start();
//! let report = verify_reader(log.as_bytes(), None)?;
//! assert!(report.is_intact());
//! assert_eq!(report.head.unwrap().hash, "78f4a1eef9641dd6c26cdb898c53cfc39b01160502fcc00609d99a9f5e1bc35f");
//! # Ok::<(), sandguard_audit::AuditError>(())
//! ```
//!
//! - `prev` is the previous record's `hash`; for seq 1 it is 64 zeros.
//! - `hash` = SHA-256(`prev` as 32 bytes ‖ the line's bytes up to, not including,
//!   `,"hash":"`), or HMAC-SHA256 with the same input when the log has a [`ChainKey`].
//!   Hashing the bytes as written, found by position, means verification never depends
//!   on re-serialising JSON the same way twice.
//! - Hex is lowercase, and compared byte for byte.
//! - Every line is still a valid [`SecurityEvent`] for any JSON reader: unknown fields
//!   are ignored, so `serde_json::from_str::<SecurityEvent>(line)` works.
//!
//! # What tamper-evidence promises
//!
//! Changing, deleting, inserting, duplicating or reordering any record, or any byte of
//! one, makes [`verify`] report the first affected line. Two things it cannot do alone:
//!
//! - **Truncation.** A log cut after record *n* is a valid log of *n* records. Anchor
//!   the [`ChainHead`] (from [`FileSink::head`] or [`VerifyReport::head`]) somewhere the
//!   attacker cannot write, and compare.
//! - **Rewriting without a key.** Plain SHA-256 can be recomputed by anyone who can
//!   write the file. Give the log a [`ChainKey`] kept out of the attacker's reach: then
//!   a changed record cannot be made to verify.
//!
//! # Durability
//!
//! [`FsyncPolicy`] chooses between syncing every record ([`FsyncPolicy::Always`]),
//! batching syncs on a background thread ([`FsyncPolicy::GroupCommit`], the default,
//! every 5 ms), and never syncing ([`FsyncPolicy::Never`]).
#![forbid(unsafe_code)]

mod chain;
mod error;
mod event;
mod file;
mod log;
mod sink;
mod threat;
mod verify;

pub use chain::{ChainHead, ChainKey, MAX_RECORD_BYTES, Malformed};
pub use error::{AuditError, IoOp, ThreatConfigError};
pub use event::{NewEvent, Outcome, Reason, SecurityEvent, Usage};
pub use file::{FileSink, FileSinkOptions, FsyncPolicy};
pub use log::{Alert, AuditLog, AuditLogBuilder};
pub use sink::{AuditSink, FanOut, MemorySink, TracingSink};
pub use threat::{KeyBy, THREAT_DETECTED, Threat, ThreatDetector, ThreatKey};
pub use verify::{Problem, ProblemKind, VerifyReport, verify, verify_reader};
