//! A pre-parse filter derived from a compiled query: the literal text each pattern's predicates
//! imply must occur in a file for the pattern to match at all. Parsing is by far the most
//! expensive step (tree-sitter parses Rust at roughly 10 MB/s per core), so a file that cannot
//! match any pattern is never parsed.
//!
//! For each pattern the filter collects one group of alternative literals per predicate that
//! requires some text:
//! - `#eq? @x "lit"`, `#any-of? @x "a" "b"`: the values;
//! - `#match? @x "re"`: the regex's prefix literals (every match starts with one of them), when
//!   that set is finite;
//! - named predicates that need a word: `shell-command` (`Command::new`), `has-shell-true`
//!   (`shell`), `secret-named` and `interpolates-secret` (the secret substrings).
//!
//! Only predicates on captures that every match of the pattern has (quantifier one or
//! one-or-more) count: a predicate on an absent capture holds vacuously. A pattern may match
//! only if, for each of its groups, one literal of the group occurs in the file: exactly (query
//! text is case-sensitive), or ASCII case-insensitively for the secret words; a literal that is
//! a node's whole text (`#eq?`, `#any-of?`) must not be glued to identifier characters (`exec`
//! inside `execute` does not count: no node has that text there). If any pattern has no group the
//! filter is disabled and every file is parsed. The filter is sound: it never skips a file the
//! query could match; `prefilter_never_hides_a_finding` in the tests checks that on every rule
//! example.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex_syntax::hir::literal::Extractor;
use tree_sitter::{CaptureQuantifier, Query};

use super::PatternExtras;
use super::expression::SECRET_SUBSTRINGS;
use super::predicate::Predicate;

/// Most literals one regex may contribute; past it the regex gives no constraint.
const MAX_REGEX_LITERALS: usize = 64;

/// One literal a pattern needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Literal {
    text: String,
    /// Compared ASCII case-insensitively (secret words) rather than exactly (query text).
    folded: bool,
    /// The whole text of a node (`#eq?`, `#any-of?`): an occurrence inside a longer identifier
    /// (`exec` in `execute`) does not count.
    whole_word: bool,
}

/// The filter for one compiled query.
#[derive(Debug)]
pub(super) struct Prefilter {
    literals: Vec<Literal>,
    /// Every literal, compared ASCII case-insensitively (automaton pattern i is literal i);
    /// exact literals are then checked byte for byte. One DFA pass per file.
    automaton: AhoCorasick,
    /// A cheaper first check: one group per pattern (its longest-worded one), case-folded, as a
    /// plain "does any occur" search, which memchr/SIMD prefilters make fast. Most files fail
    /// it and are never scanned in full.
    anchors: AhoCorasick,
    /// Per pattern: groups (all must hold) of literal ids (any may occur).
    patterns: Vec<Vec<Vec<usize>>>,
    /// The literal ids `anchors` searches for.
    anchor_ids: Vec<usize>,
}

/// One predicate as written in the query source.
#[derive(Debug, PartialEq, Eq)]
struct WrittenPredicate {
    name: String,
    captures: Vec<String>,
    strings: Vec<String>,
}

/// An ASCII identifier character: a whole-word literal next to one is part of a longer name.
const fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Prefilter {
    /// The filter for `query` (compiled from `source`), or `None` when some pattern implies no
    /// literal (then every file must be parsed).
    pub(super) fn new(
        query: &Query,
        source: &str,
        extras: &[PatternExtras],
        list_predicates: &[(Predicate, u32)],
    ) -> Option<Self> {
        let mut literals: Vec<Literal> = Vec::new();
        let mut intern = |text: &str, folded: bool, whole_word: bool| -> usize {
            let literal = Literal { text: text.to_string(), folded, whole_word };
            match literals.iter().position(|l| *l == literal) {
                Some(id) => id,
                None => {
                    literals.push(literal);
                    literals.len() - 1
                }
            }
        };
        let mut patterns = Vec::with_capacity(query.pattern_count());
        for index in 0..query.pattern_count() {
            let quantifiers = query.capture_quantifiers(index);
            let always = |capture: u32| {
                matches!(quantifiers.get(capture as usize), Some(CaptureQuantifier::One | CaptureQuantifier::OneOrMore))
            };
            let mut groups: Vec<Vec<usize>> = Vec::new();
            let text = source.get(query.start_byte_for_pattern(index)..query.end_byte_for_pattern(index))?;
            for written in written_predicates(text) {
                let [capture] = written.captures.as_slice() else {
                    continue;
                };
                let Some(capture) = query.capture_index_for_name(capture) else {
                    continue;
                };
                if !always(capture) {
                    continue;
                }
                let (alternatives, whole_word) = match written.name.as_str() {
                    "eq?" | "any-of?" => (written.strings.clone(), true),
                    "match?" => match written.strings.as_slice() {
                        [regex] => (regex_prefixes(regex).unwrap_or_default(), false),
                        _ => (Vec::new(), false),
                    },
                    _ => (Vec::new(), false),
                };
                if !alternatives.is_empty() && alternatives.iter().all(|a| !a.is_empty()) {
                    groups.push(alternatives.iter().map(|a| intern(a, false, whole_word)).collect());
                }
            }
            let named = extras.get(index).map(|e| e.predicates.as_slice()).unwrap_or_default();
            for &(predicate, capture) in named.iter().chain(list_predicates) {
                if always(capture) {
                    if let Some((words, folded, whole_word)) = implied_words(predicate) {
                        groups.push(words.iter().map(|w| intern(w, folded, whole_word)).collect());
                    }
                }
            }
            if groups.is_empty() {
                return None;
            }
            patterns.push(groups);
        }
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(literals.iter().map(|l| &l.text))
            .ok()?;
        let mut anchor_ids: Vec<usize> = patterns
            .iter()
            .filter_map(|groups: &Vec<Vec<usize>>| {
                groups.iter().max_by_key(|g| g.iter().map(|&id| literals[id].text.len()).min().unwrap_or(0))
            })
            .flatten()
            .copied()
            .collect();
        anchor_ids.sort_unstable();
        anchor_ids.dedup();
        let anchors = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .build(anchor_ids.iter().map(|&id| &literals[id].text))
            .ok()?;
        Some(Self { literals, automaton, anchors, patterns, anchor_ids })
    }

    /// Byte offsets of every occurrence of an anchor literal. Each pattern's anchor group comes
    /// from predicates on captures every match has, so every match contains one of these.
    pub(super) fn anchor_positions(&self, text: &str) -> Vec<usize> {
        self.anchors.find_overlapping_iter(text).map(|found| found.start()).collect()
    }

    /// [`Prefilter::may_match`] from a shared scan: `ids` maps this filter's literal ids to the
    /// scan's texts ([`SharedLiterals::ids`]).
    pub(super) fn may_match_in(&self, hits: &LiteralHits, ids: &[usize]) -> bool {
        let seen: Vec<bool> = self
            .literals
            .iter()
            .zip(ids)
            .map(|(literal, &text)| hits.occurs(text, literal.folded, literal.whole_word))
            .collect();
        self.patterns.iter().any(|groups| groups.iter().all(|group| group.iter().any(|&id| seen[id])))
    }

    /// [`Prefilter::anchor_positions`] from a shared scan, sorted.
    pub(super) fn anchor_positions_in(&self, hits: &LiteralHits, ids: &[usize]) -> Vec<usize> {
        let anchors: Vec<usize> = self.anchor_ids.iter().map(|&id| ids[id]).collect();
        let mut positions: Vec<usize> = hits
            .all
            .iter()
            .filter(|(text, _)| anchors.contains(&(*text as usize)))
            .map(|&(_, at)| at as usize)
            .collect();
        positions.sort_unstable();
        positions.dedup();
        positions
    }

    /// Whether some pattern may match `text` (false: it certainly cannot).
    pub(super) fn may_match(&self, text: &str) -> bool {
        if !self.anchors.is_match(text) {
            return false;
        }
        let bytes = text.as_bytes();
        let mut seen = vec![false; self.literals.len()];
        let satisfied = |seen: &[bool]| {
            self.patterns.iter().any(|groups| groups.iter().all(|group| group.iter().any(|&id| seen[id])))
        };
        for found in self.automaton.find_overlapping_iter(text) {
            let id = found.pattern().as_usize();
            let Some(literal) = self.literals.get(id) else {
                continue;
            };
            if seen[id] {
                continue;
            }
            if !literal.folded && bytes.get(found.start()..found.end()) != Some(literal.text.as_bytes()) {
                continue;
            }
            if literal.whole_word {
                let glued_before = found.start() > 0
                    && literal.text.bytes().next().is_some_and(is_word_byte)
                    && bytes.get(found.start() - 1).copied().is_some_and(is_word_byte);
                let glued_after = literal.text.bytes().last().is_some_and(is_word_byte)
                    && bytes.get(found.end()).copied().is_some_and(is_word_byte);
                if glued_before || glued_after {
                    continue;
                }
            }
            seen[id] = true;
            if satisfied(&seen) {
                return true;
            }
        }
        false
    }
}

/// The literals of many prefilters (every syntax rule of one language), found in one pass per
/// file instead of one pass per rule: the engine puts [`SharedLiterals::texts`] into its own
/// keyword automaton, feeds each occurrence to [`SharedLiterals::record`], and hands every rule
/// its view of the result. Texts are deduplicated; how each occurrence compares (exactly or only
/// up to ASCII case, glued to identifier characters or not) is recorded per text.
#[derive(Debug)]
pub(crate) struct SharedLiterals {
    /// Per member (in the order given to [`SharedLiterals::new`]): its literal ids -> text ids.
    ids: Vec<Vec<usize>>,
    /// The deduplicated texts.
    texts: Vec<String>,
}

/// Where a file holds the texts of a [`SharedLiterals`].
#[derive(Debug, Default)]
pub(crate) struct LiteralHits {
    /// Per text: bit 0 occurs up to case, bit 1 exactly, bit 2 up to case and not glued to
    /// identifier characters, bit 3 exactly and not glued.
    kinds: Vec<u8>,
    /// Every occurrence: (text id, byte offset).
    all: Vec<(u32, u32)>,
}

const FOLDED: u8 = 1;
const EXACT: u8 = 2;
const WORD_SHIFT: u8 = 2;

impl LiteralHits {
    fn occurs(&self, text: usize, folded: bool, whole_word: bool) -> bool {
        let wanted = if folded { FOLDED } else { EXACT };
        let wanted = if whole_word { wanted << WORD_SHIFT } else { wanted };
        self.kinds.get(text).is_some_and(|kinds| kinds & wanted != 0)
    }
}

impl SharedLiterals {
    pub(super) fn new(members: &[&Prefilter]) -> Self {
        let mut texts: Vec<String> = Vec::new();
        let ids = members
            .iter()
            .map(|member| {
                member
                    .literals
                    .iter()
                    .map(|literal| match texts.iter().position(|t| *t == literal.text) {
                        Some(id) => id,
                        None => {
                            texts.push(literal.text.clone());
                            texts.len() - 1
                        }
                    })
                    .collect()
            })
            .collect();
        Self { ids, texts }
    }

    /// The texts to search for, ASCII case-insensitively and overlapping.
    pub(crate) fn texts(&self) -> &[String] {
        &self.texts
    }

    /// Member `index`'s literal ids -> text ids.
    pub(super) fn ids(&self, index: usize) -> &[usize] {
        &self.ids[index]
    }

    /// No occurrence yet.
    pub(crate) fn no_hits(&self) -> LiteralHits {
        LiteralHits { kinds: vec![0; self.texts.len()], all: Vec::new() }
    }

    /// Records that text `id` occurs (up to ASCII case) at `start..end` of `bytes`.
    pub(crate) fn record(&self, hits: &mut LiteralHits, id: usize, start: usize, end: usize, bytes: &[u8]) {
        let (Some(expected), Some(matched), Ok(text_id), Ok(at)) =
            (self.texts.get(id), bytes.get(start..end), u32::try_from(id), u32::try_from(start))
        else {
            return;
        };
        let glued_before = start > 0
            && matched.first().copied().is_some_and(is_word_byte)
            && bytes.get(start - 1).copied().is_some_and(is_word_byte);
        let glued_after =
            matched.last().copied().is_some_and(is_word_byte) && bytes.get(end).copied().is_some_and(is_word_byte);
        let mut kinds = FOLDED | if expected.as_bytes() == matched { EXACT } else { 0 };
        if !glued_before && !glued_after {
            kinds |= kinds << WORD_SHIFT;
        }
        hits.kinds[id] |= kinds;
        hits.all.push((text_id, at));
    }
}

#[cfg(test)]
impl Prefilter {
    /// Per pattern, its groups of alternative literals.
    pub(super) fn pattern_groups(&self) -> Vec<Vec<Vec<&str>>> {
        self.patterns
            .iter()
            .map(|groups| {
                groups.iter().map(|g| g.iter().map(|&id| self.literals[id].text.as_str()).collect()).collect()
            })
            .collect()
    }
}

/// Words a named predicate needs to hold, if any: the words, whether they compare
/// case-insensitively, and whether each is a whole token.
fn implied_words(predicate: Predicate) -> Option<(&'static [&'static str], bool, bool)> {
    match predicate {
        Predicate::ShellCommand | Predicate::CommandBuilder => Some((&["Command::new"], false, true)),
        Predicate::HasShellTrue => Some((&["shell"], false, true)),
        Predicate::SecretNamed | Predicate::InterpolatesSecret => Some((SECRET_SUBSTRINGS, true, false)),
        _ => None,
    }
}

/// The literals every match of `regex` starts with, or `None` when that set is unbounded,
/// contains the empty string, or the regex does not parse here.
fn regex_prefixes(regex: &str) -> Option<Vec<String>> {
    let hir = regex_syntax::parse(regex).ok()?;
    let mut extractor = Extractor::new();
    extractor.limit_total(MAX_REGEX_LITERALS);
    let seq = extractor.extract(&hir);
    let literals = seq.literals()?;
    literals.iter().map(|l| String::from_utf8(l.as_bytes().to_vec()).ok().filter(|s| !s.is_empty())).collect()
}

/// The predicates written in one pattern's source: `(#name? @capture "string" ...)`, with
/// comments skipped and strings unescaped the way tree-sitter does.
fn written_predicates(source: &str) -> Vec<WrittenPredicate> {
    let mut out = Vec::new();
    let mut chars = source.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            ';' => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                let _ = read_string(&mut chars);
            }
            '(' if chars.peek().is_some_and(|&(_, c)| c == '#') => {
                chars.next();
                let mut predicate = WrittenPredicate { name: String::new(), captures: Vec::new(), strings: Vec::new() };
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_whitespace() || c == ')' {
                        break;
                    }
                    predicate.name.push(c);
                    chars.next();
                }
                while let Some((_, c)) = chars.next() {
                    match c {
                        ')' => break,
                        '"' => predicate.strings.push(read_string(&mut chars)),
                        '@' => {
                            let mut name = String::new();
                            while let Some(&(_, c)) = chars.peek() {
                                if c.is_whitespace() || c == ')' || c == '"' {
                                    break;
                                }
                                name.push(c);
                                chars.next();
                            }
                            predicate.captures.push(name);
                        }
                        _ => {}
                    }
                }
                out.push(predicate);
            }
            _ => {}
        }
    }
    out
}

/// Read a string body after its opening quote, unescaping `\n`, `\r`, `\t`, `\0` and `\<c>`.
fn read_string(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> String {
    let mut out = String::new();
    while let Some((_, c)) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, 't')) => out.push('\t'),
                Some((_, '0')) => out.push('\0'),
                Some((_, other)) => out.push(other),
                None => break,
            },
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_are_read_from_source() {
        let source = r#"; a comment with (#eq? @no "x")
            ((call_expression function: (identifier) @f "(" @paren) @c
              (#eq? @f "ex\"ec")
              (#any-of? @f "a" "b\\c")
              (#match? @c "^x\n"))"#;
        let found = written_predicates(source);
        assert_eq!(
            found,
            vec![
                WrittenPredicate { name: "eq?".into(), captures: vec!["f".into()], strings: vec!["ex\"ec".into()] },
                WrittenPredicate {
                    name: "any-of?".into(),
                    captures: vec!["f".into()],
                    strings: vec!["a".into(), "b\\c".into()]
                },
                WrittenPredicate { name: "match?".into(), captures: vec!["c".into()], strings: vec!["^x\n".into()] },
            ]
        );
    }

    #[test]
    fn regex_prefixes_are_finite_or_none() {
        let mut got = regex_prefixes("^(subprocess\\.)?(run|call)$").unwrap();
        got.sort();
        assert_eq!(got, vec!["call", "run", "subprocess.call", "subprocess.run"]);
        assert_eq!(regex_prefixes("^\"-[a-z]*c\"$").unwrap(), vec!["\"-"]);
        assert_eq!(regex_prefixes("(^|\\.)commands$").unwrap(), vec!["commands", ".commands"]);
        assert_eq!(regex_prefixes(".*"), None);
        assert_eq!(regex_prefixes("("), None);
    }
}
