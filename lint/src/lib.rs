//! The sandguard linter: finds command injection, path traversal, unsafe sandbox use and
//! hardcoded secrets in Rust, TypeScript/JavaScript, Python and shell, for CI.
//!
//! Rules are data (`rules/*.toml`, compiled in): a secret rule is a pattern (keywords, a byte
//! regex, an entropy floor, placeholder allowlists); a syntax rule is a tree-sitter query plus
//! small named predicates. Every rule carries examples that must and must not match.
//!
//! A [`Linter`] is built once from rules and configuration ([`LinterBuilder`], [`LintConfig`]);
//! it checks one text ([`Linter::check`]) or walks trees in parallel ([`Linter::scan`]) into a
//! [`Report`], which [`write_human`], [`write_json`] and [`write_sarif`] print. [`run`] is the
//! whole `sandguard lint` command.
//!
//! ```
//! use std::path::Path;
//! use sandguard_lint::{Language, Linter, SourceFile};
//!
//! let linter = Linter::builder().build()?;
//! // sandguard:allow(aws-access-key-id) -- a made-up key for this example
//! let text = "AWS_ACCESS_KEY_ID=AKIA3Q7ZR2LX5NWD4KTB\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n";
//! let found = linter.check(&SourceFile { path: Path::new(".env"), language: Language::Text, text });
//! assert_eq!(found.findings.len(), 1); // the second is AWS's documented placeholder
//! assert_eq!(found.findings[0].rule, "aws-access-key-id");
//! # Ok::<(), sandguard_lint::LintError>(())
//! ```

#![forbid(unsafe_code)]

mod baseline;
mod cli;
mod config;
pub mod engine;
mod error;
mod finding;
mod language;
mod output;
mod progress;
pub mod rule;
mod rule_examples;
mod ruleset;
mod secret;
mod suppress;
pub mod syntax;
mod walk;

pub use baseline::Baseline;
pub use cli::{ColorChoice, ExitStatus, LintOptions, run};
pub use config::{CONFIG_FILE, ConfigLevel, LintConfig};
pub use engine::{
    DEFAULT_MAX_FILE_SIZE, FileFindings, Linter, LinterBuilder, Matcher, RawMatch, SourceFile, UNUSED_SUPPRESSION,
};
pub use error::{ConfigError, ConfigErrors, LintError};
pub use finding::Finding;
pub use language::detect_language;
pub use output::{Format, write_human, write_json, write_sarif};
pub use rule::{Example, Language, Level, PatternSpec, QuerySpec, Rule, RuleFile};
pub use rule_examples::{ExampleFailure, RuleTestReport, test_rules};
pub use ruleset::{LoadedRule, builtin_rule_files, builtin_rules, load_rule_dir, load_rule_file, parse_rule_file};
pub use walk::{Report, ScanProgress, Summary};
