//! `sandguard lint --test-rules`: every rule's examples, run through that rule alone.
//!
//! An example's code is checked as a file named `example.<ext>` in the example's language, with
//! only its rule enabled (at `warn` if the rule is `allow` by default); the lines reported must
//! equal the example's `lines`, as sets. A rule without an example that must match and one that
//! must not, or that does not compile, fails.

use std::path::PathBuf;

use crate::engine::{Linter, SourceFile, UNUSED_SUPPRESSION};
use crate::rule::Level;
use crate::ruleset::LoadedRule;

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExampleFailure {
    /// The rule's id.
    pub rule: String,
    /// Its rules file.
    pub origin: String,
    /// 1-based index of the example, when one example failed (rather than the rule).
    pub example: Option<usize>,
    /// What went wrong.
    pub reason: String,
}

impl std::fmt::Display for ExampleFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.example {
            Some(i) => write!(f, "FAIL {} ({}) example {i}: {}", self.rule, self.origin, self.reason),
            None => write!(f, "FAIL {} ({}): {}", self.rule, self.origin, self.reason),
        }
    }
}

/// The outcome of testing a set of rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleTestReport {
    /// Rules tested.
    pub rules: usize,
    /// Examples run.
    pub examples: usize,
    /// Every failure.
    pub failures: Vec<ExampleFailure>,
}

impl RuleTestReport {
    /// Whether every rule passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs every example of every rule.
pub fn test_rules(rules: &[LoadedRule]) -> RuleTestReport {
    let mut report = RuleTestReport { rules: rules.len(), ..RuleTestReport::default() };
    for loaded in rules {
        test_rule(loaded, &mut report);
    }
    report
}

fn test_rule(loaded: &LoadedRule, report: &mut RuleTestReport) {
    let rule = &loaded.rule;
    let fail = |example: Option<usize>, reason: String| ExampleFailure {
        rule: rule.id.clone(),
        origin: loaded.origin.clone(),
        example,
        reason,
    };
    let positive = rule.examples.iter().any(|e| !e.lines.is_empty());
    let negative = rule.examples.iter().any(|e| e.lines.is_empty());
    if !positive || !negative {
        let missing = match (positive, negative) {
            (false, false) => "no examples",
            (false, true) => "no example that must match (`lines` not empty)",
            _ => "no example that must not match (`lines = []`)",
        };
        report.failures.push(fail(None, format!("{missing}; every rule carries both")));
    }
    let mut alone = loaded.clone();
    if alone.rule.severity == Level::Allow {
        alone.rule.severity = Level::Warn;
    }
    let linter = match Linter::builder()
        .builtin_rules(false)
        .rules([alone])
        .level(UNUSED_SUPPRESSION, Level::Allow)
        .threads(1)
        .build()
    {
        Ok(linter) => linter,
        Err(error) => {
            report.failures.push(fail(None, format!("does not compile: {error}")));
            return;
        }
    };
    for (i, example) in rule.examples.iter().enumerate() {
        report.examples += 1;
        let path = PathBuf::from(format!("example.{}", example.language.extension()));
        let file = SourceFile { path: &path, language: example.language, text: &example.code };
        let mut found: Vec<u32> = linter
            .check(&file)
            .findings
            .iter()
            .filter(|f| f.rule == rule.id)
            .map(|f| u32::try_from(f.line).unwrap_or(u32::MAX))
            .collect();
        found.sort_unstable();
        found.dedup();
        let mut expected = example.lines.clone();
        expected.sort_unstable();
        expected.dedup();
        if found != expected {
            report.failures.push(fail(
                Some(i + 1),
                format!("({}) expected lines {expected:?}, found {found:?}", example.language),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::parse_rule_file;

    const RULES: &str = r#"
[[rule]]
id = "demo-token"
severity = "allow"
category = "hardcoded-secret"
languages = ["text"]
message = "a demo token"
help = "remove it"
pattern = { regex = 'demo_[a-z0-9]{8}', keywords = ["demo_"] }

[[rule.examples]]
language = "python"
code = "x = 1\nk = 'demo_a1b2c3d4'\n"
lines = [2]

[[rule.examples]]
language = "text"
code = "demo_short"

[[rule]]
id = "wrong-lines"
severity = "deny"
category = "hardcoded-secret"
languages = ["text"]
message = "m"
help = "h"
pattern = { regex = 'demo_[a-z0-9]{8}' }

[[rule.examples]]
language = "text"
code = "demo_a1b2c3d4"
lines = [3]

[[rule]]
id = "no-examples"
severity = "deny"
category = "hardcoded-secret"
languages = ["text"]
message = "m"
help = "h"
pattern = { regex = '(' }
"#;

    #[test]
    fn passes_and_failures() {
        let rules = parse_rule_file("demo.toml", RULES).unwrap();
        let report = test_rules(&rules);
        assert_eq!((report.rules, report.examples), (3, 3));
        let failures: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
        assert_eq!(failures.len(), 4, "{failures:#?}");
        assert!(failures[0].starts_with("FAIL wrong-lines (demo.toml): no example that must not match"));
        assert_eq!(failures[1], "FAIL wrong-lines (demo.toml) example 1: (text) expected lines [3], found [1]");
        assert!(failures[2].starts_with("FAIL no-examples (demo.toml): no examples"));
        assert!(failures[3].contains("does not compile"));
        assert!(!report.passed());
    }
}
