//! The rule model: what a `rules/*.toml` file holds. Shared by the secret and the syntax
//! matchers; parsed with `deny_unknown_fields`, so a misspelt key is an error, never a rule
//! silently doing nothing.

use serde::Deserialize;

/// One rules file: `[[rule]]` tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The rules.
    #[serde(default)]
    pub rule: Vec<Rule>,
}

/// How loud a finding is. `deny` findings make `sandguard lint` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Not reported.
    Allow,
    /// Reported; does not fail the run.
    Warn,
    /// Reported; fails the run.
    Deny,
}

/// A language a rule applies to; `text` means any file (secrets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// `.rs`
    Rust,
    /// `.ts`, `.mts`, `.cts`
    Typescript,
    /// `.tsx`
    Tsx,
    /// `.js`, `.mjs`, `.cjs`, `.jsx`
    Javascript,
    /// `.py`
    Python,
    /// `.sh`, `.bash`, or a shell shebang
    Shell,
    /// Any text file.
    Text,
}

impl Language {
    /// Every language, in a fixed order.
    pub const ALL: [Self; 7] =
        [Self::Rust, Self::Typescript, Self::Tsx, Self::Javascript, Self::Python, Self::Shell, Self::Text];

    /// The name used in rule files (`rust`, `typescript`, ..., `text`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Typescript => "typescript",
            Self::Tsx => "tsx",
            Self::Javascript => "javascript",
            Self::Python => "python",
            Self::Shell => "shell",
            Self::Text => "text",
        }
    }

    /// The language named `name` in a rule file, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|language| language.name() == name)
    }

    /// The usual file extension, used for the virtual path of a rule example (`example.rs`).
    pub const fn extension(self) -> &'static str {
        match self {
            Self::Rust => "rs",
            Self::Typescript => "ts",
            Self::Tsx => "tsx",
            Self::Javascript => "js",
            Self::Python => "py",
            Self::Shell => "sh",
            Self::Text => "txt",
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Level {
    /// The name used in configuration and output (`allow`, `warn`, `deny`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Warn => "warn",
            Self::Deny => "deny",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable kebab-case id, used in output, config and `sandguard:allow(id)`.
    pub id: String,
    /// Default level.
    pub severity: Level,
    /// e.g. `command-injection`, `path-traversal`, `predictable-sandbox-id`,
    /// `secret-in-command`, `hardcoded-secret`, `unbounded-exec`.
    pub category: String,
    /// Languages it applies to.
    pub languages: Vec<Language>,
    /// One line: what is wrong.
    pub message: String,
    /// What to do instead.
    pub help: String,
    /// A secret-style pattern rule.
    #[serde(default)]
    pub pattern: Option<PatternSpec>,
    /// A syntax rule.
    #[serde(default)]
    pub query: Option<QuerySpec>,
    /// Code that must (and must not) match, run by `sandguard lint --test-rules`.
    #[serde(default)]
    pub examples: Vec<Example>,
}

/// A pattern rule: keywords (any must occur, case-insensitively, for the regex to run), a byte
/// regex, and filters on the captured secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternSpec {
    /// Byte regex; compiled with Unicode off unless `unicode = true`.
    pub regex: String,
    /// Prefilter keywords (lowercase); empty means the regex always runs.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Which capture group is the secret (default: the whole match).
    #[serde(default)]
    pub secret_group: Option<usize>,
    /// Minimum Shannon entropy (bits per byte) of the secret.
    #[serde(default)]
    pub min_entropy: Option<f64>,
    /// Regexes; a secret matching any is a placeholder, not a finding.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Compile with Unicode classes (slower; only when needed).
    #[serde(default)]
    pub unicode: bool,
    /// How many character classes the secret must mix, among lowercase letters, uppercase
    /// letters, digits and other symbols (`_`, `-`, `.` and `/` do not count: identifiers and
    /// paths are made of them).
    #[serde(default)]
    pub min_classes: Option<u8>,
    /// The largest share of the secret's letters that may sit in word-like runs (`[A-Z]?[a-z]{4,}`,
    /// as in `production` or `TokenProvider`); above it the value reads as words, not as a
    /// random secret.
    #[serde(default)]
    pub max_word_fraction: Option<f64>,
    /// A catch-all rule (JWTs, the generic assignment rule): its match is dropped where another,
    /// specific pattern rule matched an overlapping span of the same file.
    #[serde(default)]
    pub fallback: bool,
}

/// A syntax rule: a tree-sitter query per language plus named predicates on its captures.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySpec {
    /// Words one of which must appear in a file before it is parsed at all.
    #[serde(default)]
    pub sink_keywords: Vec<String>,
    /// One query per language (key: the language name).
    pub queries: std::collections::BTreeMap<String, String>,
    /// Named predicates, e.g. `not-constant @arg`, `not-escaped @arg`; all must hold.
    #[serde(default)]
    pub predicates: Vec<String>,
    /// The capture whose position is reported (default: the whole match).
    #[serde(default)]
    pub report: Option<String>,
}

/// An example: code, its language, and the 1-based lines that must be reported (empty: the
/// code must produce no finding for this rule).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// Language of `code`.
    pub language: Language,
    /// The code.
    pub code: String,
    /// Lines that must be reported, exactly.
    #[serde(default)]
    pub lines: Vec<u32>,
}
