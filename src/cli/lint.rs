//! `sandguard lint`: the linter, with the exit codes CI relies on (0 clean, 1 findings at deny
//! level or failing rule examples, 2 usage or configuration error).

use std::io::{IsTerminal, Write};

use sandguard_lint::{LintOptions, run};

use super::{EXIT_USAGE, LintArgs};

pub(crate) fn lint(args: &LintArgs, levels: Vec<(String, sandguard_lint::Level)>) -> u8 {
    let options = LintOptions {
        paths: args.paths.clone(),
        format: args.format,
        config: args.config.clone(),
        levels,
        baseline: args.baseline.clone(),
        write_baseline: args.write_baseline.clone(),
        test_rules: args.test_rules.clone(),
        progress: std::io::stderr().is_terminal(),
        ..LintOptions::default()
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut err = stderr.lock();
    let status = match run(&options, &mut out, &mut err) {
        Ok(status) => status.code(),
        Err(error) => {
            let _ = out.flush();
            let _ = writeln!(err, "sandguard: error: {error}");
            return error.exit_code();
        }
    };
    if out.flush().is_err() { EXIT_USAGE } else { status }
}
