//! Baselines: the findings a project has accepted for now, so CI fails only on new ones.
//!
//! An entry is (rule id, path, key), where the key hashes the normalised matched text with the
//! trimmed text of its line, and never the line number: inserting or removing lines above a
//! finding does not make it new. Identical entries count: a baseline with two entries hides two
//! identical findings, not a third. Only hashes are stored, never the matched text, so a baseline
//! of secrets does not repeat them.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::LintError;
use crate::finding::Finding;

/// The format version written and accepted.
const VERSION: u32 = 1;

/// A set of accepted findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    rule: String,
    path: String,
    key: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    findings: Vec<Entry>,
}

impl Baseline {
    /// The baseline of these findings.
    pub fn from_findings<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Self {
        let mut entries: Vec<Entry> = findings
            .into_iter()
            .map(|finding| {
                let (rule, path, key) = Self::key_of(finding);
                Entry { rule, path, key }
            })
            .collect();
        entries.sort();
        Self { entries }
    }

    /// How many findings it accepts.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it accepts none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads a baseline file.
    ///
    /// # Errors
    ///
    /// [`LintError::Io`] when it cannot be read, [`LintError::Baseline`] when it is not a
    /// baseline of this version.
    pub fn load(path: &Path) -> Result<Self, LintError> {
        let text = std::fs::read_to_string(path).map_err(|e| LintError::io(path, e))?;
        Self::from_json(&text).map_err(|reason| LintError::Baseline { path: path.to_owned(), reason })
    }

    /// Parses a baseline.
    ///
    /// # Errors
    ///
    /// What is wrong with it.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.version != VERSION {
            return Err(format!("version {} is not supported (expected {VERSION})", file.version));
        }
        Ok(Self { entries: file.findings })
    }

    /// The baseline as JSON (sorted entries, one per line, so diffs stay readable).
    pub fn to_json(&self) -> String {
        let mut out = format!("{{\n  \"version\": {VERSION},\n  \"findings\": [");
        for (i, entry) in self.entries.iter().enumerate() {
            out.push_str(if i == 0 { "\n    " } else { ",\n    " });
            out.push_str(&serde_json::to_string(entry).expect("entries serialise"));
        }
        out.push_str(if self.entries.is_empty() { "]\n}\n" } else { "\n  ]\n}\n" });
        out
    }

    /// Writes the baseline file.
    ///
    /// # Errors
    ///
    /// [`LintError::Io`] when it cannot be written.
    pub fn write(&self, path: &Path) -> Result<(), LintError> {
        std::fs::write(path, self.to_json()).map_err(|e| LintError::io(path, e))
    }

    pub(crate) fn counts(&self) -> HashMap<(String, String, String), usize> {
        let mut counts = HashMap::new();
        for entry in &self.entries {
            *counts.entry((entry.rule.clone(), entry.path.clone(), entry.key.clone())).or_insert(0) += 1;
        }
        counts
    }

    /// (rule id, slash path, key) of a finding.
    pub(crate) fn key_of(finding: &Finding) -> (String, String, String) {
        (finding.rule.clone(), finding.slash_path(), finding.baseline_key().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_errors() {
        let baseline = Baseline {
            entries: vec![
                Entry { rule: "jwt".into(), path: "a.rs".into(), key: "k1".into() },
                Entry { rule: "jwt".into(), path: "a.rs".into(), key: "k1".into() },
            ],
        };
        let json = baseline.to_json();
        assert_eq!(Baseline::from_json(&json).unwrap(), baseline);
        assert_eq!(baseline.counts().values().copied().collect::<Vec<_>>(), [2]);
        assert_eq!(Baseline::from_json(&Baseline::default().to_json()).unwrap(), Baseline::default());
        assert!(Baseline::from_json("{\"version\": 2, \"findings\": []}").unwrap_err().contains("version 2"));
        assert!(Baseline::from_json("{\"version\": 1, \"findings\": [], \"x\": 1}").is_err());
        assert!(Baseline::from_json("[]").is_err());
    }
}
