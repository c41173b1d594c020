//! Target `egress_url`: the oracle is `sandguard_fuzz::egress_reference` (see its documentation).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sandguard_fuzz::enforce(sandguard_fuzz::egress_reference::check(data)));
