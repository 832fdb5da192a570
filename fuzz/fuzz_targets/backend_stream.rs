#![no_main]
//! Fuzz target: see `rune_fuzz::backend_stream`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rune_fuzz::backend_stream(data));
