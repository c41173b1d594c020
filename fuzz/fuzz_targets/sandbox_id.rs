//! Target `sandbox_id`: the oracle is `sandguard_fuzz::dns_label` (see its documentation).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sandguard_fuzz::enforce(sandguard_fuzz::dns_label::check(data)));
