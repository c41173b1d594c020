//! Target `shell_quote`: the oracle is `sandguard_fuzz::dash_child` (see its documentation).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sandguard_fuzz::enforce(sandguard_fuzz::dash_child::check(data)));
