//! The `sandguard` command (and `cargo sandguard`): argument parsing and dispatch; each
//! subcommand lives in its own module. Exit codes are a contract scripts rely on: see each
//! subcommand and the README.

mod audit;
mod check;
mod id;
mod policy;
mod quote;
mod run;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Sandbox IDs.
    #[command(subcommand)]
    Id(IdCommand),
    /// Policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Audit logs.
    #[command(subcommand)]
    Audit(AuditCommand),
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
    let cli = Cli::parse_from(args);
    let status = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Quote { args } => quote::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Id(IdCommand::New { prefix }) => id::new(&prefix),
        Command::Policy(PolicyCommand::Check { file }) => policy::check(&file),
        Command::Audit(AuditCommand::Verify { file, key_file }) => audit::verify(&file, key_file.as_deref()),
    };
    ExitCode::from(status)
}

/// Prints `sandguard: <message>` on stderr and returns the usage exit status.
pub(crate) fn fail(message: impl std::fmt::Display) -> u8 {
    let _ = writeln!(std::io::stderr(), "sandguard: {message}");
    EXIT_USAGE
}
