//! End-to-end tests of the real `rune` binary: every `rune db` command, its exit codes
//! and messages on bad input, and crash safety under `SIGKILL`.

mod benchmark;
mod config;
mod crash;
mod db_commands;
mod http_mode;
mod serve_restart;
mod util;
