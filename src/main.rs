//! The `sandguard` command: ask the guards a question, quote for a shell, mint sandbox IDs,
//! check policies, and verify audit logs.
//!
//! Exit codes are a contract scripts rely on: see each subcommand and the README.

#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
