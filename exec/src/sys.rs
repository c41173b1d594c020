//! The Linux system-call layer: the only place in sandguard with `unsafe`.

pub(crate) mod harden;
