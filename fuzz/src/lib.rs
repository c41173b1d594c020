//! Oracles for sandguard's fuzz targets.
//!
//! Each module holds one target's oracle: a reference model or a real program that the code under
//! test is compared with, and a `check` function that returns a [`Violation`] when they disagree.
//! The targets in `fuzz_targets/` only turn a violation into a panic, which libFuzzer records as a
//! crash. Keeping the oracles in a library lets `cargo test` show that each one *can* fail: every
//! module's tests feed it a deliberately wrong answer and expect a violation.
#![forbid(unsafe_code)]

pub mod audit_tamper;
pub mod dash_child;
pub mod dns_label;
pub mod egress_reference;
pub mod file_ops_sentinel;
pub mod lint_budget;
pub mod path_model;
pub mod policy_roundtrip;

use std::fmt;

/// An oracle's verdict against the code under test: what was expected and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Violation {}

/// Returns a [`Violation`] built from the format arguments.
#[macro_export]
macro_rules! violation {
    ($($arg:tt)*) => {
        return Err($crate::Violation(format!($($arg)*)))
    };
}

/// Panics with the violation, so libFuzzer saves the input as a crash.
pub fn enforce(result: Result<(), Violation>) {
    if let Err(violation) = result {
        panic!("oracle violation: {violation}");
    }
}
