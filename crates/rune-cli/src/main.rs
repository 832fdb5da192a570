//! The `rune` binary: parses the command line, runs the command, maps the outcome to an
//! exit code. All behaviour lives in the command modules and the library crates.
//!
//! Exit codes (documented in `docs/cli.md`):
//! 0 success · 1 failure · 2 bad input or usage · 3 a check ran and did not pass ·
//! 4 refused (database in use, schema newer than this binary, confirmation declined).

mod cli;
mod commands;
mod config;
mod exit;
mod output;
mod runner;

use std::process::ExitCode;

fn main() -> ExitCode {
    // First parse: --help, --version and usage errors end here, before any configuration
    // file is read, so a broken file never hides them.
    let first = cli::Cli::parse_with_version();
    // Files export their settings as RUNE_* variables the environment does not set, and
    // the command line is parsed again (flags > env > ./rune.yaml > ~/.rune > defaults).
    let (cli, config) = match config::apply(first) {
        Ok(applied) => applied,
        Err(err) => {
            eprintln!("rune: {err:#}");
            return ExitCode::from(exit::code_for(&err));
        }
    };
    // The server reports what it does (requests, jobs); one-shot commands stay quiet.
    let default_level = if matches!(cli.command, cli::Command::Serve(_)) { "info" } else { "warn" };
    init_tracing(cli.global.log_json, default_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rune: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match runtime.block_on(commands::run(cli, &config)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if exit::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("rune: {err:#}");
            ExitCode::from(exit::code_for(&err))
        }
    }
}

fn init_tracing(json: bool, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUNE_LOG").unwrap_or_else(|_| default_level.into());
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
