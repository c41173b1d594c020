//! Target `path_guard`: the oracle is `sandguard_fuzz::path_model` (see its documentation).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sandguard_fuzz::enforce(sandguard_fuzz::path_model::check(data)));
