#![no_main]
//! Fuzz target: see `rune_fuzz::config_yaml`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rune_fuzz::config_yaml(data));
