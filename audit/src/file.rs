//! The tamper-evident file log: one hash-chained JSON record per line.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::chain::{Chain, Digest, GENESIS, Record};
use crate::verify::first_record_mismatch;
use crate::{
    AuditError, AuditSink, ChainHead, ChainKey, IoOp, MAX_RECORD_BYTES, Malformed, ProblemKind, SecurityEvent,
};

/// When a [`FileSink`] asks the kernel to put records on the disk (`fdatasync`).
///
/// Records that reached the kernel survive a crash of the process but not of the
/// machine; only a sync makes them survive a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Never sync. Records reach the kernel when the 64 KiB buffer fills, on
    /// [`flush`](AuditSink::flush) and on drop. For tests and throwaway logs.
    Never,
    /// Write and sync every record before [`write`](AuditSink::write) returns. Every
    /// acknowledged record is durable; each one costs a disk round trip, during which
    /// other callers of [`AuditLog::record`](crate::AuditLog::record) wait.
    Always,
    /// `write` returns once the record is buffered; a background thread writes and syncs
    /// everything buffered at most `max_delay` after it arrives, one sync for the whole
    /// batch, and without holding the lock writers need. [`flush`](AuditSink::flush)
    /// syncs at once; dropping the sink syncs and stops the thread. A machine crash
    /// loses at most the last `max_delay` of records (plus the sync's own duration).
    GroupCommit {
        /// The longest a record waits before its sync starts.
        max_delay: Duration,
    },
}

impl Default for FsyncPolicy {
    /// Group commit every 5 ms: hundreds of thousands of records per second, and a crash
    /// window shorter than most operations take.
    fn default() -> Self {
        Self::GroupCommit { max_delay: Duration::from_millis(5) }
    }
}

/// How [`FileSink::open`] opens a log.
///
/// ```
/// use std::time::Duration;
/// use sandguard_audit::{ChainKey, FileSinkOptions, FsyncPolicy};
///
/// let options = FileSinkOptions::new()
///     .key(ChainKey::new(&[0x5a; 32])?)
///     .fsync(FsyncPolicy::GroupCommit { max_delay: Duration::from_millis(2) });
/// # let _ = options;
/// # Ok::<(), sandguard_audit::AuditError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct FileSinkOptions {
    key: Option<ChainKey>,
    fsync: FsyncPolicy,
    truncate_torn_tail: bool,
}

impl FileSinkOptions {
    /// No key, [`FsyncPolicy::default`], torn tails refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Chain with HMAC-SHA256 under `key` instead of plain SHA-256. An existing log must
    /// have been written with the same key.
    pub fn key(mut self, key: ChainKey) -> Self {
        self.key = Some(key);
        self
    }

    /// When to sync records to the disk.
    pub fn fsync(mut self, policy: FsyncPolicy) -> Self {
        self.fsync = policy;
        self
    }

    /// Whether opening a log whose last line is incomplete (a write torn by a crash)
    /// cuts that line off, with a warning through `tracing`, instead of refusing to
    /// open. Off by default: the cut bytes are gone for good, so an operator should
    /// choose it.
    pub fn truncate_torn_tail(mut self, truncate: bool) -> Self {
        self.truncate_torn_tail = truncate;
        self
    }
}

/// An [`AuditSink`] that appends events to a hash-chained log file.
///
/// Each line is the event's JSON with `prev` (the previous record's hash) and `hash`
/// appended; see the [crate documentation](crate#the-log-file) for the format and
/// [`verify`](crate::verify()) for checking it. The file is created with mode `0600`.
///
/// Opening an existing log resumes its chain: the last record is read and must verify
/// (under the same key) before anything is appended, so a sink never extends a chain it
/// cannot vouch for. [`AuditLog`](crate::AuditLog) then continues after its seq.
///
/// After a failed write or sync the sink refuses all further writes
/// ([`AuditError::Disabled`]): the file may end in part of a record, or the kernel may
/// have dropped data it had accepted, so only reopening, which re-reads and re-checks
/// the tail, can resume safely.
///
/// One sink per file: two writers, in one process or two, would fork the chain.
///
/// ```
/// use sandguard_audit::{AuditLog, FileSink, FileSinkOptions, NewEvent, Outcome};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("audit.jsonl");
/// let log = AuditLog::new(FileSink::open(&path, FileSinkOptions::new())?);
/// log.record(NewEvent::new("alice", "sandbox.create", Outcome::Allowed))?;
/// log.flush()?; // durable now, without waiting for the group commit
/// drop(log);
///
/// // Reopening continues the chain.
/// let log = AuditLog::new(FileSink::open(&path, FileSinkOptions::new())?);
/// assert_eq!(log.record(NewEvent::new("alice", "exec", Outcome::Allowed))?.seq, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FileSink {
    shared: Arc<Shared>,
    /// The group-commit thread, if the policy has one.
    syncer: Option<JoinHandle<()>>,
}

struct Shared {
    path: PathBuf,
    chain: Chain,
    policy: FsyncPolicy,
    writer: Mutex<Writer>,
    /// Wakes the group-commit thread when records become pending, and on shutdown.
    wake: Condvar,
    /// A second handle on the file, so syncs can run without holding `writer`.
    sync_file: File,
}

struct Writer {
    out: BufWriter<File>,
    /// Reused for every record to avoid an allocation per event.
    line: Vec<u8>,
    next_seq: u64,
    last_hash: Digest,
    /// Records are buffered or written but not yet synced by the group commit.
    dirty: bool,
    /// The sink is being dropped; the group-commit thread must exit.
    stop: bool,
    /// The first failure; once set, nothing more is written.
    failed: Option<(IoOp, io::ErrorKind)>,
}

impl Writer {
    /// Disables the writer after an I/O error and returns the error to report.
    fn fail(&mut self, op: IoOp, source: io::Error, path: &Path) -> AuditError {
        self.failed.get_or_insert((op, source.kind()));
        AuditError::Io { op, path: path.to_path_buf(), source }
    }
}

impl FileSink {
    /// Opens (creating with mode `0600` if needed) the log at `path` for appending.
    ///
    /// # Errors
    ///
    /// [`AuditError::Io`] if the file cannot be opened, read or (for a new file) its
    /// directory synced; [`AuditError::UnverifiedTail`] if the last record does not
    /// verify, under this key, or the file ends inside a record and
    /// [`truncate_torn_tail`](FileSinkOptions::truncate_torn_tail) is off.
    pub fn open(path: impl AsRef<Path>, options: FileSinkOptions) -> Result<Self, AuditError> {
        let path = path.as_ref().to_path_buf();
        let io_error = |op| {
            let path = path.clone();
            move |source| AuditError::Io { op, path, source }
        };
        let (mut file, created) = open_file(&path).map_err(io_error(IoOp::Open))?;
        if created && options.fsync != FsyncPolicy::Never {
            // A new file's name is durable only once its directory is synced.
            sync_dir(&path).map_err(io_error(IoOp::SyncDir))?;
        }
        let chain = Chain::new(options.key.as_ref());
        let (next_seq, last_hash) = resume(&mut file, &path, &chain, options.truncate_torn_tail)?;
        let sync_file = file.try_clone().map_err(io_error(IoOp::Open))?;
        let shared = Arc::new(Shared {
            chain,
            policy: options.fsync,
            writer: Mutex::new(Writer {
                out: BufWriter::with_capacity(1 << 16, file),
                line: Vec::with_capacity(1024),
                next_seq,
                last_hash,
                dirty: false,
                stop: false,
                failed: None,
            }),
            wake: Condvar::new(),
            sync_file,
            path: path.clone(),
        });
        let syncer = match options.fsync {
            FsyncPolicy::GroupCommit { max_delay } => {
                let thread_shared = Arc::clone(&shared);
                let handle = std::thread::Builder::new()
                    .name("sandguard-audit-sync".into())
                    .spawn(move || group_commit(&thread_shared, max_delay))
                    .map_err(io_error(IoOp::SpawnThread))?;
                Some(handle)
            }
            FsyncPolicy::Never | FsyncPolicy::Always => None,
        };
        Ok(Self { shared, syncer })
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The newest record written (buffered or not), or `None` for an empty log.
    ///
    /// Publishing it somewhere the attacker cannot write, now and then, is what makes
    /// cutting records off the end of the file detectable.
    pub fn head(&self) -> Option<ChainHead> {
        let writer = self.shared.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let seq = writer.next_seq.checked_sub(1).filter(|&seq| seq > 0)?;
        Some(ChainHead::new(seq, &writer.last_hash))
    }

    fn lock(&self) -> Result<MutexGuard<'_, Writer>, AuditError> {
        let writer = self.shared.writer.lock().map_err(|_| AuditError::Poisoned)?;
        match writer.failed {
            Some((op, kind)) => Err(AuditError::Disabled { path: self.shared.path.clone(), op, kind }),
            None => Ok(writer),
        }
    }
}

impl fmt::Debug for FileSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSink")
            .field("path", &self.shared.path)
            .field("keyed", &self.shared.chain.is_keyed())
            .field("fsync", &self.shared.policy)
            .field("head", &self.head())
            .finish()
    }
}

impl AuditSink for FileSink {
    fn write(&self, event: &SecurityEvent) -> Result<(), AuditError> {
        let shared = &*self.shared;
        let mut guard = self.lock()?;
        let writer = &mut *guard;
        if event.seq != writer.next_seq {
            return Err(AuditError::OutOfSequence { expected: writer.next_seq, found: event.seq });
        }
        let next_seq = event.seq.checked_add(1).ok_or(AuditError::SeqExhausted)?;
        // Encoding failures write nothing, so they leave the sink usable.
        let hash = shared.chain.encode(event, &writer.last_hash, &mut writer.line)?;
        if let Err(e) = writer.out.write_all(&writer.line) {
            return Err(writer.fail(IoOp::Write, e, &shared.path));
        }
        writer.next_seq = next_seq;
        writer.last_hash = hash;
        match shared.policy {
            FsyncPolicy::Never => {}
            FsyncPolicy::Always => {
                if let Err(e) = writer.out.flush() {
                    return Err(writer.fail(IoOp::Write, e, &shared.path));
                }
                if let Err(e) = writer.out.get_ref().sync_data() {
                    return Err(writer.fail(IoOp::Sync, e, &shared.path));
                }
            }
            FsyncPolicy::GroupCommit { .. } => {
                if !writer.dirty {
                    writer.dirty = true;
                    shared.wake.notify_one();
                }
            }
        }
        Ok(())
    }

    /// Writes buffered records to the file and, unless the policy is
    /// [`FsyncPolicy::Never`], syncs them before returning.
    fn flush(&self) -> Result<(), AuditError> {
        let shared = &*self.shared;
        let mut writer = self.lock()?;
        if let Err(e) = writer.out.flush() {
            return Err(writer.fail(IoOp::Write, e, &shared.path));
        }
        writer.dirty = false;
        drop(writer);
        if shared.policy == FsyncPolicy::Never {
            return Ok(());
        }
        shared.sync_file.sync_data().map_err(|e| shared.sync_failed(e))
    }

    fn last_seq(&self) -> Option<u64> {
        self.head().map(|head| head.seq)
    }
}

impl Shared {
    /// Disables the writer after a failed sync (run without the lock held).
    fn sync_failed(&self, source: io::Error) -> AuditError {
        // After a failed fsync the kernel may have dropped the dirty pages and a retry can
        // report success without having written them, so the failure is final.
        match self.writer.lock() {
            Ok(mut writer) => writer.fail(IoOp::Sync, source, &self.path),
            Err(_) => AuditError::Poisoned,
        }
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if let Some(syncer) = self.syncer.take() {
            if let Ok(mut writer) = self.shared.writer.lock() {
                writer.stop = true;
            }
            self.shared.wake.notify_all();
            if syncer.join().is_err() {
                tracing::error!(path = %self.shared.path.display(), "audit log sync thread panicked");
            }
        }
        if let Err(error) = self.flush() {
            tracing::error!(%error, "audit log: the final flush failed; the last records may be lost");
        }
    }
}

/// The group-commit loop: sleep until records are pending, let more accumulate until
/// `max_delay` has passed since the last sync, then write them and sync once.
fn group_commit(shared: &Shared, max_delay: Duration) {
    let mut last_sync: Option<Instant> = None;
    loop {
        let Ok(mut writer) = shared.writer.lock() else { return };
        while !writer.dirty && !writer.stop {
            let Ok(woken) = shared.wake.wait(writer) else { return };
            writer = woken;
        }
        // After an idle spell the first record is synced at once; under load, records
        // wait for the window so that one sync covers many of them.
        if let Some(deadline) = last_sync.and_then(|at| at.checked_add(max_delay)) {
            while !writer.stop {
                let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
                let Ok((woken, _)) = shared.wake.wait_timeout(writer, left) else { return };
                writer = woken;
            }
        }
        // On stop, Drop does the last flush and sync; after a failure nothing is written.
        if writer.stop || writer.failed.is_some() {
            return;
        }
        if !writer.dirty {
            continue; // an explicit flush() got there first
        }
        writer.dirty = false;
        last_sync = Some(Instant::now());
        if let Err(e) = writer.out.flush() {
            let error = writer.fail(IoOp::Write, e, &shared.path);
            tracing::error!(%error, "audit log group commit failed; the log refuses further writes");
            return;
        }
        drop(writer);
        if let Err(e) = shared.sync_file.sync_data() {
            let error = shared.sync_failed(e);
            tracing::error!(%error, "audit log group commit failed; the log refuses further writes");
            return;
        }
    }
}

/// Opens `path` for reading and appending; creates it (mode `0600`) if it does not
/// exist, and says whether it did.
fn open_file(path: &Path) -> io::Result<(File, bool)> {
    let mut options = OpenOptions::new();
    options.read(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.clone().create_new(true).open(path) {
        Ok(file) => Ok((file, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok((options.open(path)?, false)),
        Err(e) => Err(e),
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    if cfg!(unix) {
        let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty());
        File::open(dir.unwrap_or(Path::new(".")))?.sync_all()?;
    }
    Ok(())
}

/// Reads the last record of an existing log and checks it, returning the seq and `prev`
/// for the next record.
fn resume(file: &mut File, path: &Path, chain: &Chain, truncate_torn_tail: bool) -> Result<(u64, Digest), AuditError> {
    let io_error = |op| move |source| AuditError::Io { op, path: path.to_path_buf(), source };
    let refuse = |seq, kind| AuditError::UnverifiedTail { path: path.to_path_buf(), seq, kind };
    let too_long = || refuse(None, ProblemKind::Malformed(Malformed::TooLong { limit: MAX_RECORD_BYTES }));

    let (mut start, mut tail) = read_tail(file).map_err(io_error(IoOp::Read))?;
    if !tail.is_empty() && !tail.ends_with(b"\n") {
        if !truncate_torn_tail {
            return Err(refuse(None, ProblemKind::Malformed(Malformed::Incomplete)));
        }
        let keep = match tail.iter().rposition(|&b| b == b'\n') {
            Some(newline) => start + newline as u64 + 1,
            None if start == 0 => 0,
            None => return Err(too_long()),
        };
        let len = start + tail.len() as u64;
        tracing::warn!(
            path = %path.display(),
            bytes = len - keep,
            "cutting off an incomplete final audit record (a torn write)"
        );
        file.set_len(keep).map_err(io_error(IoOp::Truncate))?;
        file.sync_data().map_err(io_error(IoOp::Sync))?;
        (start, tail) = read_tail(file).map_err(io_error(IoOp::Read))?;
    }
    let Some(body) = tail.strip_suffix(b"\n") else {
        return Ok((1, GENESIS)); // empty
    };
    let line = match body.iter().rposition(|&b| b == b'\n') {
        Some(newline) => body.get(newline + 1..).unwrap_or_default(),
        None if start == 0 => body,
        None => return Err(too_long()),
    };
    let record = Record::parse(line).map_err(|why| refuse(None, ProblemKind::Malformed(why)))?;
    if !record.is_intact(chain) {
        return Err(refuse(Some(record.seq), first_record_mismatch(chain, line, false)));
    }
    let next_seq = record.seq.checked_add(1).ok_or(AuditError::SeqExhausted)?;
    Ok((next_seq, record.hash))
}

/// The file's last `MAX_RECORD_BYTES + 1` bytes (one whole record and the newline before
/// it), and the offset they start at.
fn read_tail(file: &mut File) -> io::Result<(u64, Vec<u8>)> {
    let len = file.metadata()?.len();
    let window = u64::try_from(MAX_RECORD_BYTES).unwrap_or(u64::MAX).saturating_add(1);
    let start = len.saturating_sub(window);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    // Bounded by the size seen above, not by end of file: a device such as /dev/zero has
    // no end.
    file.take(len - start).read_to_end(&mut tail)?;
    Ok((start, tail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewEvent, Outcome, verify};
    use time::OffsetDateTime;

    fn event(seq: u64) -> SecurityEvent {
        let new = NewEvent::new("alice", "exec", Outcome::Allowed).detail("n", seq);
        SecurityEvent::from_new(seq, OffsetDateTime::now_utc(), new)
    }

    fn never() -> FileSinkOptions {
        FileSinkOptions::new().fsync(FsyncPolicy::Never)
    }

    fn write_events(path: &Path, options: FileSinkOptions, seqs: std::ops::RangeInclusive<u64>) {
        let sink = FileSink::open(path, options).unwrap();
        for seq in seqs {
            sink.write(&event(seq)).unwrap();
        }
    }

    #[test]
    fn appends_verifiable_records_and_resumes_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        write_events(&path, never(), 1..=3);
        let sink = FileSink::open(&path, never()).unwrap();
        assert_eq!(sink.last_seq(), Some(3));
        assert_eq!(sink.head(), verify(&path, None).unwrap().head);
        sink.write(&event(4)).unwrap();
        drop(sink);
        let report = verify(&path, None).unwrap();
        assert_eq!((report.records, report.first_problem), (4, None));
    }

    #[test]
    fn refuses_events_out_of_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::open(dir.path().join("a.log"), never()).unwrap();
        let err = sink.write(&event(2)).unwrap_err();
        assert!(matches!(err, AuditError::OutOfSequence { expected: 1, found: 2 }), "{err}");
        sink.write(&event(1)).unwrap(); // the refusal did not disable the sink
    }

    #[cfg(unix)]
    #[test]
    fn new_logs_are_private_to_their_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        drop(FileSink::open(&path, FileSinkOptions::new()).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn always_puts_each_record_in_the_file_before_returning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let sink = FileSink::open(&path, FileSinkOptions::new().fsync(FsyncPolicy::Always)).unwrap();
        for seq in 1..=3 {
            sink.write(&event(seq)).unwrap();
            assert_eq!(verify(&path, None).unwrap().records, seq);
        }
    }

    #[test]
    fn group_commit_writes_within_the_delay_and_flush_forces_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let policy = FsyncPolicy::GroupCommit { max_delay: Duration::from_millis(20) };
        let sink = FileSink::open(&path, FileSinkOptions::new().fsync(policy)).unwrap();
        sink.write(&event(1)).unwrap();
        // The background thread picks the record up without any further call.
        let deadline = Instant::now() + Duration::from_secs(10);
        while verify(&path, None).unwrap().records < 1 {
            assert!(Instant::now() < deadline, "group commit never wrote the record");
            std::thread::sleep(Duration::from_millis(1));
        }
        sink.write(&event(2)).unwrap();
        sink.flush().unwrap();
        assert_eq!(verify(&path, None).unwrap().records, 2);
        sink.write(&event(3)).unwrap();
        drop(sink); // joins the thread, flushes and syncs
        assert_eq!(verify(&path, None).unwrap().records, 3);
    }

    #[test]
    fn never_keeps_records_buffered_until_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let sink = FileSink::open(&path, never()).unwrap();
        sink.write(&event(1)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        sink.flush().unwrap();
        assert_eq!(verify(&path, None).unwrap().records, 1);
    }

    #[test]
    fn refuses_to_append_after_a_tampered_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        write_events(&path, never(), 1..=2);
        let text = std::fs::read_to_string(&path).unwrap().replace(r#""n":2"#, r#""n":3"#);
        std::fs::write(&path, text).unwrap();
        let err = FileSink::open(&path, never()).unwrap_err();
        assert!(
            matches!(err, AuditError::UnverifiedTail { seq: Some(2), kind: ProblemKind::KeyRequired, .. }),
            "{err}"
        );
    }

    #[test]
    fn refuses_the_wrong_key_and_a_key_for_an_unkeyed_log() {
        let dir = tempfile::tempdir().unwrap();
        let keyed = dir.path().join("keyed.log");
        let plain = dir.path().join("plain.log");
        let key = |byte| ChainKey::new(&[byte; 32]).unwrap();
        write_events(&keyed, never().key(key(1)), 1..=1);
        write_events(&plain, never(), 1..=1);
        let err = FileSink::open(&keyed, never().key(key(2))).unwrap_err();
        assert!(matches!(err, AuditError::UnverifiedTail { kind: ProblemKind::WrongKey, .. }), "{err}");
        let err = FileSink::open(&keyed, never()).unwrap_err();
        assert!(matches!(err, AuditError::UnverifiedTail { kind: ProblemKind::KeyRequired, .. }), "{err}");
        let err = FileSink::open(&plain, never().key(key(1))).unwrap_err();
        assert!(matches!(err, AuditError::UnverifiedTail { kind: ProblemKind::NotKeyed, .. }), "{err}");
        FileSink::open(&keyed, never().key(key(1))).unwrap();
    }

    #[test]
    fn torn_tails_are_refused_unless_truncation_is_chosen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        write_events(&path, never(), 1..=2);
        let whole = std::fs::read(&path).unwrap();
        let first_line = whole.iter().position(|&b| b == b'\n').unwrap() + 1;
        // A crash in the middle of writing record 3.
        std::fs::write(&path, [&whole[..], b"{\"seq\":3,\"ti"].concat()).unwrap();
        let err = FileSink::open(&path, never()).unwrap_err();
        let incomplete = ProblemKind::Malformed(Malformed::Incomplete);
        assert!(matches!(err, AuditError::UnverifiedTail { ref kind, .. } if *kind == incomplete), "{err}");

        let sink = FileSink::open(&path, never().truncate_torn_tail(true)).unwrap();
        assert_eq!(sink.last_seq(), Some(2));
        sink.write(&event(3)).unwrap();
        drop(sink);
        assert!(verify(&path, None).unwrap().is_intact());

        // A torn first record leaves an empty log.
        std::fs::write(&path, &whole[..first_line - 5]).unwrap();
        let sink = FileSink::open(&path, never().truncate_torn_tail(true)).unwrap();
        assert_eq!(sink.last_seq(), None);
    }

    /// `/dev/full` accepts the open and fails every write with ENOSPC.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_failed_write_disables_the_sink_until_reopened() {
        let full = Path::new("/dev/full");
        if !full.exists() {
            return;
        }
        let sink = FileSink::open(full, FileSinkOptions::new().fsync(FsyncPolicy::Always)).unwrap();
        let err = sink.write(&event(1)).unwrap_err();
        assert!(matches!(err, AuditError::Io { op: IoOp::Write, .. }), "{err}");
        let err = sink.write(&event(1)).unwrap_err();
        assert!(matches!(err, AuditError::Disabled { op: IoOp::Write, kind: io::ErrorKind::StorageFull, .. }), "{err}");
        assert!(matches!(sink.flush(), Err(AuditError::Disabled { .. })));

        // With group commit the failure happens on the background thread; writers see it next.
        let policy = FsyncPolicy::GroupCommit { max_delay: Duration::from_millis(1) };
        let sink = FileSink::open(full, FileSinkOptions::new().fsync(policy)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seq = 1;
        loop {
            match sink.write(&event(seq)) {
                Ok(()) => seq += 1,
                Err(AuditError::Disabled { op: IoOp::Write, .. }) => break,
                Err(other) => panic!("unexpected {other}"),
            }
            assert!(Instant::now() < deadline, "the sync thread never reported the failure");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_log_of_garbage_is_refused_without_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        for garbage in [&b"\n"[..], b"{}\n", b"not json\n", &[0xff; 3000], &vec![b'x'; MAX_RECORD_BYTES + 10]] {
            std::fs::write(&path, garbage).unwrap();
            assert!(FileSink::open(&path, never()).is_err());
            assert!(FileSink::open(&path, never().truncate_torn_tail(true)).is_err() || !garbage.contains(&b'\n'));
        }
    }
}
