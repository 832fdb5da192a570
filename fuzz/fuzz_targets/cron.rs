#![no_main]
//! Fuzz target: see `rune_fuzz::cron`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rune_fuzz::cron(data));
