//! Fuzz target: see `fuzzing::grpc_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::grpc_message(data));
