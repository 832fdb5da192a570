#![no_main]
//! Fuzz target: see `rune_fuzz::api_json`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rune_fuzz::api_json(data));
