//! The `sandguard` command.
#![forbid(unsafe_code)]
fn main() {}
