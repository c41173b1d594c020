//! `sandguard audit verify`: check a hash-chained audit log.

use std::io::Write;
use std::path::Path;

use crate::audit::{VerifyReport, verify as verify_log};

use super::{EXIT_DENIED, EXIT_OK, EXIT_USAGE, fail};

pub(crate) fn verify(file: &Path, key_file: Option<&Path>) -> u8 {
    let key = match key_file.map(crate::read_key_file).transpose() {
        Ok(key) => key,
        Err(error) => return fail(error),
    };
    let report: VerifyReport = match verify_log(file, key.as_deref()) {
        Ok(report) => report,
        Err(error) => return fail(format_args!("cannot verify {}: {error}", file.display())),
    };
    match &report.first_problem {
        None => {
            let head = report.head.as_ref().map(|head| format!(", head seq {} hash {}", head.seq, head.hash));
            match writeln!(std::io::stdout(), "intact: {} records{}", report.records, head.unwrap_or_default()) {
                Ok(()) => EXIT_OK,
                Err(_) => EXIT_USAGE,
            }
        }
        Some(problem) => {
            let _ = writeln!(std::io::stdout(), "tampered: {}: {problem}", file.display());
            EXIT_DENIED
        }
    }
}
