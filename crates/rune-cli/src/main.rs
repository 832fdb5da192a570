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
    let traces = init_tracing(cli.global.log_json, default_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rune: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let outcome = runtime.block_on(commands::run(cli, &config));
    // Spans still buffered for OTLP are sent before the process ends.
    if let Some(provider) = traces {
        if let Err(e) = provider.shutdown() {
            eprintln!("rune: could not flush OTLP traces: {e}");
        }
    }
    match outcome {
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

/// Logs to stderr (text or JSON); with `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are also
/// exported over OTLP/HTTP (protobuf) to that collector. Returns the trace provider to
/// flush at exit.
fn init_tracing(json: bool, default_level: &str) -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUNE_LOG").unwrap_or_else(|_| default_level.into());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    let fmt = if json { fmt.json().boxed() } else { fmt.boxed() };
    let provider = match otlp_provider() {
        Ok(provider) => provider,
        Err(e) => {
            eprintln!("rune: OTLP tracing is off: {e}");
            None
        }
    };
    let otel = provider.as_ref().map(|p| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer().with_tracer(p.tracer("rune"))
    });
    tracing_subscriber::registry().with(fmt).with(otel).with(filter).init();
    provider
}

/// The OTLP trace pipeline when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; the standard `OTEL_*` variables
/// (headers, timeout, `OTEL_SERVICE_NAME`, default `rune`) apply.
fn otlp_provider() -> Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>, String> {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
    if !set("OTEL_EXPORTER_OTLP_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return Ok(None);
    }
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()
        .map_err(|e| format!("{e} (check OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://otel-collector:4318)"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name("rune");
    }
    Ok(Some(
        opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build(),
    ))
}
