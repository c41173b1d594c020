//! Secret redaction: known secret values and common credential shapes are replaced in output.
//!
//! A [`SecretRedactor`] replaces, in command output, logs or audit details:
//!
//! - every occurrence of each registered secret value, by `[REDACTED:<name>]`;
//! - credential-shaped tokens, by `[REDACTED:<kind>]`: AWS access key IDs (`aws-access-key-id`),
//!   GitHub (`github-token`), GitLab (`gitlab-token`), Slack (`slack-token`), Stripe (`stripe-key`),
//!   Anthropic (`anthropic-key`) and OpenAI (`openai-key`) tokens, Google API keys
//!   (`google-api-key`), JWTs (`jwt`), PEM private key blocks (`private-key`), the credentials of
//!   `Authorization: Bearer|Basic|Token …` headers (`authorization`), and the password in
//!   `scheme://user:password@host` (`url-password`, the user name is kept).
//!
//! Every occurrence is found, overlapping ones included, and overlapping or adjacent matches become
//! one placeholder, named after the longest match where the run starts (a registered name before a
//! kind): no byte of any match survives, even where two secrets share bytes. A PEM block whose `END`
//! line is missing (truncated output) is redacted to the end of the text.
//!
//! What it does not do: a secret is found only as the exact bytes registered. A secret split across
//! lines (wrapped by a terminal, or printed in pieces), encoded (base64, URL-encoding, hex) or
//! transformed in any other way is not claimed. Credential shapes are a best effort for tokens with a
//! recognisable prefix; a bare random password is found only when registered.
//!
//! Text with neither a registered value nor a shape's keyword (`AKIA`, `ghp_`, `://`, ...) costs one
//! Aho-Corasick scan; text in which nothing needs replacing is returned borrowed, without a copy.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::fmt;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::bytes::Regex;

use crate::limits::excerpt;

/// Why a secret could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedactError {
    /// The secret is too short to redact without destroying ordinary text. Code `SECRET_TOO_SHORT`.
    #[error("secret {name:?} is {len} bytes; secrets shorter than {min} bytes cannot be redacted safely")]
    TooShort {
        /// The secret's name.
        name: String,
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// A secret's name cannot appear in a placeholder. Code `INVALID_SECRET_NAME`.
    #[error("invalid secret name {name:?}: use 1 to 64 ASCII letters, digits, `_`, `.` or `-`")]
    InvalidName {
        /// The refused name.
        name: String,
    },
    /// A secret's value appears inside a placeholder, so redacting would print it again.
    /// Code `SECRET_IN_PLACEHOLDER`.
    #[error("secret {name:?} occurs in the placeholder text `[REDACTED:...]`; it cannot be redacted")]
    InPlaceholder {
        /// The secret's name.
        name: String,
    },
    /// The matcher could not be built, e.g. from too many or too long secrets.
    /// Code `REDACTOR_BUILD_FAILED`.
    #[error("the secret redactor could not be built: {reason}")]
    Build {
        /// What failed.
        reason: String,
    },
}

impl RedactError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "SECRET_TOO_SHORT",
            Self::InvalidName { .. } => "INVALID_SECRET_NAME",
            Self::InPlaceholder { .. } => "SECRET_IN_PLACEHOLDER",
            Self::Build { .. } => "REDACTOR_BUILD_FAILED",
        }
    }
}

/// Credential shapes: a kind, and a pattern with exactly one capture group around the bytes to
/// replace. All are ASCII-only (`(?-u)`), so they run on bytes that need not be UTF-8.
const SHAPES: [(&str, &str); 12] = [
    (
        "private-key",
        r"(-----BEGIN[ A-Z0-9]{0,32}PRIVATE KEY-----(?s:.*?)(?:-----END[ A-Z0-9]{0,32}PRIVATE KEY-----|\z))",
    ),
    ("jwt", r"\b(eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)"),
    ("aws-access-key-id", r"\b((?:AKIA|ASIA)[A-Z0-9]{16})\b"),
    ("github-token", r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    ("gitlab-token", r"\b(glpat-[A-Za-z0-9_-]{20,})"),
    ("slack-token", r"\b(xox[baprs]-[A-Za-z0-9-]{10,})"),
    ("stripe-key", r"\b([rs]k_(?:live|test)_[A-Za-z0-9]{16,})"),
    // Before `openai-key`, which would also match `sk-ant-...`: at one position the first wins.
    ("anthropic-key", r"\b(sk-ant-[A-Za-z0-9_-]{20,})"),
    // The legacy form allows no `-`, so `sk-learn-compatible-estimators` is left alone.
    ("openai-key", r"\b(sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{20,}))"),
    ("google-api-key", r"\b(AIza[A-Za-z0-9_-]{35})"),
    (
        "authorization",
        r#"(?i:authorization)["']?[ \t]*[:=][ \t]*["']?(?i:bearer|basic|token)[ \t]+([A-Za-z0-9._~+/-]+=*)"#,
    ),
    // The password runs to the *last* `@` before the path, as URL parsers read `p@ss` typed unescaped.
    ("url-password", r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]*:([^\s/?#]+)@"),
];

/// Literals one of which occurs, ignoring ASCII case, in every match of [`SHAPES`]: text without
/// any of them skips the regex entirely.
const KEYWORDS: [&str; 18] = [
    "-----BEGIN",
    "eyJ",
    "AKIA",
    "ASIA",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xox",
    "k_live_",
    "k_test_",
    "sk-",
    "AIza",
    "authorization",
    "://",
];

/// What replaces the whole text if redaction cannot be trusted to have converged.
const WITHHELD: &[u8] = b"[REDACTED:output]";

/// Redactions of the output of a redaction, at most, before the output is withheld.
const MAX_PASSES: usize = 4;

/// The [`KEYWORDS`], ignoring ASCII case: built once per process, on the first text longer than
/// [`SHORT_TEXT`] a redactor with shapes looks at, and shared by every redactor (building it per
/// redactor cost about 0.1 ms per command run).
static SHAPE_KEYWORDS: LazyLock<Option<AhoCorasick>> =
    LazyLock::new(|| AhoCorasickBuilder::new().ascii_case_insensitive(true).build(KEYWORDS).ok());

/// Texts up to this long are searched for [`KEYWORDS`] one keyword at a time: cheaper than
/// building [`SHAPE_KEYWORDS`] (about 0.1 ms) for the short strings a process may only ever
/// redact (an audit record's command line), and still a few microseconds at most.
const SHORT_TEXT: usize = 256;

/// Whether `bytes` holds one of the [`KEYWORDS`], ignoring ASCII case.
fn holds_a_keyword(bytes: &[u8]) -> bool {
    if bytes.len() <= SHORT_TEXT {
        return KEYWORDS.iter().any(|keyword| {
            let keyword = keyword.as_bytes();
            bytes.windows(keyword.len()).any(|window| window.eq_ignore_ascii_case(keyword))
        });
    }
    // Were the automaton to fail to build (the tests rule it out), every text would go to the
    // shapes' regex.
    SHAPE_KEYWORDS.as_ref().is_none_or(|keywords| keywords.is_match(bytes))
}

/// The compiled shapes, shared by every redactor.
struct Shapes {
    regex: Regex,
    placeholders: Vec<Box<[u8]>>,
}

static COMPILED_SHAPES: LazyLock<Option<Shapes>> = LazyLock::new(|| {
    let alternation = SHAPES.iter().map(|(_, pattern)| format!("(?:{pattern})")).collect::<Vec<_>>().join("|");
    let regex = Regex::new(&format!("(?-u){alternation}")).ok()?;
    // Group `i + 1` must be shape `i`'s, or labels would be wrong.
    (regex.captures_len() == SHAPES.len() + 1)
        .then(|| Shapes { regex, placeholders: SHAPES.iter().map(|(kind, _)| placeholder(kind)).collect() })
});

fn placeholder(label: &str) -> Box<[u8]> {
    format!("[REDACTED:{label}]").into_bytes().into_boxed_slice()
}

/// Replaces secrets in text. Built once; `redact` is cheap when there is nothing to replace.
///
/// See the [module documentation](self) for what is replaced and what is not. Cloning is cheap.
///
/// ```
/// use sandguard_policy::SecretRedactor;
///
/// let redactor = SecretRedactor::builder()
///     .secret("db-password", "correct-horse-battery")?
///     .build()?;
/// # // sandguard:allow(database-url-password) -- a made-up credential shape
/// let out = redactor.redact("connecting with correct-horse-battery to postgres://app:hunter22@db/prod");
/// assert_eq!(
///     out,
///     "connecting with [REDACTED:db-password] to postgres://app:[REDACTED:url-password]@db/prod"
/// );
///
/// // Nothing to replace: the text is returned as it is, without a copy.
/// assert!(matches!(redactor.redact("build finished in 3.2s"), std::borrow::Cow::Borrowed(_)));
/// # Ok::<(), sandguard_policy::redact::RedactError>(())
/// ```
#[derive(Clone)]
pub struct SecretRedactor {
    /// The registered values, every occurrence of which is found, overlapping ones included.
    secrets: Option<AhoCorasick>,
    /// The placeholder of each registered value, by pattern index.
    secret_placeholders: Vec<Box<[u8]>>,
    /// Whether the built-in credential shapes are looked for. Their regex compiles on the first
    /// text that holds one of their keywords, not when a redactor is built: most redactors only
    /// ever see text without any.
    shapes: bool,
    /// Set only if the built-in shapes failed to compile, which the tests rule out; the redactor then
    /// withholds all output rather than let credentials through.
    withhold_all: bool,
}

impl Default for SecretRedactor {
    /// A redactor for credential shapes only.
    fn default() -> Self {
        Self::builder().build().unwrap_or_else(|_| Self {
            secrets: None,
            secret_placeholders: Vec::new(),
            shapes: false,
            withhold_all: true,
        })
    }
}

impl fmt::Debug for SecretRedactor {
    /// Names only: a redactor's `Debug` output must not be the leak it exists to prevent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.secret_placeholders.iter().map(|p| String::from_utf8_lossy(p)).collect();
        f.debug_struct("SecretRedactor")
            .field("secrets", &names)
            .field("patterns", &self.shapes)
            .finish_non_exhaustive()
    }
}

/// One range to replace, and with what.
#[derive(Clone, Copy)]
struct Span<'r> {
    start: usize,
    end: usize,
    /// Among spans with the same range, the lowest names the placeholder: registered secrets in the
    /// order given, then shapes.
    rank: (u8, usize),
    placeholder: &'r [u8],
}

impl SecretRedactor {
    /// The shortest secret value accepted: shorter ones would match ordinary words and numbers.
    pub const MIN_SECRET_LEN: usize = 6;

    /// Compiles the built-in credential shapes now, on a background thread. Optional: without
    /// it the shapes compile (in about a millisecond) the first time a redactor meets text
    /// holding one of their keywords; a long-running service may prefer to pay that at start.
    pub fn warm_up() {
        let _ = std::thread::Builder::new().name("sandguard-redact-warm-up".into()).spawn(|| {
            let _ = SHAPE_KEYWORDS.as_ref();
            let _ = COMPILED_SHAPES.as_ref();
        });
    }

    /// Starts a redactor with no secrets and credential shapes on.
    pub fn builder() -> SecretRedactorBuilder {
        SecretRedactorBuilder { secrets: Vec::new(), patterns: true }
    }

    /// Replaces every registered secret value and every credential-shaped token in `text`.
    ///
    /// A registered value that is not UTF-8 can cut a character in two; what is left of it becomes
    /// U+FFFD.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.redact_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            Cow::Owned(bytes) => Cow::Owned(
                String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        }
    }

    /// [`redact`](Self::redact) for output that need not be UTF-8.
    pub fn redact_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        if self.withhold_all && !bytes.is_empty() {
            return Cow::Owned(WITHHELD.to_vec());
        }
        if bytes.is_empty() || !self.may_hold_a_secret(bytes) {
            return Cow::Borrowed(bytes);
        }
        let Some(mut out) = self.replace(bytes) else {
            return Cow::Borrowed(bytes);
        };
        // A placeholder's `]` and the bytes after it can, in contrived cases, spell a secret that
        // contains `]`. Redact again until no secret is left; give up safely if that does not settle.
        for _ in 0..MAX_PASSES {
            if !self.secrets.as_ref().is_some_and(|s| s.is_match(&out)) {
                return Cow::Owned(out);
            }
            match self.replace(&out) {
                Some(again) => out = again,
                None => return Cow::Owned(out),
            }
        }
        Cow::Owned(WITHHELD.to_vec())
    }

    /// `false` only when `bytes` holds no registered value and none of the shapes' keywords.
    fn may_hold_a_secret(&self, bytes: &[u8]) -> bool {
        if self.secrets.as_ref().is_some_and(|secrets| secrets.is_match(bytes)) {
            return true;
        }
        self.shapes && holds_a_keyword(bytes)
    }

    /// One pass of replacement, or `None` when there is nothing to replace.
    fn replace(&self, hay: &[u8]) -> Option<Vec<u8>> {
        let mut spans = Vec::new();
        if let Some(secrets) = &self.secrets {
            // Fails only for a match kind other than `Standard`, which `build` never sets.
            let Ok(matches) = secrets.try_find_overlapping_iter(hay) else {
                return Some(WITHHELD.to_vec());
            };
            for m in matches {
                let index = m.pattern().as_usize();
                let placeholder = self.secret_placeholders.get(index).map_or(WITHHELD, |p| &p[..]);
                spans.push(Span { start: m.start(), end: m.end(), rank: (0, index), placeholder });
            }
        }
        if self.shapes {
            // The shapes' regex is compiled by the tests; were it to fail here, nothing the
            // shapes would catch may pass.
            let Some(shapes) = COMPILED_SHAPES.as_ref() else {
                return Some(WITHHELD.to_vec());
            };
            for caps in shapes.regex.captures_iter(hay) {
                // Exactly one shape's group takes part in a match.
                let shape = caps.iter().skip(1).enumerate().find_map(|(i, m)| Some((i, m?)));
                let Some((i, m)) = shape else { continue };
                let placeholder = shapes.placeholders.get(i).map_or(WITHHELD, |p| &p[..]);
                // Already redacted (a placeholder where a URL password was): keep the text borrowed.
                if m.as_bytes() != placeholder {
                    spans.push(Span { start: m.start(), end: m.end(), rank: (1, i), placeholder });
                }
            }
        }
        if spans.is_empty() {
            return None;
        }
        spans.sort_unstable_by_key(|s| (s.start, Reverse(s.end), s.rank));
        let mut out = Vec::with_capacity(hay.len());
        let mut spans = spans.into_iter().peekable();
        // `hay[..done]` is written. Spans come sorted by start, and overlapping or adjacent ones are
        // merged, so every slice below is in bounds and in order.
        let mut done = 0;
        while let Some(first) = spans.next() {
            let mut end = first.end;
            while let Some(next) = spans.next_if(|s| s.start <= end) {
                end = end.max(next.end);
            }
            out.extend_from_slice(&hay[done..first.start]);
            out.extend_from_slice(first.placeholder);
            done = end;
        }
        out.extend_from_slice(&hay[done..]);
        Some(out)
    }
}

/// Collects secrets and options for a [`SecretRedactor`].
///
/// ```
/// use sandguard_policy::SecretRedactor;
///
/// let err = SecretRedactor::builder().secret("pin", "1234").unwrap_err();
/// assert_eq!(err.code(), "SECRET_TOO_SHORT");
///
/// let only_known = SecretRedactor::builder().secret("token", "s3cr3t-value")?.patterns(false).build()?;
/// assert_eq!(only_known.redact("AKIAZZZZEXAMPLE12345 s3cr3t-value"), "AKIAZZZZEXAMPLE12345 [REDACTED:token]");
/// # Ok::<(), sandguard_policy::redact::RedactError>(())
/// ```
#[derive(Clone)]
pub struct SecretRedactorBuilder {
    secrets: Vec<(String, Vec<u8>)>,
    patterns: bool,
}

impl fmt::Debug for SecretRedactorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.secrets.iter().map(|(name, _)| name).collect();
        f.debug_struct("SecretRedactorBuilder")
            .field("secrets", &names)
            .field("patterns", &self.patterns)
            .finish_non_exhaustive()
    }
}

impl SecretRedactorBuilder {
    /// Registers a secret `value`, to be replaced by `[REDACTED:<name>]`.
    ///
    /// The name is 1 to 64 ASCII letters, digits, `_`, `.` or `-` (an environment variable name
    /// fits); the value is at least [`SecretRedactor::MIN_SECRET_LEN`] bytes. Several secrets may
    /// share a name.
    pub fn secret(mut self, name: impl Into<String>, value: impl AsRef<[u8]>) -> Result<Self, RedactError> {
        let name = name.into();
        let value = value.as_ref();
        let name_ok = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !name_ok {
            return Err(RedactError::InvalidName { name: excerpt(&name) });
        }
        if value.len() < SecretRedactor::MIN_SECRET_LEN {
            return Err(RedactError::TooShort { name, len: value.len(), min: SecretRedactor::MIN_SECRET_LEN });
        }
        self.secrets.push((name, value.to_vec()));
        Ok(self)
    }

    /// Turns the built-in credential shapes on (the default) or off.
    pub fn patterns(mut self, on: bool) -> Self {
        self.patterns = on;
        self
    }

    /// Compiles the redactor.
    pub fn build(self) -> Result<SecretRedactor, RedactError> {
        let shapes = self.patterns;
        let secret_placeholders: Vec<_> = self.secrets.iter().map(|(name, _)| placeholder(name)).collect();
        let shape_placeholders: Vec<_> =
            if shapes { SHAPES.iter().map(|(kind, _)| placeholder(kind)).collect() } else { Vec::new() };
        let every_placeholder =
            || secret_placeholders.iter().chain(&shape_placeholders).map(|p| &p[..]).chain([WITHHELD]);
        for (name, value) in &self.secrets {
            if every_placeholder().any(|p| p.windows(value.len()).any(|w| w == value)) {
                return Err(RedactError::InPlaceholder { name: name.clone() });
            }
        }
        let build_failed = |e: aho_corasick::BuildError| RedactError::Build { reason: e.to_string() };
        let values = || self.secrets.iter().map(|(_, value)| value);
        let secrets = if self.secrets.is_empty() {
            None
        } else {
            // Built per command, and usually for a handful of values: a contiguous NFA builds
            // several times faster than a DFA and searches short output about as fast.
            let builder = AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .build(values())
                .map_err(build_failed)?;
            Some(builder)
        };
        Ok(SecretRedactor { secrets, secret_placeholders, shapes, withhold_all: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Made-up credentials of each shape. None of them is, or was ever, a real key.
    fn samples() -> Vec<(&'static str, String)> {
        let alnum36 = "Zx9".repeat(12);
        vec![
            ("aws-access-key-id", "AKIAZZZZEXAMPLE12345".into()),
            ("aws-access-key-id", "ASIA0000FAKEFAKE0000".into()),
            ("github-token", format!("ghp_{alnum36}")),
            ("github-token", format!("gho_{alnum36}")),
            ("github-token", format!("ghu_{alnum36}")),
            ("github-token", format!("ghs_{alnum36}")),
            ("github-token", format!("ghr_{alnum36}")),
            ("github-token", format!("github_pat_{}_{}", "A1b2C3".repeat(4), "fake".repeat(15))),
            // sandguard:allow(gitlab-pat) -- a made-up credential shape, for tests and docs
            ("gitlab-token", "glpat-notARealToken_0123456".into()),
            ("slack-token", "xoxb-000000000-111111111-notarealtoken".into()),
            ("slack-token", "xoxp-123-not-a-real-one".into()),
            ("stripe-key", "sk_live_0000notreal0000abcd".into()),
            ("stripe-key", "rk_live_0000notreal0000abcd".into()),
            ("stripe-key", "sk_test_0000notreal0000abcd".into()),
            ("openai-key", "sk-proj-thisIsNotARealKey_0123456789".into()),
            ("openai-key", "sk-svcacct-thisIsNotARealKey_0123456789".into()),
            ("openai-key", format!("sk-{}", "fAkE".repeat(12))),
            ("anthropic-key", "sk-ant-api03-notARealKey-0123456789abcdef".into()),
            ("google-api-key", format!("AIza{}", "SyFake_-0123456789abcdefghijklmnopq")),
            // sandguard:allow(jwt) -- a made-up credential shape, for tests and docs
            ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.bm90LWEtcmVhbC1zaWduYXR1cmU".into()),
        ]
    }

    fn default() -> SecretRedactor {
        SecretRedactor::default()
    }

    #[test]
    fn the_built_in_shapes_and_their_keywords_compile() {
        assert!(COMPILED_SHAPES.is_some());
        assert!(SHAPE_KEYWORDS.is_some());
        assert!(!default().withhold_all);
    }

    #[test]
    fn every_shape_is_redacted_in_context() {
        let redactor = default();
        for (kind, token) in samples() {
            assert_eq!(token.len(), token.trim().len());
            for (before, after) in [("", ""), ("token=", "\n"), ("\"", "\","), ("export X=", " # set")] {
                let text = format!("{before}{token}{after}");
                let want = format!("{before}[REDACTED:{kind}]{after}");
                assert_eq!(redactor.redact(&text), want, "{kind}: {text:?}");
            }
        }
    }

    #[test]
    fn the_google_sample_is_exactly_39_bytes() {
        let (_, key) = samples().into_iter().find(|(kind, _)| *kind == "google-api-key").unwrap();
        assert_eq!(key.len(), 39);
    }

    #[test]
    fn near_misses_are_left_alone() {
        let redactor = default();
        for text in [
            "AKIAZZZZEXAMPLE1234",            // one character short
            "AKIAZZZZEXAMPLE123456",          // one too many: not a key ID
            "ghp_short",                      // too short
            "sk-learn-compatible-estimators", // a library name, not a key
            "the task-manager is busy",
            "eyJhbGciOiJIUzI1NiJ9 alone",
            "https://example.com:8443/path?user=a@b",
            "Authorization: Bearer $TOKEN",
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----",
            "bearer of bad news",
        ] {
            assert!(matches!(redactor.redact(text), Cow::Borrowed(_)), "{text:?} -> {}", redactor.redact(text));
        }
    }

    #[test]
    fn pem_private_key_blocks_are_redacted_whole() {
        let redactor = default();
        for label in ["PRIVATE KEY", "RSA PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY"] {
            let block = format!("-----BEGIN {label}-----\nbm90IGEga2V5\nZmFrZQ==\n-----END {label}-----");
            assert_eq!(redactor.redact(&format!("a\n{block}\nb")), "a\n[REDACTED:private-key]\nb");
        }
        let truncated = "key:\n-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n[output truncated]";
        assert_eq!(redactor.redact(truncated), "key:\n[REDACTED:private-key]");
        let two = "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY----- keep -----BEGIN EC PRIVATE KEY-----\ny\n-----END EC PRIVATE KEY-----";
        assert_eq!(redactor.redact(two), "[REDACTED:private-key] keep [REDACTED:private-key]");
    }

    #[test]
    fn authorization_headers_keep_the_scheme() {
        let redactor = default();
        let cases = [
            ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [REDACTED:authorization]"),
            ("authorization:bearer abc", "authorization:bearer [REDACTED:authorization]"),
            ("-H 'Authorization: Basic dXNlcjpwYXNz'", "-H 'Authorization: Basic [REDACTED:authorization]'"),
            ("{\"Authorization\": \"Token t0k3n==\"}", "{\"Authorization\": \"Token [REDACTED:authorization]\"}"),
        ];
        for (text, want) in cases {
            assert_eq!(redactor.redact(text), want);
        }
        let jwt = &samples().into_iter().find(|(k, _)| *k == "jwt").unwrap().1;
        let header = format!("AUTHORIZATION: BEARER {jwt}");
        assert_eq!(redactor.redact(&header), "AUTHORIZATION: BEARER [REDACTED:authorization]");
    }

    #[test]
    fn url_passwords_are_redacted_and_users_kept() {
        let redactor = default();
        let cases = [
            // sandguard:allow(database-url-password) -- a made-up credential shape, for tests and docs
            ("postgres://app:hunter22@db:5432/prod", "postgres://app:[REDACTED:url-password]@db:5432/prod"),
            ("redis://:s3cret@cache", "redis://:[REDACTED:url-password]@cache"),
            ("https://u:p@ss@host/x@y", "https://u:[REDACTED:url-password]@host/x@y"),
            ("git+ssh://me:pa[ss]@h", "git+ssh://me:[REDACTED:url-password]@h"),
            ("see http://h/a:b@c", "see http://h/a:b@c"),
        ];
        for (text, want) in cases {
            assert_eq!(redactor.redact(text), want, "{text:?}");
        }
    }

    #[test]
    fn registered_secrets_are_redacted_everywhere() {
        let redactor = SecretRedactor::builder()
            .secret("api", "hunter2hunter2")
            .unwrap()
            .secret("short-form", "hunter2")
            .unwrap()
            .build()
            .unwrap();
        // Every occurrence goes; a run of them is one placeholder named after the longest at its start.
        assert_eq!(
            redactor.redact("hunter2hunter2 and hunter2 and xhunter2hunter2hunter2y hunter2"),
            "[REDACTED:api] and [REDACTED:short-form] and x[REDACTED:api]y [REDACTED:short-form]"
        );
    }

    #[test]
    fn overlapping_secrets_leave_no_byte_of_either() {
        let redactor = SecretRedactor::builder()
            .secret("a", "abcdefgh")
            .unwrap()
            .secret("b", "efghijkl")
            .unwrap()
            .patterns(false)
            .build()
            .unwrap();
        assert_eq!(redactor.redact("xxabcdefghijklyy"), "xx[REDACTED:a]yy");
        let out = redactor.redact("efghijklmn abcdefgh");
        assert_eq!(out, "[REDACTED:b]mn [REDACTED:a]");
    }

    #[test]
    fn contained_and_adjacent_secrets_become_one_placeholder() {
        let redactor = SecretRedactor::builder()
            .secret("long", "abcdefghij")
            .unwrap()
            .secret("inner", "cdefgh")
            .unwrap()
            .patterns(false)
            .build()
            .unwrap();
        assert_eq!(redactor.redact("<abcdefghij>"), "<[REDACTED:long]>");
        assert_eq!(redactor.redact("<cdefghcdefgh>"), "<[REDACTED:inner]>");
        assert_eq!(redactor.redact("<cdefgh cdefgh>"), "<[REDACTED:inner] [REDACTED:inner]>");
    }

    #[test]
    fn a_secret_overlapping_a_shape_is_merged_into_one_placeholder() {
        let token = format!("ghp_{}", "Zx9".repeat(12));
        let tail = &token[10..];
        let redactor = SecretRedactor::builder().secret("tail", format!("{tail}-and-more")).unwrap().build().unwrap();
        assert_eq!(redactor.redact(&format!("{token}-and-more!")), "[REDACTED:github-token]!");
    }

    #[test]
    fn a_secret_split_across_lines_is_not_claimed() {
        let redactor = SecretRedactor::builder().secret("pw", "correct-horse").unwrap().build().unwrap();
        assert!(matches!(redactor.redact("correct-\nhorse"), Cow::Borrowed(_)));
    }

    #[test]
    fn placeholders_are_left_as_they_are() {
        let redactor = SecretRedactor::builder().secret("db", "correct-horse").unwrap().build().unwrap();
        // sandguard:allow(credentials-in-url) -- a made-up credential shape, for tests and docs
        let mut text = String::from("pw correct-horse url https://me:pw123456@h");
        for (_, token) in samples() {
            text.push_str(&format!(" {token}"));
        }
        let once = redactor.redact(&text).into_owned();
        assert!(matches!(redactor.redact(&once), Cow::Borrowed(_)), "{once}");
    }

    #[test]
    fn a_secret_spelt_by_a_placeholder_and_its_neighbours_is_redacted_too() {
        let redactor = SecretRedactor::builder()
            .secret("n", "abcdef")
            .unwrap()
            .secret("m", "n]xyzw")
            .unwrap()
            .patterns(false)
            .build()
            .unwrap();
        let out = redactor.redact("abcdefxyzw");
        assert!(!out.contains("n]xyzw"), "{out}");
        assert_eq!(out, "[REDACTED:[REDACTED:m]");
    }

    #[test]
    fn non_utf8_output_is_redacted() {
        let redactor = SecretRedactor::builder().secret("k", b"\xff\xfesecret").unwrap().build().unwrap();
        let out = redactor.redact_bytes(b"\x00\xff\xfesecret\x80 AKIAZZZZEXAMPLE12345\xc3");
        assert_eq!(&out[..], b"\x00[REDACTED:k]\x80 [REDACTED:aws-access-key-id]\xc3");
    }

    #[test]
    fn a_non_utf8_secret_cannot_make_redact_return_invalid_text() {
        // The value starts in the middle of `é` (0xC3 0xA9).
        let redactor = SecretRedactor::builder().secret("k", b"\xa9tail-of-it").unwrap().build().unwrap();
        assert_eq!(redactor.redact("caf\u{e9}tail-of-it!"), "caf\u{fffd}[REDACTED:k]!");
    }

    #[test]
    fn bad_secrets_are_refused() {
        let b = SecretRedactor::builder;
        assert_eq!(
            b().secret("pin", "12345").unwrap_err(),
            RedactError::TooShort { name: "pin".into(), len: 5, min: 6 }
        );
        for name in ["", "has space", "a]b", "ключ", &"x".repeat(65)] {
            assert_eq!(b().secret(name, "long-enough").unwrap_err().code(), "INVALID_SECRET_NAME", "{name:?}");
        }
        for value in ["REDACTED", "[REDACTED:", "REDACTED:github-token]", "ACTED:outp"] {
            let err = b().secret("x", value).unwrap().build().unwrap_err();
            assert_eq!(err.code(), "SECRET_IN_PLACEHOLDER", "{value:?}");
        }
        let err = b().secret("my-name", "y-name]").unwrap().patterns(false).build().unwrap_err();
        assert_eq!(err.code(), "SECRET_IN_PLACEHOLDER");
    }

    #[test]
    fn errors_and_debug_never_show_secret_values() {
        let err = SecretRedactor::builder().secret("pin", "12345").unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret \"pin\" is 5 bytes; secrets shorter than 6 bytes cannot be redacted safely"
        );
        let builder = SecretRedactor::builder().secret("db", "correct-horse").unwrap();
        assert!(!format!("{builder:?}").contains("correct-horse"));
        let redactor = builder.build().unwrap();
        let debug = format!("{redactor:?}");
        assert!(debug.contains("db") && !debug.contains("correct-horse"), "{debug}");
    }

    #[test]
    fn nothing_to_look_for_means_nothing_is_touched() {
        let redactor = SecretRedactor::builder().patterns(false).build().unwrap();
        assert!(matches!(redactor.redact("AKIAZZZZEXAMPLE12345"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_broken_redactor_withholds_everything() {
        let broken =
            SecretRedactor { withhold_all: true, ..SecretRedactor::builder().patterns(false).build().unwrap() };
        assert_eq!(broken.redact("anything"), "[REDACTED:output]");
        assert_eq!(broken.redact(""), "");
    }

    /// The slow obvious way: mark every byte of every occurrence, then write one placeholder per
    /// marked run, named after the longest secret at its start (the first registered on a tie).
    fn reference(text: &[u8], secrets: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut covered = vec![false; text.len()];
        for i in 0..text.len() {
            for (_, v) in secrets {
                if text[i..].starts_with(v) {
                    covered[i..i + v.len()].iter_mut().for_each(|c| *c = true);
                }
            }
        }
        let mut out = Vec::new();
        let mut i = 0;
        while i < text.len() {
            if !covered[i] {
                out.push(text[i]);
                i += 1;
                continue;
            }
            let name = secrets
                .iter()
                .enumerate()
                .filter(|(_, (_, v))| text[i..].starts_with(v))
                .max_by_key(|(index, (_, v))| (v.len(), Reverse(*index)))
                .map(|(_, (name, _))| *name)
                .unwrap();
            out.extend_from_slice(format!("[REDACTED:{name}]").as_bytes());
            while i < text.len() && covered[i] {
                i += 1;
            }
        }
        out
    }

    proptest! {
        /// Short texts are searched without the automaton; both searches agree, keyword or not.
        #[test]
        fn the_short_text_search_agrees_with_the_automaton(
            before in "[ -~]{0,120}",
            keyword in proptest::sample::select(KEYWORDS.to_vec()),
            upper in proptest::bool::ANY,
            after in "[ -~]{0,120}",
            include in proptest::bool::ANY,
        ) {
            let keyword = if upper { keyword.to_ascii_uppercase() } else { keyword.to_ascii_lowercase() };
            let text = if include { format!("{before}{keyword}{after}") } else { format!("{before}{after}") };
            prop_assert!(text.len() <= SHORT_TEXT);
            let automaton = SHAPE_KEYWORDS.as_ref().unwrap().is_match(text.as_bytes());
            prop_assert_eq!(holds_a_keyword(text.as_bytes()), automaton);
            prop_assert!(!include || automaton);
        }

        #[test]
        fn an_inserted_secret_never_survives(
            pieces in prop::collection::vec("\\PC{0,12}", 1..8),
            secret in "[ -~]{6,16}",
            shapes in any::<bool>(),
        ) {
            let built = SecretRedactor::builder().secret("s", &secret).unwrap().patterns(shapes).build();
            prop_assume!(built.is_ok());
            let redactor = built.unwrap();
            let text = pieces.join(&secret);
            let out = redactor.redact(&text);
            prop_assert!(!out.contains(secret.as_str()), "{:?} -> {:?}", text, out);
        }

        #[test]
        fn registered_secrets_match_a_naive_reference(
            base in "[ab\\]]{10,14}",
            cuts in prop::collection::vec((0usize..5, 6usize..10), 1..4),
            pieces in prop::collection::vec((any::<prop::sample::Index>(), "[ab\\]]{0,3}"), 0..8),
        ) {
            // Secrets cut from one string overlap, contain and abut each other in the text.
            let values: Vec<&str> = cuts.iter().map(|&(at, len)| &base[at..(at + len).min(base.len())]).collect();
            let names = ["x", "y", "z"];
            let secrets: Vec<(&str, Vec<u8>)> =
                names.iter().copied().zip(values.iter().map(|v| v.as_bytes().to_vec())).collect();
            let text: String = pieces.iter().map(|(i, filler)| format!("{}{filler}", values[i.index(values.len())])).collect();
            let mut builder = SecretRedactor::builder().patterns(false);
            for (name, value) in &secrets {
                builder = builder.secret(*name, value).unwrap();
            }
            let redactor = builder.build().unwrap();
            let out = redactor.redact_bytes(text.as_bytes());
            // The reference is a single pass; the redactor's extra passes only matter when that pass
            // spelt a secret anew, which the reference can check.
            let once = reference(text.as_bytes(), &secrets);
            let respelt = secrets.iter().any(|(_, v)| once.windows(v.len()).any(|w| w == v));
            if !respelt {
                prop_assert_eq!(&out[..], &once[..]);
            }
            for (_, v) in &secrets {
                prop_assert!(!out.windows(v.len()).any(|w| w == v));
            }
        }

        #[test]
        fn text_without_secrets_or_shapes_is_borrowed(
            text in "[a-z0-9 .,\n]{0,200}",
            secret in "[A-Z]{6,12}",
        ) {
            let redactor = SecretRedactor::builder().secret("s", &secret).unwrap().build().unwrap();
            prop_assert!(matches!(redactor.redact(&text), Cow::Borrowed(_)));
            prop_assert!(matches!(redactor.redact_bytes(text.as_bytes()), Cow::Borrowed(_)));
        }

        #[test]
        fn every_shape_is_found_wherever_it_is(
            before in "([a-z .,\n]{0,20}[ .,\n])?", after in "[ .,\n][a-z .,\n]{0,20}", index in any::<prop::sample::Index>(),
        ) {
            let samples = samples();
            let (kind, token) = &samples[index.index(samples.len())];
            let text = format!("{before}{token}{after}");
            prop_assert_eq!(default().redact(&text), format!("{before}[REDACTED:{kind}]{after}"));
        }

        #[test]
        fn redact_never_panics_and_is_idempotent(text in "\\PC{0,64}") {
            let redactor = default();
            let once = redactor.redact(&text).into_owned();
            prop_assert_eq!(redactor.redact(&once), once.as_str());
        }
    }
}
