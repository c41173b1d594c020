//! `shell_quote`: every byte string without NUL comes back from a real `dash` exactly as it went in.
//!
//! Starting a shell per input would cap a campaign at a few hundred inputs a second, so one `dash`
//! process serves every input of a run. It reads commands from a pipe and answers on another;
//! each command is followed by a *frame marker* command, and the answer is everything up to that
//! marker's output:
//!
//! ```text
//! we send:     printf '%s\0' <quoted words> END\n
//!              printf '\0%s\0' sg-frame-<128 random bits>\n
//! dash prints: word1\0 word2\0 … END\0 \0sg-frame-<128 random bits>\0
//! ```
//!
//! A correct answer is any sequence of NUL-terminated words, so *any* marker could in principle
//! be printed by an input that contains it as a word. The marker is therefore unpredictable and
//! chosen after the input is known: 128 bits drawn fresh for every command from a randomly keyed
//! hash, and drawn again in the (astronomically unlikely) case that the command contains them.
//! A counter-based marker is not enough: libFuzzer's comparison tracing sees the bytes the
//! framing compares, and within a minute it learnt one and planted it in an input, which split the
//! answer early.
//!
//! A quoting bug shows as a different answer, as an error message (stderr goes to the same pipe),
//! as dash exiting (a syntax error ends a non-interactive shell), or as no answer at all when an
//! unterminated quote swallows the marker: the exchange times out after [`ANSWER_TIMEOUT`].
//!
//! The shell runs with an empty environment, `PATH=/nonexistent` (so only builtins run, should
//! quoting break) and `LC_ALL=C`, in a fresh directory holding a few files for a stray glob to
//! match. After any violation the process is
//! replaced, so one broken input cannot leave state that changes the verdict on the next.

use std::ffi::OsStr;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sandguard_policy::shell::{self, Argv, QuoteError};

use crate::{Violation, violation};

/// How long dash may take to answer one command before the oracle calls it stuck.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Files in dash's working directory, for globs to match.
const GLOB_BAIT: [&str; 5] = ["a", "b", "ab", "-n", ".hidden"];

/// Most words one input is split into.
const MAX_WORDS: usize = 16;

/// One persistent `dash` and the framing state of its conversation.
pub struct DashChild {
    child: Child,
    stdin: ChildStdin,
    chunks: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl DashChild {
    /// Starts `dash` reading commands from a pipe.
    ///
    /// # Panics
    /// When `dash` cannot be started: the target cannot run without it.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory for dash");
        // Names for an unquoted `*`, `?` or `[..]` to match: in an empty directory a glob stays
        // as written, and a quoting bug that lets one through would go unseen.
        for name in GLOB_BAIT {
            // sandguard:allow(path-traversal) -- names from the constant GLOB_BAIT
            std::fs::write(dir.path().join(name), b"").expect("a file in dash's directory");
        }
        let mut child = Command::new(dash_path())
            .env_clear()
            .env("PATH", "/nonexistent")
            .env("LC_ALL", "C")
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dash must be installed for the shell_quote target");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let (sender, chunks) = channel();
        std::thread::spawn(move || {
            let mut buffer = vec![0; 1 << 16];
            while let Ok(n @ 1..) = stdout.read(&mut buffer) {
                if sender.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        // Error messages join the answer, so a mismatch shows what dash complained about.
        stdin.write_all(b"exec 2>&1\n").expect("dash reads its commands");
        Self { child, stdin, chunks, pending: Vec::new(), _dir: dir }
    }

    /// Runs one command line and returns what it printed (stdout and stderr together).
    pub fn run(&mut self, line: &[u8]) -> Result<Vec<u8>, Violation> {
        let marker = loop {
            let marker = format!("sg-frame-{:016x}{:016x}", random_u64(), random_u64());
            if find(line, marker.as_bytes()).is_none() {
                break marker;
            }
        };
        let mut script = line.to_vec();
        script.extend_from_slice(format!("\nprintf '\\0%s\\0' {marker}\n").as_bytes());
        if let Err(error) = self.stdin.write_all(&script) {
            violation!("dash stopped reading commands ({error}); it exited after an earlier command");
        }
        let end = format!("\0{marker}\0").into_bytes();
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            if let Some(at) = find(&self.pending, &end) {
                let answer = self.pending[..at].to_vec();
                self.pending.drain(..at + end.len());
                return Ok(answer);
            }
            match self.chunks.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(chunk) => self.pending.extend_from_slice(&chunk),
                Err(RecvTimeoutError::Timeout) => violation!(
                    "dash gave no answer within {ANSWER_TIMEOUT:?} (an unterminated quote?); so far: {:?}",
                    self.pending.escape_ascii().to_string()
                ),
                Err(RecvTimeoutError::Disconnected) => violation!(
                    "dash exited (a syntax error?) after printing {:?}",
                    self.pending.escape_ascii().to_string()
                ),
            }
        }
    }
}

impl Drop for DashChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dash` as found on the caller's `PATH` (the shell itself gets none).
fn dash_path() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join("dash"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| "dash".into())
}

/// 64 unpredictable bits: each `RandomState` is keyed from the OS's randomness (then stepped),
/// and SipHash output under an unknown key cannot be predicted from earlier outputs.
fn random_u64() -> u64 {
    RandomState::new().build_hasher().finish()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// What `printf '%s\0' <words> END` prints: each word and the end marker, NUL-terminated. The
/// marker tells one empty word from none.
pub fn expected_answer(words: &[&[u8]]) -> Vec<u8> {
    let mut expected = Vec::new();
    for word in words.iter().copied().chain([&b"END"[..]]) {
        expected.extend_from_slice(word);
        expected.push(0);
    }
    expected
}

/// Sends `line` and compares the answer with what `words` must print.
pub fn expect_words(dash: &mut DashChild, line: &[u8], words: &[&[u8]], how: &str) -> Result<(), Violation> {
    let answer = dash.run(line)?;
    let expected = expected_answer(words);
    if answer != expected {
        violation!(
            "{how}: dash read {:?}\n  as {:?}\n  expected {:?}",
            line.escape_ascii().to_string(),
            answer.escape_ascii().to_string(),
            expected.escape_ascii().to_string()
        );
    }
    Ok(())
}

/// The target's oracle on one input, against `dash`.
///
/// The input is split at NUL bytes into words (NUL cannot be in a shell word). The first word
/// alone goes through `quote`, all of them through `join` and through `Argv::to_shell_line`, and
/// dash must print back exactly the words. The whole input, NULs included, must be refused by
/// `quote` with the offset of its first NUL.
pub fn check_with(dash: &mut DashChild, data: &[u8]) -> Result<(), Violation> {
    let words: Vec<&[u8]> = data.split(|&b| b == 0).take(MAX_WORDS).collect();

    match (shell::quote(OsStr::from_bytes(data)), data.iter().position(|&b| b == 0)) {
        (Ok(_), None) => {}
        (Err(QuoteError::Nul { index }), Some(nul)) if index == nul => {}
        (verdict, nul) => violation!("quote of an input whose first NUL is at {nul:?} gave {verdict:?}"),
    }

    let first = words[0];
    let quoted = shell::quote(OsStr::from_bytes(first))
        .map_err(|e| Violation(format!("quote refused a word without NUL: {e}")))?;
    let mut line = b"printf '%s\\0' ".to_vec();
    line.extend_from_slice(quoted.as_bytes());
    line.extend_from_slice(b" END");
    expect_words(dash, &line, &[first], "quote")?;

    if words.len() > 1 {
        let joined = shell::join(words.iter().map(|w| OsStr::from_bytes(w)))
            .map_err(|e| Violation(format!("join refused words without NUL: {e}")))?;
        let mut line = b"printf '%s\\0' ".to_vec();
        line.extend_from_slice(joined.as_bytes());
        line.extend_from_slice(b" END");
        expect_words(dash, &line, &words, "join")?;
    }

    let argv = Argv::new("printf")
        .and_then(|a| a.arg("%s\\0"))
        .and_then(|a| a.with_args(words.iter().map(|w| OsStr::from_bytes(w))))
        .and_then(|a| a.arg("END"))
        .map_err(|e| Violation(format!("Argv refused words without NUL: {e}")))?;
    expect_words(dash, argv.to_shell_line().as_bytes(), &words, "Argv::to_shell_line")
}

/// [`check_with`] against the process-wide dash, which is replaced after a violation.
pub fn check(data: &[u8]) -> Result<(), Violation> {
    static DASH: OnceLock<Mutex<Option<DashChild>>> = OnceLock::new();
    let mut slot = DASH.get_or_init(|| Mutex::new(None)).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dash = slot.get_or_insert_with(DashChild::start);
    let verdict = check_with(dash, data);
    if verdict.is_err() {
        *slot = None;
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_dash_serves_many_inputs() {
        let mut dash = DashChild::start();
        for input in [&b"plain"[..], b"", b"it's", b"a\nb", b"$(id)", b"\xff\x80", b"a\0b c\0", b"\0\0"] {
            check_with(&mut dash, input).unwrap();
        }
    }

    #[test]
    fn the_oracle_fails_on_broken_quoting() {
        let mut dash = DashChild::start();
        // Unquoted words split, expand and glob.
        assert!(expect_words(&mut dash, b"printf '%s\\0' a b END", &[b"a b"], "bare").is_err());
        assert!(expect_words(&mut dash, b"printf '%s\\0' $HOME END", &[b"$HOME"], "bare").is_err());
        assert!(expect_words(&mut dash, b"printf '%s\\0' ? END", &[b"?"], "bare").is_err());
        // An unterminated quote swallows the frame marker: the exchange times out, and the
        // process is replaced by `check`, never reused.
        let stuck = expect_words(&mut dash, b"printf '%s\\0' 'open END", &[b"open"], "bare").unwrap_err();
        assert!(stuck.0.contains("no answer"), "{stuck}");
        // A syntax error ends dash.
        let mut dash = DashChild::start();
        let exited = expect_words(&mut dash, b"printf '%s\\0' ( END", &[b"("], "bare").unwrap_err();
        assert!(exited.0.contains("exited") || exited.0.contains("read"), "{exited}");
    }
}
