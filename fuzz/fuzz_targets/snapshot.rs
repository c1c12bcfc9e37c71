//! Fuzz target: see `fuzzing::snapshot`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::snapshot(data));
