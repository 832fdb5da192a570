//! The raw command-line flags of `rune sim-llm` ([`SimArgs`]) and their conversion into a
//! validated [`SimConfig`]: every range check happens here, with an error naming the flag.
//! Also reads the `--answers` file (YAML, or JSON by `.json` extension).
//!
//! YAML is parsed with `serde_norway`, the maintained fork of the archived `serde_yaml`.

use crate::config::{FailStatus, Rate, ScriptedAnswer, SimConfig, MAX_OUTPUT_TOKENS};
use crate::error::SimError;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest accepted `--ttft-ms`, `--itl-ms` or `--stall-ms`: one day. Anything longer is a
/// typo, and it keeps deadline arithmetic far from overflow.
const MAX_MS: f64 = 86_400_000.0;

/// Flags of the simulated LLM server. Raw values: convert with `SimConfig::try_from`,
/// which rejects out-of-range values naming the flag; `--help` works regardless.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Interface to listen on; the default keeps the simulator off the network.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (11435: next to Ollama's 11434, so both can run).
    #[arg(long, default_value_t = 11435)]
    pub port: u16,
    /// Time to first token in milliseconds (fractions allowed), measured from when the
    /// request was read.
    #[arg(long, value_name = "MS", default_value_t = 0.0, allow_negative_numbers = true)]
    pub ttft_ms: f64,
    /// Inter-token latency in milliseconds, per streamed chunk.
    #[arg(long, value_name = "MS", default_value_t = 0.0, allow_negative_numbers = true)]
    pub itl_ms: f64,
    /// Completion tokens per answer (a request's max_tokens / num_predict can only lower it).
    #[arg(long, value_name = "N", default_value_t = crate::config::DEFAULT_OUTPUT_TOKENS, allow_negative_numbers = true)]
    pub output_tokens: u32,
    /// Tokens per streamed chunk.
    #[arg(long, value_name = "N", default_value_t = 1, allow_negative_numbers = true)]
    pub tokens_per_chunk: u32,
    /// YAML or JSON list of `{pattern, answer}`: a case-insensitive substring, or a regex
    /// prefixed with `re:`; the first match wins.
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
    /// Share of requests (0..1) answered with --fail-status instead of an answer.
    #[arg(long, value_name = "P", default_value_t = 0.0, allow_negative_numbers = true)]
    pub fail_rate: f64,
    /// Status of injected failures: 500, 429 or 503 (429 and 503 carry Retry-After).
    #[arg(long, value_name = "CODE", default_value_t = 500)]
    pub fail_status: u16,
    /// Share of requests (0..1) whose stream stalls mid-answer for --stall-ms.
    #[arg(long, value_name = "P", default_value_t = 0.0, allow_negative_numbers = true)]
    pub stall_rate: f64,
    /// Length of a stall in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000.0, allow_negative_numbers = true)]
    pub stall_ms: f64,
    /// Share of requests (0..1) with a malformed SSE/NDJSON chunk mid-answer.
    #[arg(long, value_name = "P", default_value_t = 0.0, allow_negative_numbers = true)]
    pub malformed_rate: f64,
    /// Share of requests (0..1) whose connection is closed mid-answer.
    #[arg(long, value_name = "P", default_value_t = 0.0, allow_negative_numbers = true)]
    pub drop_rate: f64,
    /// Seed of the deterministic fault draw: same seed and request order, same faults.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Comma-separated model names served by both APIs.
    #[arg(long, value_name = "A,B", value_delimiter = ',', default_values_t = crate::config::DEFAULT_MODELS.map(String::from))]
    pub models: Vec<String>,
}

impl SimArgs {
    /// `host:port` as given, for binding and messages.
    pub fn listen_addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Binds `--host`/`--port`, with an error naming the address, so `rune sim-llm` can
    /// pass the listener to [`crate::serve`].
    pub async fn bind(&self) -> Result<tokio::net::TcpListener, SimError> {
        let addr = self.listen_addr();
        tokio::net::TcpListener::bind(&addr).await.map_err(|source| SimError::Bind { addr, source })
    }
}

impl TryFrom<SimArgs> for SimConfig {
    type Error = SimError;

    /// Range-checks every flag and reads `--answers`; the first problem is returned.
    fn try_from(args: SimArgs) -> Result<Self, SimError> {
        let ttft = millis("--ttft-ms", args.ttft_ms)?;
        let itl = millis("--itl-ms", args.itl_ms)?;
        let stall = millis("--stall-ms", args.stall_ms)?;
        if args.output_tokens == 0 || args.output_tokens > MAX_OUTPUT_TOKENS {
            return Err(invalid(
                "--output-tokens",
                format!("must be between 1 and {MAX_OUTPUT_TOKENS}, got {}", args.output_tokens),
            ));
        }
        let tokens_per_chunk = NonZeroU32::new(args.tokens_per_chunk)
            .ok_or_else(|| invalid("--tokens-per-chunk", "must be at least 1, got 0".to_string()))?;
        let fail_status = FailStatus::from_code(args.fail_status).ok_or_else(|| {
            invalid("--fail-status", format!("must be {}, got {}", FailStatus::ACCEPTED, args.fail_status))
        })?;
        let models = models(args.models)?;
        let answers = match &args.answers {
            Some(path) => load_answers_file(path)?,
            None => Vec::new(),
        };
        let mut config = SimConfig {
            ttft,
            itl,
            output_tokens: args.output_tokens,
            tokens_per_chunk,
            answers,
            models,
            ..SimConfig::default()
        };
        config.faults.fail_rate = rate("--fail-rate", args.fail_rate)?;
        config.faults.fail_status = fail_status;
        config.faults.stall_rate = rate("--stall-rate", args.stall_rate)?;
        config.faults.stall = stall;
        config.faults.malformed_rate = rate("--malformed-rate", args.malformed_rate)?;
        config.faults.drop_rate = rate("--drop-rate", args.drop_rate)?;
        config.faults.seed = args.seed;
        Ok(config)
    }
}

/// Reads a scripted-answers file: a YAML (or, for `*.json`, JSON) list of
/// `{pattern, answer}` maps. Errors name the file and the 1-based entry.
///
/// ```yaml
/// - pattern: "crashloop"
///   answer: "The pod is in CrashLoopBackOff because its liveness probe fails."
/// - pattern: "re:(?i)^what is unhealthy"
///   answer: "Deployment api has 0/3 ready replicas."
/// ```
pub fn load_answers_file(path: &Path) -> Result<Vec<ScriptedAnswer>, SimError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| SimError::AnswersRead { path: path.to_path_buf(), source })?;
    let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let parse_error = |message: String| SimError::AnswersParse {
        path: path.to_path_buf(),
        message: format!("{message} (expected a list of {{pattern, answer}} entries)"),
    };
    // Two steps, so an entry's error can name the entry: first the list, then each item.
    let items: Vec<serde_json::Value> = if is_json {
        serde_json::from_str(&text).map_err(|e| parse_error(format!("invalid JSON: {e}")))?
    } else {
        serde_norway::from_str(&text).map_err(|e| parse_error(format!("invalid YAML: {e}")))?
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let entry_error =
                |message: String| SimError::AnswersEntry { path: path.to_path_buf(), entry: i + 1, message };
            let raw: RawAnswer = serde_json::from_value(item).map_err(|e| entry_error(e.to_string()))?;
            ScriptedAnswer::new(raw.pattern, raw.answer).map_err(|e| entry_error(e.to_string()))
        })
        .collect()
}

/// One entry of the answers file as written; unknown keys are rejected so a typo such as
/// `answr` is reported instead of silently ignored.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    pattern: String,
    answer: String,
}

fn invalid(flag: &'static str, message: String) -> SimError {
    SimError::InvalidFlag { flag, message }
}

fn millis(flag: &'static str, ms: f64) -> Result<Duration, SimError> {
    if !ms.is_finite() || !(0.0..=MAX_MS).contains(&ms) {
        return Err(invalid(
            flag,
            format!("must be a number of milliseconds between 0 and {MAX_MS} (one day), got {ms}"),
        ));
    }
    Duration::try_from_secs_f64(ms / 1000.0).map_err(|e| invalid(flag, format!("{ms} ms is not a duration: {e}")))
}

fn rate(flag: &'static str, p: f64) -> Result<Rate, SimError> {
    Rate::new(p).ok_or_else(|| invalid(flag, format!("must be a probability between 0 and 1, got {p}")))
}

fn models(names: Vec<String>) -> Result<Vec<String>, SimError> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(invalid("--models", format!("entry {} is empty or contains whitespace: {name:?}", i + 1)));
        }
        if out.contains(&name) {
            return Err(invalid("--models", format!("{name:?} is listed twice")));
        }
        out.push(name);
    }
    if out.is_empty() {
        return Err(invalid("--models", "list at least one model name".to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_rejects_negative_nan_and_huge_values() {
        assert!(millis("--x", -1.0).is_err());
        assert!(millis("--x", f64::NAN).is_err());
        assert!(millis("--x", f64::INFINITY).is_err());
        assert!(millis("--x", MAX_MS + 1.0).is_err());
        assert_eq!(millis("--x", 1.5).unwrap(), Duration::from_micros(1500));
    }

    #[test]
    fn models_rejects_empty_duplicate_and_blank_entries() {
        assert!(models(vec![]).is_err());
        assert!(models(vec!["a".into(), "".into()]).unwrap_err().to_string().contains("entry 2"));
        assert!(models(vec!["a".into(), "a".into()]).unwrap_err().to_string().contains("twice"));
        assert_eq!(models(vec![" a ".into(), "b".into()]).unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn listen_addr_brackets_ipv6() {
        let mut a = SimArgs {
            host: "::1".into(),
            port: 1,
            ttft_ms: 0.0,
            itl_ms: 0.0,
            output_tokens: 1,
            tokens_per_chunk: 1,
            answers: None,
            fail_rate: 0.0,
            fail_status: 500,
            stall_rate: 0.0,
            stall_ms: 0.0,
            malformed_rate: 0.0,
            drop_rate: 0.0,
            seed: 0,
            models: vec!["m".into()],
        };
        assert_eq!(a.listen_addr(), "[::1]:1");
        a.host = "127.0.0.1".into();
        assert_eq!(a.listen_addr(), "127.0.0.1:1");
    }
}
