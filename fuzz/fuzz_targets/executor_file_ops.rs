//! Target `executor_file_ops`: the oracle is `sandguard_fuzz::file_ops_sentinel` (see its documentation).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sandguard_fuzz::enforce(sandguard_fuzz::file_ops_sentinel::check(data)));
