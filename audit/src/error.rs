//! The crate's one error type.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::verify::ProblemKind;

/// Everything that can go wrong while recording, storing or verifying security events.
///
/// A tampered log is *not* an error of [`verify`](crate::verify()): finding tampering is
/// its job, so it reports it in [`VerifyReport::first_problem`](crate::VerifyReport).
/// Errors are for what stops the work itself: I/O, a bad key, a refused record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// An operating-system call on the log file failed.
    #[error("audit log {}: {op} failed: {source}", path.display())]
    Io {
        /// What was being done.
        op: IoOp,
        /// The log file (or, for [`IoOp::SyncDir`], its directory).
        path: PathBuf,
        /// The error the operating system returned.
        #[source]
        source: io::Error,
    },
    /// Reading an audit log from a caller-supplied reader failed.
    #[error("reading the audit log failed: {0}")]
    Read(#[source] io::Error),
    /// An earlier write, flush or sync of this file failed, so the file's tail is in an
    /// unknown state. Appending after it could leave a hole the chain cannot explain, so
    /// the sink refuses every later write; reopen the file to resume.
    #[error(
        "audit log {} refuses writes after an earlier {op} failure ({kind}); reopen it to resume",
        path.display()
    )]
    Disabled {
        /// The log file.
        path: PathBuf,
        /// The operation that failed first.
        op: IoOp,
        /// What kind of error it was.
        kind: io::ErrorKind,
    },
    /// A thread panicked while holding the log's lock; the log refuses further writes.
    #[error("a thread panicked while writing the audit log; it refuses further writes")]
    Poisoned,
    /// An existing log was opened for appending, but its last record does not verify, so
    /// appending would extend a chain that cannot be trusted (or use the wrong key).
    #[error("refusing to append to {}: its last record{} does not verify: {kind}", path.display(), SeqSuffix(*seq))]
    UnverifiedTail {
        /// The log file.
        path: PathBuf,
        /// The last record's seq, when it could be read.
        seq: Option<u64>,
        /// What is wrong with it.
        kind: ProblemKind,
    },
    /// A sink that keeps a chain was given an event that does not directly follow the
    /// last one it stored. [`AuditLog`](crate::AuditLog) never does this.
    #[error("event seq {found} does not continue the log, which expects seq {expected}")]
    OutOfSequence {
        /// The seq the sink expected.
        expected: u64,
        /// The seq it was given.
        found: u64,
    },
    /// The serialised record is larger than a log line may be.
    #[error("audit record of {len} bytes exceeds the limit of {limit} bytes; keep large data out of `details`")]
    RecordTooLarge {
        /// The record's length in bytes, newline included.
        len: usize,
        /// [`MAX_RECORD_BYTES`](crate::MAX_RECORD_BYTES).
        limit: usize,
    },
    /// An event could not be serialised to JSON.
    #[error("serialising the security event failed: {0}")]
    Serialize(#[source] serde_json::Error),
    /// An HMAC key shorter than [`ChainKey::MIN_LEN`](crate::ChainKey::MIN_LEN) bytes.
    #[error("the HMAC key has {len} bytes; at least {min} random bytes are required")]
    KeyTooShort {
        /// The key's length.
        len: usize,
        /// The minimum length.
        min: usize,
    },
    /// A [`ThreatDetector`](crate::ThreatDetector) was configured with values it cannot use.
    #[error("invalid threat detector configuration: {0}")]
    ThreatConfig(ThreatConfigError),
    /// Every `u64` seq has been used; the log cannot grow further.
    #[error("the audit log has used every sequence number")]
    SeqExhausted,
}

/// The operating-system operation behind an [`AuditError::Io`] or [`AuditError::Disabled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoOp {
    /// Opening or creating the file.
    Open,
    /// Reading the file.
    Read,
    /// Writing records (into the buffer or out to the file).
    Write,
    /// `fsync`/`fdatasync` of the file.
    Sync,
    /// `fsync` of the directory, which makes a newly created file's name durable.
    SyncDir,
    /// Cutting off a torn final record.
    Truncate,
    /// Starting the group-commit thread.
    SpawnThread,
}

impl fmt::Display for IoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Open => "open",
            Self::Read => "read",
            Self::Write => "write",
            Self::Sync => "sync",
            Self::SyncDir => "directory sync",
            Self::Truncate => "truncate",
            Self::SpawnThread => "starting the sync thread",
        })
    }
}

/// Why a [`ThreatDetector`](crate::ThreatDetector) configuration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ThreatConfigError {
    /// The threshold must be at least 1.
    #[error("the failure threshold must be at least 1")]
    ZeroThreshold,
    /// The window must be longer than zero and no longer than a timestamp can express.
    #[error("the window must be longer than zero and representable as a time span, not {0:?}")]
    Window(Duration),
}

/// Formats ` (seq N)` when the seq is known.
struct SeqSuffix(Option<u64>);

impl fmt::Display for SeqSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(seq) => write!(f, " (seq {seq})"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_the_operation_and_the_cause() {
        let err = AuditError::Io {
            op: IoOp::Sync,
            path: "/var/log/audit.jsonl".into(),
            source: io::Error::other("disk on fire"),
        };
        assert_eq!(err.to_string(), "audit log /var/log/audit.jsonl: sync failed: disk on fire");

        let err = AuditError::UnverifiedTail { path: "a.log".into(), seq: Some(9), kind: ProblemKind::HashMismatch };
        assert_eq!(
            err.to_string(),
            "refusing to append to a.log: its last record (seq 9) does not verify: \
             hash mismatch: the record was modified"
        );
    }
}
