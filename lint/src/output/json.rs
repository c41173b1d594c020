//! The JSON report: `{"version": 1, "findings": [...], "summary": {...}, "errors": [...]}`.
//!
//! A finding has `rule`, `level` (`warn` or `deny`), `message`, `help`, `path` (forward
//! slashes), `line`, `column`, `end_line`, `end_column` (1-based; columns in Unicode code points;
//! the end is exclusive), `snippet` (the source line, secrets masked) and `fingerprint`.

use std::io::{self, Write};

use serde_json::json;

use crate::walk::Report;

/// Writes the report as one JSON object and a newline.
///
/// # Errors
///
/// When `out` fails.
pub fn write_json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let findings: Vec<_> = report
        .findings
        .iter()
        .map(|f| {
            json!({
                "rule": f.rule,
                "level": f.level.name(),
                "message": f.message,
                "help": f.help,
                "path": f.slash_path(),
                "line": f.line,
                "column": f.column,
                "end_line": f.end_line,
                "end_column": f.end_column,
                "snippet": f.snippet,
                "fingerprint": f.fingerprint,
            })
        })
        .collect();
    let s = &report.summary;
    let value = json!({
        "version": 1,
        "findings": findings,
        "summary": {
            "errors": s.errors,
            "warnings": s.warnings,
            "files": s.files,
            "skipped": s.skipped(),
            "skipped_large": s.skipped_large,
            "skipped_binary": s.skipped_binary,
            "baselined": s.baselined,
            "suppressed": s.suppressed,
            "unreadable": s.unreadable,
        },
        "errors": report.errors,
    });
    serde_json::to_writer_pretty(&mut *out, &value)?;
    writeln!(out)
}
