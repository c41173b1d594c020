//! The syntax matcher: a rule's tree-sitter queries, compiled once per language, plus small
//! named predicates in Rust for what a query cannot express.
//!
//! [`compile`] turns a rule's [`QuerySpec`] into a [`Matcher`]. Per file the matcher
//! 1. skips the file unless one of the rule's `sink_keywords` occurs in it (ASCII
//!    case-insensitively, like the engine's gate), and unless the literals that some pattern's
//!    predicates imply all occur in it (see the `prefilter` module: `#eq? @fn "exec"` needs
//!    `exec`, `#interpolates-secret?` needs a secret word, ...); both are substring scans, far
//!    cheaper than parsing. When a query has such a prefilter it implies the keywords (a test
//!    checks that for the built-in rules), so only the prefilter scan runs. Inside the engine
//!    that scan is not even the rule's own: the engine's one keyword pass per file also locates
//!    every syntax rule's literals;
//! 2. parses it with a per-thread, reused tree-sitter parser for the file's grammar
//!    (TypeScript and TSX are different grammars; JavaScript covers `.js/.jsx/.mjs/.cjs`). A
//!    Rust file is not parsed whole: only the top-level items holding an anchor literal are,
//!    each on its own (the `items` module finds their bounds lexically), and the parses are
//!    shared by every rule checking the file; the whole file is parsed when it cannot be split
//!    or a piece does not parse cleanly;
//! 3. runs the query; tree-sitter itself applies the text predicates `#eq?`, `#not-eq?`,
//!    `#match?`, `#not-match?`, `#any-of?`, `#not-any-of?`;
//! 4. applies the named predicates, inline ones (`(#not-constant? @cmd)`, for that pattern) and
//!    the rule's `predicates` list (`"not-constant @cmd"`, for every match with that capture);
//! 5. reports the `report` capture's byte range, or the whole match's.
//!
//! A pattern may carry its own message with `(#set! message "...")`.
//!
//! Query lookup: a file in language L uses `queries.L`; TSX falls back to `typescript` then
//! `javascript`, TypeScript to `javascript` (the TypeScript grammars extend the JavaScript one,
//! so one query usually serves all three; it is compiled per grammar).
//!
//! Parsing and querying are time-bounded per file ([`PARSE_BUDGET`], [`QUERY_BUDGET`]) and the
//! predicates' walks are depth- and size-bounded: no input can hang or crash the matcher.
//!
//! ```
//! use std::path::Path;
//! use sandguard_lint::{Language, RuleFile, SourceFile};
//!
//! let rules: RuleFile = toml::from_str(r#"
//!     [[rule]]
//!     id = "shell-eval"
//!     severity = "deny"
//!     category = "command-injection"
//!     languages = ["shell"]
//!     message = "eval of a variable"
//!     help = "do not eval input"
//!     [rule.query]
//!     sink_keywords = ["eval"]
//!     queries.shell = '(command name: (command_name) @n (#eq? @n "eval") argument: (_) @arg (#not-constant? @arg)) @call'
//!     report = "call"
//! "#).unwrap();
//! let rule = &rules.rule[0];
//! let matcher = sandguard_lint::syntax::compile(rule, rule.query.as_ref().unwrap()).unwrap();
//! let text = "eval 'ls'\neval \"$cmd\"\n";
//! let file = SourceFile { path: Path::new("x.sh"), language: Language::Shell, text };
//! let found = matcher.find(&file);
//! assert_eq!(found.len(), 1);
//! assert_eq!(&text[found[0].start_byte..found[0].end_byte], "eval \"$cmd\"");
//! ```

mod expression;
mod items;
mod predicate;
mod prefilter;

use std::cell::RefCell;
use std::fmt;
use std::time::{Duration, Instant};

use aho_corasick::AhoCorasick;
use tree_sitter::{
    ParseOptions, ParseState, Parser, Query, QueryCursor, QueryCursorOptions, QueryCursorState, QueryMatch,
    QueryPredicateArg, StreamingIterator, Tree,
};

use crate::rule::{Language, QuerySpec, Rule};
use crate::{LintError, Matcher, RawMatch, SourceFile};

use expression::{Code, Family};
use predicate::Predicate;
use prefilter::Prefilter;
pub(crate) use prefilter::{LiteralHits, SharedLiterals};

/// Longest a parse of one file may take; past it the file yields no syntax findings.
pub const PARSE_BUDGET: Duration = Duration::from_secs(2);
/// Longest one rule's query may run over one file; matches found before it are kept.
pub const QUERY_BUDGET: Duration = Duration::from_secs(2);
/// Files larger than this are not parsed (tree-sitter offsets are 32-bit; the engine skips
/// huge files long before this).
const MAX_PARSE_BYTES: usize = 64 << 20;
/// Most in-progress matches a query cursor keeps (bounds memory on pathological input).
const MATCH_LIMIT: u32 = 256;
/// Most findings one rule reports in one file.
const MAX_FINDINGS: usize = 10_000;

/// A tree-sitter grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grammar {
    Rust,
    Typescript,
    Tsx,
    Javascript,
    Python,
    Bash,
}

impl Grammar {
    const COUNT: usize = 6;

    /// The grammar for a language (`None` for plain text).
    const fn of(language: Language) -> Option<Self> {
        Some(match language {
            Language::Rust => Self::Rust,
            Language::Typescript => Self::Typescript,
            Language::Tsx => Self::Tsx,
            Language::Javascript => Self::Javascript,
            Language::Python => Self::Python,
            Language::Shell => Self::Bash,
            Language::Text => return None,
        })
    }

    fn language(self) -> tree_sitter::Language {
        match self {
            Self::Rust => tree_sitter_rust::LANGUAGE.into(),
            Self::Typescript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Self::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Self::Javascript => tree_sitter_javascript::LANGUAGE.into(),
            Self::Python => tree_sitter_python::LANGUAGE.into(),
            Self::Bash => tree_sitter_bash::LANGUAGE.into(),
        }
    }

    const fn family(self) -> Family {
        match self {
            Self::Rust => Family::Rust,
            Self::Typescript | Self::Tsx | Self::Javascript => Family::Js,
            Self::Python => Family::Python,
            Self::Bash => Family::Shell,
        }
    }

    /// The `queries` keys tried, in order, for a file of this grammar.
    const fn query_keys(self) -> &'static [&'static str] {
        match self {
            Self::Rust => &["rust"],
            Self::Typescript => &["typescript", "javascript"],
            Self::Tsx => &["tsx", "typescript", "javascript"],
            Self::Javascript => &["javascript"],
            Self::Python => &["python"],
            Self::Bash => &["shell"],
        }
    }

    const fn index(self) -> usize {
        self as usize
    }

    fn parser(self) -> Option<Parser> {
        let mut parser = Parser::new();
        parser.set_language(&self.language()).ok()?;
        Some(parser)
    }
}

/// The `queries` keys a rule may use.
const QUERY_KEYS: &[&str] = &["rust", "typescript", "tsx", "javascript", "python", "shell"];

/// One pattern's extra conditions and message.
#[derive(Debug, Default)]
struct PatternExtras {
    predicates: Vec<(Predicate, u32)>,
    message: Option<String>,
}

/// A query compiled for one grammar.
struct CompiledQuery {
    grammar: Grammar,
    query: Query,
    /// Per pattern: inline predicates and message.
    patterns: Vec<PatternExtras>,
    /// The rule's `predicates` list, resolved to this query's capture indices.
    predicates: Vec<(Predicate, u32)>,
    report: Option<u32>,
    /// Literals a file must contain for some pattern to match (`None`: parse every file).
    prefilter: Option<Prefilter>,
}

/// The compiled matcher of one syntax rule.
pub(crate) struct SyntaxMatcher {
    id: String,
    keywords: Option<AhoCorasick>,
    queries: Vec<(Language, QuerySlot)>,
}

/// One language's query: compiled at once, or on the first file of that language.
enum QuerySlot {
    Ready(CompiledQuery),
    Deferred(DeferredQuery),
}

/// What compiling one language's query later needs.
struct DeferredQuery {
    grammar: Grammar,
    key: &'static str,
    source: String,
    predicates: Vec<String>,
    report: Option<String>,
    compiled: std::sync::OnceLock<Option<CompiledQuery>>,
}

impl QuerySlot {
    fn get(&self) -> Option<&CompiledQuery> {
        match self {
            Self::Ready(compiled) => Some(compiled),
            Self::Deferred(deferred) => deferred
                .compiled
                .get_or_init(|| {
                    let predicates: Vec<(Predicate, &str)> =
                        deferred.predicates.iter().filter_map(|p| Predicate::parse_spec(p).ok()).collect();
                    compile_query(
                        deferred.grammar,
                        deferred.key,
                        &deferred.source,
                        &predicates,
                        deferred.report.as_deref(),
                    )
                    .ok()
                })
                .as_ref(),
        }
    }
}

impl fmt::Debug for SyntaxMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyntaxMatcher")
            .field("id", &self.id)
            .field("languages", &self.queries.iter().map(|(l, _)| l).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Compile a syntax rule: every language's query once, its named predicates, its report
/// capture. Errors name the rule, the language and what is wrong (query syntax with row and
/// column, an unknown node kind, field or predicate, a capture the predicates or `report`
/// refer to that no query defines, a language without a query).
pub fn compile(rule: &Rule, spec: &QuerySpec) -> Result<Box<dyn Matcher>, LintError> {
    Ok(Box::new(compile_with(rule, spec, true)?))
}

/// Like [`compile`], but each language's query is compiled the first time a file of that
/// language is checked: a scan of Rust sources does not pay for the TypeScript queries (tens of
/// milliseconds each). Only for rules whose queries are known to compile — the built-in ones,
/// which the test suite compiles and runs — because a query that fails to compile later simply
/// matches nothing.
///
/// # Errors
/// The checks that need no compiled query: languages, query keys, predicate syntax.
pub fn compile_deferred(rule: &Rule, spec: &QuerySpec) -> Result<Box<dyn Matcher>, LintError> {
    Ok(Box::new(compile_deferred_matcher(rule, spec)?))
}

/// [`compile_deferred`], unboxed for the engine.
pub(crate) fn compile_deferred_matcher(rule: &Rule, spec: &QuerySpec) -> Result<SyntaxMatcher, LintError> {
    for predicate in &spec.predicates {
        Predicate::parse_spec(predicate).map_err(|reason| LintError::Rule { id: rule.id.clone(), reason })?;
    }
    let queries = language_queries(rule, spec)?
        .into_iter()
        .map(|(language, grammar, key, source)| {
            let deferred = DeferredQuery {
                grammar,
                key,
                source: source.to_owned(),
                predicates: spec.predicates.clone(),
                report: spec.report.clone(),
                compiled: std::sync::OnceLock::new(),
            };
            (language, QuerySlot::Deferred(deferred))
        })
        .collect();
    let keywords = sink_keywords(rule, spec)?;
    Ok(SyntaxMatcher { id: rule.id.clone(), keywords, queries })
}

/// The languages of `rule`, each with its grammar, the `queries` key that serves it and that
/// query's text; also checks the keys are known languages.
fn language_queries<'s>(
    rule: &Rule,
    spec: &'s QuerySpec,
) -> Result<Vec<(Language, Grammar, &'static str, &'s str)>, LintError> {
    let fail = |reason: String| LintError::Rule { id: rule.id.clone(), reason };
    for key in spec.queries.keys() {
        if !QUERY_KEYS.contains(&key.as_str()) {
            return Err(fail(format!("unknown query language `{key}` (expected one of: {})", QUERY_KEYS.join(", "))));
        }
    }
    if rule.languages.is_empty() {
        return Err(fail("a syntax rule needs at least one language".into()));
    }
    let mut jobs: Vec<(Language, Grammar, &'static str, &'s str)> = Vec::new();
    for &language in &rule.languages {
        if jobs.iter().any(|(l, ..)| *l == language) {
            continue;
        }
        let grammar = Grammar::of(language)
            .ok_or_else(|| fail("`text` is not a syntax language; use a pattern rule for any-file checks".into()))?;
        let Some((key, source)) = grammar.query_keys().iter().find_map(|k| spec.queries.get(*k).map(|q| (*k, q)))
        else {
            return Err(fail(format!(
                "no query for language `{}` (add `queries.{}`)",
                grammar.query_keys()[0],
                grammar.query_keys()[0]
            )));
        };
        jobs.push((language, grammar, key, source.as_str()));
    }
    Ok(jobs)
}

/// The rule's sink keywords as one ASCII case-insensitive automaton (like the engine's own
/// keyword gate); `None` when it has none.
fn sink_keywords(rule: &Rule, spec: &QuerySpec) -> Result<Option<AhoCorasick>, LintError> {
    if spec.sink_keywords.is_empty() {
        return Ok(None);
    }
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(&spec.sink_keywords)
        .map(Some)
        .map_err(|e| LintError::Rule { id: rule.id.clone(), reason: format!("sink keywords: {e}") })
}

/// [`compile`], unboxed, optionally without the pre-parse filter (tests compare both).
pub(crate) fn compile_with(rule: &Rule, spec: &QuerySpec, prefilter: bool) -> Result<SyntaxMatcher, LintError> {
    let fail = |reason: String| LintError::Rule { id: rule.id.clone(), reason };
    let list_predicates =
        spec.predicates.iter().map(|p| Predicate::parse_spec(p)).collect::<Result<Vec<_>, _>>().map_err(fail)?;
    let jobs = language_queries(rule, spec)?;
    let used_keys: Vec<&str> = jobs.iter().map(|(_, _, key, _)| *key).collect();
    // Compiling a query is costly (tree-sitter analyses it against the grammar: tens of
    // milliseconds for TypeScript), so the languages compile in parallel.
    let results: Vec<Result<CompiledQuery, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|&(_, grammar, key, source)| {
                let list_predicates = &list_predicates;
                let report = spec.report.as_deref();
                scope.spawn(move || compile_query(grammar, key, source, list_predicates, report))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("compiling the query panicked".to_string())))
            .collect()
    });
    let mut queries: Vec<(Language, QuerySlot)> = Vec::with_capacity(jobs.len());
    for ((language, ..), result) in jobs.iter().zip(results) {
        let mut compiled = result.map_err(fail)?;
        if !prefilter {
            compiled.prefilter = None;
        }
        queries.push((*language, QuerySlot::Ready(compiled)));
    }
    for key in spec.queries.keys() {
        if !used_keys.contains(&key.as_str()) {
            return Err(fail(format!("`queries.{key}` is never used: its language is not in `languages`")));
        }
    }
    for (predicate, capture) in &list_predicates {
        let _ = predicate;
        if !queries.iter().any(|(_, q)| q.get().is_some_and(|q| q.query.capture_index_for_name(capture).is_some())) {
            return Err(fail(format!("predicate capture `@{capture}` appears in no query")));
        }
    }
    let keywords = sink_keywords(rule, spec)?;
    Ok(SyntaxMatcher { id: rule.id.clone(), keywords, queries })
}

/// One literal scan per file shared by every syntax rule of one language (see
/// [`SharedLiterals`]): the scan, and which member each rule is.
#[derive(Debug)]
pub(crate) struct SharedScan {
    literals: SharedLiterals,
    /// (rule index given by the engine, member index), sorted by rule index.
    members: Vec<(usize, usize)>,
}

impl SharedScan {
    /// The scan for files of `language` over `matchers` (the engine's rule index, the rule's
    /// matcher); the rules without a pre-parse filter for the language stay out and scan on
    /// their own. `None` when no rule takes part.
    pub(crate) fn new(matchers: &[(usize, &SyntaxMatcher)], language: Language) -> Option<Self> {
        let mut prefilters = Vec::new();
        let mut members = Vec::new();
        for &(rule, matcher) in matchers {
            if let Some(prefilter) = matcher.compiled(language).and_then(|c| c.prefilter.as_ref()) {
                members.push((rule, prefilters.len()));
                prefilters.push(prefilter);
            }
        }
        if prefilters.is_empty() {
            return None;
        }
        members.sort_unstable();
        Some(Self { literals: SharedLiterals::new(&prefilters), members })
    }

    /// The literals, for the engine's one pass over each file.
    pub(crate) const fn literals(&self) -> &SharedLiterals {
        &self.literals
    }

    /// The one pass over `text` on its own (the engine folds it into its keyword pass).
    #[cfg(test)]
    pub(crate) fn scan(&self, text: &str) -> LiteralHits {
        let automaton = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(self.literals.texts())
            .expect("literal automata are small");
        let mut hits = self.literals.no_hits();
        for found in automaton.find_overlapping_iter(text) {
            self.literals.record(&mut hits, found.pattern().as_usize(), found.start(), found.end(), text.as_bytes());
        }
        hits
    }

    /// Runs rule `rule`'s matcher on `file` with the shared `hits`, or on its own when it is
    /// not a member.
    pub(crate) fn find(
        &self,
        rule: usize,
        matcher: &SyntaxMatcher,
        file: &SourceFile<'_>,
        hits: &LiteralHits,
    ) -> Vec<RawMatch> {
        match self.members.binary_search_by_key(&rule, |&(r, _)| r) {
            Ok(at) => matcher.find_with(file, Some((hits, self.literals.ids(self.members[at].1)))),
            Err(_) => matcher.find(file),
        }
    }
}

/// Compile one language's query and resolve its predicates, message and report capture.
fn compile_query(
    grammar: Grammar,
    key: &str,
    source: &str,
    list_predicates: &[(Predicate, &str)],
    report: Option<&str>,
) -> Result<CompiledQuery, String> {
    if grammar.parser().is_none() {
        return Err(format!("the {key} grammar is incompatible with this tree-sitter version"));
    }
    let query = Query::new(&grammar.language(), source).map_err(|e| {
        format!("{key} query, line {} column {}: {:?} error: {}", e.row + 1, e.column + 1, e.kind, e.message)
    })?;
    if query.pattern_count() == 0 {
        return Err(format!("{key} query has no pattern"));
    }
    let mut patterns = Vec::with_capacity(query.pattern_count());
    for index in 0..query.pattern_count() {
        let mut extras = PatternExtras::default();
        if !query.property_predicates(index).is_empty() {
            return Err(format!("{key} query pattern {}: `#is?`/`#is-not?` are not supported", index + 1));
        }
        for setting in query.property_settings(index) {
            match (&*setting.key, &setting.value, setting.capture_id) {
                ("message", Some(value), None) => extras.message = Some(value.to_string()),
                _ => {
                    return Err(format!(
                        "{key} query pattern {}: only `(#set! message \"...\")` is supported",
                        index + 1
                    ));
                }
            }
        }
        for general in query.general_predicates(index) {
            let name = general.operator.trim_end_matches('?');
            let predicate = Predicate::named(name).ok_or_else(|| {
                format!(
                    "{key} query pattern {}: unknown predicate `#{}` (named predicates: {})",
                    index + 1,
                    general.operator,
                    Predicate::known()
                )
            })?;
            let [QueryPredicateArg::Capture(capture)] = &*general.args else {
                return Err(format!(
                    "{key} query pattern {}: `#{}` takes exactly one capture",
                    index + 1,
                    general.operator
                ));
            };
            extras.predicates.push((predicate, *capture));
        }
        patterns.push(extras);
    }
    let predicates: Vec<(Predicate, u32)> =
        list_predicates.iter().filter_map(|(p, name)| query.capture_index_for_name(name).map(|i| (*p, i))).collect();
    let report = match report {
        Some(name) => Some(
            query
                .capture_index_for_name(name)
                .ok_or_else(|| format!("{key} query has no `@{name}` capture to report"))?,
        ),
        None => None,
    };
    let prefilter = Prefilter::new(&query, source, &patterns, &predicates);
    Ok(CompiledQuery { grammar, query, patterns, predicates, report, prefilter })
}

thread_local! {
    /// One parser per grammar per thread, reused across files.
    static PARSERS: RefCell<[Option<Parser>; Grammar::COUNT]> =
        const { RefCell::new([const { None }; Grammar::COUNT]) };
    /// One query cursor per thread, reused across files and rules.
    static CURSOR: RefCell<Option<QueryCursor>> = const { RefCell::new(None) };
    /// This thread's parses of the file it is checking, so that the next syntax rule run on the
    /// same file reuses them instead of parsing again.
    static FILE_PARSES: RefCell<Option<FileParses>> = const { RefCell::new(None) };
}

/// The parses of one file, remembered: which grammar, which text (compared in full, so a
/// reused buffer with new contents is never mistaken for the old file), the whole file's tree,
/// and the trees of pieces of it (Rust items) parsed on their own.
struct FileParses {
    grammar: Grammar,
    text: String,
    /// `None`: not parsed yet; `Some(None)`: parsing ran out of time (a hostile file is not
    /// parsed again for every rule).
    whole: Option<Option<Tree>>,
    /// The top-level item bounds, lexed once: `None`: not yet; `Some(None)`: the lexer gave up.
    bounds: Option<Option<Vec<usize>>>,
    /// Piece start offset -> its tree; `None` when it did not parse cleanly.
    pieces: Vec<(usize, Option<Tree>)>,
}

/// How one rule's query runs over one file.
enum Plan {
    /// Over these byte ranges of the whole file's tree.
    Whole(Tree, Vec<std::ops::Range<usize>>),
    /// Over pieces of the file parsed on their own: (the piece's byte range, its tree).
    Pieces(Vec<(std::ops::Range<usize>, Tree)>),
}

impl FileParses {
    fn new(grammar: Grammar, text: &str) -> Self {
        Self { grammar, text: text.to_owned(), whole: None, bounds: None, pieces: Vec::new() }
    }

    /// Forget the last file unless it is `text` in `grammar`.
    fn reset_to(&mut self, grammar: Grammar, text: &str) {
        if self.grammar != grammar || self.text != text {
            self.grammar = grammar;
            self.text.clear();
            self.text.push_str(text);
            self.whole = None;
            self.bounds = None;
            self.pieces.clear();
        }
    }

    fn whole(&mut self) -> Option<Tree> {
        let (grammar, text) = (self.grammar, &self.text);
        self.whole.get_or_insert_with(|| parse_with_thread_parser(grammar, text)).clone()
    }

    /// The trees of the top-level items holding `positions`, each parsed on its own; `None`
    /// when the file cannot be split (only Rust can, see [`items`]) or some piece does not
    /// parse cleanly: then the whole file must be parsed.
    fn item_trees(&mut self, positions: &[usize]) -> Option<Vec<(std::ops::Range<usize>, Tree)>> {
        if self.grammar != Grammar::Rust {
            return None;
        }
        let text = &self.text;
        let bounds = self.bounds.get_or_insert_with(|| items::rust_item_bounds(text)).as_ref()?;
        let mut wanted: Vec<usize> = positions.iter().map(|&p| bounds.partition_point(|&b| b <= p) - 1).collect();
        wanted.dedup();
        let mut trees = Vec::with_capacity(wanted.len());
        for piece in wanted {
            let range = *bounds.get(piece)?..*bounds.get(piece + 1)?;
            let tree = match self.pieces.iter().find(|(start, _)| *start == range.start) {
                Some((_, tree)) => tree.clone(),
                None => {
                    let tree = parse_with_thread_parser(self.grammar, &text[range.clone()])
                        .filter(|tree| !tree.root_node().has_error());
                    self.pieces.push((range.start, tree.clone()));
                    tree
                }
            };
            trees.push((range, tree?));
        }
        Some(trees)
    }
}

/// Runs `f` on this thread's parses of `text` in `grammar`.
fn with_file_parses<R>(grammar: Grammar, text: &str, f: impl FnOnce(&mut FileParses) -> R) -> R {
    FILE_PARSES.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            let parses = slot.get_or_insert_with(|| FileParses::new(grammar, text));
            parses.reset_to(grammar, text);
            f(parses)
        }
        // Not reachable (no re-entrancy), but fresh parses are always correct.
        Err(_) => f(&mut FileParses::new(grammar, text)),
    })
}

/// The byte ranges of the top-level items (children of the root) holding `positions`, merged;
/// the whole text when a position lies outside every item, when there are very many positions,
/// or when the items cover most of the text.
fn item_ranges(tree: &Tree, positions: &[usize]) -> Vec<std::ops::Range<usize>> {
    /// Past this many anchors the file is busy with the rule's words: scan it whole.
    const MAX_POSITIONS: usize = 64;
    let root = tree.root_node();
    let whole = || std::iter::once(root.start_byte()..root.end_byte()).collect::<Vec<_>>();
    if positions.len() > MAX_POSITIONS {
        return whole();
    }
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::with_capacity(positions.len());
    for &position in positions {
        // `first_child_for_byte` looks at the root's children only: no walk up a deep tree.
        match root.first_child_for_byte(position) {
            Some(item) if item.start_byte() <= position && position < item.end_byte() => {
                ranges.push(item.start_byte()..item.end_byte());
            }
            _ => return whole(),
        }
    }
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<std::ops::Range<usize>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    let covered: usize = merged.iter().map(|r| r.end - r.start).sum();
    if covered * 2 > root.end_byte().saturating_sub(root.start_byte()) { whole() } else { merged }
}

/// Parse `text` with a deadline; `None` if it ran out of time or the grammar failed to load.
fn parse(parser: &mut Parser, text: &str) -> Option<Tree> {
    let deadline = Instant::now() + PARSE_BUDGET;
    let mut out_of_time = |_: &ParseState| Instant::now() > deadline;
    let options = ParseOptions::new().progress_callback(&mut out_of_time);
    let bytes = text.as_bytes();
    let tree = parser.parse_with_options(&mut |offset, _| bytes.get(offset..).unwrap_or_default(), None, Some(options));
    if tree.is_none() {
        // A halted parse keeps its state for resumption; the next file must start afresh.
        parser.reset();
    }
    tree
}

/// Parse with this thread's parser for `grammar`.
fn parse_with_thread_parser(grammar: Grammar, text: &str) -> Option<Tree> {
    PARSERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut parsers) => {
            let slot = &mut parsers[grammar.index()];
            if slot.is_none() {
                *slot = grammar.parser();
            }
            parse(slot.as_mut()?, text)
        }
        // Not reachable (no re-entrancy), but a fresh parser is always correct.
        Err(_) => parse(&mut grammar.parser()?, text),
    })
}

impl SyntaxMatcher {
    fn run(&self, compiled: &CompiledQuery, tree: &Tree, text: &str, range: std::ops::Range<usize>) -> Vec<RawMatch> {
        CURSOR.with(|cell| match cell.try_borrow_mut() {
            Ok(mut slot) => {
                let cursor = slot.get_or_insert_with(new_cursor);
                cursor.set_byte_range(range);
                self.run_with(cursor, compiled, tree, text)
            }
            Err(_) => {
                let mut cursor = new_cursor();
                cursor.set_byte_range(range);
                self.run_with(&mut cursor, compiled, tree, text)
            }
        })
    }

    fn run_with(&self, cursor: &mut QueryCursor, compiled: &CompiledQuery, tree: &Tree, text: &str) -> Vec<RawMatch> {
        let code = Code::new(compiled.grammar.family(), text.as_bytes());
        let deadline = Instant::now() + QUERY_BUDGET;
        let mut out_of_time = |_: &QueryCursorState| Instant::now() > deadline;
        let options = QueryCursorOptions::new().progress_callback(&mut out_of_time);
        let mut matches = cursor.matches_with_options(&compiled.query, tree.root_node(), text.as_bytes(), options);
        let mut found = Vec::new();
        while let Some(m) = matches.next() {
            if found.len() >= MAX_FINDINGS || Instant::now() > deadline {
                break;
            }
            let Some(extras) = compiled.patterns.get(m.pattern_index) else {
                continue;
            };
            let holds = |(predicate, capture): &(Predicate, u32)| {
                m.nodes_for_capture_index(*capture).all(|node| predicate.holds(&code, node))
            };
            if !extras.predicates.iter().all(holds) || !compiled.predicates.iter().all(holds) {
                continue;
            }
            if let Some((start_byte, end_byte)) = span(m, compiled.report) {
                found.push(RawMatch { start_byte, end_byte, message: extras.message.clone() });
            }
        }
        found
    }
}

fn new_cursor() -> QueryCursor {
    let mut cursor = QueryCursor::new();
    cursor.set_match_limit(MATCH_LIMIT);
    cursor
}

/// The reported byte range: the report capture's first node, else the whole match.
fn span(m: &QueryMatch<'_, '_>, report: Option<u32>) -> Option<(usize, usize)> {
    if let Some(node) = report.and_then(|r| m.nodes_for_capture_index(r).next()) {
        return Some((node.start_byte(), node.end_byte()));
    }
    let start = m.captures.iter().map(|c| c.node.start_byte()).min()?;
    let end = m.captures.iter().map(|c| c.node.end_byte()).max()?;
    Some((start, end))
}

impl Matcher for SyntaxMatcher {
    fn find(&self, file: &SourceFile<'_>) -> Vec<RawMatch> {
        self.find_with(file, None)
    }
}

impl SyntaxMatcher {
    /// The compiled query for `language` (compiling a deferred one now).
    fn compiled(&self, language: Language) -> Option<&CompiledQuery> {
        self.queries.iter().find(|(l, _)| *l == language).and_then(|(_, slot)| slot.get())
    }

    /// Every match in `file`; with `shared`, the literal occurrences come from the engine's one
    /// pass (the hits, and this rule's literal ids -> the pass's text ids) instead of this
    /// rule's own scans.
    fn find_with(&self, file: &SourceFile<'_>, shared: Option<(&LiteralHits, &[usize])>) -> Vec<RawMatch> {
        let Some(compiled) = self.compiled(file.language) else {
            return Vec::new();
        };
        if file.text.len() > MAX_PARSE_BYTES {
            return Vec::new();
        }
        // The prefilter implies the keywords (a test checks it for the built-in rules), so the
        // keyword scan only runs for queries without one.
        let may_match = match (&compiled.prefilter, shared) {
            (Some(prefilter), Some((hits, ids))) => prefilter.may_match_in(hits, ids),
            (Some(prefilter), None) => prefilter.may_match(file.text),
            (None, _) => self.keywords.as_ref().is_none_or(|k| k.is_match(file.text)),
        };
        if !may_match {
            return Vec::new();
        }
        let plan = with_file_parses(compiled.grammar, file.text, |parses| {
            let Some(prefilter) = &compiled.prefilter else {
                return Some(Plan::Whole(parses.whole()?, std::iter::once(0..file.text.len()).collect()));
            };
            // Every match contains an anchor literal, inside one top-level item: parse only
            // those items, or at least run the query only over them.
            let positions = match shared {
                Some((hits, ids)) => prefilter.anchor_positions_in(hits, ids),
                None => prefilter.anchor_positions(file.text),
            };
            if let Some(pieces) = parses.item_trees(&positions) {
                return Some(Plan::Pieces(pieces));
            }
            let tree = parses.whole()?;
            let ranges = item_ranges(&tree, &positions);
            Some(Plan::Whole(tree, ranges))
        });
        let mut found = Vec::new();
        match plan {
            None => {}
            Some(Plan::Whole(tree, ranges)) => {
                for range in ranges {
                    found.extend(self.run(compiled, &tree, file.text, range));
                }
            }
            Some(Plan::Pieces(pieces)) => {
                for (range, tree) in pieces {
                    let piece = &file.text[range.clone()];
                    found.extend(self.run(compiled, &tree, piece, 0..piece.len()).into_iter().map(|m| RawMatch {
                        start_byte: m.start_byte + range.start,
                        end_byte: m.end_byte + range.start,
                        ..m
                    }));
                }
            }
        }
        found.sort_by_key(|m| (m.start_byte, m.end_byte));
        found.dedup_by_key(|m| (m.start_byte, m.end_byte));
        found
    }
}

#[cfg(test)]
mod tests;
