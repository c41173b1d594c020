//! `sandguard policy check`: validate a policy file, reporting every error.

use std::io::Write;
use std::path::Path;

use crate::policy::Policy;

use super::{EXIT_OK, EXIT_USAGE};

pub(crate) fn check(file: &Path) -> u8 {
    match Policy::load(file) {
        Ok(_) => {
            let _ = writeln!(std::io::stdout(), "{}: ok", file.display());
            EXIT_OK
        }
        Err(errors) => {
            for error in errors.errors() {
                eprintln!("error: {error}");
            }
            let count = errors.errors().len();
            eprintln!("sandguard: {} has {count} error{}", file.display(), if count == 1 { "" } else { "s" });
            EXIT_USAGE
        }
    }
}
