//! End-to-end tests of the real `rune` binary: every `rune db` command, its exit codes
//! and messages on bad input, and crash safety under `SIGKILL`.

mod airgap;
mod bench_llm;
mod benchmark;
mod config;
mod contract;
mod crash;
mod db_commands;
mod health_check;
mod http_mode;
mod image;
mod operator;
mod otlp;
mod runbook;
mod secrets;
mod serve_restart;
mod ui_browser;
mod util;
