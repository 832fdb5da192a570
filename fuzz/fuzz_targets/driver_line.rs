#![no_main]
//! Fuzz target: see `rune_fuzz::driver_line`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rune_fuzz::driver_line(data));
