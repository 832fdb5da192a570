//! What is sent: the prompts (synthetic with an exact token count, or from a JSONL file,
//! optionally with trace timestamps), how many turns a session has, and the dataset hash
//! that goes into the environment fingerprint. Request bodies are rendered here once per
//! prompt (and once per later turn), never per token.

use crate::error::LoadError;
use crate::rng::SplitMix64;
use bytes::Bytes;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;

/// Distinct synthetic prompts generated per run: enough that a prefix cache cannot serve
/// every request from one entry, few enough to build in milliseconds.
pub const SYNTHETIC_POOL: usize = 256;

/// Words synthetic prompts are made of: short common words, one token each in most
/// tokenizers (and exactly one in `rune sim-llm`, which counts words).
pub(crate) const VOCABULARY: &[&str] = &[
    "the", "cluster", "node", "pod", "is", "not", "ready", "because", "a", "service", "fails", "to", "start", "and",
    "logs", "show", "an", "error", "in", "its", "probe", "what", "should", "we", "check", "next", "memory", "disk",
    "network", "latency", "high", "low", "image", "pull", "restart", "count", "deploy", "scale", "up", "down", "of",
    "on", "for", "with", "after", "before", "when", "then", "config", "secret", "volume", "mount", "timeout", "retry",
];

/// A prompt and what it asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// The user text.
    pub text: String,
    /// Completion tokens asked (overrides the run's `output_tokens`).
    pub output_tokens: Option<u64>,
}

/// The prompts of a run and their arrival times when replaying a trace.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Prompts; session `i` uses prompt `i % len`.
    pub prompts: Vec<Prompt>,
    /// Intended start of each prompt when replaying a trace (same length as `prompts`).
    pub timestamps: Option<Vec<Duration>>,
    /// Turns per session.
    pub turns: u32,
    /// SHA-256 of the prompts (and turns), hex: equal hashes, equal datasets.
    pub sha256: String,
}

impl Workload {
    /// `count` synthetic prompts of `words` words each, drawn from `seed`. Each starts
    /// with a distinct word pair so no two prompts share a long prefix.
    pub fn synthetic(words: u64, count: usize, turns: u32, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let prompts = (0..count.max(1))
            .map(|i| {
                let mut text = String::with_capacity(words as usize * 7);
                for w in 0..words {
                    if w > 0 {
                        text.push(' ');
                    }
                    if w == 0 {
                        text.push_str(&format!("q{i}"));
                    } else {
                        text.push_str(VOCABULARY[rng.below(VOCABULARY.len())]);
                    }
                }
                Prompt { text, output_tokens: None }
            })
            .collect();
        Self::new(prompts, None, turns)
    }

    /// Reads a JSONL prompt file: one object per line with `prompt` (string), optional
    /// `output_tokens` and, for trace replay, `timestamp_ms` (milliseconds from the start,
    /// non-decreasing). Blank lines and lines starting with `#` are skipped.
    pub fn from_jsonl(path: &Path, turns: u32, replay: bool) -> Result<Self, LoadError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Line {
            prompt: String,
            #[serde(default)]
            output_tokens: Option<u64>,
            #[serde(default)]
            timestamp_ms: Option<f64>,
        }
        let text =
            std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
        let parse_error = |line: usize, message: String| LoadError::Parse {
            path: path.to_path_buf(),
            message: format!("line {line}: {message}"),
        };
        let mut prompts = Vec::new();
        let mut stamps = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let raw = raw.trim();
            if raw.is_empty() || raw.starts_with('#') {
                continue;
            }
            let line: Line = serde_json::from_str(raw).map_err(|e| {
                parse_error(
                    i + 1,
                    format!("{e} (expected {{\"prompt\": \"...\", \"output_tokens\": 128, \"timestamp_ms\": 0}})"),
                )
            })?;
            if line.prompt.trim().is_empty() {
                return Err(parse_error(i + 1, "`prompt` is empty".into()));
            }
            if line.output_tokens == Some(0) {
                return Err(parse_error(i + 1, "`output_tokens` must be at least 1".into()));
            }
            if replay {
                let Some(ms) = line.timestamp_ms.filter(|t| t.is_finite() && *t >= 0.0) else {
                    return Err(parse_error(
                        i + 1,
                        "trace replay needs a non-negative `timestamp_ms` on every line".into(),
                    ));
                };
                let at = Duration::from_secs_f64(ms / 1000.0);
                if stamps.last().is_some_and(|prev| at < *prev) {
                    return Err(parse_error(i + 1, "`timestamp_ms` goes backwards; sort the trace by time".into()));
                }
                stamps.push(at);
            }
            prompts.push(Prompt { text: line.prompt, output_tokens: line.output_tokens });
        }
        if prompts.is_empty() {
            return Err(LoadError::Parse { path: path.to_path_buf(), message: "holds no prompts".into() });
        }
        Ok(Self::new(prompts, replay.then_some(stamps), turns))
    }

    /// Prompts built elsewhere (e.g. to a local tokenizer's exact length), hashed.
    pub(crate) fn from_prompts(prompts: Vec<Prompt>, turns: u32) -> Self {
        Self::new(prompts, None, turns)
    }

    fn new(prompts: Vec<Prompt>, timestamps: Option<Vec<Duration>>, turns: u32) -> Self {
        let mut h = Sha256::new();
        h.update(format!("turns={turns}\n"));
        for p in &prompts {
            h.update(p.text.as_bytes());
            h.update(format!("\n{:?}\n", p.output_tokens));
        }
        if let Some(ts) = &timestamps {
            for t in ts {
                h.update(t.as_nanos().to_le_bytes());
            }
        }
        Self { prompts, timestamps, turns: turns.max(1), sha256: hex::encode(h.finalize()) }
    }
}

/// Which API shape request bodies take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/chat/completions`.
    OpenAiChat,
    /// `POST /v1/completions`.
    OpenAiCompletions,
    /// `POST /api/chat` (Ollama).
    OllamaChat,
}

impl Api {
    /// The request path.
    pub fn path(self) -> &'static str {
        match self {
            Api::OpenAiChat => "/v1/chat/completions",
            Api::OpenAiCompletions => "/v1/completions",
            Api::OllamaChat => "/api/chat",
        }
    }
}

/// Renders request bodies for one run.
#[derive(Debug, Clone)]
pub struct BodyBuilder {
    /// API shape.
    pub api: Api,
    /// Model name.
    pub model: String,
    /// Completion tokens per request unless the prompt says otherwise.
    pub output_tokens: u64,
    /// Ask for an exact output length (`ignore_eos`, `min_tokens`).
    pub ignore_eos: bool,
}

impl BodyBuilder {
    /// The body of turn `turn` (0-based) of a session on `prompt`. Later turns carry the
    /// history: previous questions and a stand-in answer of the asked length.
    pub fn body(&self, prompt: &Prompt, turn: u32) -> Bytes {
        let max_tokens = prompt.output_tokens.unwrap_or(self.output_tokens);
        let mut messages = Vec::with_capacity(2 * turn as usize + 1);
        for t in 0..=turn {
            if t > 0 {
                let answer = vec!["ok"; max_tokens as usize].join(" ");
                messages.push(serde_json::json!({"role": "assistant", "content": answer}));
            }
            let content = if t == 0 { prompt.text.clone() } else { format!("turn {t}: {}", prompt.text) };
            messages.push(serde_json::json!({"role": "user", "content": content}));
        }
        let body = match self.api {
            Api::OpenAiChat | Api::OpenAiCompletions => {
                let mut b = serde_json::json!({
                    "model": self.model,
                    "max_tokens": max_tokens,
                    "stream": true,
                    "stream_options": {"include_usage": true},
                });
                if self.api == Api::OpenAiChat {
                    b["messages"] = serde_json::Value::Array(messages);
                } else {
                    let text: Vec<String> =
                        messages.iter().filter_map(|m| m["content"].as_str().map(str::to_owned)).collect();
                    b["prompt"] = serde_json::Value::String(text.join("\n"));
                }
                if self.ignore_eos {
                    b["ignore_eos"] = serde_json::Value::Bool(true);
                    b["min_tokens"] = serde_json::json!(max_tokens);
                }
                b
            }
            Api::OllamaChat => serde_json::json!({
                "model": self.model,
                "messages": messages,
                "stream": true,
                "options": {"num_predict": max_tokens},
            }),
        };
        Bytes::from(body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Synthetic prompts have exactly the asked word count, are seeded and distinct.
    #[test]
    fn synthetic_prompts() {
        let a = Workload::synthetic(100, 8, 1, 7);
        assert_eq!(a.prompts.len(), 8);
        assert!(a.prompts.iter().all(|p| p.text.split_whitespace().count() == 100));
        assert_eq!(a.sha256, Workload::synthetic(100, 8, 1, 7).sha256);
        assert_ne!(a.sha256, Workload::synthetic(100, 8, 1, 8).sha256);
        assert_ne!(a.prompts[0], a.prompts[1]);
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    /// JSONL prompts and trace timestamps are read; bad lines are named.
    #[test]
    fn jsonl_and_trace() {
        let f = file("# trace\n{\"prompt\":\"a b\",\"timestamp_ms\":0}\n\n{\"prompt\":\"c\",\"timestamp_ms\":250,\"output_tokens\":4}\n");
        let w = Workload::from_jsonl(f.path(), 1, true).unwrap();
        assert_eq!(w.prompts.len(), 2);
        assert_eq!(w.prompts[1].output_tokens, Some(4));
        assert_eq!(w.timestamps.unwrap(), [Duration::ZERO, Duration::from_millis(250)]);
        for (text, needle) in [
            ("{\"prompt\":\"a\"}\n{\"prompt\":3}\n", "line 2"),
            ("{\"prompt\":\"\"}\n", "is empty"),
            ("{\"prompt\":\"a\",\"extra\":1}\n", "unknown field"),
            ("\n", "holds no prompts"),
            ("{\"prompt\":\"a\",\"timestamp_ms\":5}\n{\"prompt\":\"b\",\"timestamp_ms\":1}\n", "backwards"),
        ] {
            let replay = needle == "backwards";
            let e = Workload::from_jsonl(file(text).path(), 1, replay).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        let e = Workload::from_jsonl(file("{\"prompt\":\"a\"}\n").path(), 1, true).unwrap_err().to_string();
        assert!(e.contains("timestamp_ms"), "{e}");
        assert!(Workload::from_jsonl(Path::new("/nonexistent/p.jsonl"), 1, false).is_err());
    }

    /// Bodies ask for streaming, usage, the exact length; later turns carry the history.
    #[test]
    fn bodies() {
        let b = BodyBuilder { api: Api::OpenAiChat, model: "m".into(), output_tokens: 3, ignore_eos: true };
        let p = Prompt { text: "hi there".into(), output_tokens: None };
        let v: serde_json::Value = serde_json::from_slice(&b.body(&p, 0)).unwrap();
        assert_eq!(v["max_tokens"], 3);
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["ignore_eos"], true);
        assert_eq!(v["messages"].as_array().unwrap().len(), 1);
        let v: serde_json::Value = serde_json::from_slice(&b.body(&p, 2)).unwrap();
        assert_eq!(v["messages"].as_array().unwrap().len(), 5);
        assert_eq!(v["messages"][1]["content"], "ok ok ok");
        let o = BodyBuilder { api: Api::OllamaChat, ..b };
        let v: serde_json::Value = serde_json::from_slice(&o.body(&p, 0)).unwrap();
        assert_eq!(v["options"]["num_predict"], 3);
    }
}
