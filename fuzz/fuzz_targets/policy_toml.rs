//! Target `policy_toml`: the oracle is `sandguard_fuzz::policy_roundtrip` (see its documentation).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sandguard_fuzz::enforce(sandguard_fuzz::policy_roundtrip::check(data)));
