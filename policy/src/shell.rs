//! POSIX shell quoting that round-trips through dash, bash and zsh, and an argv-first API.
//!
//! Prefer [`Argv`] and no shell at all: [`Argv::to_command`] hands the words straight to `execve`,
//! where nothing is parsed. Quote only when a command line must be text, for a `sh -c` or for a
//! human to read; [`Argv::to_shell_line`] and [`join`] do that.
//!
//! [`quote`] turns any byte string without NUL into one shell word that dash, bash and zsh read
//! back byte for byte, whatever the locale's idea of characters and whatever glob options are set:
//! the word is wrapped in single quotes, inside which every byte is literal, and each `'` is
//! written outside them as `\'`. Words made only of `[A-Za-z0-9_./,:+-]` are left bare, since no
//! shell gives those bytes a meaning; that set deliberately leaves out `=` (zsh expands `=ls`, and
//! `a=b` first on a line is an assignment), `~`, `{`, `#`, `!`, `^`, `%`, `@` and the glob
//! characters. Reserved words such as `if` are quoted too, so they stay commands, not syntax, in
//! the first position of a line.
//!
//! ```
//! use sandguard_policy::shell::{Argv, quote_str};
//!
//! assert_eq!(quote_str("report.txt")?, "report.txt");
//! assert_eq!(quote_str("it's $(id)")?, r"'it'\''s $(id)'");
//!
//! let argv = Argv::new("grep")?.arg("-e")?.arg("a b")?;
//! assert_eq!(argv.to_shell_line(), "grep -e 'a b'");
//! # Ok::<(), sandguard_policy::shell::QuoteError>(())
//! ```

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::Command;

/// Why an argument could not be quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuoteError {
    /// The argument holds a NUL byte, which no shell word and no `execve` argument can carry.
    /// Code `SHELL_ARG_CONTAINS_NUL`.
    #[error("argument contains a NUL byte at offset {index}; no shell word can carry it")]
    Nul {
        /// Byte offset of the first NUL.
        index: usize,
    },
}

impl QuoteError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Nul { .. } => "SHELL_ARG_CONTAINS_NUL",
        }
    }
}

/// Quotes one argument so that any POSIX shell reads it back as exactly one word, byte for byte.
///
/// Borrows when the argument can stand bare; otherwise allocates once, at the exact size.
/// The result is meant for shells running with `LC_ALL=C` or a UTF-8 locale; bytes that are not
/// UTF-8 are kept as they are.
///
/// ```
/// use std::ffi::OsStr;
/// use std::os::unix::ffi::OsStrExt;
/// use sandguard_policy::shell::quote;
///
/// assert_eq!(quote(OsStr::new("=ls"))?, OsStr::new("'=ls'"));
/// assert_eq!(quote(OsStr::from_bytes(b"\xff'"))?, OsStr::from_bytes(b"'\xff'\\'"));
/// assert_eq!(quote(OsStr::new("a\0b")).unwrap_err().code(), "SHELL_ARG_CONTAINS_NUL");
/// # Ok::<(), sandguard_policy::shell::QuoteError>(())
/// ```
pub fn quote(arg: &OsStr) -> Result<Cow<'_, OsStr>, QuoteError> {
    let bytes = arg.as_bytes();
    let plan = Plan::checked(bytes)?;
    if plan.bare {
        return Ok(Cow::Borrowed(arg));
    }
    let mut out = Vec::with_capacity(plan.quoted_len);
    write_quoted(&mut out, bytes);
    Ok(Cow::Owned(OsString::from_vec(out)))
}

/// [`quote`] for text: the result is text as well.
///
/// ```
/// use sandguard_policy::shell::quote_str;
///
/// assert_eq!(quote_str("")?, "''");
/// assert_eq!(quote_str("a=b")?, "'a=b'");
/// assert_eq!(quote_str("'")?, r"\'");
/// # Ok::<(), sandguard_policy::shell::QuoteError>(())
/// ```
pub fn quote_str(arg: &str) -> Result<Cow<'_, str>, QuoteError> {
    let plan = Plan::checked(arg.as_bytes())?;
    if plan.bare {
        return Ok(Cow::Borrowed(arg));
    }
    // Same layout as `write_quoted`, over `str` pieces so the result needs no UTF-8 check: the
    // pieces between `'`s are whole UTF-8 sequences because `'` is ASCII.
    let mut out = String::with_capacity(plan.quoted_len);
    if arg.is_empty() {
        out.push_str("''");
    }
    for (i, piece) in arg.split('\'').enumerate() {
        if i > 0 {
            out.push_str("\\'");
        }
        if !piece.is_empty() {
            out.push('\'');
            out.push_str(piece);
            out.push('\'');
        }
    }
    Ok(Cow::Owned(out))
}

/// Quotes every argument and joins them with single spaces into one command line.
///
/// An empty list gives an empty line.
///
/// ```
/// use sandguard_policy::shell::join;
///
/// assert_eq!(join(["printf", "%s\n", "a b", ""])?, r"printf '%s
/// ' 'a b' ''");
/// # Ok::<(), sandguard_policy::shell::QuoteError>(())
/// ```
pub fn join<I, S>(args: I) -> Result<OsString, QuoteError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut line = Vec::new();
    for (i, arg) in args.into_iter().enumerate() {
        let bytes = arg.as_ref().as_bytes();
        let plan = Plan::checked(bytes)?;
        if i > 0 {
            line.push(b' ');
        }
        plan.write(&mut line, bytes);
    }
    Ok(OsString::from_vec(line))
}

/// A program and its arguments, checked to hold no NUL: the preferred way to run a command.
///
/// Run it with [`to_command`](Self::to_command), which passes every word to `execve` untouched,
/// so no shell ever parses it. Only when a command line must be text, use
/// [`to_shell_line`](Self::to_shell_line).
///
/// ```
/// use sandguard_policy::shell::Argv;
///
/// let argv = Argv::new("ls")?.arg("-l")?.with_args(["my file", "$HOME"])?;
/// assert_eq!(argv.program(), "ls");
/// assert_eq!(argv.args().len(), 3);
/// assert_eq!(argv.to_shell_line(), "ls -l 'my file' '$HOME'");
///
/// let command = argv.to_command();
/// assert_eq!(command.get_args().count(), 3);
///
/// assert_eq!(Argv::new("ls")?.arg("a\0b").unwrap_err().code(), "SHELL_ARG_CONTAINS_NUL");
/// # Ok::<(), sandguard_policy::shell::QuoteError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Argv {
    program: OsString,
    args: Vec<OsString>,
}

impl Argv {
    /// An argv of `program` alone. The program is found by the operating system, as `execvp` does.
    pub fn new(program: impl Into<OsString>) -> Result<Self, QuoteError> {
        Ok(Self { program: without_nul(program.into())?, args: Vec::new() })
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Result<Self, QuoteError> {
        self.args.push(without_nul(arg.into())?);
        Ok(self)
    }

    /// Appends every argument of `args`, in order; on error none is appended.
    pub fn with_args<I, S>(mut self, args: I) -> Result<Self, QuoteError>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let before = self.args.len();
        for arg in args {
            match without_nul(arg.into()) {
                Ok(arg) => self.args.push(arg),
                Err(e) => {
                    self.args.truncate(before);
                    return Err(e);
                }
            }
        }
        Ok(self)
    }

    /// The program: the first word.
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments after the program.
    pub fn args(&self) -> &[OsString] {
        &self.args
    }

    /// Every word, the program first, as `execve` receives them.
    pub fn as_os_strs(&self) -> impl Iterator<Item = &OsStr> + Clone {
        std::iter::once(&self.program).chain(&self.args).map(OsString::as_os_str)
    }

    /// A [`Command`] that runs this argv directly, with no shell in between.
    pub fn to_command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        command
    }

    /// The command line that a POSIX shell parses back into exactly these words, via [`join`].
    pub fn to_shell_line(&self) -> OsString {
        let mut line = Vec::new();
        for (i, word) in self.as_os_strs().enumerate() {
            if i > 0 {
                line.push(b' ');
            }
            // Words were checked for NUL on the way in, so the plan's `nul` is always `None`.
            let bytes = word.as_bytes();
            Plan::of(bytes).write(&mut line, bytes);
        }
        OsString::from_vec(line)
    }
}

fn without_nul(word: OsString) -> Result<OsString, QuoteError> {
    match word.as_bytes().iter().position(|&b| b == 0) {
        Some(index) => Err(QuoteError::Nul { index }),
        None => Ok(word),
    }
}

/// What one pass over an argument learns: whether it may stand bare, how long it is quoted, and
/// where its first NUL is.
#[derive(Clone, Copy)]
struct Plan {
    bare: bool,
    quoted_len: usize,
    nul: Option<usize>,
}

impl Plan {
    /// The plan of a word that must not hold a NUL.
    fn checked(bytes: &[u8]) -> Result<Self, QuoteError> {
        let plan = Self::of(bytes);
        match plan.nul {
            Some(index) => Err(QuoteError::Nul { index }),
            None => Ok(plan),
        }
    }

    fn of(bytes: &[u8]) -> Self {
        let mut all_safe = true;
        let mut nul = None;
        let mut quotes = 0;
        let mut runs = 0;
        let mut in_run = false;
        for (index, &b) in bytes.iter().enumerate() {
            if b == 0 && nul.is_none() {
                nul = Some(index);
            }
            all_safe &= is_safe(b);
            if b == b'\'' {
                quotes += 1;
                in_run = false;
            } else if !in_run {
                runs += 1;
                in_run = true;
            }
        }
        let bare = all_safe && !bytes.is_empty() && !is_reserved_word(bytes);
        // Each run of non-`'` bytes gains two quotes; each `'` becomes `\'`; empty becomes `''`.
        let quoted_len = if bytes.is_empty() { 2 } else { bytes.len() + quotes + 2 * runs };
        Self { bare, quoted_len, nul }
    }

    fn write(self, out: &mut Vec<u8>, bytes: &[u8]) {
        if self.bare {
            out.extend_from_slice(bytes);
        } else {
            out.reserve(self.quoted_len);
            write_quoted(out, bytes);
        }
    }
}

/// Writes `bytes` as `'run'` for each run without `'`, and `\'` for each `'`.
fn write_quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.is_empty() {
        out.extend_from_slice(b"''");
    }
    for (i, piece) in bytes.split(|&b| b == b'\'').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\\'");
        }
        if !piece.is_empty() {
            out.push(b'\'');
            out.extend_from_slice(piece);
            out.push(b'\'');
        }
    }
}

/// Bytes that mean nothing to dash, bash or zsh in any position of a word, under any option.
const fn is_safe(b: u8) -> bool {
    matches!(b, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'/' | b',' | b':' | b'+' | b'-')
}

/// Words that are syntax, not commands, when unquoted at the start of a command in dash, bash or
/// zsh. Only those spelled with safe bytes matter; the rest are quoted anyway.
fn is_reserved_word(word: &[u8]) -> bool {
    matches!(
        word,
        b"case"
            | b"coproc"
            | b"do"
            | b"done"
            | b"elif"
            | b"else"
            | b"end"
            | b"esac"
            | b"fi"
            | b"for"
            | b"foreach"
            | b"function"
            | b"if"
            | b"in"
            | b"nocorrect"
            | b"repeat"
            | b"select"
            | b"then"
            | b"time"
            | b"until"
            | b"while"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Path;

    fn q(bytes: &[u8]) -> Vec<u8> {
        quote(OsStr::from_bytes(bytes)).unwrap().as_bytes().to_vec()
    }

    #[test]
    fn safe_words_stay_bare_and_borrowed() {
        for word in ["a", "Z9", "report.txt", "/usr/bin/env", "-n", "--flag", "a,b", "x:y", "1+1", "_"] {
            assert!(matches!(quote(OsStr::new(word)), Ok(Cow::Borrowed(_))), "{word}");
            assert!(matches!(quote_str(word), Ok(Cow::Borrowed(w)) if w == word), "{word}");
        }
    }

    #[test]
    fn specials_are_single_quoted() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b"''"),
            (b"'", b"\\'"),
            (b"''", b"\\'\\'"),
            (b"it's", b"'it'\\''s'"),
            (b"'a'", b"\\''a'\\'"),
            (b"=ls", b"'=ls'"),
            (b"a=b", b"'a=b'"),
            (b"~", b"'~'"),
            (b"~root", b"'~root'"),
            (b"$(id)", b"'$(id)'"),
            (b"`id`", b"'`id`'"),
            (b"a\nb", b"'a\nb'"),
            (b"{a,b}", b"'{a,b}'"),
            (b"#x", b"'#x'"),
            (b"!!", b"'!!'"),
            (b"^x", b"'^x'"),
            (b"*", b"'*'"),
            (b"a?", b"'a?'"),
            (b"[a]", b"'[a]'"),
            (b"%1", b"'%1'"),
            (b"a@b", b"'a@b'"),
            (b"a b", b"'a b'"),
            (b"a\\b", b"'a\\b'"),
            (b"\x80\xff", b"'\x80\xff'"),
            (b"\xc3\x28", b"'\xc3\x28'"),
            (b"if", b"'if'"),
            (b"time", b"'time'"),
        ];
        for (input, expected) in cases {
            assert_eq!(q(input), *expected, "{:?}", input.escape_ascii().to_string());
        }
    }

    #[test]
    fn quoted_len_is_exact() {
        for input in [&b""[..], b"'", b"a'b", b"''x''", b"x y", b"'''"] {
            let plan = Plan::of(input);
            assert_eq!(plan.quoted_len, q(input).len(), "{:?}", input.escape_ascii().to_string());
        }
    }

    #[test]
    fn nul_is_refused_with_its_offset() {
        let err = quote(OsStr::from_bytes(b"ab\0c\0")).unwrap_err();
        assert_eq!(err, QuoteError::Nul { index: 2 });
        assert_eq!(err.code(), "SHELL_ARG_CONTAINS_NUL");
        assert_eq!(quote_str("\0"), Err(QuoteError::Nul { index: 0 }));
        assert_eq!(join(["ok", "x\0"]), Err(QuoteError::Nul { index: 1 }));
    }

    #[test]
    fn quote_str_matches_quote() {
        for input in ["", "'", "a b", "it's", "é'ü", "plain"] {
            assert_eq!(quote_str(input).unwrap().as_bytes(), q(input.as_bytes()), "{input}");
        }
    }

    #[test]
    fn join_spaces_quoted_words() {
        assert_eq!(join(Vec::<&str>::new()).unwrap(), "");
        assert_eq!(join(["echo", "a b", "", "'"]).unwrap(), r"echo 'a b' '' \'");
    }

    #[test]
    fn argv_validates_and_exposes_words() {
        let argv = Argv::new("prog").unwrap().arg("x").unwrap().with_args(["y", "z z"]).unwrap();
        assert_eq!(argv.program(), "prog");
        assert_eq!(argv.args(), ["x", "y", "z z"]);
        assert_eq!(argv.as_os_strs().collect::<Vec<_>>(), ["prog", "x", "y", "z z"]);
        assert_eq!(argv.to_shell_line(), "prog x y 'z z'");
        let command = argv.to_command();
        assert_eq!(command.get_program(), "prog");
        assert_eq!(command.get_args().collect::<Vec<_>>(), ["x", "y", "z z"]);

        assert_eq!(Argv::new("a\0"), Err(QuoteError::Nul { index: 1 }));
        assert_eq!(argv.clone().arg("\0"), Err(QuoteError::Nul { index: 0 }));
        assert_eq!(argv.with_args(["ok", "b\0"]), Err(QuoteError::Nul { index: 1 }));
    }

    #[test]
    fn argv_runs_without_a_shell() {
        let output = Argv::new("printf")
            .and_then(|a| a.with_args(["%s|", "$(id)", "a b", "*"]))
            .unwrap()
            .to_command()
            .output()
            .unwrap();
        assert_eq!(output.stdout, b"$(id)|a b|*|");
    }

    /// A shell to check quoting against, and lines run before the command to switch on options
    /// that give more bytes a meaning.
    struct Shell {
        path: &'static str,
        preamble: &'static str,
    }

    const SHELLS: &[Shell] = &[
        Shell { path: "/bin/dash", preamble: "" },
        Shell { path: "/bin/bash", preamble: "" },
        Shell { path: "/bin/bash", preamble: "shopt -s extglob globstar nullglob failglob\n" },
        Shell { path: "/usr/bin/zsh", preamble: "" },
        Shell {
            path: "/usr/bin/zsh",
            preamble: "setopt extendedglob kshglob magicequalsubst braceccl globsubst rcquotes\n",
        },
    ];

    /// Runs `line` under every available shell and returns what each printed, naming the shell.
    fn run_everywhere(line: &[u8]) -> Vec<(String, Vec<u8>)> {
        // `LC_ALL=C` makes every byte one character to the shell, so no byte can be taken as part
        // of a multibyte character; `every_byte_round_trips_alone_and_together` also tries UTF-8.
        run_everywhere_in(line, "C")
    }

    fn run_everywhere_in(line: &[u8], locale: &str) -> Vec<(String, Vec<u8>)> {
        let mut outputs = Vec::new();
        for shell in SHELLS {
            if !Path::new(shell.path).exists() {
                // CI sets SANDGUARD_REQUIRE_ZSH so that a missing shell fails rather than skips.
                assert!(
                    std::env::var_os("SANDGUARD_REQUIRE_ZSH").is_none(),
                    "{} is missing and SANDGUARD_REQUIRE_ZSH is set",
                    shell.path
                );
                eprintln!("note: {} is missing; skipping it", shell.path);
                continue;
            }
            let mut script = shell.preamble.as_bytes().to_vec();
            script.extend_from_slice(line);
            let output = Command::new(shell.path)
                .arg("-c")
                .arg(OsStr::from_bytes(&script))
                .env("LC_ALL", locale)
                .output()
                .unwrap();
            let name = format!("{} {:?} LC_ALL={locale}", shell.path, shell.preamble.trim());
            assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
            outputs.push((name, output.stdout));
        }
        outputs
    }

    /// What `printf '%s\0' <words> END` prints: each word, then the end marker, each NUL-ended.
    /// The marker tells one empty word from none.
    fn printed(words: &[Vec<u8>]) -> Vec<u8> {
        let mut expected = Vec::new();
        for word in words.iter().map(Vec::as_slice).chain([&b"END"[..]]) {
            expected.extend_from_slice(word);
            expected.push(0);
        }
        expected
    }

    fn assert_round_trip(words: &[Vec<u8>], quoted_words: &[u8]) {
        assert_round_trip_in(words, quoted_words, "C");
    }

    fn assert_round_trip_in(words: &[Vec<u8>], quoted_words: &[u8], locale: &str) {
        let mut line = b"printf '%s\\0' ".to_vec();
        line.extend_from_slice(quoted_words);
        line.extend_from_slice(b" END");
        let expected = printed(words);
        for (shell, stdout) in run_everywhere_in(&line, locale) {
            assert_eq!(
                stdout.escape_ascii().to_string(),
                expected.escape_ascii().to_string(),
                "{shell} misread {:?}",
                line.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn every_byte_round_trips_alone_and_together() {
        let mut words: Vec<Vec<u8>> = (1..=u8::MAX).map(|b| vec![b]).collect();
        words.push((1..=u8::MAX).collect());
        words.push((1..=u8::MAX).rev().collect());
        let line = join(words.iter().map(|w| OsStr::from_bytes(w))).unwrap();
        assert_round_trip_in(&words, line.as_bytes(), "C");
        assert_round_trip_in(&words, line.as_bytes(), "C.UTF-8");
    }

    #[test]
    fn reserved_words_stay_commands_in_first_position() {
        const WORDS: &[&str] = &[
            "case",
            "coproc",
            "do",
            "done",
            "elif",
            "else",
            "end",
            "esac",
            "fi",
            "for",
            "foreach",
            "function",
            "if",
            "in",
            "nocorrect",
            "repeat",
            "select",
            "then",
            "time",
            "until",
            "while",
            "{",
            "}",
            "!",
            "[[",
            "]]",
        ];
        // With no PATH, a word that stays a command is "not found" (127); one read as syntax instead
        // breaks the script, or, like `time`, runs something else.
        let mut script = b"PATH=/nonexistent\n".to_vec();
        for word in WORDS {
            script.extend_from_slice(quote_str(word).unwrap().as_bytes());
            script.extend_from_slice(b" 2>/dev/null; echo $?\n");
        }
        for (shell, stdout) in run_everywhere(&script) {
            assert_eq!(String::from_utf8_lossy(&stdout), "127\n".repeat(WORDS.len()), "{shell}");
        }
    }

    fn config() -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(128);
        ProptestConfig { cases, ..ProptestConfig::default() }
    }

    /// Bytes that some shell gives a meaning, and a few ordinary ones to keep them apart.
    const SPECIAL: &[u8] = b"'\"\\`$(){}[]<>|&;*?~=!#^%@ \t\n\r,.:+-_/aZ0\x01\x7f\x80\x81\x83\x9f\xa0\xff";

    /// The bytes left bare, and the ones that look harmless but must not be: short words of these
    /// reach the bare path often, where a too-generous safe set would show.
    const BORDERLINE: &[u8] = b"aZ0_./,:+-=~^%@*?[]{}#!";

    fn word() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(1..=u8::MAX, 0..48),
            prop::collection::vec(prop::sample::select(SPECIAL), 0..24),
            prop::collection::vec(prop::sample::select(BORDERLINE), 0..5),
        ]
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn quote_round_trips_through_real_shells(word in word()) {
            assert_round_trip(std::slice::from_ref(&word), &q(&word));
        }

        #[test]
        fn join_round_trips_words_in_order(words in prop::collection::vec(word(), 0..6)) {
            let line = join(words.iter().map(|w| OsStr::from_bytes(w))).unwrap();
            assert_round_trip(&words, line.as_bytes());
        }

        #[test]
        fn argv_shell_line_runs_the_same_words(words in prop::collection::vec(word(), 0..4)) {
            // The program word stays in command position, where assignments and keywords matter.
            let argv = Argv::new("printf")
                .and_then(|a| a.arg("%s\\0"))
                .and_then(|a| a.with_args(words.iter().map(|w| OsStr::from_bytes(w))))
                .and_then(|a| a.arg("END"))
                .unwrap();
            let expected = printed(&words);
            for (shell, stdout) in run_everywhere(argv.to_shell_line().as_bytes()) {
                prop_assert_eq!(&stdout, &expected, "{}", shell);
            }
        }

        #[test]
        fn quoted_output_has_the_planned_length(word in prop::collection::vec(1..=u8::MAX, 0..64)) {
            let plan = Plan::of(&word);
            let quoted = q(&word);
            prop_assert_eq!(quoted.len(), if plan.bare { word.len() } else { plan.quoted_len });
        }

        #[test]
        fn quote_str_agrees_with_quote(text in "[^\\x00]*") {
            let quoted = quote_str(&text).unwrap();
            prop_assert_eq!(quoted.as_bytes(), q(text.as_bytes()));
        }
    }
}
