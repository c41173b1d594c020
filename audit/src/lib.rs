//! Security events for sandguard (OWNER: helper D).
#![forbid(unsafe_code)]
