//! `lint_engine`: arbitrary source in each language never panics the linter, finishes within a
//! time bound per KiB, and reports findings that point inside the text.
//!
//! The bound is [`BASE_BUDGET`] plus [`BUDGET_PER_KIB`] for each KiB: about a thousand times the
//! linter's measured throughput (77 MiB/s, 13 µs per KiB, all rules), so only super-linear work
//! (a backtracking query, a quadratic suppression scan) crosses it, not a loaded machine. A slow
//! input is timed a second time before it counts, so one descheduling cannot fail a campaign.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sandguard_lint::{FileFindings, Language, Linter, SourceFile};

use crate::{Violation, violation};

/// Time allowed for any input, whatever its size.
pub const BASE_BUDGET: Duration = Duration::from_millis(100);
/// Time allowed per KiB of input on top of [`BASE_BUDGET`].
pub const BUDGET_PER_KIB: Duration = Duration::from_millis(10);

/// The languages the first input byte chooses from, with a file name for each.
pub const LANGUAGES: [(Language, &str); 7] = [
    (Language::Rust, "src/main.rs"),
    (Language::Typescript, "src/app.ts"),
    (Language::Tsx, "src/view.tsx"),
    (Language::Javascript, "src/app.js"),
    (Language::Python, "app.py"),
    (Language::Shell, "run.sh"),
    (Language::Text, "notes.txt"),
];

/// The budget for `len` bytes of source.
pub fn budget(len: usize) -> Duration {
    BASE_BUDGET + BUDGET_PER_KIB * u32::try_from(len.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// Findings must describe places inside the text.
pub fn check_findings(text: &str, found: &FileFindings) -> Result<(), Violation> {
    let lines = text.split('\n').count();
    for finding in &found.findings {
        let start = (finding.line, finding.column);
        let end = (finding.end_line, finding.end_column);
        if finding.line == 0 || finding.column == 0 || finding.end_line > lines || end < start {
            violation!("finding {} at {start:?}..{end:?} lies outside the {lines}-line text", finding.rule);
        }
    }
    Ok(())
}

/// Times one check; returns the findings and how long it took.
fn timed(linter: &Linter, file: &SourceFile<'_>) -> (FileFindings, Duration) {
    let start = Instant::now();
    let found = linter.check(file);
    (found, start.elapsed())
}

/// The target's oracle: the first byte picks the language, the rest (lossily UTF-8) is the source.
pub fn check(data: &[u8]) -> Result<(), Violation> {
    static LINTER: OnceLock<Linter> = OnceLock::new();
    let linter = LINTER.get_or_init(|| Linter::builder().build().expect("the built-in rules compile"));
    let Some((&choice, rest)) = data.split_first() else { return Ok(()) };
    let (language, path) = LANGUAGES[usize::from(choice) % LANGUAGES.len()];
    let text = String::from_utf8_lossy(rest);
    let file = SourceFile { path: Path::new(path), language, text: &text };
    let allowed = budget(text.len());
    let (found, took) = timed(linter, &file);
    if took > allowed {
        let (_, again) = timed(linter, &file);
        if again > allowed {
            violation!(
                "{language:?}: {} bytes took {took:?} and then {again:?}, over the budget of {allowed:?}",
                text.len()
            );
        }
    }
    check_findings(&text, &found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_grows_per_kib() {
        assert_eq!(budget(0), BASE_BUDGET);
        assert_eq!(budget(1), BASE_BUDGET + BUDGET_PER_KIB);
        assert_eq!(budget(4096), BASE_BUDGET + 4 * BUDGET_PER_KIB);
    }

    #[test]
    fn the_oracle_fails_on_findings_outside_the_text() {
        let linter = Linter::builder().build().unwrap();
        // sandguard:allow(github-pat) -- a made-up token
        let text = "token = \"ghp_R2d7Kq9vLx3Nw8Pz4Tb6Hm1Yc5Jf0Ga7Se2U\"\n";
        let mut found = linter.check(&SourceFile { path: Path::new("a.py"), language: Language::Python, text });
        assert!(!found.findings.is_empty());
        check_findings(text, &found).unwrap();
        found.findings[0].end_line = 40;
        assert!(check_findings(text, &found).is_err());
        assert!(check(b"\x00fn main() { std::process::Command::new(input); }").is_ok());
    }
}
