//! rustc-style diagnostics:
//!
//! ```text
//! error[github-pat]: a GitHub personal access token is committed
//!  --> src/app.ts:3:16
//!   |
//! 3 | const token = "ghp_*********************************";
//!   |                ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
//!   |
//!   = help: revoke the token, then read it from the environment or a secret store
//!
//! sandguard: 1 error, 0 warnings in 12 files (0 skipped, 0 baselined, 0 suppressed)
//! ```

use std::io::{self, Write};

use crate::finding::Finding;
use crate::rule::Level;
use crate::walk::Report;

/// Display width of a tab in the source line.
const TAB: usize = 4;

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
    }

    fn level(&self, level: Level) -> &'static str {
        match level {
            Level::Deny => "1;31",
            _ => "1;33",
        }
    }
}

/// Writes every finding, then the summary line. `color` adds ANSI colours.
///
/// # Errors
///
/// When `out` fails.
pub fn write_human(report: &Report, out: &mut dyn Write, color: bool) -> io::Result<()> {
    let style = Style { color };
    for finding in &report.findings {
        write_finding(finding, out, &style)?;
    }
    let s = &report.summary;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    writeln!(
        out,
        "sandguard: {}, {} in {} ({} skipped, {} baselined, {} suppressed)",
        plural(s.errors, "error"),
        plural(s.warnings, "warning"),
        plural(s.files, "file"),
        s.skipped(),
        s.baselined,
        s.suppressed,
    )
}

fn write_finding(finding: &Finding, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    let (label, code) = match finding.level {
        Level::Deny => ("error", style.level(Level::Deny)),
        _ => ("warning", style.level(Level::Warn)),
    };
    let number = finding.line.to_string();
    let pad = " ".repeat(number.len());
    let gutter = style.paint("1;34", "|");
    writeln!(
        out,
        "{}{} {}",
        style.paint(code, &format!("{label}[{}]", finding.rule)),
        style.paint("1", ":"),
        style.paint("1", &finding.message)
    )?;
    writeln!(
        out,
        "{pad}{} {}:{}:{}",
        style.paint("1;34", "-->"),
        finding.path.display(),
        finding.line,
        finding.column
    )?;
    writeln!(out, "{pad} {gutter}")?;
    let (line, caret_start, caret_width) = expand(&finding.snippet, finding.snippet_columns);
    writeln!(out, "{} {gutter} {line}", style.paint("1;34", &number))?;
    writeln!(out, "{pad} {gutter} {}{}", " ".repeat(caret_start), style.paint(code, &"^".repeat(caret_width)))?;
    writeln!(out, "{pad} {gutter}")?;
    writeln!(out, "{pad} {} {}: {}", style.paint("1;34", "="), style.paint("1", "help"), finding.help)?;
    writeln!(out)
}

/// The line with tabs expanded, the caret's start and width in display columns (at least one
/// caret, even for an empty match).
fn expand(snippet: &str, (start, end): (usize, usize)) -> (String, usize, usize) {
    let mut line = String::with_capacity(snippet.len());
    let (mut caret_start, mut caret_end) = (0, 0);
    let mut column = 0;
    for (i, c) in snippet.chars().enumerate() {
        if i == start {
            caret_start = column;
        }
        if i == end {
            caret_end = column;
        }
        if c == '\t' {
            line.push_str(&" ".repeat(TAB));
            column += TAB;
        } else {
            line.push(c);
            column += 1;
        }
    }
    let count = snippet.chars().count();
    if start >= count {
        caret_start = column;
    }
    if end >= count {
        caret_end = column;
    }
    (line, caret_start, caret_end.saturating_sub(caret_start).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_and_unicode_keep_carets_aligned() {
        assert_eq!(expand("\tx = 'é€k'", (6, 8)), ("    x = 'é€k'".to_owned(), 9, 2));
        assert_eq!(expand("abc", (3, 3)), ("abc".to_owned(), 3, 1));
        assert_eq!(expand("abc", (1, 10)), ("abc".to_owned(), 1, 2));
    }
}
