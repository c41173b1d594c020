//! The `sandguard` command (and `cargo sandguard`): argument parsing and dispatch; each
//! subcommand lives in its own module. Exit codes are a contract scripts rely on: see each
//! subcommand and the README.

mod audit;
mod check;
mod id;
mod lint;
mod policy;
mod quote;
mod run;
#[cfg(feature = "serve")]
mod serve;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// Exit status: every input allowed, the log intact, the policy valid.
pub(crate) const EXIT_OK: u8 = 0;
/// Exit status: an input was denied, or the audit log was tampered with.
pub(crate) const EXIT_DENIED: u8 = 1;
/// Exit status: bad usage, an unreadable file, or an invalid policy.
pub(crate) const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(name = "sandguard", version, about = "Guard rails for running untrusted code", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
// Each subcommand's arguments are defined only when it is the one invoked: defining all of them
// took a sixth of a millisecond on every start.
#[command(defer = true)]
enum Command {
    /// Ask a guard whether values are allowed (exit 0: all allowed, 1: any denied, 2: usage error).
    Check(CheckArgs),
    /// Print the arguments as one POSIX shell command line (exit 2 for an argument with NUL).
    Quote {
        /// The arguments; any bytes but NUL.
        #[arg(allow_hyphen_values = true, trailing_var_arg = true, value_parser = clap::value_parser!(OsString))]
        args: Vec<OsString>,
    },
    /// Run one command in a fresh sandbox; exit with its status (124 timeout, 128+N signal N,
    /// 125 sandguard failed).
    Run(RunArgs),
    /// Find command injection, path traversal, unsafe sandbox use and hardcoded secrets (exit 0
    /// clean, 1 findings at deny level, 2 usage or configuration error).
    Lint(LintArgs),
    /// Sandbox IDs.
    #[command(subcommand)]
    Id(IdCommand),
    /// Policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Audit logs.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Serve the sandbox HTTP API until SIGINT or SIGTERM, then destroy every sandbox (exit 2
    /// when it cannot start, e.g. a keys file readable by group or others).
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
}

#[cfg(feature = "serve")]
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0: any free port; the bound address is
    /// printed on stdout).
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// Bearer tokens: one `USER TOKEN` per line; must not be readable by group or others.
    #[arg(long, value_name = "FILE")]
    keys: PathBuf,
    /// Append every decision to this hash-chained audit log.
    #[arg(long, value_name = "FILE")]
    audit_log: PathBuf,
    /// Policy file (default: the built-in safe defaults).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// HMAC key file for the audit log (at least 16 bytes).
    #[arg(long, value_name = "FILE")]
    audit_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CheckKind {
    /// A sandbox ID.
    Id,
    /// A path inside the sandbox.
    Path,
    /// A port to expose.
    Port,
    /// A URL to connect to.
    Url,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// What to check.
    kind: CheckKind,
    /// Values to check; with --stdin, read after these.
    #[arg(value_parser = clap::value_parser!(OsString))]
    values: Vec<OsString>,
    /// Read inputs from standard input, one JSON string per line (so NUL and control characters
    /// can be passed).
    #[arg(long)]
    stdin: bool,
    /// Print one JSON object per input: {"input","allowed","normalized","code","message"}.
    #[arg(long)]
    json: bool,
    /// Take the guard's settings from this policy file.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// For `path`: allowed roots (repeatable), replacing the policy's.
    #[arg(long = "root", value_name = "DIR", value_parser = clap::value_parser!(OsString))]
    roots: Vec<OsString>,
    /// For `port`: allowed ports or ranges (8080, 9000-9010); for `url`: allowed hosts
    /// (example.com, *.example.com). Repeatable.
    #[arg(long = "allow", value_name = "X")]
    allow: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Policy file (default: the built-in safe defaults).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Wall-clock limit, e.g. 30s (at most the policy's).
    #[arg(long, value_name = "DUR")]
    timeout: Option<String>,
    /// Memory limit of the sandbox, e.g. 256MiB (at most the policy's).
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// Most processes and threads in the sandbox (at most the policy's).
    #[arg(long, value_name = "N")]
    pids: Option<u32>,
    /// Size of the writable filesystems, e.g. 100MiB (at most the policy's).
    #[arg(long, value_name = "SIZE")]
    disk: Option<String>,
    /// An environment variable for the command (repeatable); nothing else of the host's passes.
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Working directory inside the sandbox.
    #[arg(long, value_name = "DIR", default_value = "/workspace", value_parser = clap::value_parser!(PathBuf))]
    workdir: PathBuf,
    /// Append the audit events to this hash-chained log.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(required = true, last = true, value_parser = clap::value_parser!(OsString))]
    command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub(crate) struct LintArgs {
    /// Files and folders to scan (default: the current directory).
    #[arg(value_parser = clap::value_parser!(PathBuf))]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, default_value = "human", value_parser = parse_format)]
    format: sandguard_lint::Format,
    /// Configuration file (default: sandguard.toml, [lint] section).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Allow a rule or category (repeatable; -A/-W/-D apply in the order given).
    #[arg(short = 'A', value_name = "RULE", action = clap::ArgAction::Append)]
    allow: Vec<String>,
    /// Warn on a rule or category.
    #[arg(short = 'W', value_name = "RULE", action = clap::ArgAction::Append)]
    warn: Vec<String>,
    /// Deny a rule or category.
    #[arg(short = 'D', value_name = "RULE", action = clap::ArgAction::Append)]
    deny: Vec<String>,
    /// Hide the findings recorded in this baseline.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Record the current findings as a baseline.
    #[arg(long, value_name = "FILE")]
    write_baseline: Option<PathBuf>,
    /// Run every rule's examples (built-in rules, or the rules files in DIR) instead of scanning.
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    test_rules: Option<Option<PathBuf>>,
}

fn parse_format(text: &str) -> Result<sandguard_lint::Format, String> {
    text.parse()
}

#[derive(Debug, Subcommand)]
enum IdCommand {
    /// Print a fresh, unpredictable sandbox ID (128 bits of OS randomness).
    New {
        /// A prefix, e.g. a user ID; the ID is PREFIX-RANDOM.
        #[arg(long, default_value = "")]
        prefix: String,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate a policy file; print every error with line and column (exit 2 if any).
    Check {
        /// The policy file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify a hash-chained audit log (exit 0 intact, 1 tampered, 2 unreadable).
    Verify {
        /// The log file.
        file: PathBuf,
        /// The HMAC key file the log was written with.
        #[arg(long, value_name = "K")]
        key_file: Option<PathBuf>,
    },
}

/// Runs the command line `args` (the program name first) and returns the exit status.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = match Cli::command().try_get_matches_from(args) {
        Ok(matches) => matches,
        Err(error) => error.exit(),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let status = match cli.command {
        Command::Lint(args) => {
            let levels = matches.subcommand_matches("lint").map(ordered_levels).unwrap_or_default();
            lint::lint(&args, levels)
        }
        Command::Check(args) => check::run(&args),
        Command::Quote { args } => quote::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Id(IdCommand::New { prefix }) => id::new(&prefix),
        Command::Policy(PolicyCommand::Check { file }) => policy::check(&file),
        Command::Audit(AuditCommand::Verify { file, key_file }) => audit::verify(&file, key_file.as_deref()),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(&args),
    };
    ExitCode::from(status)
}

/// `-A`, `-W` and `-D` in the order they were given: later ones win.
fn ordered_levels(matches: &clap::ArgMatches) -> Vec<(String, sandguard_lint::Level)> {
    let mut levels: Vec<(usize, String, sandguard_lint::Level)> = Vec::new();
    for (id, level) in [
        ("allow", sandguard_lint::Level::Allow),
        ("warn", sandguard_lint::Level::Warn),
        ("deny", sandguard_lint::Level::Deny),
    ] {
        let (Some(values), Some(indices)) = (matches.get_many::<String>(id), matches.indices_of(id)) else { continue };
        levels.extend(values.zip(indices).map(|(rule, index)| (index, rule.clone(), level)));
    }
    levels.sort_by_key(|(index, _, _)| *index);
    levels.into_iter().map(|(_, rule, level)| (rule, level)).collect()
}

/// Prints `sandguard: <message>` on stderr and returns the usage exit status.
pub(crate) fn fail(message: impl std::fmt::Display) -> u8 {
    let _ = writeln!(std::io::stderr(), "sandguard: {message}");
    EXIT_USAGE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // Builds every subcommand, deferred ones included, and checks clap's own invariants.
        Cli::command().debug_assert();
    }

    #[test]
    fn deferred_subcommands_still_parse_their_arguments() {
        let cli = Cli::try_parse_from(["sandguard", "run", "--timeout", "5s", "--env", "A=1", "--", "true"]).unwrap();
        let Command::Run(run) = cli.command else { panic!("parsed as another subcommand") };
        assert_eq!(run.timeout.as_deref(), Some("5s"));
        assert_eq!(run.env, ["A=1"]);
        assert!(Cli::try_parse_from(["sandguard", "run", "--no-such-flag", "--", "true"]).is_err());
    }
}
