//! The engine: rules compiled once into a [`Linter`], which checks one source text
//! ([`Linter::check`]) or walks trees in parallel ([`Linter::scan`]).
//!
//! Per file, one Aho-Corasick pass over every enabled rule's keywords (secret `keywords`, syntax
//! `sink_keywords`, ASCII case-insensitive) decides which rules run at all; most files run none.
//! The same pass locates the literals the syntax rules' pre-parse filters need, so a syntax rule
//! never scans the text itself.
//! Matches of catch-all rules (`fallback = true`) overlapped by a specific secret rule are
//! dropped, inline suppressions are applied, and what remains becomes [`Finding`]s.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::bytes::Regex;

pub use crate::error::LintError;
use crate::error::{ConfigError, ConfigErrors, did_you_mean};
use crate::finding::{Finding, FindingParts, LineIndex, normalise, slash_path};
use crate::rule::{Language, Level, Rule};
use crate::ruleset::{LoadedRule, applies_to, builtin_rules, load_rule_file, parse_rule_file};
use crate::secret::{PatternMatcher, compile_regex};
use crate::suppress::{self, Suppression};
use crate::syntax::{LiteralHits, SharedScan, SyntaxMatcher};
use crate::walk::Excludes;

/// A file to check: its path (as walked, relative to the current directory when the scanned path
/// was), its language and its text.
#[derive(Debug, Clone, Copy)]
pub struct SourceFile<'a> {
    /// The path, for reports.
    pub path: &'a Path,
    /// Its language ([`Language::Text`] when it is none of the parsed ones).
    pub language: Language,
    /// Its contents.
    pub text: &'a str,
}

/// A match of one rule in one file: a byte span of `SourceFile::text`, and optionally a message
/// that replaces the rule's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMatch {
    /// Start of the span (inclusive), in bytes.
    pub start_byte: usize,
    /// End of the span (exclusive), in bytes.
    pub end_byte: usize,
    /// A message specific to this match; the rule's message when `None`.
    pub message: Option<String>,
}

/// A compiled rule: finds its matches in one file. The engine has already checked that the rule
/// applies to the file's language and that one of its keywords occurs.
pub trait Matcher: Send + Sync + fmt::Debug {
    /// Every match in `file`.
    fn find(&self, file: &SourceFile<'_>) -> Vec<RawMatch>;
}

/// The id of the engine's own rule for suppressions that suppress nothing or name no rule.
pub const UNUSED_SUPPRESSION: &str = "unused-suppression";

/// How a rule finds matches.
#[derive(Debug)]
enum Kind {
    Pattern(PatternMatcher),
    Syntax(SyntaxMatcher),
    /// Reported by the engine itself (`unused-suppression`).
    Engine,
}

#[derive(Debug)]
struct CompiledRule {
    rule: Rule,
    level: Level,
    kind: Kind,
}

impl CompiledRule {
    const fn is_pattern(&self) -> bool {
        matches!(self.kind, Kind::Pattern(_))
    }

    const fn is_fallback(&self) -> bool {
        matches!(&self.kind, Kind::Pattern(p) if p.is_fallback())
    }
}

/// Which rules may run on a file of one language, and where its syntax rules' literals occur:
/// one automaton over the keywords of every enabled rule for the language, the suppression
/// marker, and the literals the syntax rules' pre-parse filters need, run once per file.
#[derive(Debug)]
struct Prefilter {
    automaton: AhoCorasick,
    /// Keyword pattern index -> the rules it enables; the pattern after the keywords is the
    /// suppression marker, and the patterns after it are `literals`' texts.
    rules_by_pattern: Vec<Vec<usize>>,
    /// Enabled rules without keywords: they run on every file of the language.
    always: Vec<usize>,
    /// The literal scan the syntax rules share.
    literals: Option<SharedScan>,
}

/// What the pass over one file found.
struct Candidates {
    /// Whether `sandguard:allow` occurs.
    has_marker: bool,
    /// The syntax rules' literals.
    literal_hits: Option<LiteralHits>,
}

impl Prefilter {
    fn new(rules: &[CompiledRule], language: Language) -> Self {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut keywords: Vec<String> = Vec::new();
        let mut rules_by_pattern: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        let mut syntax: Vec<(usize, &SyntaxMatcher)> = Vec::new();
        for (i, compiled) in rules.iter().enumerate() {
            if compiled.level == Level::Allow || !applies_to(&compiled.rule.languages, language) {
                continue;
            }
            let words: &[String] = match (&compiled.kind, &compiled.rule.pattern, &compiled.rule.query) {
                (Kind::Pattern(_), Some(pattern), _) => &pattern.keywords,
                (Kind::Syntax(matcher), _, Some(query)) => {
                    syntax.push((i, matcher));
                    &query.sink_keywords
                }
                _ => continue,
            };
            let words: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).filter(|w| !w.is_empty()).collect();
            if words.is_empty() {
                always.push(i);
            }
            for word in words {
                let pattern = *index.entry(word.clone()).or_insert_with(|| {
                    keywords.push(word);
                    rules_by_pattern.push(Vec::new());
                    rules_by_pattern.len() - 1
                });
                if rules_by_pattern[pattern].last() != Some(&i) {
                    rules_by_pattern[pattern].push(i);
                }
            }
        }
        keywords.push(suppress::MARKER.to_owned());
        rules_by_pattern.push(Vec::new());
        let literals = SharedScan::new(&syntax, language);
        if let Some(literals) = &literals {
            keywords.extend(literals.literals().texts().iter().cloned());
        }
        // A DFA: about 0.5 MB for the built-in keywords, and three to four times the throughput
        // of the default NFA on keyword-dense code, where this pass dominates the secret scan.
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&keywords)
            .expect("keyword automata are small");
        Self { automaton, rules_by_pattern, always, literals }
    }

    /// Marks the rules whose keywords occur in `text` (plus those without keywords) in `active`.
    fn candidates(&self, text: &[u8], active: &mut [bool]) -> Candidates {
        for &i in &self.always {
            active[i] = true;
        }
        let marker = self.rules_by_pattern.len() - 1;
        let first_literal = self.rules_by_pattern.len();
        let mut seen = vec![false; self.rules_by_pattern.len()];
        let mut remaining = seen.len();
        let mut has_marker = false;
        let mut literal_hits = self.literals.as_ref().map(|scan| scan.literals().no_hits());
        for hit in self.automaton.find_overlapping_iter(text) {
            let pattern = hit.pattern().as_usize();
            if pattern >= first_literal {
                if let (Some(scan), Some(hits)) = (&self.literals, literal_hits.as_mut()) {
                    scan.literals().record(hits, pattern - first_literal, hit.start(), hit.end(), text);
                }
                continue;
            }
            if std::mem::replace(&mut seen[pattern], true) {
                continue;
            }
            if pattern == marker {
                has_marker = true;
            }
            for &rule in &self.rules_by_pattern[pattern] {
                active[rule] = true;
            }
            remaining -= 1;
            // Without literals to locate, the pass can stop once every keyword was seen.
            if remaining == 0 && literal_hits.is_none() {
                break;
            }
        }
        Candidates { has_marker, literal_hits }
    }
}

/// The findings of one file, and how many matches inline suppressions hid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileFindings {
    /// The findings, by position.
    pub findings: Vec<Finding>,
    /// Matches hidden by `sandguard:allow`.
    pub suppressed: usize,
}

/// A level given for a rule id or a category, with where it was given.
#[derive(Debug, Clone)]
struct LevelOverride {
    name: String,
    level: Level,
    /// The configuration file position, for errors (`None`: the command line or code).
    at: Option<ConfigError>,
}

/// Configures a [`Linter`]: which rules, at which levels, over which files.
///
/// ```
/// use sandguard_lint::{Level, Linter};
///
/// let linter = Linter::builder().level("jwt", Level::Allow).exclude("tests/fixtures/**").build()?;
/// assert!(linter.rules().any(|rule| rule.id == "github-pat"));
/// # Ok::<(), sandguard_lint::LintError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LinterBuilder {
    builtin: bool,
    files: Vec<(String, String)>,
    rules: Vec<LoadedRule>,
    levels: Vec<LevelOverride>,
    excludes: Vec<String>,
    exclude_base: Option<PathBuf>,
    max_file_size: u64,
    placeholders: Vec<String>,
    threads: usize,
}

/// Files larger than this are skipped by default (1 MiB): generated or vendored, rarely written
/// by hand, and slow to parse.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 20;

impl Default for LinterBuilder {
    fn default() -> Self {
        Self {
            builtin: true,
            files: Vec::new(),
            rules: Vec::new(),
            levels: Vec::new(),
            excludes: Vec::new(),
            exclude_base: None,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            placeholders: Vec::new(),
            threads: 0,
        }
    }
}

impl LinterBuilder {
    /// The built-in rules at their default levels, no exclusions, files up to 1 MiB.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to include the built-in rules (default: yes).
    #[must_use]
    pub fn builtin_rules(mut self, yes: bool) -> Self {
        self.builtin = yes;
        self
    }

    /// Adds the rules of a TOML rules file given as text; `origin` names it in errors.
    #[must_use]
    pub fn rules_toml(mut self, origin: impl Into<String>, text: impl Into<String>) -> Self {
        self.files.push((origin.into(), text.into()));
        self
    }

    /// Adds already parsed rules.
    #[must_use]
    pub fn rules(mut self, rules: impl IntoIterator<Item = LoadedRule>) -> Self {
        self.rules.extend(rules);
        self
    }

    /// Sets the level of a rule, or of every rule of a category; later calls win.
    #[must_use]
    pub fn level(mut self, name: impl Into<String>, level: Level) -> Self {
        self.levels.push(LevelOverride { name: name.into(), level, at: None });
        self
    }

    /// Skips paths matching a gitignore-style glob: `target`, `*.min.js`, `tests/fixtures/**`,
    /// `/vendor` (anchored at the exclude base). A glob without `/` matches at any depth.
    #[must_use]
    pub fn exclude(mut self, glob: impl Into<String>) -> Self {
        self.excludes.push(glob.into());
        self
    }

    /// The folder exclude globs are relative to (default: the current directory).
    #[must_use]
    pub fn exclude_base(mut self, dir: impl Into<PathBuf>) -> Self {
        self.exclude_base = Some(dir.into());
        self
    }

    /// Skips (and counts) files larger than `bytes`.
    #[must_use]
    pub const fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = bytes;
        self
    }

    /// A regex (bytes, Unicode off) whose matches are placeholders for every secret rule.
    #[must_use]
    pub fn placeholder(mut self, regex: impl Into<String>) -> Self {
        self.placeholders.push(regex.into());
        self
    }

    /// Worker threads for [`Linter::scan`] (default: one per available core).
    #[must_use]
    pub const fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Applies a `sandguard.toml` `[lint]` section: its rule levels (categories first, then rule
    /// ids, so the specific wins), exclusions (relative to the file's folder), extra rule files,
    /// file size limit and placeholders. Levels given later (the command line) still win.
    ///
    /// # Errors
    ///
    /// An extra rules file that cannot be read or parsed.
    pub fn config(mut self, config: &crate::config::LintConfig) -> Result<Self, LintError> {
        for path in &config.extra_rules {
            self.rules.extend(load_rule_file(path)?);
        }
        let levels = config.levels.iter().map(|entry| LevelOverride {
            name: entry.name.clone(),
            level: entry.level,
            at: Some(entry.at.clone()),
        });
        // Configuration comes before the command line; build() orders its categories first.
        let cli = std::mem::take(&mut self.levels);
        self.levels = levels.collect();
        self.levels.extend(cli);
        self.excludes.extend(config.exclude.iter().cloned());
        if let Some(base) = &config.base_dir {
            self.exclude_base = Some(base.clone());
        }
        if let Some(size) = config.max_file_size {
            self.max_file_size = size;
        }
        self.placeholders.extend(config.placeholders.iter().cloned());
        Ok(self)
    }

    /// Compiles every rule.
    ///
    /// # Errors
    ///
    /// A rules file that does not parse, an invalid rule, a duplicate rule id, an unknown rule id
    /// or category in a level, a bad exclude glob or placeholder regex.
    pub fn build(self) -> Result<Linter, LintError> {
        let mut loaded = if self.builtin { builtin_rules()? } else { Vec::new() };
        // Built-in syntax rules compile their queries lazily, per language (the test suite
        // compiles and runs every one); a user's rules compile now, so a broken one is an error.
        let builtin_count = loaded.len();
        for (origin, text) in &self.files {
            loaded.extend(parse_rule_file(origin, text)?);
        }
        loaded.extend(self.rules);

        let placeholders = self
            .placeholders
            .iter()
            .map(|p| compile_regex(p, false).map_err(|e| LintError::Invalid(format!("placeholder `{p}`: {e}"))))
            .collect::<Result<Vec<Regex>, _>>()?;
        let placeholders: Arc<[Regex]> = Arc::from(placeholders);

        let mut seen = HashSet::new();
        let mut rules = Vec::with_capacity(loaded.len() + 1);
        for (index, LoadedRule { origin, rule }) in loaded.into_iter().enumerate() {
            if !seen.insert(rule.id.clone()) {
                return Err(LintError::rule(&rule.id, format!("a rule with this id already exists ({origin})")));
            }
            let kind = match (&rule.pattern, &rule.query) {
                (Some(pattern), _) => Kind::Pattern(PatternMatcher::compile(&rule, pattern, placeholders.clone())?),
                (None, Some(query)) if index < builtin_count => {
                    Kind::Syntax(crate::syntax::compile_deferred_matcher(&rule, query)?)
                }
                (None, Some(query)) => Kind::Syntax(crate::syntax::compile_with(&rule, query, true)?),
                (None, None) => return Err(LintError::rule(&rule.id, "a rule needs a `pattern` or a `query`")),
            };
            rules.push(CompiledRule { level: rule.severity, rule, kind });
        }
        if !seen.contains(UNUSED_SUPPRESSION) {
            rules.push(CompiledRule { level: Level::Warn, rule: unused_suppression_rule(), kind: Kind::Engine });
        }

        // Configuration levels for categories first, then for rule ids (the specific wins), then
        // the command line's in the order given.
        let names_a_category =
            |name: &str| rules.iter().any(|r| r.rule.category == name) && !rules.iter().any(|r| r.rule.id == name);
        let mut levels = self.levels;
        levels.sort_by_key(|entry| match entry.at {
            Some(_) if names_a_category(&entry.name) => 0,
            Some(_) => 1,
            None => 2,
        });
        let mut config_errors = Vec::new();
        for entry in &levels {
            let targets: Vec<usize> = rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.rule.id == entry.name || r.rule.category == entry.name)
                .map(|(i, _)| i)
                .collect();
            if targets.is_empty() {
                let names = rules.iter().flat_map(|r| [r.rule.id.as_str(), r.rule.category.as_str()]);
                let suggestion = did_you_mean(&entry.name, names);
                match &entry.at {
                    Some(at) => config_errors.push(ConfigError {
                        message: format!(
                            "unknown rule `{}`{}",
                            entry.name,
                            suggestion.map(|s| format!("; did you mean `{s}`?")).unwrap_or_default()
                        ),
                        ..at.clone()
                    }),
                    None => return Err(LintError::UnknownRule { name: entry.name.clone(), suggestion }),
                }
            }
            for i in targets {
                rules[i].level = entry.level;
            }
        }
        if !config_errors.is_empty() {
            return Err(LintError::Config(ConfigErrors(config_errors)));
        }

        let base = match self.exclude_base {
            Some(base) => base,
            None => std::env::current_dir().map_err(|e| LintError::io(".", e))?,
        };
        let excludes = Excludes::new(&base, &self.excludes)?;
        let threads = if self.threads == 0 {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
        } else {
            self.threads
        };
        Ok(Linter {
            rules,
            prefilters: Default::default(),
            excludes: Arc::new(excludes),
            max_file_size: self.max_file_size,
            threads,
        })
    }
}

fn unused_suppression_rule() -> Rule {
    Rule {
        id: UNUSED_SUPPRESSION.to_owned(),
        severity: Level::Warn,
        category: "suppression".to_owned(),
        languages: vec![Language::Text],
        message: "this `sandguard:allow` suppresses nothing".to_owned(),
        help: "remove it, or correct the rule id it names".to_owned(),
        pattern: None,
        query: None,
        examples: Vec::new(),
    }
}

/// Every rule compiled once; cheap to share between threads.
#[derive(Debug)]
pub struct Linter {
    rules: Vec<CompiledRule>,
    /// Per language (in [`Language::ALL`] order), built on the first file of the language
    /// (built-in syntax queries, whose literals it holds, compile lazily).
    prefilters: [OnceLock<Prefilter>; Language::ALL.len()],
    pub(crate) excludes: Arc<Excludes>,
    pub(crate) max_file_size: u64,
    pub(crate) threads: usize,
}

impl Linter {
    /// A builder starting from the built-in rules.
    pub fn builder() -> LinterBuilder {
        LinterBuilder::new()
    }

    /// Every rule, including the engine's own `unused-suppression`.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|r| &r.rule)
    }

    /// The rule with this id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules().find(|rule| rule.id == id)
    }

    /// The effective level of the rule with this id.
    pub fn level(&self, id: &str) -> Option<Level> {
        self.rules.iter().find(|r| r.rule.id == id).map(|r| r.level)
    }

    /// Checks one file.
    ///
    /// ```
    /// use std::path::Path;
    /// use sandguard_lint::{Language, Linter, SourceFile};
    ///
    /// let linter = Linter::builder().build()?;
    /// // sandguard:allow(github-pat) -- a made-up token for this example
    /// let text = "const token = \"ghp_R2d7Kq9vLx3Nw8Pz4Tb6Hm1Yc5Jf0Ga7Se2U\";\n";
    /// let file = SourceFile { path: Path::new("src/app.ts"), language: Language::Typescript, text };
    /// let found = linter.check(&file);
    /// assert_eq!(found.findings[0].rule, "github-pat");
    /// assert_eq!((found.findings[0].line, found.findings[0].column), (1, 16));
    /// # Ok::<(), sandguard_lint::LintError>(())
    /// ```
    pub fn check(&self, file: &SourceFile<'_>) -> FileFindings {
        let text = file.text.as_bytes();
        let mut active = vec![false; self.rules.len()];
        let prefilter = self.prefilter(file.language);
        let Candidates { has_marker, literal_hits } = prefilter.candidates(text, &mut active);

        let mut raw: Vec<(usize, RawMatch)> = Vec::new();
        for (i, compiled) in self.rules.iter().enumerate() {
            if !active[i] || !applies_to(&compiled.rule.languages, file.language) {
                continue;
            }
            let found = match &compiled.kind {
                Kind::Pattern(pattern) => pattern.find_in(text),
                Kind::Syntax(matcher) => match (&prefilter.literals, &literal_hits) {
                    (Some(scan), Some(hits)) => scan.find(i, matcher, file, hits),
                    _ => matcher.find(file),
                },
                Kind::Engine => continue,
            };
            raw.extend(found.into_iter().map(|m| (i, clamp(file.text, m))));
        }
        let suppressions = if has_marker { suppress::parse(file.text) } else { Vec::new() };
        if raw.is_empty() && suppressions.is_empty() {
            return FileFindings::default();
        }
        self.drop_overlapped_fallbacks(&mut raw);
        raw.sort_by(|(a, x), (b, y)| {
            (x.start_byte, x.end_byte, &self.rules[*a].rule.id).cmp(&(
                y.start_byte,
                y.end_byte,
                &self.rules[*b].rule.id,
            ))
        });
        raw.dedup_by(|(a, x), (b, y)| a == b && x.start_byte == y.start_byte && x.end_byte == y.end_byte);

        let lines = LineIndex::new(file.text);
        let slash = slash_path(file.path);
        let mut used = vec![false; suppressions.len()];
        let mut occurrences: HashMap<(usize, String), usize> = HashMap::new();
        let mut out = FileFindings::default();
        for (i, m) in raw {
            let compiled = &self.rules[i];
            let line = lines.line(m.start_byte);
            if let Some(s) = suppressions.iter().position(|s| covers(s, &lines, line, &compiled.rule)) {
                used[s] = true;
                out.suppressed += 1;
                continue;
            }
            let matched = normalise(&file.text[m.start_byte..m.end_byte]);
            let occurrence = occurrences.entry((i, matched)).or_insert(0);
            let parts = FindingParts {
                rule: &compiled.rule.id,
                category: &compiled.rule.category,
                level: compiled.level,
                message: m.message.unwrap_or_else(|| compiled.rule.message.clone()),
                help: &compiled.rule.help,
                path: file.path,
                slash_path: &slash,
                start: m.start_byte,
                end: m.end_byte,
                mask: compiled.is_pattern(),
                occurrence: *occurrence,
            };
            *occurrence += 1;
            out.findings.push(parts.build(&lines));
        }
        self.report_unused(file, &suppressions, &used, &lines, &slash, &mut out.findings);
        out
    }

    /// The pre-pass for files of `language`.
    fn prefilter(&self, language: Language) -> &Prefilter {
        let slot = Language::ALL.iter().position(|l| *l == language).unwrap_or(Language::ALL.len() - 1);
        self.prefilters[slot].get_or_init(|| Prefilter::new(&self.rules, language))
    }

    /// Drops matches of fallback rules that overlap a match of a specific secret rule.
    fn drop_overlapped_fallbacks(&self, raw: &mut Vec<(usize, RawMatch)>) {
        if !raw.iter().any(|(i, _)| self.rules[*i].is_fallback()) {
            return;
        }
        let specific: Vec<(usize, usize)> = raw
            .iter()
            .filter(|(i, _)| self.rules[*i].is_pattern() && !self.rules[*i].is_fallback())
            .map(|(_, m)| (m.start_byte, m.end_byte))
            .collect();
        raw.retain(|(i, m)| {
            !self.rules[*i].is_fallback()
                || !specific.iter().any(|&(start, end)| start < m.end_byte.max(m.start_byte + 1) && m.start_byte < end)
        });
    }

    /// Findings for suppressions that hid nothing, or name no rule, when `unused-suppression`
    /// is enabled. A suppression naming a rule that did not run on this file (disabled, or not
    /// for this language) is not reported: it may be needed under another configuration.
    fn report_unused(
        &self,
        file: &SourceFile<'_>,
        suppressions: &[Suppression],
        used: &[bool],
        lines: &LineIndex<'_>,
        slash: &str,
        findings: &mut Vec<Finding>,
    ) {
        let Some(engine_rule) = self.rules.iter().find(|r| r.rule.id == UNUSED_SUPPRESSION) else { return };
        if engine_rule.level == Level::Allow {
            return;
        }
        for (s, &was_used) in suppressions.iter().zip(used) {
            if was_used {
                continue;
            }
            let message = if let Some(why) = s.malformed {
                Some(format!("malformed `sandguard:allow`: {why}; write `sandguard:allow(rule-id)`"))
            } else if let Some(unknown) =
                s.ids.iter().find(|id| !self.rules.iter().any(|r| &r.rule.id == *id || &r.rule.category == *id))
            {
                let names = self.rules.iter().flat_map(|r| [r.rule.id.as_str(), r.rule.category.as_str()]);
                Some(match did_you_mean(unknown, names) {
                    Some(suggestion) => {
                        format!("`sandguard:allow` names unknown rule `{unknown}`; did you mean `{suggestion}`?")
                    }
                    None => format!("`sandguard:allow` names unknown rule `{unknown}`"),
                })
            } else {
                let ran = s.ids.iter().all(|id| {
                    self.rules.iter().any(|r| {
                        (&r.rule.id == id || &r.rule.category == id)
                            && r.level != Level::Allow
                            && !matches!(r.kind, Kind::Engine)
                            && applies_to(&r.rule.languages, file.language)
                    })
                });
                ran.then(|| format!("`sandguard:allow({})` suppresses nothing here", s.ids.join(", ")))
            };
            let Some(message) = message else { continue };
            let end = s.offset + suppress::MARKER.len();
            let parts = FindingParts {
                rule: &engine_rule.rule.id,
                category: &engine_rule.rule.category,
                level: engine_rule.level,
                message,
                help: &engine_rule.rule.help,
                path: file.path,
                slash_path: slash,
                start: s.offset,
                end,
                mask: false,
                occurrence: lines.line(s.offset),
            };
            findings.push(parts.build(lines));
        }
        findings.sort_by(|a, b| (a.line, a.column, &a.rule).cmp(&(b.line, b.column, &b.rule)));
    }
}

/// Whether suppression `s` covers a finding of `rule` starting on `line`.
fn covers(s: &Suppression, lines: &LineIndex<'_>, line: usize, rule: &Rule) -> bool {
    let at = lines.line(s.offset);
    (at == line || (s.own_line && at + 1 == line)) && s.ids.iter().any(|id| *id == rule.id || *id == rule.category)
}

/// Keeps a matcher's span inside the text and on character boundaries.
fn clamp(text: &str, mut m: RawMatch) -> RawMatch {
    let mut start = m.start_byte.min(text.len());
    let mut end = m.end_byte.min(text.len()).max(start);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    m.start_byte = start;
    m.end_byte = end;
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
[[rule]]
id = "demo-token"
severity = "deny"
category = "hardcoded-secret"
languages = ["text"]
message = "a demo token"
help = "remove it"
pattern = { regex = '\bdemo_[a-z0-9]{12}\b', keywords = ["demo_"], min_entropy = 2.5 }

[[rule]]
id = "demo-generic"
severity = "warn"
category = "hardcoded-secret"
languages = ["text"]
message = "a generic secret"
help = "remove it"
pattern = { regex = 'secret = "([^"]+)"', keywords = ["secret"], secret_group = 1, fallback = true }
"#;

    fn linter() -> Linter {
        Linter::builder().builtin_rules(false).rules_toml("demo.toml", RULES).build().unwrap()
    }

    fn check(linter: &Linter, text: &str) -> FileFindings {
        linter.check(&SourceFile { path: Path::new("./src/a.py"), language: Language::Python, text })
    }

    #[test]
    fn keywords_gate_and_positions() {
        let linter = linter();
        assert!(check(&linter, "nothing here\n").findings.is_empty());
        let found = check(&linter, "x\n  k = 'demo_a1b2c3d4e5f6'\n");
        assert_eq!(found.findings.len(), 1);
        let f = &found.findings[0];
        assert_eq!(
            (f.rule.as_str(), f.level, f.line, f.column, f.end_line, f.end_column),
            ("demo-token", Level::Deny, 2, 8, 2, 25)
        );
        assert_eq!(f.snippet, "  k = 'demo*************'");
        assert_eq!(f.slash_path(), "src/a.py");
    }

    #[test]
    fn fallback_yields_to_specific() {
        let linter = linter();
        let found = check(&linter, "secret = \"demo_a1b2c3d4e5f6\"\nsecret = \"q8Wz3LmN5pRt\"\n");
        let rules: Vec<_> = found.findings.iter().map(|f| (f.rule.as_str(), f.line)).collect();
        assert_eq!(rules, [("demo-token", 1), ("demo-generic", 2)]);
    }

    #[test]
    fn suppressions() {
        let linter = linter();
        let text = "a = 'demo_a1b2c3d4e5f6'  # sandguard:allow(demo-token)\n\
                    # sandguard:allow(hardcoded-secret, reason = \"fixture\")\n\
                    b = 'demo_a1b2c3d4e5f7'\n\
                    c = 1  # sandguard:allow(demo-token)\n\
                    d = 'demo_a1b2c3d4e5f8'\n\
                    # sandguard:allow(demo-tokn)\n";
        let found = check(&linter, text);
        assert_eq!(found.suppressed, 2);
        let got: Vec<_> = found.findings.iter().map(|f| (f.rule.as_str(), f.line)).collect();
        assert_eq!(got, [("unused-suppression", 4), ("demo-token", 5), ("unused-suppression", 6)]);
        assert!(found.findings[0].message.contains("suppresses nothing"), "{}", found.findings[0].message);
        assert!(found.findings[2].message.contains("did you mean `demo-token`"), "{}", found.findings[2].message);

        let quiet = Linter::builder()
            .builtin_rules(false)
            .rules_toml("demo.toml", RULES)
            .level(UNUSED_SUPPRESSION, Level::Allow)
            .build()
            .unwrap();
        assert_eq!(check(&quiet, text).findings.len(), 1);
    }

    #[test]
    fn fingerprints_survive_moves_and_count_occurrences() {
        let linter = linter();
        let a = check(&linter, "k = 'demo_a1b2c3d4e5f6'\nk = 'demo_a1b2c3d4e5f6'\n");
        let b = check(&linter, "\n\n\nk = 'demo_a1b2c3d4e5f6'\n\nk = 'demo_a1b2c3d4e5f6'\n");
        assert_eq!(a.findings.len(), 2);
        assert_ne!(a.findings[0].fingerprint, a.findings[1].fingerprint);
        let fa: Vec<_> = a.findings.iter().map(|f| &f.fingerprint).collect();
        let fb: Vec<_> = b.findings.iter().map(|f| &f.fingerprint).collect();
        assert_eq!(fa, fb);
        assert_eq!(a.findings[0].baseline_key(), b.findings[0].baseline_key());
    }

    #[test]
    fn levels_by_id_and_category_and_unknown_names() {
        let build = |name: &str, level| {
            Linter::builder().builtin_rules(false).rules_toml("demo.toml", RULES).level(name, level).build()
        };
        let linter = build("hardcoded-secret", Level::Warn).unwrap();
        assert_eq!(linter.level("demo-token"), Some(Level::Warn));
        let linter = build("demo-token", Level::Allow).unwrap();
        assert!(check(&linter, "k = 'demo_a1b2c3d4e5f6'\n").findings.is_empty());
        let error = build("demo-tokne", Level::Deny).unwrap_err();
        assert_eq!(error.to_string(), "unknown rule `demo-tokne`; did you mean `demo-token`?");
    }

    #[test]
    fn duplicate_ids_are_errors() {
        let error = Linter::builder()
            .builtin_rules(false)
            .rules_toml("a.toml", RULES)
            .rules_toml("b.toml", RULES)
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("already exists"), "{error}");
    }

    #[test]
    fn clamps_spans_to_boundaries() {
        let m = clamp("aé", RawMatch { start_byte: 2, end_byte: 9, message: None });
        assert_eq!((m.start_byte, m.end_byte), (1, 3));
    }
}
