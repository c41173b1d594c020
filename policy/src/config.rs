//! The TOML policy: parsed with spans, validated with every error reported, compiled once.

use std::fmt;

use crate::action::{Action, Denial, Permit};

/// One problem in a policy file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `<string>`).
    pub origin: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// Every problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            writeln!(f, "{}:{}:{}: {}", e.origin, e.line, e.column, e.message)?;
        }
        Ok(())
    }
}

/// A compiled policy.
#[derive(Debug, Default)]
pub struct Policy {}

impl Policy {
    /// Decides on one action.
    pub fn authorize(&self, action: &Action<'_>) -> Result<Permit, Denial> {
        let _ = action;
        todo!()
    }
}
