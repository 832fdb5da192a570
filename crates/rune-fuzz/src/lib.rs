//! Every parser RUNE runs on input it does not control, as a function of raw bytes.
//!
//! The cargo-fuzz targets in `fuzz/fuzz_targets/` call these, and
//! `tests/corpus.rs` replays the committed corpus (`fuzz/corpus/<target>/`) through them
//! on the stable toolchain in every test run, so a crash found once stays fixed. Each
//! function must return normally for any input; where a parser promises more (a value it
//! accepted re-parses to itself), the function asserts it.

use rune_core::{JobKind, Timestamp};

/// A fuzz entry point: any bytes in, returns normally or panics on a broken promise.
pub type Target = fn(&[u8]);

/// The targets, by name (the folder names under `fuzz/corpus/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("suite_yaml", suite_yaml),
    ("config_yaml", config_yaml),
    ("driver_line", driver_line),
    ("backend_stream", backend_stream),
    ("client_sse", client_sse),
    ("api_json", api_json),
    ("cron", cron),
    ("manifest", manifest),
];

/// Suite files (`rune suites validate`, `RUNE_SUITE_DIR`, job requests naming a file).
pub fn suite_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(suite) = rune_core::suite::Suite::parse("fuzz.yaml", text) {
        let _ = suite.file_references();
        for case in &suite.cases {
            let _ = case.prompt();
            let _ = case.is_judge_only();
        }
    }
}

/// `rune.yaml` and `$RUNE_HOME/config.yaml`.
pub fn config_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = rune_core::config::ConfigFile::parse("rune.yaml", text);
}

/// One line a driver subprocess wrote on stdout (the stdio driver protocol).
pub fn driver_line(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    use rune_engine::agent::protocol::{parse_ask_result, parse_info_result, parse_response_line, DriverOutcome};
    if let Ok(response) = parse_response_line(&line) {
        if let DriverOutcome::Ok(result) = &response.outcome {
            let _ = parse_ask_result(result);
            let _ = parse_info_result(result);
        }
    }
}

/// A model server's streamed chat answer. The first byte picks the protocol (Ollama
/// NDJSON or OpenAI SSE), the second the network chunk size.
pub fn backend_stream(data: &[u8]) {
    let [kind, size, body @ ..] = data else { return };
    let kind = if kind % 2 == 0 {
        rune_engine::backend::BackendKind::Ollama
    } else {
        rune_engine::backend::BackendKind::OpenAi
    };
    let chunks: Vec<&[u8]> = body.chunks(usize::from(*size).max(1)).collect();
    let whole = rune_engine::backend::decode_stream_for_fuzzing(kind, &[body]);
    let split = rune_engine::backend::decode_stream_for_fuzzing(kind, &chunks);
    assert_eq!(whole, split, "the network's chunking changed the decoded answer");
}

/// The API's run-trace SSE stream, as the typed client reads it; chunked by the first
/// byte.
pub fn client_sse(data: &[u8]) {
    let [size, body @ ..] = data else { return };
    let mut whole = rune_client::sse::SseParser::default();
    let mut split = rune_client::sse::SseParser::default();
    let all = whole.feed(body);
    let mut parts = Ok(Vec::new());
    for chunk in body.chunks(usize::from(*size).max(1)) {
        match (&mut parts, split.feed(chunk)) {
            (Ok(acc), Ok(events)) => acc.extend(events),
            (_, Err(e)) => {
                parts = Err(e);
                break;
            }
            (Err(_), _) => break,
        }
    }
    if let (Ok(all), Ok(parts)) = (&all, &parts) {
        assert_eq!(all, parts, "the network's chunking changed the events");
    }
}

/// A job request body (`POST /v1/jobs/{kind}`); the first byte picks the kind. An
/// accepted request's canonical form is accepted again and is a fixed point.
pub fn api_json(data: &[u8]) {
    let [pick, body @ ..] = data else { return };
    let kind = JobKind::ALL[usize::from(*pick) % JobKind::ALL.len()];
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else { return };
    let Ok(request) = rune_core::contracts::JobRequest::parse(kind, &value) else { return };
    let canonical = request.to_canonical_json();
    let again: serde_json::Value = serde_json::from_str(&canonical).expect("canonical JSON is JSON");
    let reparsed = rune_core::contracts::JobRequest::parse(kind, &again)
        .unwrap_or_else(|e| panic!("{kind}: canonical form {canonical} is refused: {e}"));
    assert_eq!(reparsed.to_canonical_json(), canonical, "{kind}: canonical form is not a fixed point");
}

/// Cron expressions (schedules, RuneBenchmark `spec.schedule`); an accepted one yields
/// strictly increasing fire times.
pub fn cron(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(schedule) = rune_core::cron::CronSchedule::parse(text) else { return };
    // 2026-03-29T00:30:00Z: a DST change in Europe, where the interesting bugs live.
    let start = Timestamp::from_micros(1_774_744_200_000_000);
    if let Some(first) = schedule.next_after(start) {
        assert!(first > start, "{text}: next fire {first} is not after {start}");
        if let Some(second) = schedule.next_after(first) {
            assert!(second > first, "{text}: fire times go backwards ({first} then {second})");
        }
    }
}

/// A backup's job-history manifest (`rune db verify --against`, `rune health-check
/// --manifest`).
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = rune_store::backup::Manifest::parse(text);
}
