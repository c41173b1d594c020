//! Secret pattern rules: a byte regex per rule, filtered by the shape of the captured secret
//! (entropy, character classes, word-likeness), by a built-in placeholder allowlist and by the
//! rule's own `allow` regexes.
//!
//! The keyword prefilter that keeps these regexes off most files lives in the engine: one
//! Aho-Corasick automaton over every rule's keywords decides which rules run on a file at all.
//!
//! # Placeholders
//!
//! A captured secret is a placeholder, never a finding, when (after trimming quotes and spaces)
//! one of the following holds. The substring tests are chosen so that a random key cannot plausibly
//! trigger them: each needs five or more specific characters in a row.
//!
//! 1. It contains `example` in any case (AWS's documented `AKIAIOSFODNN7EXAMPLE`, and most
//!    vendors' documentation).
//! 2. It contains `your_`, `your-`, `<your`, `{your` or `[your` in any case (instructions such
//!    as `<your-key>` or `sk_live_your_key_here`).
//! 3. It contains an interpolation: `${`, `{{`, `$(` or `<%`.
//! 4. It masks: a run of six or more `x`, `X`, `*` or `#`, or of eight or more `0` or `.`.
//! 5. As a whole, it is a reference rather than a value: `<...>`, `[...]`, `{...}`, `$VAR`,
//!    `%VAR%`, `process.env.X`, `process.env["X"]`, `import.meta.env.X`, `os.environ[...]`,
//!    `os.environ.get(...)`, `os.getenv(...)`, `env::var(...)`, `std::env::var(...)`,
//!    `env!(...)`, `Deno.env.get(...)`, `System.getenv(...)`, `ENV[...]`, `getenv(...)`.
//! 6. As a whole (case-insensitively), it is made only of placeholder words (`changeme`,
//!    `placeholder`, `redacted`, `dummy`, `fake`, `test`, `testing`, `sample`, `mock`, `secret`,
//!    `password`, `passwd`, `pass`, `token`, `apikey`, `api`, `key`, `value`, `here`, `insert`,
//!    `replace`, `todo`, `fixme`, `none`, `null`, `nil`, `foo`, `bar`, `baz`, `qux`, `my`,
//!    `some`, `default`, `demo`, `xxx...`), digits and punctuation, with at least one such word:
//!    `test`, `dummy-token-123`, `fake_key`, `CHANGEME`, `my-secret-password`. A real key that
//!    merely *contains* `test` or `fake` among other letters is still reported.
//!
//! Configuration can add placeholder regexes (`placeholders` in `sandguard.toml`); a rule adds
//! its own with `allow`.

use std::sync::{Arc, LazyLock};

use regex::bytes::{Regex, RegexBuilder};

use crate::engine::{Matcher, RawMatch, SourceFile};
use crate::error::LintError;
use crate::rule::{PatternSpec, Rule};

/// A compiled secret rule.
#[derive(Debug)]
pub(crate) struct PatternMatcher {
    regex: Regex,
    /// 0: the whole match.
    secret_group: usize,
    min_entropy: Option<f64>,
    min_classes: Option<u8>,
    max_word_fraction: Option<f64>,
    allow: Vec<Regex>,
    /// Global placeholder regexes from configuration, shared by every rule.
    placeholders: Arc<[Regex]>,
    fallback: bool,
}

impl PatternMatcher {
    /// Compiles `spec`, the pattern of `rule`.
    pub(crate) fn compile(rule: &Rule, spec: &PatternSpec, placeholders: Arc<[Regex]>) -> Result<Self, LintError> {
        let regex = compile_regex(&spec.regex, spec.unicode).map_err(|e| LintError::rule(&rule.id, e))?;
        let groups = regex.captures_len() - 1;
        let secret_group = spec.secret_group.unwrap_or(0);
        if secret_group > groups {
            return Err(LintError::rule(
                &rule.id,
                format!("secret_group = {secret_group}, but the regex has only {groups} capture group(s)"),
            ));
        }
        if let Some(entropy) = spec.min_entropy
            && !(0.0..=8.0).contains(&entropy)
        {
            return Err(LintError::rule(&rule.id, format!("min_entropy = {entropy}: a byte carries 0 to 8 bits")));
        }
        if let Some(classes) = spec.min_classes
            && classes > 4
        {
            return Err(LintError::rule(&rule.id, format!("min_classes = {classes}: there are 4 classes")));
        }
        if let Some(fraction) = spec.max_word_fraction
            && !(0.0..=1.0).contains(&fraction)
        {
            return Err(LintError::rule(&rule.id, format!("max_word_fraction = {fraction}: use 0.0 to 1.0")));
        }
        let allow = spec
            .allow
            .iter()
            .map(|pattern| compile_regex(pattern, spec.unicode))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| LintError::rule(&rule.id, format!("allow: {e}")))?;
        Ok(Self {
            regex,
            secret_group,
            min_entropy: spec.min_entropy,
            min_classes: spec.min_classes,
            max_word_fraction: spec.max_word_fraction,
            allow,
            placeholders,
            fallback: spec.fallback,
        })
    }

    /// Whether this rule yields to specific rules matching an overlapping span.
    pub(crate) const fn is_fallback(&self) -> bool {
        self.fallback
    }

    /// Every secret in `text`, as the byte span of the secret (the secret group, or the whole
    /// match).
    pub(crate) fn find_in(&self, text: &[u8]) -> Vec<RawMatch> {
        let mut found = Vec::new();
        let mut keep = |start: usize, end: usize| {
            if self.is_secret(&text[start..end]) {
                found.push(RawMatch { start_byte: start, end_byte: end, message: None });
            }
        };
        if self.secret_group == 0 {
            for m in self.regex.find_iter(text) {
                keep(m.start(), m.end());
            }
        } else {
            for captures in self.regex.captures_iter(text) {
                if let Some(m) = captures.get(self.secret_group) {
                    keep(m.start(), m.end());
                }
            }
        }
        found
    }

    /// Whether a captured value passes every filter.
    fn is_secret(&self, secret: &[u8]) -> bool {
        if secret.is_empty() {
            return false;
        }
        if let Some(min) = self.min_entropy
            && shannon_entropy(secret) < min
        {
            return false;
        }
        if let Some(min) = self.min_classes
            && character_classes(secret) < min
        {
            return false;
        }
        if let Some(max) = self.max_word_fraction
            && word_fraction(secret) > max
        {
            return false;
        }
        !(is_placeholder(secret)
            || self.allow.iter().any(|allow| allow.is_match(secret))
            || self.placeholders.iter().any(|allow| allow.is_match(secret)))
    }
}

impl Matcher for PatternMatcher {
    fn find(&self, file: &SourceFile<'_>) -> Vec<RawMatch> {
        self.find_in(file.text.as_bytes())
    }
}

/// Compiles a rule or placeholder regex: bytes, Unicode off unless asked for.
pub(crate) fn compile_regex(pattern: &str, unicode: bool) -> Result<Regex, String> {
    RegexBuilder::new(pattern).unicode(unicode).build().map_err(|e| e.to_string())
}

/// Shannon entropy of `bytes`, in bits per byte.
pub(crate) fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// How many of lowercase, uppercase, digits and other symbols (not `_ - . /`) occur.
pub(crate) fn character_classes(bytes: &[u8]) -> u8 {
    let (mut lower, mut upper, mut digit, mut other) = (false, false, false, false);
    for &b in bytes {
        match b {
            b'a'..=b'z' => lower = true,
            b'A'..=b'Z' => upper = true,
            b'0'..=b'9' => digit = true,
            b'_' | b'-' | b'.' | b'/' => {}
            _ => other = true,
        }
    }
    u8::from(lower) + u8::from(upper) + u8::from(digit) + u8::from(other)
}

/// The share of letters that sit in word-like runs: `[A-Z]?[a-z]{4,}`.
pub(crate) fn word_fraction(bytes: &[u8]) -> f64 {
    let letters = bytes.iter().filter(|b| b.is_ascii_alphabetic()).count();
    if letters == 0 {
        return 0.0;
    }
    let mut in_words = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_lowercase() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_lowercase() {
                i += 1;
            }
            let run = i - start;
            if run >= 4 {
                in_words += run + usize::from(start > 0 && bytes[start - 1].is_ascii_uppercase());
            }
        } else {
            i += 1;
        }
    }
    in_words as f64 / letters as f64
}

/// The built-in placeholder allowlist; see the module documentation for the exact rule.
pub(crate) fn is_placeholder(secret: &[u8]) -> bool {
    let secret = secret.trim_ascii();
    let secret = trim_quotes(secret);
    if secret.is_empty() {
        return true;
    }
    let lower = secret.to_ascii_lowercase();
    const MARKERS: &[&[u8]] =
        &[b"example", b"your_", b"your-", b"<your", b"{your", b"[your", b"${", b"{{", b"$(", b"<%"];
    if MARKERS.iter().any(|marker| contains(&lower, marker)) || masks(&lower) {
        return true;
    }
    static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
        compile_regex(
            r#"^(?:<[^<>]*>|\[[^\[\]]*\]|\{[^{}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|%[A-Za-z_][A-Za-z0-9_]*%|(?:process\.env|import\.meta\.env)[.\[].*|os\.environ(?:\[|\.get\().*|os\.getenv\(.*|(?:std::)?env::var(?:_os)?\(.*|env!\(.*|Deno\.env\.get\(.*|System\.getenv\(.*|ENV\[.*|getenv\(.*)$"#,
            false,
        )
        .expect("the reference regex compiles")
    });
    static WORDS: LazyLock<Regex> = LazyLock::new(|| {
        let words = "changeme|placeholder|redacted|dummy|fake|testing|test|sample|mock|secret|password|passwd|pass\
                     |token|apikey|api|key|value|here|insert|replace|todo|fixme|none|null|nil|foo|bar|baz|qux|my\
                     |some|default|demo|xxx+";
        compile_regex(&format!("^[^a-z]*(?:{words})(?:[^a-z]|{words})*$"), false).expect("the words regex compiles")
    });
    REFERENCE.is_match(secret) || WORDS.is_match(&lower)
}

fn trim_quotes(bytes: &[u8]) -> &[u8] {
    let quote = |b: &u8| matches!(b, b'"' | b'\'' | b'`');
    let start = bytes.iter().position(|b| !quote(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !quote(b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// A run of six or more `x`/`*`/`#` or eight or more `0`/`.` (in lowercased text).
fn masks(lower: &[u8]) -> bool {
    let mut i = 0;
    while i < lower.len() {
        let b = lower[i];
        let start = i;
        while i < lower.len() && lower[i] == b {
            i += 1;
        }
        let run = i - start;
        if (matches!(b, b'x' | b'*' | b'#') && run >= 6) || (matches!(b, b'0' | b'.') && run >= 8) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Language;

    fn rule(regex: &str) -> (Rule, PatternSpec) {
        let spec = PatternSpec {
            regex: regex.into(),
            keywords: vec![],
            secret_group: None,
            min_entropy: None,
            allow: vec![],
            unicode: false,
            min_classes: None,
            max_word_fraction: None,
            fallback: false,
        };
        let rule = Rule {
            id: "t".into(),
            severity: crate::Level::Deny,
            category: "hardcoded-secret".into(),
            languages: vec![Language::Text],
            message: "m".into(),
            help: "h".into(),
            pattern: Some(spec.clone()),
            query: None,
            examples: vec![],
        };
        (rule, spec)
    }

    fn matcher(spec: impl FnOnce(&mut PatternSpec), regex: &str) -> PatternMatcher {
        let (rule, mut pattern) = rule(regex);
        spec(&mut pattern);
        PatternMatcher::compile(&rule, &pattern, Arc::from(Vec::new())).unwrap()
    }

    #[test]
    fn entropy() {
        assert_eq!(shannon_entropy(b""), 0.0);
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
        assert!(shannon_entropy(b"q7Lm2XvR9tKp4WzN8bYc") > 4.0);
    }

    #[test]
    fn classes_and_words() {
        assert_eq!(character_classes(b"abc"), 1);
        assert_eq!(character_classes(b"abc_def-ghi/jkl.mno"), 1);
        assert_eq!(character_classes(b"aB3!"), 4);
        assert!(word_fraction(b"my-app-production-secret") > 0.7);
        assert!(word_fraction(b"AuthenticationTokenProvider") > 0.9);
        assert!(word_fraction(b"q7Lm2XvR9tKp4WzN8bYc") < 0.2);
        assert_eq!(word_fraction(b"1234"), 0.0);
    }

    #[test]
    fn placeholders_are_whole_forms() {
        for placeholder in [
            "AKIAIOSFODNN7EXAMPLE",
            "sk_live_your_key_here",
            "<your-key>",
            "<token>",
            "${API_TOKEN}",
            "$API_TOKEN",
            "%API_TOKEN%",
            "{{ .Values.token }}",
            "prefix-${X}-suffix",
            "process.env.API_TOKEN",
            "process.env[\"API_TOKEN\"]",
            "os.environ[\"TOKEN\"]",
            "os.getenv(\"TOKEN\")",
            "std::env::var(\"TOKEN\")",
            "env!(\"TOKEN\")",
            "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "********",
            "changeme",
            "CHANGEME",
            "test",
            "test1234",
            "dummy-token-123",
            "fake_key",
            "my-secret-password",
            "'placeholder'",
            "",
        ] {
            assert!(is_placeholder(placeholder.as_bytes()), "{placeholder:?} should be a placeholder");
        }
        // Made-up values that merely contain placeholder words.
        for secret in [
            // sandguard:allow(github-pat)
            "ghp_q7Lm2XvR9tKp4WzN8bYcTest5hJd3FgA6sEk",
            "AKIA2TESTQ7LM2XVR9TK",
            // sandguard:allow(stripe-secret-key)
            "sk_live_4fakeQ7Lm2XvR9tKp4WzN8bYc",
            "dummyq7Lm2XvR9tKp4Wz",
            "hunter2",
            "12345678",
            "Xx9xXx",
        ] {
            assert!(!is_placeholder(secret.as_bytes()), "{secret:?} is not a placeholder");
        }
    }

    #[test]
    fn reports_the_secret_group_and_filters_it() {
        let m = matcher(
            |s| {
                s.secret_group = Some(1);
                s.min_entropy = Some(3.0);
                s.allow = vec!["^q7".into()];
            },
            r"key=([A-Za-z0-9]{8,})",
        );
        let text = b"key=Zq7Lm2XvR9tK key=aaaaaaaaaaaa key=q7Lm2XvR9tKp key=xxxxxxxxxxxx";
        let found = m.find_in(text);
        assert_eq!(found.len(), 1);
        assert_eq!(&text[found[0].start_byte..found[0].end_byte], b"Zq7Lm2XvR9tK");
    }

    #[test]
    fn unicode_is_off_unless_asked() {
        let (rule, mut spec) = rule(r"\w+");
        assert!(PatternMatcher::compile(&rule, &spec, Arc::from(Vec::new())).is_ok());
        // Without Unicode, `.` matches any byte, so a pattern can run over invalid UTF-8.
        let m = matcher(|_| {}, r"k=.{3}");
        assert_eq!(m.find_in(b"k=\xff\xfe\xfd").len(), 1);
        spec.secret_group = Some(2);
        let error = PatternMatcher::compile(&rule, &spec, Arc::from(Vec::new())).unwrap_err();
        assert!(error.to_string().contains("only 0 capture group"), "{error}");
    }
}
