//! Target `audit_verify`: the oracle is `sandguard_fuzz::audit_tamper` (see its documentation).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sandguard_fuzz::enforce(sandguard_fuzz::audit_tamper::check(data)));
