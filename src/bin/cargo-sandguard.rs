//! `cargo sandguard ...`: cargo runs this binary as `cargo-sandguard sandguard ...`; the word
//! cargo adds is dropped and the rest is the `sandguard` command line.

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|word| word == "sandguard") {
        args.remove(1);
    }
    if let Some(program) = args.first_mut() {
        *program = OsString::from("cargo sandguard");
    }
    sandguard::cli::run(args)
}
