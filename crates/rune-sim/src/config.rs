//! The validated simulator configuration: timing, token counts, scripted answers, fault
//! rates and the models served. Values that cannot be valid are made unrepresentable
//! here ([`Rate`], [`FailStatus`], `NonZeroU32`); range checks on raw flags live in
//! [`crate::args`]. No I/O and no HTTP here.

use crate::error::SimError;
use axum::http::StatusCode;
use regex::{Regex, RegexBuilder};
use std::num::NonZeroU32;
use std::time::Duration;

/// Models served when none are configured: two names so multi-model clients have a choice.
pub const DEFAULT_MODELS: [&str; 2] = ["sim-llama", "sim-qwen"];

/// Completion tokens per answer unless a request asks for fewer.
pub const DEFAULT_OUTPUT_TOKENS: u32 = 64;

/// Upper bound on `output_tokens`: a non-streaming answer is held in memory, so an
/// absurd count must not become an absurd allocation. Larger values are clamped.
pub const MAX_OUTPUT_TOKENS: u32 = 1_000_000;

/// How long a stall fault holds the stream when nothing else is configured.
pub const DEFAULT_STALL: Duration = Duration::from_secs(2);

/// Context length reported by `/api/show` (`llama.context_length`), so clients that size
/// prompts from it get a plausible number.
pub const CONTEXT_LENGTH: u64 = 8192;

/// The answer given when no scripted pattern matches; it says it is simulated so that no
/// one mistakes a demo for a model's output.
pub const DEFAULT_ANSWER: &str = "This is a simulated answer from rune-sim: no model was run and the text carries no \
     information.";

/// Everything the simulated server does, fixed for its lifetime.
///
/// Build it with struct-update syntax over [`Default`] in tests, or from [`crate::SimArgs`]
/// via `TryFrom` on the command line (which range-checks every flag).
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Time to first token: the first chunk is written this long after the request was read.
    pub ttft: Duration,
    /// Inter-token latency, per chunk: chunk `i` is due at `ttft + i * itl` (absolute
    /// deadlines, so scheduling jitter does not accumulate).
    pub itl: Duration,
    /// Completion tokens per answer (a request's `max_tokens`/`num_predict` can only lower
    /// it); clamped to [`MAX_OUTPUT_TOKENS`].
    pub output_tokens: u32,
    /// Tokens carried by each streamed chunk (the last chunk may carry fewer).
    pub tokens_per_chunk: NonZeroU32,
    /// Prompt pattern → answer; the first match wins, else [`SimConfig::default_answer`].
    pub answers: Vec<ScriptedAnswer>,
    /// The answer when no scripted pattern matches.
    pub default_answer: String,
    /// Injected failures, drawn deterministically from a seed.
    pub faults: Faults,
    /// Model names served by both APIs; any other name gets a 404.
    pub models: Vec<String>,
}

impl Default for SimConfig {
    /// Instant answers of [`DEFAULT_OUTPUT_TOKENS`] one-token chunks, no faults, the
    /// [`DEFAULT_MODELS`]: fast enough for tests of other crates.
    fn default() -> Self {
        SimConfig {
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            output_tokens: DEFAULT_OUTPUT_TOKENS,
            tokens_per_chunk: NonZeroU32::MIN,
            answers: Vec::new(),
            default_answer: DEFAULT_ANSWER.to_string(),
            faults: Faults::default(),
            models: DEFAULT_MODELS.iter().map(|m| m.to_string()).collect(),
        }
    }
}

/// A probability in `0.0..=1.0`; the type exists so that a rate of 1.5 or NaN cannot reach
/// the server.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Rate(f64);

impl Rate {
    /// The fault never happens.
    pub const NEVER: Rate = Rate(0.0);
    /// The fault happens on every request.
    pub const ALWAYS: Rate = Rate(1.0);

    /// `None` unless `p` is finite and within `0.0..=1.0`; the caller names the flag.
    pub fn new(p: f64) -> Option<Rate> {
        (p.is_finite() && (0.0..=1.0).contains(&p)).then_some(Rate(p))
    }

    /// The probability, for drawing and display.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// The HTTP status of an injected failure: the statuses load generators and clients must
/// handle differently (retry with back-off vs. give up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailStatus {
    /// 500, a server error with no retry hint.
    #[default]
    InternalServerError,
    /// 429 with `Retry-After`, as rate-limited hosted APIs answer.
    TooManyRequests,
    /// 503 with `Retry-After`, as overloaded inference servers answer.
    ServiceUnavailable,
}

impl FailStatus {
    /// The statuses accepted by `--fail-status`, for error messages.
    pub const ACCEPTED: &'static str = "500, 429 or 503";

    /// Maps a numeric status from the command line; `None` for any other code.
    pub fn from_code(code: u16) -> Option<FailStatus> {
        match code {
            500 => Some(FailStatus::InternalServerError),
            429 => Some(FailStatus::TooManyRequests),
            503 => Some(FailStatus::ServiceUnavailable),
            _ => None,
        }
    }

    /// The status line to send.
    pub fn status(self) -> StatusCode {
        match self {
            FailStatus::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
            FailStatus::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            FailStatus::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Whether the response carries `Retry-After` (429 and 503 do).
    pub fn retry_after(self) -> bool {
        !matches!(self, FailStatus::InternalServerError)
    }
}

/// Fault injection. Each generation request draws each fault independently from
/// `(seed, request index)`, so a run with the same seed and the same request order
/// injects the same faults. A failed request gets no other fault; stall, malformed chunk
/// and dropped connection happen at the middle chunk of the answer, in that order.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Share of requests answered with [`Faults::fail_status`] instead of an answer.
    pub fail_rate: Rate,
    /// The status of those failures.
    pub fail_status: FailStatus,
    /// Share of requests whose stream pauses for [`Faults::stall`] mid-answer.
    pub stall_rate: Rate,
    /// How long a stall lasts; later chunks keep their spacing after it.
    pub stall: Duration,
    /// Share of requests with one malformed SSE/NDJSON line inserted mid-answer (a
    /// non-streaming answer becomes a truncated JSON body).
    pub malformed_rate: Rate,
    /// Share of requests whose connection is closed mid-answer (before the middle chunk).
    pub drop_rate: Rate,
    /// Seed of the deterministic fault draw.
    pub seed: u64,
}

impl Default for Faults {
    /// No faults; a stall, if enabled later, lasts [`DEFAULT_STALL`].
    fn default() -> Self {
        Faults {
            fail_rate: Rate::NEVER,
            fail_status: FailStatus::default(),
            stall_rate: Rate::NEVER,
            stall: DEFAULT_STALL,
            malformed_rate: Rate::NEVER,
            drop_rate: Rate::NEVER,
            seed: 0,
        }
    }
}

impl Faults {
    /// Whether any fault can happen; lets the hot path skip the draw entirely.
    pub fn any(&self) -> bool {
        [self.fail_rate, self.stall_rate, self.malformed_rate, self.drop_rate].iter().any(|r| r.get() > 0.0)
    }
}

/// One scripted answer: when the prompt matches `pattern`, the simulator answers `answer`
/// (cut or padded to the configured token count).
///
/// A pattern is a case-insensitive substring, or with the prefix `re:` a regular
/// expression (case-sensitive unless it starts with `(?i)`). Chat requests are matched
/// on the last user message, completion/generate requests on the prompt.
#[derive(Debug, Clone)]
pub struct ScriptedAnswer {
    pattern: String,
    regex: Regex,
    answer: String,
}

impl ScriptedAnswer {
    /// Compiles the pattern once, so matching at request time allocates nothing.
    pub fn new(pattern: impl Into<String>, answer: impl Into<String>) -> Result<Self, SimError> {
        let pattern = pattern.into();
        let invalid = |reason: String| SimError::InvalidPattern { pattern: pattern.clone(), reason };
        let regex = match pattern.strip_prefix("re:") {
            Some("") => {
                return Err(invalid(
                    "the regular expression after `re:` is empty; use `re:.*` to match every prompt".into(),
                ))
            }
            Some(re) => Regex::new(re).map_err(|e| invalid(format!("invalid regular expression: {e}")))?,
            None if pattern.trim().is_empty() => {
                return Err(invalid("the pattern is empty; use `re:.*` to match every prompt".into()))
            }
            None => RegexBuilder::new(&regex::escape(&pattern))
                .case_insensitive(true)
                .build()
                .map_err(|e| invalid(format!("cannot compile the substring: {e}")))?,
        };
        Ok(ScriptedAnswer { pattern, regex, answer: answer.into() })
    }

    /// The pattern as written, for logs and error messages.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The answer text before cutting or padding.
    pub fn answer(&self) -> &str {
        &self.answer
    }

    /// Whether `prompt` selects this answer.
    pub fn matches(&self, prompt: &str) -> bool {
        self.regex.is_match(prompt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_rejects_out_of_range_and_nan() {
        assert!(Rate::new(1.5).is_none());
        assert!(Rate::new(-0.1).is_none());
        assert!(Rate::new(f64::NAN).is_none());
        assert_eq!(Rate::new(1.0), Some(Rate::ALWAYS));
        assert_eq!(Rate::new(0.0), Some(Rate::NEVER));
    }

    #[test]
    fn substring_patterns_ignore_case_and_regex_metacharacters() {
        let a = ScriptedAnswer::new("Pod CrashLoop (x)", "a").unwrap();
        assert!(a.matches("why is my pod crashloop (x) failing?"));
        assert!(!a.matches("pod crashloop x"));
    }

    #[test]
    fn regex_patterns_are_case_sensitive_unless_asked() {
        let a = ScriptedAnswer::new("re:^What .* unhealthy", "a").unwrap();
        assert!(a.matches("What is unhealthy here?"));
        assert!(!a.matches("what is unhealthy here?"));
        assert!(ScriptedAnswer::new("re:(?i)^what", "a").unwrap().matches("WHAT"));
    }

    #[test]
    fn empty_and_invalid_patterns_are_errors_naming_the_pattern() {
        for p in ["", "  ", "re:", "re:(unclosed"] {
            let e = ScriptedAnswer::new(p, "a").unwrap_err().to_string();
            assert!(e.contains(&format!("{p:?}")), "{e}");
        }
    }

    #[test]
    fn fail_status_maps_only_supported_codes() {
        assert_eq!(FailStatus::from_code(429), Some(FailStatus::TooManyRequests));
        assert!(FailStatus::from_code(404).is_none());
        assert!(FailStatus::TooManyRequests.retry_after());
        assert!(!FailStatus::InternalServerError.retry_after());
    }
}
