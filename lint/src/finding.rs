//! Findings: where a rule matched, how to show it, and the keys that recognise it again after the
//! file changes (a fingerprint per finding, a baseline key that ignores line numbers).

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::rule::Level;

/// One problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule's id.
    pub rule: String,
    /// The rule's category (`hardcoded-secret`, `command-injection`, ...).
    pub category: String,
    /// The effective level (`warn` or `deny`; `allow` findings are never reported).
    pub level: Level,
    /// What is wrong.
    pub message: String,
    /// What to do instead.
    pub help: String,
    /// The file, as it was walked (relative to the current directory when the scanned path was).
    pub path: PathBuf,
    /// 1-based line of the first character.
    pub line: usize,
    /// 1-based column of the first character, in Unicode code points.
    pub column: usize,
    /// 1-based line of the character after the match.
    pub end_line: usize,
    /// 1-based column of the character after the match (exclusive, as in SARIF).
    pub end_column: usize,
    /// The source line of the first character; a secret is masked in it (its first characters
    /// kept), and a very long line is cut to a window around the match, marked with `…`.
    pub snippet: String,
    /// Stable across runs and line moves: a hash of the rule, the path, the normalised matched
    /// text and the occurrence index among identical matches in the file.
    pub fingerprint: String,
    /// The match within `snippet`, in characters (start, end), for the caret.
    pub(crate) snippet_columns: (usize, usize),
    /// Hash of the normalised matched text and the trimmed line: what a baseline remembers.
    pub(crate) baseline_key: String,
}

impl Finding {
    /// The path with forward slashes and no leading `./`, as used in fingerprints, baselines and
    /// SARIF.
    pub fn slash_path(&self) -> String {
        slash_path(&self.path)
    }

    /// The key a baseline stores: hash of the normalised matched text and the trimmed source line.
    pub fn baseline_key(&self) -> &str {
        &self.baseline_key
    }
}

/// Byte offsets of line starts, to turn offsets into lines and columns.
#[derive(Debug)]
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i + 1));
        Self { text, starts }
    }

    /// 1-based line of byte `offset`.
    pub(crate) fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }

    /// 1-based (line, column in characters) of byte `offset`, which is on a char boundary.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.line(offset);
        let start = self.starts[line - 1];
        (line, self.text[start..offset].chars().count() + 1)
    }

    /// The text of 1-based `line`, without its line ending.
    pub(crate) fn line_text(&self, line: usize) -> &'a str {
        let start = self.starts[line - 1];
        let end = self.starts.get(line).map_or(self.text.len(), |&next| next - 1);
        let text = &self.text[start..end.max(start)];
        text.strip_suffix('\r').unwrap_or(text)
    }
}

/// What a finding is made from, before positions are computed.
pub(crate) struct FindingParts<'a> {
    pub(crate) rule: &'a str,
    pub(crate) category: &'a str,
    pub(crate) level: Level,
    pub(crate) message: String,
    pub(crate) help: &'a str,
    pub(crate) path: &'a Path,
    pub(crate) slash_path: &'a str,
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// Mask the matched characters in the snippet (secrets).
    pub(crate) mask: bool,
    /// Occurrence index among matches of the same rule with the same normalised text.
    pub(crate) occurrence: usize,
}

impl FindingParts<'_> {
    pub(crate) fn build(self, lines: &LineIndex<'_>) -> Finding {
        let (line, column) = lines.position(self.start);
        let (end_line, end_column) = lines.position(self.end);
        let line_text = lines.line_text(line);
        let line_chars = line_text.chars().count();
        let match_end_on_line = if end_line == line { end_column - 1 } else { line_chars };
        let (snippet, snippet_columns) = snippet(line_text, column - 1, match_end_on_line.max(column - 1), self.mask);
        let matched = normalise(&lines.text[self.start..self.end]);
        let fingerprint = hash(&[
            self.rule.as_bytes(),
            self.slash_path.as_bytes(),
            matched.as_bytes(),
            self.occurrence.to_string().as_bytes(),
        ]);
        let baseline_key = hash(&[matched.as_bytes(), line_text.trim().as_bytes()]);
        Finding {
            rule: self.rule.to_owned(),
            category: self.category.to_owned(),
            level: self.level,
            message: self.message,
            help: self.help.to_owned(),
            path: self.path.to_owned(),
            line,
            column,
            end_line,
            end_column,
            snippet,
            fingerprint,
            snippet_columns,
            baseline_key,
        }
    }
}

/// Whitespace runs collapsed to one space, ends trimmed: what a match "is" across reformatting.
pub(crate) fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// First 32 hex digits of the SHA-256 of the parts, each followed by a NUL.
pub(crate) fn hash(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update([0]);
    }
    hasher.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Lines longer than this many characters are cut to a window around the match.
const MAX_SNIPPET_CHARS: usize = 160;
/// Context kept before the match in a cut line.
const CONTEXT_CHARS: usize = 40;

/// The line to show, with the match (`start..end`, in characters) masked if asked, cut around
/// the match when long; and where the match is in the result.
fn snippet(line: &str, start: usize, end: usize, mask: bool) -> (String, (usize, usize)) {
    let mut chars: Vec<char> = line.chars().collect();
    let end = end.min(chars.len());
    let start = start.min(end);
    if mask {
        let keep = ((end - start) / 4).min(4);
        for c in &mut chars[start + keep..end] {
            if !c.is_whitespace() {
                *c = '*';
            }
        }
    }
    if chars.len() <= MAX_SNIPPET_CHARS {
        return (chars.into_iter().collect(), (start, end));
    }
    let lo = start.saturating_sub(CONTEXT_CHARS);
    let hi = (end + CONTEXT_CHARS).min(lo + MAX_SNIPPET_CHARS).min(chars.len()).max(start);
    let mut out = String::new();
    let shift = if lo > 0 {
        out.push('…');
        1
    } else {
        0
    };
    out.extend(&chars[lo..hi]);
    if hi < chars.len() {
        out.push('…');
    }
    (out, (start - lo + shift, end.min(hi) - lo + shift))
}

/// `path` with forward slashes and without `./` components.
pub(crate) fn slash_path(path: &Path) -> String {
    let mut out = String::new();
    for component in path.components() {
        match component {
            Component::CurDir => continue,
            Component::RootDir => {
                out.push('/');
                continue;
            }
            Component::Prefix(prefix) => out.push_str(&prefix.as_os_str().to_string_lossy()),
            Component::ParentDir => out.push_str(".."),
            Component::Normal(name) => out.push_str(&name.to_string_lossy()),
        }
        out.push('/');
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters() {
        let text = "ab\nçé = \"KEY\"\r\nlast";
        let lines = LineIndex::new(text);
        let key = text.find("KEY").unwrap();
        assert_eq!(lines.position(0), (1, 1));
        assert_eq!(lines.position(key), (2, 7));
        assert_eq!(lines.line_text(2), "çé = \"KEY\"");
        assert_eq!(lines.line_text(3), "last");
        assert_eq!(lines.position(text.len()), (3, 5));
    }

    #[test]
    fn snippets_mask_and_cut() {
        let (s, cols) = snippet("token = \"abcdefghijklmnop\"", 9, 25, true);
        assert_eq!(s, "token = \"abcd************\"");
        assert_eq!(cols, (9, 25));

        let long = format!("{}SECRET{}", "a".repeat(300), "b".repeat(300));
        let (s, (start, end)) = snippet(&long, 300, 306, false);
        assert!(s.starts_with('…') && s.ends_with('…'));
        assert_eq!(s.chars().skip(start).take(end - start).collect::<String>(), "SECRET");
        assert!(s.chars().count() <= MAX_SNIPPET_CHARS + 2);
    }

    #[test]
    fn slash_paths() {
        assert_eq!(slash_path(Path::new("./src/a.rs")), "src/a.rs");
        assert_eq!(slash_path(Path::new("src/./a.rs")), "src/a.rs");
        assert_eq!(slash_path(Path::new("/abs/x")), "/abs/x");
        assert_eq!(slash_path(Path::new("../x")), "../x");
    }

    #[test]
    fn normalised_and_hashed() {
        assert_eq!(normalise("  a \n\t b  "), "a b");
        assert_eq!(hash(&[b"a", b"b"]).len(), 32);
        assert_ne!(hash(&[b"ab", b""]), hash(&[b"a", b"b"]));
    }
}
