//! sandguard facade.
#![forbid(unsafe_code)]
pub use sandguard_audit as audit;
pub use sandguard_policy as policy;
