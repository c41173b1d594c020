//! sandguard: guard rails for running untrusted code.
//!
//! This facade wires the crates together and adds what needs all of them:
//!
//! - [`policy`] (`sandguard-policy`): the guards and the TOML [`Policy`] — pure decisions.
//! - [`audit`] (`sandguard-audit`): security events, the tamper-evident log and its verifier.
//! - [`Enforcer`]: asks the policy about every operation, records every decision (allowed and
//!   denied alike) before anything runs, applies rate limits and lockout per actor, and hands out
//!   the [`Permit`] that later executor calls require. A `Permit` cannot be made any other way, so
//!   "forgot to check" or "forgot to log" does not compile.
//!
//! ```
//! use sandguard::audit::{AuditLog, MemorySink, Outcome};
//! use sandguard::policy::{Action, Policy};
//! use sandguard::Enforcer;
//! use std::sync::Arc;
//!
//! let sink = Arc::new(MemorySink::new());
//! let enforcer = Enforcer::new(Policy::default(), AuditLog::new(sink.clone()));
//!
//! let permit = enforcer.authorize("alice", None, &Action::ReadFile { path: "/workspace/a/../b.txt".as_ref() })?;
//! assert_eq!(permit.actor(), "alice");
//!
//! let denied = enforcer.authorize("alice", None, &Action::Connect { url: "http://169.254.169.254/" });
//! assert_eq!(denied.unwrap_err().code(), "EGRESS_ADDRESS_DENIED");
//!
//! let events = sink.events();
//! assert_eq!(events.len(), 2);
//! assert_eq!(events[0].outcome, Outcome::Allowed);
//! assert_eq!(events[1].outcome, Outcome::Denied);
//! # Ok::<(), sandguard::Error>(())
//! ```

#![forbid(unsafe_code)]

pub mod cli;
mod enforcer;
mod error;
#[cfg(feature = "tower")]
pub mod middleware;
mod sandbox;
#[cfg(feature = "serve")]
pub mod service;

pub use enforcer::{Enforcer, EnforcerBuilder, Permit};
pub use error::Error;
pub use sandbox::{ExecResult, Process, Sandbox, Session, ShellSession};
pub use sandguard_audit as audit;
pub use sandguard_exec as exec;
pub use sandguard_policy as policy;
pub use sandguard_policy::{Action, Policy};

/// The README's Rust examples, compiled as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Reads an HMAC key for the audit log from a file: its bytes, less one trailing newline (so a
/// key written with `echo` works), refused when shorter than 16 bytes.
///
/// # Errors
/// [`Error::KeyFile`] when the file cannot be read or holds too short a key.
pub fn read_key_file(path: &std::path::Path) -> Result<Vec<u8>, Error> {
    let mut key = std::fs::read(path)
        .map_err(|source| Error::KeyFile { path: path.to_path_buf(), reason: source.to_string() })?;
    if key.last() == Some(&b'\n') {
        key.pop();
    }
    if key.len() < 16 {
        return Err(Error::KeyFile {
            path: path.to_path_buf(),
            reason: format!("the key is {} bytes; an audit key needs at least 16", key.len()),
        });
    }
    Ok(key)
}
