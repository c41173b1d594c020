//! Verification of a hash-chained log: finds the first tampered, missing, reordered or
//! inserted record.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::iter::Peekable;
use std::path::Path;

use crate::chain::{Chain, Digest, GENESIS, Record};
use crate::{AuditError, ChainHead, ChainKey, IoOp, MAX_RECORD_BYTES, Malformed};

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// How many records verified before the first problem (all of them if none).
    pub records: u64,
    /// The last record that verified. Keep it elsewhere to detect truncation later.
    pub head: Option<ChainHead>,
    /// The first problem, if any. `None` means the whole file verified.
    pub first_problem: Option<Problem>,
}

impl VerifyReport {
    /// Whether every record verified.
    pub fn is_intact(&self) -> bool {
        self.first_problem.is_none()
    }
}

/// The first place where a log stops verifying.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// 1-based line number in the file.
    pub line: u64,
    /// The record's seq, when the line could be read as a record.
    pub seq: Option<u64>,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "line {} (seq {seq}): {}", self.line, self.kind),
            None => write!(f, "line {}: {}", self.line, self.kind),
        }
    }
}

/// What is wrong with a record. See [`verify`](crate::verify()#what-is-detected-and-what-is-not)
/// for how far the classification can be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The line is not a chained record at all.
    Malformed(Malformed),
    /// The record's hash does not match its bytes: the record was modified.
    HashMismatch,
    /// No key was given and the first records do not verify as plain SHA-256: the log
    /// was written with an HMAC key (or every record was modified).
    KeyRequired,
    /// A key was given and the first records do not verify under it: the wrong key, or a
    /// forged log.
    WrongKey,
    /// A key was given but the log is a plain SHA-256 chain: written without the key, or
    /// rewritten by someone who did not have it.
    NotKeyed,
    /// The seq is in order but `prev` is not the previous record's hash: the previous
    /// record was modified and re-hashed without a key, or this one is from another log.
    BrokenLink,
    /// The seq jumped ahead: records `expected..found` were deleted.
    Missing {
        /// The seq that should have come next.
        expected: u64,
        /// The seq found instead.
        found: u64,
    },
    /// The seq is out of order: records were moved or swapped.
    Reordered {
        /// The seq that should have come next.
        expected: u64,
        /// The seq found instead.
        found: u64,
    },
    /// The record is an exact copy of the previous one.
    Duplicated,
    /// The record does not belong to the chain: the record after it continues from the
    /// record before it.
    Inserted,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed record: {why}"),
            Self::HashMismatch => f.write_str("hash mismatch: the record was modified"),
            Self::KeyRequired => {
                f.write_str("hash mismatch: the log is HMAC-keyed (verify it with its key) or was modified")
            }
            Self::WrongKey => {
                f.write_str("hash mismatch under the given key: it is the wrong key, or the log was forged")
            }
            Self::NotKeyed => f.write_str(
                "the log is a plain SHA-256 chain, not HMAC-keyed: \
                 written without the key, or rewritten by someone without it",
            ),
            Self::BrokenLink => f.write_str(
                "broken link: prev is not the previous record's hash \
                 (the previous record was rewritten, or this one is from another log)",
            ),
            Self::Missing { expected, found } => write!(
                f,
                "seq {found} follows seq {}: {} record(s) deleted",
                expected.saturating_sub(1),
                found.saturating_sub(*expected)
            ),
            Self::Reordered { expected, found } => {
                write!(f, "seq {found} where seq {expected} belongs: records were reordered")
            }
            Self::Duplicated => f.write_str("duplicate of the previous record"),
            Self::Inserted => f.write_str("inserted record: the next record continues from the one before it"),
        }
    }
}

/// Verifies the hash-chained log at `path`, with the HMAC key it was written with, if any.
///
/// Returns `Err` only when the file cannot be read (or the key is too short to be one);
/// a tampered log is an `Ok` report whose [`first_problem`](VerifyReport::first_problem)
/// says where and how. The file is read once, line by line, with at most two records in
/// memory. (A log that is being written can end in a half-written line at the instant it
/// is read; flush the writer first for a clean result.)
///
/// # What is detected, and what is not
///
/// For every line the verifier checks that it is a complete, well-formed record; that its
/// `hash` is the digest of its own bytes and `prev`; that its seq is the previous one
/// plus 1 (the first is 1); and that its `prev` is the previous record's `hash` (the
/// first's is the genesis, 64 zeros). Any change to any byte of the file, including the
/// newlines and the case of a hex digit, breaks one of these.
///
/// - **Truncation** of the tail is invisible in the file itself: a log cut after record
///   *n* is a valid log of *n* records. Store [`VerifyReport::head`] (or
///   [`FileSink::head`](crate::FileSink::head)) somewhere the attacker cannot write and
///   compare it on the next check.
/// - **Without a key** the chain is plain SHA-256, which anyone can recompute: someone
///   who can write the file can rewrite it from the first changed record onwards, and
///   it will verify. Only an HMAC [`ChainKey`] that the attacker does not hold stops a
///   forger; then every changed record fails its own hash.
/// - **Classification is best effort.** The verifier looks one record ahead to name
///   what happened: a record that does not fit but is followed by one that does was
///   *inserted* (or, if it carries the next seq but one, *reordered*: swapped with its
///   successor); a seq that jumps ahead is a *deletion*, unless the next record has the
///   missing seq; a repeat of the previous record is a *duplicate*; a hash failure on
///   line 1 is blamed on the key unless line 2 verifies. Several edits at once can look
///   like one another; the line of the first problem is always exact.
///
/// # Example
///
/// ```
/// use sandguard_audit::{verify, AuditLog, FileSink, FileSinkOptions, NewEvent, Outcome};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("audit.jsonl");
/// {
///     let log = AuditLog::new(FileSink::open(&path, FileSinkOptions::new())?);
///     log.record(NewEvent::new("alice", "exec", Outcome::Allowed))?;
///     log.record(NewEvent::new("alice", "file.read", Outcome::Denied))?;
/// } // dropping the log flushes and syncs the file
///
/// let report = verify(&path, None)?;
/// assert!(report.is_intact());
/// assert_eq!(report.records, 2);
///
/// // Allow what was denied:
/// let text = std::fs::read_to_string(&path)?.replace("denied", "allowed");
/// std::fs::write(&path, text)?;
/// let problem = verify(&path, None)?.first_problem.expect("tampering is detected");
/// assert_eq!(problem.to_string(), "line 2 (seq 2): hash mismatch: the record was modified");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify(path: impl AsRef<Path>, key: Option<&[u8]>) -> Result<VerifyReport, AuditError> {
    let path = path.as_ref();
    let chain = chain_for(key)?;
    let file =
        File::open(path).map_err(|source| AuditError::Io { op: IoOp::Open, path: path.to_path_buf(), source })?;
    check(BufReader::with_capacity(1 << 16, file), &chain).map_err(|source| AuditError::Io {
        op: IoOp::Read,
        path: path.to_path_buf(),
        source,
    })
}

/// [`verify`] for a log that is not in a file: a network stream, a decompressor,
/// standard input, bytes in memory.
pub fn verify_reader(reader: impl BufRead, key: Option<&[u8]>) -> Result<VerifyReport, AuditError> {
    check(reader, &chain_for(key)?).map_err(AuditError::Read)
}

fn chain_for(key: Option<&[u8]>) -> Result<Chain, AuditError> {
    Ok(Chain::new(key.map(ChainKey::new).transpose()?.as_ref()))
}

fn check(reader: impl BufRead, chain: &Chain) -> io::Result<VerifyReport> {
    let mut lines = Lines { reader, number: 0, chain, done: false }.peekable();
    let mut state = ChainState::default();
    while let Some(line) = lines.next() {
        let line = line?;
        let record = match &line.parsed {
            Ok(record) => record,
            Err(why) => {
                return Ok(state.report(line.number, None, ProblemKind::Malformed(why.clone())));
            }
        };
        let next = peek_intact(&mut lines);
        if !record.intact {
            let kind = match line.number {
                1 => first_record_mismatch(chain, &line.bytes, next.is_some()),
                _ => ProblemKind::HashMismatch,
            };
            return Ok(state.report(line.number, Some(record.seq), kind));
        }
        match state.link_problem(record, next) {
            None => state.accept(record),
            Some(Blame::This(kind)) => return Ok(state.report(line.number, Some(record.seq), kind)),
            Some(Blame::Previous) => return Ok(state.report_previous_inserted(line.number)),
        }
    }
    Ok(state.report_intact())
}

fn peek_intact<I: Iterator<Item = io::Result<Line>>>(lines: &mut Peekable<I>) -> Option<&Parsed> {
    match lines.peek() {
        Some(Ok(Line { parsed: Ok(next), .. })) if next.intact => Some(next),
        _ => None,
    }
}

/// Names a hash failure on the first line, where a wrong or missing key is the likelier
/// cause than tampering: if the next record verifies, the key is right and line 1 was
/// modified; if line 1 verifies as plain SHA-256, the log simply has no key.
pub(crate) fn first_record_mismatch(chain: &Chain, line: &[u8], next_verifies: bool) -> ProblemKind {
    if next_verifies {
        return ProblemKind::HashMismatch;
    }
    if !chain.is_keyed() {
        return ProblemKind::KeyRequired;
    }
    let unkeyed =
        Record::parse(line.strip_suffix(b"\n").unwrap_or(line)).is_ok_and(|record| record.is_intact(&Chain::Sha256));
    if unkeyed { ProblemKind::NotKeyed } else { ProblemKind::WrongKey }
}

/// What the verifier knows about the chain so far.
struct ChainState {
    /// Records accepted.
    records: u64,
    /// The seq the next record must have.
    expected: u64,
    /// The hash the next record's `prev` must equal.
    last: Digest,
    /// The hash before `last`, to recognise a record that imitated its successor.
    before_last: Option<Digest>,
}

impl Default for ChainState {
    fn default() -> Self {
        Self { records: 0, expected: 1, last: GENESIS, before_last: None }
    }
}

impl ChainState {
    fn fits(&self, record: &Parsed) -> bool {
        record.seq == self.expected && record.prev == self.last
    }

    /// Why `record` (intact) does not continue the chain, if it does not.
    fn link_problem(&self, record: &Parsed, next: Option<&Parsed>) -> Option<Blame> {
        let (expected, found) = (self.expected, record.seq);
        if self.fits(record) {
            return None;
        }
        if self.records > 0 && record.hash == self.last {
            return Some(Blame::This(ProblemKind::Duplicated));
        }
        if next.is_some_and(|next| self.fits(next)) {
            // The chain goes on without this record: a swap with its successor if it
            // carries the very next seq, otherwise something slipped in.
            return Some(Blame::This(if Some(found) == expected.checked_add(1) {
                ProblemKind::Reordered { expected, found }
            } else {
                ProblemKind::Inserted
            }));
        }
        if self.before_last == Some(record.prev) && Some(found) == self.last_seq() {
            // This record and the previous one claim the same predecessor and seq. The
            // previous one was accepted first, but the chain goes on from this one.
            return Some(Blame::Previous);
        }
        Some(Blame::This(if found > expected {
            match next {
                Some(next) if next.seq == expected => ProblemKind::Reordered { expected, found },
                _ => ProblemKind::Missing { expected, found },
            }
        } else if found < expected {
            ProblemKind::Reordered { expected, found }
        } else {
            ProblemKind::BrokenLink
        }))
    }

    fn last_seq(&self) -> Option<u64> {
        (self.records > 0).then(|| self.expected.saturating_sub(1))
    }

    fn accept(&mut self, record: &Parsed) {
        self.records += 1;
        self.expected = record.seq.saturating_add(1);
        self.before_last = Some(self.last);
        self.last = record.hash;
    }

    fn report(&self, line: u64, seq: Option<u64>, kind: ProblemKind) -> VerifyReport {
        let head = self.last_seq().map(|seq| ChainHead::new(seq, &self.last));
        VerifyReport { records: self.records, head, first_problem: Some(Problem { line, seq, kind }) }
    }

    /// The record before line `line` was accepted, but was an insertion: take it back.
    fn report_previous_inserted(&self, line: u64) -> VerifyReport {
        let records = self.records.saturating_sub(1);
        let head = match (records, self.before_last) {
            (1.., Some(before)) => Some(ChainHead::new(self.expected.saturating_sub(2), &before)),
            _ => None,
        };
        let problem = Problem { line: line.saturating_sub(1), seq: self.last_seq(), kind: ProblemKind::Inserted };
        VerifyReport { records, head, first_problem: Some(problem) }
    }

    fn report_intact(&self) -> VerifyReport {
        let head = self.last_seq().map(|seq| ChainHead::new(seq, &self.last));
        VerifyReport { records: self.records, head, first_problem: None }
    }
}

/// Which record a chain problem is blamed on.
enum Blame {
    /// The record being checked.
    This(ProblemKind),
    /// The record before it, which was an insertion.
    Previous,
}

/// The parts of a record the chain checks need, with its hash already checked.
#[derive(Debug)]
struct Parsed {
    seq: u64,
    prev: Digest,
    hash: Digest,
    intact: bool,
}

struct Line {
    number: u64,
    bytes: Vec<u8>,
    parsed: Result<Parsed, Malformed>,
}

/// Records of a log, read one line at a time, never more than [`MAX_RECORD_BYTES`].
struct Lines<'c, R> {
    reader: R,
    number: u64,
    chain: &'c Chain,
    /// Set after a line that ends the readable part of the file.
    done: bool,
}

impl<R: BufRead> Iterator for Lines<'_, R> {
    type Item = io::Result<Line>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut bytes = Vec::with_capacity(512);
        let limit = u64::try_from(MAX_RECORD_BYTES).unwrap_or(u64::MAX);
        match self.reader.by_ref().take(limit).read_until(b'\n', &mut bytes) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(Err(e)),
        }
        self.number += 1;
        let parsed = match bytes.strip_suffix(b"\n") {
            Some(line) => Record::parse(line).map(|record| Parsed {
                seq: record.seq,
                prev: record.prev,
                hash: record.hash,
                intact: record.is_intact(self.chain),
            }),
            None => {
                self.done = true;
                Err(match bytes.len() >= MAX_RECORD_BYTES {
                    true => Malformed::TooLong { limit: MAX_RECORD_BYTES },
                    false => Malformed::Incomplete,
                })
            }
        };
        Some(Ok(Line { number: self.number, bytes, parsed }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileSink, FileSinkOptions, FsyncPolicy, NewEvent, Outcome, Reason, SecurityEvent, Usage};
    use proptest::prelude::*;
    use serde_json::json;
    use time::macros::datetime;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn new_event(i: usize) -> NewEvent {
        let outcome = if i % 3 == 0 { Outcome::Denied } else { Outcome::Allowed };
        NewEvent::new("alice", "exec", outcome).detail("i", i)
    }

    /// A valid log of `events`, encoded exactly as `FileSink` encodes.
    fn build(events: &[NewEvent], key: Option<&[u8]>) -> Vec<u8> {
        let chain = chain_for(key).unwrap();
        let (mut prev, mut log, mut line) = (GENESIS, Vec::new(), Vec::new());
        for (seq, event) in (1..).zip(events) {
            let time = datetime!(2025-01-31 12:00:00 UTC) + time::Duration::milliseconds(seq as i64);
            let event = SecurityEvent::from_new(seq, time, event.clone());
            prev = chain.encode(&event, &prev, &mut line).unwrap();
            log.extend_from_slice(&line);
        }
        log
    }

    fn log_of(n: usize, key: Option<&[u8]>) -> Vec<u8> {
        build(&(0..n).map(new_event).collect::<Vec<_>>(), key)
    }

    fn lines(log: &[u8]) -> Vec<Vec<u8>> {
        log.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
    }

    fn check_bytes(log: &[u8], key: Option<&[u8]>) -> VerifyReport {
        verify_reader(log, key).unwrap()
    }

    fn problem(log: &[u8], key: Option<&[u8]>) -> Problem {
        check_bytes(log, key).first_problem.expect("a problem")
    }

    fn problem_in(lines: &[Vec<u8>], key: Option<&[u8]>) -> Problem {
        problem(&lines.concat(), key)
    }

    #[test]
    fn an_intact_log_verifies_with_its_head() {
        for key in [None, Some(KEY)] {
            let report = check_bytes(&log_of(5, key), key);
            assert_eq!((report.records, report.first_problem), (5, None));
            let last = lines(&log_of(5, key)).pop().unwrap();
            let hash = std::str::from_utf8(&last[last.len() - 67..last.len() - 3]).unwrap();
            assert_eq!(report.head, Some(ChainHead { seq: 5, hash: hash.into() }));
        }
        let empty = check_bytes(b"", None);
        assert_eq!((empty.records, empty.head, empty.first_problem), (0, None, None));
    }

    #[test]
    fn a_modified_record_is_a_hash_mismatch() {
        let mut lines = lines(&log_of(5, Some(KEY)));
        lines[2] = String::from_utf8(lines[2].clone()).unwrap().replace("allowed", "denied").into_bytes();
        let problem = problem_in(&lines, Some(KEY));
        assert_eq!(problem.to_string(), "line 3 (seq 3): hash mismatch: the record was modified");
        // Line 1 is judged by whether line 2 verifies: here it does, so it is tampering.
        let mut lines = self::lines(&log_of(5, Some(KEY)));
        lines[0] = String::from_utf8(lines[0].clone()).unwrap().replace("alice", "alicf").into_bytes();
        assert_eq!(problem_in(&lines, Some(KEY)).kind, ProblemKind::HashMismatch);
    }

    #[test]
    fn deleted_records_are_missing() {
        let mut lines = lines(&log_of(5, None));
        lines.remove(2);
        let problem = problem_in(&lines, None);
        assert_eq!((problem.line, problem.seq), (3, Some(4)));
        assert_eq!(problem.kind, ProblemKind::Missing { expected: 3, found: 4 });
        assert_eq!(problem.to_string(), "line 3 (seq 4): seq 4 follows seq 2: 1 record(s) deleted");

        let mut lines = self::lines(&log_of(5, None));
        lines.drain(..2);
        assert_eq!(problem_in(&lines, None).kind, ProblemKind::Missing { expected: 1, found: 3 });
    }

    #[test]
    fn swapped_records_are_reordered() {
        let mut lines = lines(&log_of(5, None));
        lines.swap(1, 2);
        let problem = problem_in(&lines, None);
        assert_eq!((problem.line, problem.seq), (2, Some(3)));
        assert_eq!(problem.kind, ProblemKind::Reordered { expected: 2, found: 3 });
    }

    #[test]
    fn copies_are_duplicates_or_insertions() {
        let original = lines(&log_of(5, None));
        let mut lines = original.clone();
        lines.insert(3, lines[2].clone());
        let problem = problem_in(&lines, None);
        assert_eq!((problem.line, problem.seq, problem.kind), (4, Some(3), ProblemKind::Duplicated));

        // A replay of record 2 between 4 and 5: the chain goes on without it.
        let mut lines = original.clone();
        lines.insert(4, lines[1].clone());
        let problem = problem_in(&lines, None);
        assert_eq!((problem.line, problem.seq, problem.kind), (5, Some(2), ProblemKind::Inserted));

        // A replay at the very end.
        let mut lines = original;
        lines.push(lines[1].clone());
        let problem = problem_in(&lines, None);
        assert_eq!(problem.kind, ProblemKind::Reordered { expected: 6, found: 2 });
    }

    #[test]
    fn a_forged_record_that_fits_is_found_by_its_successor() {
        // Without a key, a forger can compute a perfect record 3 chained to record 2...
        let mut events: Vec<NewEvent> = (0..5).map(new_event).collect();
        events[2] = NewEvent::new("alice", "exec", Outcome::Allowed).detail("forged", true);
        let forged = lines(&build(&events, None));
        let mut lines = lines(&log_of(5, None));
        lines.insert(2, forged[2].clone());
        // ...but the real record 3 still links to record 2, so the forgery stands out.
        let report = check_bytes(&lines.concat(), None);
        let problem = report.first_problem.unwrap();
        assert_eq!((problem.line, problem.seq, problem.kind), (3, Some(3), ProblemKind::Inserted));
        assert_eq!((report.records, report.head.map(|h| h.seq)), (2, Some(2)));

        // A foreign record (another log, same key) slipped in is an insertion too.
        let foreign = self::lines(&build(&[NewEvent::new("x", "y", Outcome::Error)], Some(KEY)));
        let mut lines = self::lines(&log_of(3, Some(KEY)));
        lines.insert(1, foreign[0].clone());
        let problem = problem_in(&lines, Some(KEY));
        assert_eq!((problem.line, problem.kind), (2, ProblemKind::Inserted));
    }

    #[test]
    fn a_rehashed_record_breaks_the_next_link() {
        // Without a key, record 3 can be rewritten with a matching hash; record 4 then
        // no longer links to it.
        let mut events: Vec<NewEvent> = (0..5).map(new_event).collect();
        let real = lines(&build(&events, None));
        events[2] = events[2].clone().detail("i", 99);
        let rewritten = lines(&build(&events, None));
        let mut lines = real;
        lines[2] = rewritten[2].clone();
        let problem = problem_in(&lines, None);
        assert_eq!((problem.line, problem.seq, problem.kind), (4, Some(4), ProblemKind::BrokenLink));
    }

    #[test]
    fn truncation_is_invisible_without_an_anchor() {
        let log = log_of(5, None);
        let full = check_bytes(&log, None);
        let mut lines = lines(&log);
        lines.pop();
        let cut = check_bytes(&lines.concat(), None);
        assert!(cut.is_intact(), "documented limit: a clean cut verifies");
        assert_ne!(cut.head, full.head, "but the head no longer matches an anchored one");
    }

    #[test]
    fn a_torn_final_record_is_incomplete() {
        let log = log_of(3, None);
        let problem = problem(&log[..log.len() - 1], None);
        assert_eq!((problem.line, problem.seq), (3, None));
        assert_eq!(problem.kind, ProblemKind::Malformed(Malformed::Incomplete));
        let problem = self::problem(&log[..log.len() - 40], None);
        assert_eq!(problem.kind, ProblemKind::Malformed(Malformed::Incomplete));
    }

    #[test]
    fn keys_are_required_checked_and_not_invented() {
        let keyed = log_of(3, Some(KEY));
        let plain = log_of(3, None);
        assert_eq!(problem(&keyed, None).kind, ProblemKind::KeyRequired);
        assert_eq!(problem(&keyed, Some(&[b'k'; 32])).kind, ProblemKind::WrongKey);
        assert_eq!(problem(&plain, Some(KEY)).kind, ProblemKind::NotKeyed);
        assert_eq!(problem(&plain, Some(KEY)).line, 1);
        assert!(matches!(verify_reader(&keyed[..], Some(b"short")), Err(AuditError::KeyTooShort { len: 5, min: 16 })));
    }

    #[test]
    fn hex_case_is_significant() {
        let log = log_of(2, None);
        let mut lines = lines(&log);
        let last = lines[1].len();
        let hash = &mut lines[1][last - 67..last - 3];
        let letter = hash.iter().position(u8::is_ascii_lowercase).expect("a hex letter");
        hash[letter] = hash[letter].to_ascii_uppercase();
        let problem = problem_in(&lines, None);
        assert_eq!((problem.line, problem.kind), (2, ProblemKind::Malformed(Malformed::ChainFields)));
    }

    /// Exhaustive over a small log: every byte position, changed to its other letter
    /// case (or the bit flip that stands for it) and to its successor, is detected.
    #[test]
    fn every_position_of_a_small_log_is_covered() {
        for key in [None, Some(KEY)] {
            let log = log_of(3, key);
            for at in 0..log.len() {
                for changed in [log[at] ^ 0x20, log[at].wrapping_add(1)] {
                    let mut copy = log.clone();
                    copy[at] = changed;
                    let report = check_bytes(&copy, key);
                    assert!(report.first_problem.is_some(), "byte {at} set to {changed:#x}: {report:?}");
                }
            }
        }
    }

    #[test]
    fn overlong_lines_are_refused_without_reading_them_whole() {
        let mut log = log_of(1, None);
        log.extend(std::iter::repeat_n(b'x', 3 * MAX_RECORD_BYTES));
        let problem = problem(&log, None);
        assert_eq!(problem.line, 2);
        assert_eq!(problem.kind, ProblemKind::Malformed(Malformed::TooLong { limit: MAX_RECORD_BYTES }));
    }

    #[test]
    fn verify_reports_an_unreadable_file_as_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = verify(dir.path().join("missing.log"), None).unwrap_err();
        assert!(matches!(err, AuditError::Io { op: IoOp::Open, .. }), "{err}");
    }

    fn arb_text() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), "[a-z.\"\\\\\n]{0,12}"]
    }

    fn arb_event() -> impl Strategy<Value = NewEvent> {
        let outcome = prop_oneof![Just(Outcome::Allowed), Just(Outcome::Denied), Just(Outcome::Error)];
        let details = prop::collection::vec(
            (arb_text(), prop_oneof![any::<i64>().prop_map(|n| json!(n)), arb_text().prop_map(|s| json!(s))]),
            0..3,
        );
        let usage = prop::option::of((any::<Option<u64>>(), any::<Option<u64>>()));
        let reason = prop::option::of((arb_text(), arb_text()));
        (arb_text(), prop::option::of(arb_text()), arb_text(), outcome, reason, details, usage).prop_map(
            |(actor, sandbox, action, outcome, reason, details, usage)| {
                let mut event = NewEvent::new(actor, action, outcome);
                if let Some(sandbox) = sandbox {
                    event = event.sandbox(sandbox);
                }
                if let Some(Reason { code, message }) = reason.map(|(c, m)| Reason::new(c, m)) {
                    event = event.reason(code, message);
                }
                for (key, value) in details {
                    event = event.detail(key, value);
                }
                if let Some((wall, cpu)) = usage {
                    let mut usage = Usage::new();
                    usage.wall_ms = wall;
                    usage.cpu_ms = cpu;
                    event = event.usage(usage);
                }
                event
            },
        )
    }

    fn arb_log() -> impl Strategy<Value = (Vec<u8>, Option<&'static [u8]>)> {
        (prop::collection::vec(arb_event(), 1..8), any::<bool>()).prop_map(|(events, keyed)| {
            let key = keyed.then_some(KEY);
            (build(&events, key), key)
        })
    }

    proptest! {
        #[test]
        fn generated_logs_verify((log, key) in arb_log()) {
            let report = check_bytes(&log, key);
            prop_assert_eq!(report.first_problem, None);
            prop_assert_eq!(report.records, lines(&log).len() as u64);
        }

        /// Any single changed byte, anywhere (newlines and hex digits included), is found.
        #[test]
        fn every_flipped_byte_is_detected(
            (log, key) in arb_log(),
            position in any::<prop::sample::Index>(),
            delta in 1u8..=255,
        ) {
            let mut log = log;
            let at = position.index(log.len());
            log[at] = log[at].wrapping_add(delta);
            let report = check_bytes(&log, key);
            prop_assert!(report.first_problem.is_some(), "byte {} changed, report {:?}", at, report);
        }

        /// Deleting (except the last record: truncation), duplicating, or swapping any
        /// records is found.
        #[test]
        fn moved_records_are_detected(
            (log, key) in arb_log(),
            a in any::<prop::sample::Index>(),
            b in any::<prop::sample::Index>(),
            edit in 0..3,
        ) {
            let mut lines = lines(&log);
            let (a, b) = (a.index(lines.len()), b.index(lines.len()));
            match edit {
                0 if a + 1 < lines.len() => { lines.remove(a); }
                0 => {
                    lines.remove(a);
                    let report = check_bytes(&lines.concat(), key);
                    prop_assert_eq!(report.records, a as u64, "a clean cut of the tail verifies");
                    return Ok(());
                }
                1 => { let copy = lines[a].clone(); lines.insert(b, copy); }
                _ if a == b => return Ok(()),
                _ => lines.swap(a, b),
            }
            prop_assert!(check_bytes(&lines.concat(), key).first_problem.is_some());
        }

        /// Arbitrary input never panics, with or without a key.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), keyed in any::<bool>()) {
            let report = check_bytes(&bytes, keyed.then_some(KEY));
            prop_assert!(report.records <= bytes.iter().filter(|&&b| b == b'\n').count() as u64);
        }

        /// Valid logs cut and spliced at random points never panic either, and a splice
        /// that changes the content is found.
        #[test]
        fn spliced_logs_never_panic(
            (log, key) in arb_log(),
            cut in any::<prop::sample::Index>(),
            len in 0usize..200,
            junk in prop::collection::vec(any::<u8>(), 0..40),
        ) {
            let start = cut.index(log.len());
            let end = (start + len).min(log.len());
            let spliced = [&log[..start], &junk[..], &log[end..]].concat();
            let report = check_bytes(&spliced, key);
            // A splice can only pass if it removed whole trailing records.
            if report.is_intact() && spliced != log {
                prop_assert!(log.starts_with(&spliced) && spliced.ends_with(b"\n") || spliced.is_empty());
            }
        }

        /// Closing and reopening a file log any number of times continues one chain.
        #[test]
        fn reopened_logs_continue_the_chain(
            batches in prop::collection::vec(prop::collection::vec(arb_event(), 0..4), 1..4),
            keyed in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("audit.jsonl");
            let key = keyed.then_some(KEY);
            let mut total = 0;
            for batch in &batches {
                let mut options = FileSinkOptions::new().fsync(FsyncPolicy::Never);
                if let Some(key) = key {
                    options = options.key(ChainKey::new(key).unwrap());
                }
                let log = crate::AuditLog::new(FileSink::open(&path, options).unwrap());
                for event in batch {
                    total += 1;
                    prop_assert_eq!(log.record(event.clone()).unwrap().seq, total);
                }
            }
            let report = verify(&path, key).unwrap();
            prop_assert_eq!(report.first_problem, None);
            prop_assert_eq!(report.records, total);
        }
    }
}
