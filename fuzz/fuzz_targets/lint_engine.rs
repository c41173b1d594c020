//! Target `lint_engine`: the oracle is `sandguard_fuzz::lint_budget` (see its documentation).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sandguard_fuzz::enforce(sandguard_fuzz::lint_budget::check(data)));
