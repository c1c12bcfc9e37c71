//! Fuzz target: see `fuzzing::acl_rules`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::acl_rules(data));
