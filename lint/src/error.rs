//! The linter's one error type. Every variant is a usage or configuration problem (exit code 2):
//! findings are results, never errors.

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::PathBuf;

/// Why the linter could not run, or could not finish writing its report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LintError {
    /// A rule is invalid: its regex or query does not compile, its fields contradict each other,
    /// or its id is taken.
    #[error("rule `{id}`: {reason}")]
    Rule {
        /// The rule's id.
        id: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A configuration or rules file is malformed: every problem, with its line and column.
    #[error("{0}")]
    Config(ConfigErrors),
    /// A rule id (or category) named on the command line or in configuration does not exist.
    #[error("unknown rule `{name}`{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownRule {
        /// The name given.
        name: String,
        /// The closest existing rule id or category, if one is close.
        suggestion: Option<String>,
    },
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A baseline file is not one `--write-baseline` wrote.
    #[error("baseline {}: {reason}", path.display())]
    Baseline {
        /// The baseline file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An option is invalid: an exclude glob, a placeholder regex, a path.
    #[error("{0}")]
    Invalid(String),
    /// The report could not be written (e.g. a closed pipe).
    #[error("cannot write the report: {0}")]
    Output(#[source] io::Error),
}

impl LintError {
    /// The process exit code for this error: always 2 (usage or configuration error).
    pub const fn exit_code(&self) -> u8 {
        2
    }

    pub(crate) fn rule(id: &str, reason: impl Into<String>) -> Self {
        Self::Rule { id: id.to_owned(), reason: reason.into() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

/// One problem in a configuration or rules file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or the name the text was given).
    pub origin: String,
    /// 1-based line; 0 when the problem concerns the whole file.
    pub line: usize,
    /// 1-based column, counted in characters; 0 with `line` 0.
    pub column: usize,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl ConfigError {
    /// A problem at byte offset `span.start` of `text`.
    pub(crate) fn at(origin: &str, text: &str, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        let (line, column) = match span {
            Some(span) => line_column(text, span.start),
            None => (0, 0),
        };
        Self { origin: origin.to_owned(), line, column, message: message.into() }
    }

    /// A `toml` parse or type error, located by its span.
    pub(crate) fn from_toml(origin: &str, text: &str, error: &toml::de::Error) -> Self {
        Self::at(origin, text, error.span(), error.message().trim().to_owned())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.origin, self.line, self.column, self.message)
        }
    }
}

/// Every problem found in one configuration or rules file, in the order they appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The problems.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// The 1-based line and character column of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The existing name closest to `name` by edit distance, if it is close enough to be a typo.
pub(crate) fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (name.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|&(distance, _)| distance <= limit)
        .min()
        .map(|(_, candidate)| candidate.to_owned())
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // `=` after the two-byte `é` is the 4th character of line 2.
        assert_eq!(line_column(text, 10), (2, 4));
        assert_eq!(line_column(text, 1000), (3, 1));
    }

    #[test]
    fn suggestions_only_for_typos() {
        let names = ["github-pat", "aws-access-key-id", "jwt"];
        assert_eq!(did_you_mean("github-pta", names).as_deref(), Some("github-pat"));
        assert_eq!(did_you_mean("aws-acess-key-id", names).as_deref(), Some("aws-access-key-id"));
        assert_eq!(did_you_mean("completely-different", names), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn unknown_rule_message_carries_the_suggestion() {
        let error = LintError::UnknownRule { name: "jtw".into(), suggestion: Some("jwt".into()) };
        assert_eq!(error.to_string(), "unknown rule `jtw`; did you mean `jwt`?");
        assert_eq!(error.exit_code(), 2);
    }
}
