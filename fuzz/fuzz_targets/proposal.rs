//! Fuzz target: see `fuzzing::proposal`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::proposal(data));
