//! The `sandguard` command: ask the guards a question, quote for a shell, mint sandbox IDs,
//! check policies, and verify audit logs.
//!
//! Exit codes are a contract scripts rely on: see each subcommand and the README.

#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    sandguard::cli::run(std::env::args_os())
}
