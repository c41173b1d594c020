//! `sandguard id new`: mint an unpredictable sandbox ID.

use std::io::Write;

use crate::policy::SandboxId;

use super::{EXIT_OK, EXIT_USAGE, fail};

pub(crate) fn new(prefix: &str) -> u8 {
    match SandboxId::generate(prefix) {
        Ok(id) => match writeln!(std::io::stdout(), "{id}") {
            Ok(()) => EXIT_OK,
            Err(_) => EXIT_USAGE,
        },
        Err(error) => fail(format_args!("{}: {error}", error.code())),
    }
}
