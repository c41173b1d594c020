//! SARIF 2.1.0, in the shape GitHub code scanning accepts: one run; `tool.driver` with every rule
//! that has a result (id, name, descriptions, help, default level, tags, `security-severity`);
//! results with `ruleId`/`ruleIndex`, level, message, a physical location relative to
//! `%SRCROOT%` and a region in Unicode code points (`columnKind`), and a partial fingerprint.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use serde_json::{Value, json};

use crate::engine::Linter;
use crate::finding::Finding;
use crate::rule::{Level, Rule};
use crate::walk::Report;

/// The schema the output follows.
pub(crate) const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Writes the report as a SARIF log. Rule metadata comes from `linter`.
///
/// # Errors
///
/// When `out` fails.
pub fn write_sarif(report: &Report, linter: &Linter, root: Option<&Path>, out: &mut dyn Write) -> io::Result<()> {
    // URIs are relative to the scanned root (`%SRCROOT%`), as code scanning expects.
    let root = root.map(crate::finding::slash_path).filter(|root| !root.is_empty());
    let ids: BTreeMap<&str, usize> = {
        let mut ids: Vec<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().enumerate().map(|(i, id)| (id, i)).collect()
    };
    let rules: Vec<Value> = ids
        .keys()
        .map(|id| {
            let level = linter.level(id).unwrap_or(Level::Warn);
            match linter.rule(id) {
                Some(rule) => rule_descriptor(rule, level),
                None => json!({ "id": id }),
            }
        })
        .collect();
    let results: Vec<Value> =
        report.findings.iter().map(|f| result(f, ids[f.rule.as_str()], root.as_deref())).collect();
    let log = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "sandguard",
                    "informationUri": env!("CARGO_PKG_REPOSITORY"),
                    "version": env!("CARGO_PKG_VERSION"),
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    });
    serde_json::to_writer_pretty(&mut *out, &log)?;
    writeln!(out)
}

fn sarif_level(level: Level) -> &'static str {
    match level {
        Level::Deny => "error",
        Level::Warn => "warning",
        Level::Allow => "none",
    }
}

fn rule_descriptor(rule: &Rule, level: Level) -> Value {
    let name: String = rule
        .id
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    json!({
        "id": rule.id,
        "name": name,
        "shortDescription": { "text": rule.message },
        "fullDescription": { "text": format!("{} ({})", rule.message, rule.category) },
        "help": { "text": rule.help, "markdown": rule.help },
        "defaultConfiguration": { "level": sarif_level(level) },
        "properties": {
            "tags": ["security", rule.category],
            "precision": "high",
            "security-severity": if level == Level::Deny { "8.0" } else { "5.0" },
        }
    })
}

/// `path` below `root` (both slash-separated, as `slash_path` gives them), if it is below it.
fn relative_to<'p>(path: &'p str, root: &str) -> Option<&'p str> {
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        return path.strip_prefix('/');
    }
    path.strip_prefix(root)?.strip_prefix('/').filter(|rest| !rest.is_empty())
}

fn result(finding: &Finding, rule_index: usize, root: Option<&str>) -> Value {
    let path = finding.slash_path();
    let path = match root.and_then(|root| relative_to(&path, root)) {
        Some(relative) => relative.to_owned(),
        None => path,
    };
    let artifact = if path.starts_with('/') {
        json!({ "uri": format!("file://{}", percent_encode(&path)) })
    } else {
        json!({ "uri": percent_encode(&path), "uriBaseId": "%SRCROOT%" })
    };
    json!({
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": sarif_level(finding.level),
        "message": { "text": finding.message },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": artifact,
                "region": {
                    "startLine": finding.line,
                    "startColumn": finding.column,
                    "endLine": finding.end_line,
                    "endColumn": finding.end_column,
                }
            }
        }],
        "partialFingerprints": { "sandguardFingerprint/v1": finding.fingerprint },
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `/`.
fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(percent_encode("src/a b/ü#1.rs"), "src/a%20b/%C3%BC%231.rs");
        assert_eq!(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
    }
}
