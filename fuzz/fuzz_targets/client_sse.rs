#![no_main]
//! Fuzz target: see `rune_fuzz::client_sse`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rune_fuzz::client_sse(data));
