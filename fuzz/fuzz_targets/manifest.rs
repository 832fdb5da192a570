#![no_main]
//! Fuzz target: see `rune_fuzz::manifest`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rune_fuzz::manifest(data));
