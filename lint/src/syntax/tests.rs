//! Tests of the syntax matcher: every syntax rule's own examples (the same check
//! `sandguard lint --test-rules` runs, here without the engine), compile-time validation, and
//! robustness against garbage and pathological input.

use std::path::Path;
use std::time::{Duration, Instant};

use super::compile;
use crate::rule::{Language, QuerySpec, Rule, RuleFile};
use crate::{Matcher, SourceFile};

/// The syntax rule packs, compiled into the test binary.
const RULE_FILES: &[(&str, &str)] = &[
    ("command-injection.toml", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/command-injection.toml"))),
    ("path-traversal.toml", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/path-traversal.toml"))),
    (
        "predictable-sandbox-id.toml",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/predictable-sandbox-id.toml")),
    ),
    ("secret-in-command.toml", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/secret-in-command.toml"))),
    ("unbounded-exec.toml", include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/unbounded-exec.toml"))),
];

const ALL_LANGUAGES: &[Language] =
    &[Language::Rust, Language::Typescript, Language::Tsx, Language::Javascript, Language::Python, Language::Shell];

fn rules() -> Vec<(&'static str, Rule)> {
    RULE_FILES
        .iter()
        .flat_map(|(file, text)| {
            let parsed: RuleFile = toml::from_str(text).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(!parsed.rule.is_empty(), "{file} has no rule");
            parsed.rule.into_iter().map(move |r| (*file, r))
        })
        .collect()
}

fn matcher(rule: &Rule) -> Box<dyn Matcher> {
    let spec = rule.query.as_ref().unwrap_or_else(|| panic!("{} has no query", rule.id));
    compile(rule, spec).unwrap_or_else(|e| panic!("{e}"))
}

/// The 1-based lines findings start on, sorted and deduplicated.
fn lines(matcher: &dyn Matcher, language: Language, code: &str) -> Vec<u32> {
    let file = SourceFile { path: Path::new("example"), language, text: code };
    let mut lines: Vec<u32> = matcher
        .find(&file)
        .iter()
        .map(|m| {
            assert!(m.start_byte <= m.end_byte && m.end_byte <= code.len(), "match out of bounds");
            let before = code.as_bytes().get(..m.start_byte).unwrap_or_default();
            u32::try_from(before.iter().filter(|&&b| b == b'\n').count()).unwrap_or(u32::MAX).saturating_add(1)
        })
        .collect();
    lines.sort_unstable();
    lines.dedup();
    lines
}

fn rule_with(languages: &[Language], spec: QuerySpec) -> Rule {
    Rule {
        id: "test-rule".into(),
        severity: crate::rule::Level::Deny,
        category: "test".into(),
        languages: languages.to_vec(),
        message: "m".into(),
        help: "h".into(),
        pattern: None,
        query: Some(spec),
        examples: Vec::new(),
    }
}

fn spec(queries: &[(&str, &str)], predicates: &[&str], report: Option<&str>) -> QuerySpec {
    QuerySpec {
        sink_keywords: Vec::new(),
        queries: queries.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect(),
        predicates: predicates.iter().map(|p| (*p).to_string()).collect(),
        report: report.map(str::to_string),
    }
}

fn compile_error(languages: &[Language], spec: QuerySpec) -> String {
    let rule = rule_with(languages, spec.clone());
    match compile(&rule, &spec) {
        Ok(_) => panic!("expected a compile error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_example_of_every_syntax_rule_holds() {
    let mut failures = Vec::new();
    for (file, rule) in rules() {
        let matcher = matcher(&rule);
        for (index, example) in rule.examples.iter().enumerate() {
            let got = lines(matcher.as_ref(), example.language, &example.code);
            if got != example.lines {
                failures.push(format!(
                    "{file} {} example {} ({:?}): expected lines {:?}, got {:?}\n{}",
                    rule.id,
                    index + 1,
                    example.language,
                    example.lines,
                    got,
                    example.code
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} failing examples:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_rule_has_positive_and_negative_examples_per_language_family() {
    for (file, rule) in rules() {
        assert!(!rule.examples.is_empty(), "{file} {}: no examples", rule.id);
        for language in &rule.languages {
            // TypeScript and TSX share the JavaScript family's examples.
            let family = |l: Language| match l {
                Language::Typescript | Language::Tsx | Language::Javascript => Language::Javascript,
                other => other,
            };
            let of_family: Vec<_> = rule.examples.iter().filter(|e| family(e.language) == family(*language)).collect();
            assert!(
                of_family.iter().any(|e| !e.lines.is_empty()),
                "{file} {}: no positive {language:?} example",
                rule.id
            );
            assert!(
                of_family.iter().any(|e| e.lines.is_empty()),
                "{file} {}: no negative {language:?} example",
                rule.id
            );
            assert!(
                rule.examples.iter().all(|e| rule.languages.contains(&e.language)),
                "{file} {}: example language not listed",
                rule.id
            );
        }
    }
}

#[test]
fn prefilter_never_hides_a_finding() {
    let rules = rules();
    let corpus: Vec<&str> = rules.iter().flat_map(|(_, r)| r.examples.iter().map(|e| e.code.as_str())).collect();
    let mut rng = Rng(0xF11E_0000_0000_0002);
    for (_, rule) in &rules {
        let spec = rule.query.as_ref().unwrap();
        let filtered = compile(rule, spec).unwrap();
        let unfiltered = super::compile_with(rule, spec, false).unwrap();
        let mut inputs: Vec<(Language, String)> = rule.examples.iter().map(|e| (e.language, e.code.clone())).collect();
        for round in 0..200 {
            inputs.push((rule.languages[round % rule.languages.len()], garbage(&mut rng, &corpus)));
        }
        for (language, text) in &inputs {
            let file = SourceFile { path: Path::new("x"), language: *language, text };
            assert_eq!(filtered.find(&file), unfiltered.find(&file), "{} on {language:?}: {text}", rule.id);
        }
    }
}

/// The Rust sources of this repository (real code, with real sinks), plus every rule's Rust
/// examples joined into one many-item file.
fn rust_corpus() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    let mut dirs = vec![root.join("src"), root.join("exec/src"), root.join("lint/src"), root.join("tests")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let examples: Vec<String> = rules()
        .iter()
        .flat_map(|(_, r)| r.examples.iter().filter(|e| e.language == Language::Rust).map(|e| e.code.clone()))
        .collect();
    files.push(("rule examples".to_owned(), examples.join("\n")));
    files
}

#[test]
fn parsing_only_the_items_with_anchors_finds_what_a_whole_file_parse_finds() {
    let corpus = rust_corpus();
    assert!(corpus.len() > 50, "the repository's Rust sources were found");
    let split = corpus.iter().filter(|(_, text)| super::items::rust_item_bounds(text).is_some()).count();
    assert!(split * 10 >= corpus.len() * 9, "the lexer splits real code: {split} of {}", corpus.len());
    let mut findings = 0;
    for (_, rule) in rules().iter().filter(|(_, r)| r.languages.contains(&Language::Rust)) {
        let spec = rule.query.as_ref().unwrap();
        // With the prefilter, a Rust file is parsed item by item; without it, whole.
        let by_items = compile(rule, spec).unwrap();
        let whole = super::compile_with(rule, spec, false).unwrap();
        for (name, text) in &corpus {
            let file = SourceFile { path: Path::new("x.rs"), language: Language::Rust, text };
            let found = by_items.find(&file);
            assert_eq!(found, whole.find(&file), "{} on {name}", rule.id);
            findings += found.len();
        }
    }
    assert!(findings > 0, "the comparison saw findings");
}

#[test]
fn the_shared_literal_scan_decides_as_each_rule_alone() {
    let rules = rules();
    let matchers: Vec<(usize, super::SyntaxMatcher)> = rules
        .iter()
        .enumerate()
        .filter(|(_, (_, r))| r.languages.contains(&Language::Rust))
        .map(|(i, (_, r))| (i, super::compile_with(r, r.query.as_ref().unwrap(), true).unwrap()))
        .collect();
    let members: Vec<(usize, &super::SyntaxMatcher)> = matchers.iter().map(|(i, m)| (*i, m)).collect();
    let scan = super::SharedScan::new(&members, Language::Rust).expect("the Rust rules share a scan");
    let mut corpus = rust_corpus();
    let mut rng = Rng(0xF11E_0000_0000_0003);
    let pieces: Vec<String> = corpus.iter().map(|(_, t)| t.clone()).collect();
    let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
    for round in 0..100 {
        corpus.push((format!("garbage {round}"), garbage(&mut rng, &pieces)));
    }
    let mut findings = 0;
    for (name, text) in &corpus {
        let file = SourceFile { path: Path::new("x.rs"), language: Language::Rust, text };
        let hits = scan.scan(text);
        for (i, matcher) in &members {
            let shared = scan.find(*i, matcher, &file, &hits);
            assert_eq!(shared, matcher.find(&file), "{} on {name}", matcher.id);
            findings += shared.len();
        }
    }
    assert!(findings > 0, "the comparison saw findings");
}

#[test]
fn every_syntax_rule_query_has_a_prefilter() {
    // Without one, every file of the language that passes the keyword gate is parsed: far
    // slower on large trees. A query whose pattern implies no literal should be tightened.
    for (file, rule) in rules() {
        for (key, compiled) in compiled_queries(&rule) {
            assert!(compiled.prefilter.is_some(), "{file} {} {key}: a pattern implies no literal", rule.id);
        }
    }
}

/// The compiled query of each of a rule's languages.
fn compiled_queries(rule: &Rule) -> Vec<(String, super::CompiledQuery)> {
    let spec = rule.query.as_ref().unwrap();
    let list: Vec<_> = spec.predicates.iter().map(|p| super::Predicate::parse_spec(p).unwrap()).collect();
    spec.queries
        .iter()
        .map(|(key, source)| {
            let grammar = match key.as_str() {
                "rust" => super::Grammar::Rust,
                "typescript" => super::Grammar::Typescript,
                "tsx" => super::Grammar::Tsx,
                "javascript" => super::Grammar::Javascript,
                "python" => super::Grammar::Python,
                _ => super::Grammar::Bash,
            };
            (key.clone(), super::compile_query(grammar, key, source, &list, spec.report.as_deref()).unwrap())
        })
        .collect()
}

#[test]
fn sink_keywords_are_implied_by_every_pattern() {
    // The engine skips a file without any sink keyword, so every pattern must need one: some
    // group of the pattern's required literals must contain a keyword in each alternative.
    // Otherwise a file the query would match is never looked at.
    for (file, rule) in rules() {
        let keywords: Vec<String> =
            rule.query.as_ref().unwrap().sink_keywords.iter().map(|k| k.to_ascii_lowercase()).collect();
        if keywords.is_empty() {
            continue;
        }
        for (key, compiled) in compiled_queries(&rule) {
            let prefilter = compiled.prefilter.as_ref().unwrap();
            for (index, groups) in prefilter.pattern_groups().iter().enumerate() {
                let implied = groups.iter().any(|g| {
                    g.iter().all(|alt| keywords.iter().any(|k| alt.to_ascii_lowercase().contains(k.as_str())))
                });
                assert!(
                    implied,
                    "{file} {} {key} pattern {}: no sink keyword is implied by {groups:?}",
                    rule.id,
                    index + 1
                );
            }
        }
    }
}

#[test]
fn prefilter_skips_files_that_cannot_match() {
    let spec = spec(
        &[(
            "javascript",
            "((call_expression function: (identifier) @f arguments: (arguments . (_) @a)) @c (#eq? @f \"exec\") (#interpolates-secret? @a))",
        )],
        &[],
        None,
    );
    let rule = rule_with(&[Language::Javascript], spec.clone());
    let compiled =
        super::compile_query(super::Grammar::Javascript, "javascript", &spec.queries["javascript"], &[], None).unwrap();
    let prefilter = compiled.prefilter.as_ref().unwrap();
    assert!(!prefilter.may_match("run(`${apiKey}`)"), "no exec");
    assert!(!prefilter.may_match("exec(`${user}`)"), "no secret word");
    assert!(prefilter.may_match("exec(`${API_KEY}`)"), "secret words compare case-insensitively");
    assert!(!prefilter.may_match("execute(`${apiKey}`)"), "`exec` inside `execute` is no `exec` node");
    assert!(!prefilter.may_match("EXEC(`${apiKey}`)"), "query text is case-sensitive");
    assert!(prefilter.may_match("$.exec(`${apiKey}`)"), "punctuation around a word is fine");
    let matcher = compile(&rule, &spec).unwrap();
    assert_eq!(lines(matcher.as_ref(), Language::Javascript, "x;\nexec(`${apiKey}`)"), vec![2]);
}

#[test]
fn sink_keywords_skip_files_without_them() {
    let spec = QuerySpec { sink_keywords: vec!["eval".into()], ..spec(&[("shell", "(command) @c")], &[], None) };
    let rule = rule_with(&[Language::Shell], spec.clone());
    let matcher = compile(&rule, &spec).unwrap();
    assert_eq!(lines(matcher.as_ref(), Language::Shell, "ls\n"), Vec::<u32>::new());
    assert_eq!(lines(matcher.as_ref(), Language::Shell, "ls\neval x\n"), vec![1, 2]);
    // A language the rule does not list is never matched.
    assert_eq!(lines(matcher.as_ref(), Language::Python, "eval(x)\n"), Vec::<u32>::new());
}

#[test]
fn typescript_and_tsx_fall_back_to_the_javascript_query() {
    let spec = spec(&[("javascript", "(call_expression function: (identifier) @f (#eq? @f \"exec\")) @c")], &[], None);
    let rule = rule_with(&[Language::Javascript, Language::Typescript, Language::Tsx], spec.clone());
    let matcher = compile(&rule, &spec).unwrap();
    for language in [Language::Javascript, Language::Typescript, Language::Tsx] {
        assert_eq!(lines(matcher.as_ref(), language, "let a = 1;\nexec(x);\n"), vec![2], "{language:?}");
    }
}

#[test]
fn list_predicates_apply_to_every_match_with_the_capture() {
    let spec = spec(
        &[("python", "(call function: (identifier) @f arguments: (argument_list . (_) @arg) (#eq? @f \"run\")) @c")],
        &["not-constant @arg"],
        Some("c"),
    );
    let rule = rule_with(&[Language::Python], spec.clone());
    let matcher = compile(&rule, &spec).unwrap();
    assert_eq!(lines(matcher.as_ref(), Language::Python, "run('ls')\nrun(x)\nrun(f'{x}')\nrun(X_CONST)\n"), vec![2, 3]);
}

#[test]
fn set_message_is_reported() {
    let spec = spec(&[("shell", "((command) @c (#set! message \"custom\"))")], &[], None);
    let rule = rule_with(&[Language::Shell], spec.clone());
    let matcher = compile(&rule, &spec).unwrap();
    let file = SourceFile { path: Path::new("x.sh"), language: Language::Shell, text: "ls" };
    let found = matcher.find(&file);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].message.as_deref(), Some("custom"));
}

#[test]
fn invalid_rules_are_errors_that_say_why() {
    let py = Language::Python;
    let cases: Vec<(Vec<Language>, QuerySpec, &str)> = vec![
        (vec![py], spec(&[("python", "(call")], &[], None), "python query, line 1"),
        (vec![py], spec(&[("python", "(no_such_node)")], &[], None), "NodeType"),
        (vec![py], spec(&[("python", "(call) @c (#frobnicate? @c)")], &[], None), "unknown predicate `#frobnicate?`"),
        (vec![py], spec(&[("python", "((call) @c (#not-constant? @c \"x\"))")], &[], None), "exactly one capture"),
        (vec![py], spec(&[("python", "((call) @c (#is? @c local))")], &[], None), "not supported"),
        (vec![py], spec(&[("python", "((call) @c (#set! other \"x\"))")], &[], None), "only `(#set! message"),
        (vec![py], spec(&[("python", "(call) @c")], &["not-constant c"], None), "not a capture"),
        (vec![py], spec(&[("python", "(call) @c")], &["bogus @c"], None), "unknown predicate `bogus`"),
        (vec![py], spec(&[("python", "(call) @c")], &["not-constant @nope"], None), "`@nope` appears in no query"),
        (vec![py], spec(&[("python", "(call) @c")], &[], Some("nope")), "no `@nope` capture"),
        (vec![py], spec(&[("pyhton", "(call) @c")], &[], None), "unknown query language `pyhton`"),
        (vec![py], spec(&[("rust", "(call_expression) @c")], &[], None), "no query for language `python`"),
        (
            vec![py],
            spec(&[("python", "(call) @c"), ("rust", "(call_expression) @c")], &[], None),
            "`queries.rust` is never used",
        ),
        (vec![Language::Text], spec(&[("python", "(call) @c")], &[], None), "`text` is not a syntax language"),
        (vec![], spec(&[("python", "(call) @c")], &[], None), "at least one language"),
        (vec![py], spec(&[("python", "")], &[], None), "no pattern"),
    ];
    for (languages, spec, expected) in cases {
        let error = compile_error(&languages, spec);
        assert!(error.contains(expected), "error `{error}` does not contain `{expected}`");
        assert!(error.contains("test-rule"), "error `{error}` does not name the rule");
    }
}

/// A tiny deterministic generator (xorshift64*), so the robustness tests need no dependency
/// and fail reproducibly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

/// Garbage that looks a little like code: random bytes (made valid UTF-8), tokens that the
/// rules care about, and slices of the rules' own examples spliced together.
fn garbage(rng: &mut Rng, corpus: &[&str]) -> String {
    const TOKENS: &[&str] = &[
        "exec(",
        "`${",
        "}`",
        "format!(",
        "\"{}\"",
        "f\"{",
        "Command::new(\"sh\")",
        ".arg(\"-c\")",
        "shell=True",
        "{ shell: true }",
        "eval \"$",
        "| sh",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "\"",
        "'",
        "`",
        "\\",
        "\n",
        "..",
        "+",
        "%",
        ",",
        "subprocess.run(",
        "fs.readFileSync(",
        "getSandbox(env.S, ",
        "process.env.API_KEY",
        "é",
        "\u{0}",
    ];
    let mut out = String::new();
    for _ in 0..rng.below(40) {
        match rng.below(3) {
            0 => {
                let bytes: Vec<u8> = (0..rng.below(24)).map(|_| (rng.next() & 0xff) as u8).collect();
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
            1 => out.push_str(TOKENS[rng.below(TOKENS.len())]),
            _ => {
                let source = corpus[rng.below(corpus.len())];
                let mut start = rng.below(source.len() + 1);
                let mut end = (start + rng.below(80)).min(source.len());
                while !source.is_char_boundary(start) {
                    start -= 1;
                }
                while !source.is_char_boundary(end) {
                    end -= 1;
                }
                out.push_str(&source[start..end.max(start)]);
            }
        }
    }
    out
}

#[test]
fn garbage_never_panics_and_finishes_quickly() {
    let rules = rules();
    let matchers: Vec<_> = rules.iter().map(|(_, r)| matcher(r)).collect();
    let corpus: Vec<&str> = rules.iter().flat_map(|(_, r)| r.examples.iter().map(|e| e.code.as_str())).collect();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let started = Instant::now();
    for round in 0..400 {
        let text = garbage(&mut rng, &corpus);
        let language = ALL_LANGUAGES[round % ALL_LANGUAGES.len()];
        for matcher in &matchers {
            let one = Instant::now();
            let _ = lines(matcher.as_ref(), language, &text);
            assert!(one.elapsed() < Duration::from_secs(2), "slow on {text:?}");
        }
    }
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn pathological_nesting_and_length_stay_bounded() {
    let rules = rules();
    let matchers: Vec<_> = rules.iter().map(|(_, r)| matcher(r)).collect();
    let deep = 10_000;
    let inputs: Vec<(Language, String)> = vec![
        (Language::Javascript, format!("exec({}x{});", "(".repeat(deep), ")".repeat(deep))),
        (Language::Javascript, format!("exec(`{}`);", "${`".repeat(2_000))),
        (Language::Typescript, format!("exec(\"a\"{});", " + x".repeat(deep))),
        (Language::Python, format!("os.system(\"a\"{})", " + x".repeat(deep))),
        (Language::Python, format!("open(f\"{}\")", "{x}".repeat(deep))),
        (
            Language::Rust,
            format!("fn f() {{ sandbox.exec(&format!(\"{}\", {})); }}", "{}".repeat(5_000), "x, ".repeat(5_000)),
        ),
        (
            Language::Rust,
            format!("fn f() {{ Command::new(\"sh\"){}.arg(\"-c\").arg(x); }}", ".env(a, b)".repeat(5_000)),
        ),
        (Language::Rust, format!("fn f() {{ fs::read({}); }}", "a.join(b).".repeat(5_000) + "x")),
        (Language::Shell, format!("eval \"{}\"", "$(".repeat(deep))),
        (Language::Shell, "curl x | ".repeat(deep) + "sh"),
        (Language::Tsx, "<a>".repeat(deep)),
    ];
    for (language, text) in &inputs {
        for matcher in &matchers {
            let one = Instant::now();
            let _ = lines(matcher.as_ref(), *language, text);
            assert!(one.elapsed() < Duration::from_secs(8), "{language:?} took {:?}", one.elapsed());
        }
    }
}
