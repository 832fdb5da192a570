#![no_main]
//! Fuzz target: see `rune_fuzz::suite_yaml`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rune_fuzz::suite_yaml(data));
