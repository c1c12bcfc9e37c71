//! Fuzz target: see `fuzzing::glob`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::glob(data));
