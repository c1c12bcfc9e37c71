//! Fuzz target: see `fuzzing::kv_command`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::kv_command(data));
