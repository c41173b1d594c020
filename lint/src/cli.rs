//! The command behind `sandguard lint` and `cargo sandguard lint`: options in, report out, an exit
//! status back. Argument parsing belongs to the binary; this module does everything after it.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use crate::baseline::Baseline;
use crate::config::{LintConfig, discover};
use crate::engine::Linter;
use crate::error::LintError;
use crate::output::{Format, write_human, write_json, write_sarif};
use crate::progress::{ProgressLine, SHOW_AFTER};
use crate::rule::Level;
use crate::rule_examples::test_rules;
use crate::ruleset::{builtin_rules, load_rule_dir};

/// When to colour human output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ColorChoice {
    /// When the process's stdout is a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Everything `sandguard lint` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    /// Files and folders to scan; the current directory when empty.
    pub paths: Vec<PathBuf>,
    /// Output format.
    pub format: Format,
    /// `--config FILE`; without it, `sandguard.toml` in the current directory (or in the one
    /// folder scanned) is used if present.
    pub config: Option<PathBuf>,
    /// `-A`/`-W`/`-D RULE` in command-line order (a rule id or a category); later ones win, and
    /// all win over the configuration file.
    pub levels: Vec<(String, Level)>,
    /// `--baseline FILE`: hide the findings it holds.
    pub baseline: Option<PathBuf>,
    /// `--write-baseline FILE`: write the current findings there and accept them.
    pub write_baseline: Option<PathBuf>,
    /// `--test-rules [DIR]`: run every rule's examples (built-in rules, or the `*.toml` in DIR)
    /// instead of scanning.
    pub test_rules: Option<Option<PathBuf>>,
    /// Colour for human output.
    pub color: ColorChoice,
    /// Draw a progress line on `stderr` while a scan runs for more than half a second (the
    /// binaries set this when stderr is a terminal).
    pub progress: bool,
}

/// How `sandguard lint` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// No finding at `deny` (warnings are allowed); every rule example passed.
    Clean,
    /// At least one finding at `deny`; or a rule example failed.
    Findings,
    /// The scan is incomplete: a file or folder could not be read (listed on stderr).
    Error,
}

impl ExitStatus {
    /// The process exit code: 0, 1 or 2. A [`LintError`] is also 2.
    pub const fn code(self) -> u8 {
        match self {
            Self::Clean => 0,
            Self::Findings => 1,
            Self::Error => 2,
        }
    }
}

/// Runs `sandguard lint`: writes the report to `stdout`, warnings and notes to `stderr`.
///
/// ```no_run
/// use sandguard_lint::{LintOptions, run};
///
/// let options = LintOptions { paths: vec![".".into()], ..LintOptions::default() };
/// let code = match run(&options, &mut std::io::stdout(), &mut std::io::stderr()) {
///     Ok(status) => status.code(),
///     Err(error) => {
///         eprintln!("sandguard: error: {error}");
///         error.exit_code()
///     }
/// };
/// std::process::exit(code.into());
/// ```
///
/// # Errors
///
/// Usage and configuration errors (exit code 2): a missing path or configuration file, a
/// configuration or rules file with errors, an unknown rule id, an unreadable baseline, a
/// report that cannot be written.
pub fn run(options: &LintOptions, stdout: &mut dyn Write, stderr: &mut dyn Write) -> Result<ExitStatus, LintError> {
    if let Some(dir) = &options.test_rules {
        return run_rule_tests(dir.as_deref(), stdout);
    }
    let config_path = options.config.clone().or_else(|| discover(&options.paths));
    let mut builder = Linter::builder();
    if let Some(path) = &config_path {
        builder = builder.config(&LintConfig::load(path)?)?;
    }
    for (name, level) in &options.levels {
        builder = builder.level(name.clone(), *level);
    }
    let linter = builder.build()?;
    // Load the baseline before the scan: a bad one should fail fast.
    let baseline = options.baseline.as_deref().map(Baseline::load).transpose()?;
    let mut report = if options.progress {
        let mut line = ProgressLine::new(stderr, SHOW_AFTER);
        let scanned = linter.scan_with_progress(&options.paths, &mut |progress| line.update(progress));
        line.finish();
        scanned?
    } else {
        linter.scan(&options.paths)?
    };
    if let Some(path) = &options.write_baseline {
        // Every current finding, including those an old baseline would hide, is accepted.
        let accepted = Baseline::from_findings(&report.findings);
        accepted.write(path)?;
        report.apply_baseline(&accepted);
        writeln!(stderr, "sandguard: wrote {} finding(s) to the baseline {}", accepted.len(), path.display())
            .map_err(LintError::Output)?;
    } else if let Some(baseline) = &baseline {
        report.apply_baseline(baseline);
    }
    for error in &report.errors {
        writeln!(stderr, "sandguard: error: cannot read {error}").map_err(LintError::Output)?;
    }
    match options.format {
        Format::Human => write_human(&report, stdout, use_color(options.color)),
        Format::Json => write_json(&report, stdout),
        Format::Sarif => write_sarif(&report, &linter, scanned_root(&options.paths).as_deref(), stdout),
    }
    .map_err(LintError::Output)?;
    Ok(if !report.errors.is_empty() {
        ExitStatus::Error
    } else if report.has_errors() {
        ExitStatus::Findings
    } else {
        ExitStatus::Clean
    })
}

fn run_rule_tests(dir: Option<&std::path::Path>, stdout: &mut dyn Write) -> Result<ExitStatus, LintError> {
    let rules = match dir {
        Some(dir) => load_rule_dir(dir)?,
        None => builtin_rules()?,
    };
    let report = test_rules(&rules);
    let mut write = || -> std::io::Result<()> {
        for failure in &report.failures {
            writeln!(stdout, "{failure}")?;
        }
        writeln!(
            stdout,
            "sandguard: tested {} rules with {} examples: {}",
            report.rules,
            report.examples,
            if report.passed() { "all passed".to_owned() } else { format!("{} failure(s)", report.failures.len()) }
        )
    };
    write().map_err(LintError::Output)?;
    Ok(if report.passed() { ExitStatus::Clean } else { ExitStatus::Findings })
}

fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
        }
    }
}

/// The root SARIF locations are relative to: the one folder scanned (or the folder of the one
/// file scanned); the current directory when several paths, or none, were given.
fn scanned_root(paths: &[PathBuf]) -> Option<PathBuf> {
    match paths {
        [only] if only.is_dir() => Some(only.clone()),
        [only] => only.parent().map(std::path::Path::to_path_buf),
        _ => None,
    }
}
