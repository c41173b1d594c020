//! Inline suppressions: `sandguard:allow(rule-id)` in a comment.
//!
//! Forms (the marker counts only when `(` follows it): `sandguard:allow(rule-id)`, `sandguard:allow(id-a, id-b)`,
//! `sandguard:allow(rule-id, reason = "why")`, or a reason after the parenthesis:
//! `sandguard:allow(rule-id) -- why`. An id may also name a category (`hardcoded-secret`), which
//! covers each of its rules.
//!
//! Scope: a suppression covers findings that start on its own line; when nothing but comment
//! markers precede it on that line (`// sandguard:allow(x)` on a line of its own), it also covers
//! the next line. A trailing comment after code never reaches the following line, so it cannot
//! silence more than the line it sits on.

/// One `sandguard:allow(...)` found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Suppression {
    /// Byte offset of `sandguard:allow`.
    pub(crate) offset: usize,
    /// The rule ids or categories it names.
    pub(crate) ids: Vec<String>,
    /// The reason given, if any.
    pub(crate) reason: Option<String>,
    /// Whether only comment markers precede it on its line (so it also covers the next line).
    pub(crate) own_line: bool,
    /// Why it could not be read, when it could not.
    pub(crate) malformed: Option<&'static str>,
}

/// The marker; also a prefilter keyword, so files without it are never searched for it.
pub(crate) const MARKER: &str = "sandguard:allow";

/// Every suppression in `text`, in order. The marker counts only when a `(` follows it: a bare
/// mention of `sandguard:allow` (in documentation, say) is text.
pub(crate) fn parse(text: &str) -> Vec<Suppression> {
    text.match_indices(MARKER)
        .filter(|(offset, _)| text[offset + MARKER.len()..].starts_with('('))
        .map(|(offset, _)| {
            let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
            let own_line = text[line_start..offset]
                .chars()
                .all(|c| c.is_whitespace() || matches!(c, '/' | '*' | '#' | '-' | ';' | '%' | '!' | '<' | '{' | '\''));
            let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
            let rest = &text[offset + MARKER.len()..line_end];
            let (ids, reason, malformed) = match parse_arguments(rest) {
                Ok((ids, reason)) => (ids, reason, None),
                Err(why) => (Vec::new(), None, Some(why)),
            };
            Suppression { offset, ids, reason, own_line, malformed }
        })
        .collect()
}

/// Parses `(id, id, reason = "...") -- reason` after the marker.
fn parse_arguments(rest: &str) -> Result<(Vec<String>, Option<String>), &'static str> {
    let inner = rest.strip_prefix('(').ok_or("expected `(`")?;
    let mut ids = Vec::new();
    let mut reason = None;
    let mut cursor = inner;
    loop {
        cursor = cursor.trim_start();
        if let Some(after) = cursor.strip_prefix("reason") {
            let after = after.trim_start().strip_prefix('=').ok_or("expected `=` after `reason`")?;
            let after = after.trim_start().strip_prefix('"').ok_or("expected a quoted reason")?;
            let end = after.find('"').ok_or("unterminated reason")?;
            reason = Some(after[..end].to_owned());
            cursor = after[end + 1..].trim_start();
            cursor = cursor.strip_prefix(')').ok_or("expected `)` after the reason")?;
            break;
        }
        let end = cursor.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).unwrap_or(cursor.len());
        if end == 0 {
            return Err("expected a rule id");
        }
        ids.push(cursor[..end].to_owned());
        cursor = cursor[end..].trim_start();
        if let Some(after) = cursor.strip_prefix(',') {
            cursor = after;
        } else if let Some(after) = cursor.strip_prefix(')') {
            cursor = after;
            break;
        } else {
            return Err("expected `,` or `)` after a rule id");
        }
    }
    if ids.is_empty() {
        return Err("expected a rule id");
    }
    if reason.is_none()
        && let Some(after) = cursor.trim_start().strip_prefix("--")
        && !after.starts_with('>')
    {
        let text = after.trim().trim_end_matches("*/").trim_end_matches("-->").trim();
        if !text.is_empty() {
            reason = Some(text.to_owned());
        }
    }
    Ok((ids, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Suppression {
        let mut all = parse(text);
        assert_eq!(all.len(), 1, "{text:?}");
        all.remove(0)
    }

    #[test]
    fn forms() {
        let s = one("let k = 1; // sandguard:allow(github-pat)\n");
        assert_eq!(s.ids, ["github-pat"]);
        assert_eq!((s.reason, s.own_line, s.malformed), (None, false, None));

        let s = one("    # sandguard:allow(jwt, aws-access-key-id, reason = \"test fixture\")");
        assert_eq!(s.ids, ["jwt", "aws-access-key-id"]);
        assert_eq!(s.reason.as_deref(), Some("test fixture"));
        assert!(s.own_line);

        let s = one("/* sandguard:allow( hardcoded-secret ) -- rotated in 2024 */");
        assert_eq!(s.ids, ["hardcoded-secret"]);
        assert_eq!(s.reason.as_deref(), Some("rotated in 2024"));
        assert!(s.own_line);

        let s = one("<!-- sandguard:allow(jwt) -->");
        assert!(s.own_line);
        assert_eq!(s.reason, None);
    }

    #[test]
    fn malformed() {
        assert!(parse("mentions of `sandguard:allow` are text").is_empty());
        for text in [
            "// sandguard:allow()",
            "// sandguard:allow(jwt",
            "// sandguard:allow(jwt reason)",
            "// sandguard:allow(jwt, reason = \"x)",
            "// sandguard:allow(jwt, reason = \"x\"",
        ] {
            assert!(one(text).malformed.is_some(), "{text:?}");
        }
    }

    #[test]
    fn offsets_and_lines() {
        let text = "a\n// sandguard:allow(x)\nb // sandguard:allow(y)\n";
        let all = parse(text);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].offset, 5);
        assert!(all[0].own_line);
        assert!(!all[1].own_line);
    }
}
