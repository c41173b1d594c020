//! Loading rules: the built-in `rules/*.toml` (compiled into the binary by `build.rs`), users'
//! rule files, and the checks every rule must pass before it is compiled.

use std::path::Path;

use crate::error::{ConfigError, ConfigErrors, LintError};
use crate::rule::{Language, Rule, RuleFile};

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

/// A rule and the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedRule {
    /// The rules file (`secrets.toml` for a built-in one, the path for a user's).
    pub origin: String,
    /// The rule.
    pub rule: Rule,
}

/// The built-in rules files, as `(file name, TOML text)`, sorted by name.
pub fn builtin_rule_files() -> &'static [(&'static str, &'static str)] {
    BUILTIN
}

/// Every built-in rule.
///
/// # Errors
///
/// A built-in file that does not parse or holds an invalid rule (a build of a broken `rules/`
/// folder); the test suite keeps that from shipping.
pub fn builtin_rules() -> Result<Vec<LoadedRule>, LintError> {
    let mut rules = Vec::new();
    for (origin, text) in BUILTIN {
        rules.extend(parse_rule_file(origin, text)?);
    }
    Ok(rules)
}

/// Parses and checks one rules file.
///
/// # Errors
///
/// [`LintError::Config`] with the line and column of a syntax error, an unknown key or a value
/// of the wrong type; [`LintError::Rule`] for a rule that fails the rule checks.
pub fn parse_rule_file(origin: &str, text: &str) -> Result<Vec<LoadedRule>, LintError> {
    let file: RuleFile = toml::from_str(text)
        .map_err(|e| LintError::Config(ConfigErrors(vec![ConfigError::from_toml(origin, text, &e)])))?;
    file.rule
        .into_iter()
        .map(|rule| {
            check_rule(&rule)?;
            Ok(LoadedRule { origin: origin.to_owned(), rule })
        })
        .collect()
}

/// Reads every `*.toml` file directly in `dir`, in name order.
///
/// # Errors
///
/// As [`parse_rule_file`], and [`LintError::Io`] when the folder or a file cannot be read.
pub fn load_rule_dir(dir: &Path) -> Result<Vec<LoadedRule>, LintError> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| LintError::io(dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "toml") && path.is_file())
        .collect();
    files.sort();
    let mut rules = Vec::new();
    for file in files {
        rules.extend(load_rule_file(&file)?);
    }
    Ok(rules)
}

/// Reads one rules file.
///
/// # Errors
///
/// As [`parse_rule_file`], and [`LintError::Io`] when it cannot be read.
pub fn load_rule_file(path: &Path) -> Result<Vec<LoadedRule>, LintError> {
    let text = std::fs::read_to_string(path).map_err(|e| LintError::io(path, e))?;
    parse_rule_file(&path.display().to_string(), &text)
}

/// The checks a rule must pass whatever its kind: a kebab-case id, exactly one of `pattern` and
/// `query`, at least one language, a message and a help text, and examples in languages the
/// rule applies to.
///
/// # Errors
///
/// [`LintError::Rule`] saying which check failed.
pub(crate) fn check_rule(rule: &Rule) -> Result<(), LintError> {
    let id = &rule.id;
    let kebab = !id.is_empty()
        && id
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if !kebab {
        return Err(LintError::rule(id, "rule ids are kebab-case: lowercase letters and digits joined by single `-`"));
    }
    match (&rule.pattern, &rule.query) {
        (Some(_), Some(_)) => return Err(LintError::rule(id, "a rule has a `pattern` or a `query`, not both")),
        (None, None) => return Err(LintError::rule(id, "a rule needs a `pattern` (secrets) or a `query` (syntax)")),
        _ => {}
    }
    if rule.languages.is_empty() {
        return Err(LintError::rule(id, "`languages` is empty; use [\"text\"] for any file"));
    }
    if rule.message.trim().is_empty() || rule.help.trim().is_empty() {
        return Err(LintError::rule(id, "`message` and `help` must say what is wrong and what to do"));
    }
    for (i, example) in rule.examples.iter().enumerate() {
        if !applies_to(&rule.languages, example.language) {
            return Err(LintError::rule(
                id,
                format!("example {} is {}, a language the rule does not apply to", i + 1, example.language),
            ));
        }
    }
    Ok(())
}

/// Whether a rule for `languages` runs on a file in `language`: `text` rules run on every file.
pub(crate) fn applies_to(languages: &[Language], language: Language) -> bool {
    languages.iter().any(|&l| l == language || l == Language::Text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = r#"
[[rule]]
id = "demo-token"
severity = "deny"
category = "hardcoded-secret"
languages = ["text"]
message = "a demo token"
help = "remove it"
pattern = { regex = 'demo_[a-z0-9]{8}', keywords = ["demo_"] }
"#;

    #[test]
    fn builtin_rules_load() {
        let rules = builtin_rules().unwrap();
        assert!(!rules.is_empty());
        let mut ids: Vec<_> = rules.iter().map(|r| r.rule.id.as_str()).collect();
        ids.sort_unstable();
        let len = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), len, "rule ids are unique");
    }

    #[test]
    fn parse_errors_have_line_and_column() {
        let text = RULE.replace("severity = \"deny\"", "severity = \"dney\"");
        let error = parse_rule_file("x.toml", &text).unwrap_err();
        let LintError::Config(errors) = error else { panic!("{error}") };
        let error = &errors.errors()[0];
        assert_eq!((error.line, error.column), (4, 12), "{error}");
        assert!(error.message.contains("dney"), "{error}");

        let text = RULE.replace("help =", "hlep =");
        let error = parse_rule_file("x.toml", &text).unwrap_err().to_string();
        assert!(error.starts_with("x.toml:8:1: ") && error.contains("hlep"), "{error}");
    }

    #[test]
    fn rule_checks() {
        assert_eq!(parse_rule_file("x.toml", RULE).unwrap().len(), 1);
        let bad_id = RULE.replace("demo-token", "Demo_Token");
        assert!(parse_rule_file("x.toml", &bad_id).unwrap_err().to_string().contains("kebab-case"));
        let no_languages = RULE.replace("[\"text\"]", "[]");
        assert!(parse_rule_file("x.toml", &no_languages).unwrap_err().to_string().contains("languages"));
        let no_pattern = RULE.replace("pattern = { regex = 'demo_[a-z0-9]{8}', keywords = [\"demo_\"] }", "");
        assert!(parse_rule_file("x.toml", &no_pattern).unwrap_err().to_string().contains("needs a `pattern`"));
        let wrong_example = format!(
            "{}\n[[rule.examples]]\nlanguage = \"rust\"\ncode = \"x\"\n",
            RULE.replace("[\"text\"]", "[\"python\"]")
        );
        assert!(parse_rule_file("x.toml", &wrong_example).unwrap_err().to_string().contains("example 1 is rust"));
    }
}
