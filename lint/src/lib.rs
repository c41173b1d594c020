//! The sandguard linter: finds command injection, path traversal, unsafe sandbox use and
//! hardcoded secrets in Rust, TypeScript/JavaScript, Python and shell, for CI.
//!
//! Rules are data (`rules/*.toml`, compiled in): a secret rule is a pattern (keywords, a byte
//! regex, an entropy floor, placeholder allowlists); a syntax rule is a tree-sitter query plus
//! small named predicates. Every rule carries examples that must and must not match.

#![forbid(unsafe_code)]

pub mod rule;

pub use rule::{Example, Language, Level, PatternSpec, QuerySpec, Rule, RuleFile};
