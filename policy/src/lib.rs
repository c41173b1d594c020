//! Composable security guards for running untrusted code, and the TOML policy that composes them.
//!
//! Every guard here is a pure decision: it looks at a value a user sent (a sandbox ID, a path, a port,
//! a URL, a command) and either returns the normalised value it allows or a typed error with a stable
//! code (`INVALID_SANDBOX_ID_CHARS`, `PATH_OUTSIDE_ROOTS`, ...). Nothing here performs I/O except the
//! reading of a policy file and the OS randomness behind [`SandboxId::generate`]; time comes only
//! through the [`Clock`] trait, so rate limits and lockouts are tested with a [`FakeClock`].
//!
//! The guards are composed by a [`Policy`], compiled once from TOML, whose
//! [`Policy::authorize`] turns an [`Action`] into a [`Permit`] or a [`Denial`].
//!
//! ```
//! use sandguard_policy::{Action, Policy};
//!
//! let policy = Policy::default();
//! let permit = policy.authorize(&Action::ReadFile { path: "/workspace/./src/../main.py".as_ref() });
//! assert!(permit.is_ok());
//! let denial = policy.authorize(&Action::ReadFile { path: "/workspace/../etc/shadow".as_ref() });
//! assert_eq!(denial.unwrap_err().code(), "PATH_OUTSIDE_ROOTS");
//! ```
//!
//! The [`manual`] module is the user guide: threat model, defaults, and what is and is not protected.

#![forbid(unsafe_code)]

pub mod action;
pub mod clock;
pub mod config;
pub mod egress;
pub mod error;
pub mod id;
pub mod limits;
pub mod lockout;
pub mod manual;
pub mod network;
pub mod path;
pub mod policy;
pub mod port;
pub mod rate;
pub mod redact;
pub mod shell;

pub use action::{Action, ActionError, CommandSpec, Denial, ExecRequest, Grant, Permit};
pub use clock::{Clock, FakeClock, SystemClock};
pub use config::{ConfigError, ConfigErrors};
pub use egress::{EgressPolicy, EgressTarget, Host};
pub use error::Error;
pub use id::{IdRules, SandboxId};
pub use limits::{ByteSize, HumanDuration, ResourceLimits};
pub use lockout::{Lockout, LockoutConfig};
pub use network::NetworkPolicy;
pub use path::PathGuard;
pub use policy::{ExecRules, Policy, PolicyBuilder};
pub use port::{PortPolicy, PortRange};
pub use rate::{Quota, RateLimit};
pub use redact::SecretRedactor;
