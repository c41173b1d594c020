//! `sandguard quote`: print arguments as one POSIX shell command line.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use crate::policy::shell;

use super::{EXIT_OK, EXIT_USAGE, fail};

pub(crate) fn run(args: &[OsString]) -> u8 {
    let line = match shell::join(args) {
        Ok(line) => line,
        Err(error) => return fail(error),
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(line.as_bytes()).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush()) {
        Ok(()) => EXIT_OK,
        Err(_) => EXIT_USAGE,
    }
}
