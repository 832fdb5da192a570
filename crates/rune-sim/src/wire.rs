//! Wire formats of the generation endpoints, written by hand into byte buffers: OpenAI
//! `chat.completion(.chunk)` and `text_completion` (SSE `data:` lines ending with
//! `data: [DONE]`), and Ollama `/api/chat` / `/api/generate` (NDJSON). The per-request
//! part of each chunk (id, model, timestamps) is rendered once into a prefix, so a chunk
//! costs one buffer and a few copies. Tests parse every byte with serde_json, so a
//! formatting slip cannot go unnoticed. No I/O or timing here.

use crate::tokens::Script;
use std::io::Write as _;
use std::ops::Range;

/// Which API's format a request is answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `POST /v1/chat/completions`.
    OpenAiChat,
    /// `POST /v1/completions`.
    OpenAiCompletion,
    /// `POST /api/chat`.
    OllamaChat,
    /// `POST /api/generate`.
    OllamaGenerate,
}

impl Api {
    /// Whether errors and bodies follow Ollama's conventions.
    pub(crate) fn is_ollama(self) -> bool {
        matches!(self, Api::OllamaChat | Api::OllamaGenerate)
    }

    /// The `Content-Type` of a streamed answer.
    pub(crate) fn stream_content_type(self) -> &'static str {
        if self.is_ollama() {
            "application/x-ndjson"
        } else {
            "text/event-stream"
        }
    }
}

/// Ollama's timing fields of a final object, in nanoseconds.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Durations {
    pub(crate) total: u64,
    pub(crate) load: u64,
    pub(crate) prompt_eval: u64,
    pub(crate) eval: u64,
}

/// Everything the wire needs to know about one answer.
pub(crate) struct Wire {
    api: Api,
    stream: bool,
    /// The start of every object up to and including the comma after the shared fields;
    /// for OpenAI streams also the `data: ` prefix.
    prefix: Vec<u8>,
    include_usage: bool,
    prompt_tokens: u64,
    completion_tokens: u64,
    /// `stop`, or `length` when the request's token limit cut the answer.
    finish: &'static str,
}

/// What identifies one answer on the wire.
pub(crate) struct WireSpec<'a> {
    pub(crate) api: Api,
    pub(crate) stream: bool,
    /// The request counter, for OpenAI ids.
    pub(crate) id: u64,
    /// The model name as a JSON string, quotes included.
    pub(crate) model_json: &'a str,
    /// Unix seconds (OpenAI `created`).
    pub(crate) created: i64,
    /// RFC 3339 (Ollama `created_at`).
    pub(crate) created_at: &'a str,
    pub(crate) include_usage: bool,
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
    pub(crate) truncated: bool,
}

/// Marks every OpenAI object as coming from the simulator.
const FINGERPRINT: &str = "rune-sim-simulated";

impl Wire {
    pub(crate) fn new(s: &WireSpec<'_>) -> Wire {
        let mut prefix = Vec::with_capacity(160);
        let (kind, id_prefix) = match (s.api, s.stream) {
            (Api::OpenAiChat, true) => ("chat.completion.chunk", "chatcmpl"),
            (Api::OpenAiChat, false) => ("chat.completion", "chatcmpl"),
            (Api::OpenAiCompletion, _) => ("text_completion", "cmpl"),
            (Api::OllamaChat | Api::OllamaGenerate, _) => ("", ""),
        };
        if s.api.is_ollama() {
            let _ = write!(prefix, r#"{{"model":{},"created_at":"{}","#, s.model_json, s.created_at);
        } else {
            if s.stream {
                prefix.extend_from_slice(b"data: ");
            }
            let _ = write!(
                prefix,
                r#"{{"id":"{id_prefix}-sim-{}","object":"{kind}","created":{},"model":{},"system_fingerprint":"{FINGERPRINT}","#,
                s.id, s.created, s.model_json
            );
        }
        Wire {
            api: s.api,
            stream: s.stream,
            prefix,
            include_usage: s.include_usage,
            prompt_tokens: s.prompt_tokens,
            completion_tokens: s.completion_tokens,
            finish: if s.truncated { "length" } else { "stop" },
        }
    }

    /// A buffer sized for `chunks` chunks of `tokens_per_chunk` tokens.
    pub(crate) fn buffer(&self, chunks: usize, tokens_per_chunk: usize) -> Vec<u8> {
        Vec::with_capacity((self.prefix.len() + 96 + tokens_per_chunk * 12) * chunks.max(1) + 256)
    }

    /// One streamed chunk carrying `tokens`; the first OpenAI chat chunk also carries the
    /// assistant role, as OpenAI's first delta does.
    pub(crate) fn chunk(&self, script: &Script<'_>, tokens: Range<usize>, first: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.prefix);
        match self.api {
            Api::OpenAiChat => {
                out.extend_from_slice(if first {
                    br#""choices":[{"index":0,"delta":{"role":"assistant","content":""#
                } else {
                    br#""choices":[{"index":0,"delta":{"content":""#
                });
                write_tokens(script, tokens, out);
                out.extend_from_slice(br#""},"logprobs":null,"finish_reason":null}]"#);
                self.usage_null(out);
                out.extend_from_slice(b"}\n\n");
            }
            Api::OpenAiCompletion => {
                out.extend_from_slice(br#""choices":[{"text":""#);
                write_tokens(script, tokens, out);
                out.extend_from_slice(br#"","index":0,"logprobs":null,"finish_reason":null}]"#);
                self.usage_null(out);
                out.extend_from_slice(b"}\n\n");
            }
            Api::OllamaChat => {
                out.extend_from_slice(br#""message":{"role":"assistant","content":""#);
                write_tokens(script, tokens, out);
                out.extend_from_slice(b"\"},\"done\":false}\n");
            }
            Api::OllamaGenerate => {
                out.extend_from_slice(br#""response":""#);
                write_tokens(script, tokens, out);
                out.extend_from_slice(b"\",\"done\":false}\n");
            }
        }
    }

    /// What follows the last content chunk: OpenAI's `finish_reason` chunk, the usage
    /// chunk when asked for, and `[DONE]`; Ollama's `done:true` object with its counts.
    pub(crate) fn finish(&self, d: &Durations, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.prefix);
        match self.api {
            Api::OpenAiChat | Api::OpenAiCompletion => {
                let _ = if self.api == Api::OpenAiChat {
                    write!(
                        out,
                        r#""choices":[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"{}"}}]"#,
                        self.finish
                    )
                } else {
                    write!(
                        out,
                        r#""choices":[{{"text":"","index":0,"logprobs":null,"finish_reason":"{}"}}]"#,
                        self.finish
                    )
                };
                self.usage_null(out);
                out.extend_from_slice(b"}\n\n");
                if self.include_usage {
                    out.extend_from_slice(&self.prefix);
                    out.extend_from_slice(br#""choices":[],"#);
                    self.usage(out);
                    out.extend_from_slice(b"}\n\n");
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
            }
            Api::OllamaChat | Api::OllamaGenerate => {
                out.extend_from_slice(if self.api == Api::OllamaChat {
                    br#""message":{"role":"assistant","content":""},"#
                } else {
                    br#""response":"","#
                });
                self.ollama_done(d, out);
                out.push(b'\n');
            }
        }
    }

    /// A line that is not valid JSON: an object cut off inside a string, as a proxy that
    /// truncates or interleaves writes would produce.
    pub(crate) fn malformed(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(if self.api.is_ollama() {
            b"\"message\":{\"role\":\"assistant\",\"content\":\"\n"
        } else {
            b"\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\n\n"
        });
    }

    /// The whole non-streaming answer with its first `n` tokens.
    pub(crate) fn full_body(&self, script: &Script<'_>, n: usize, d: &Durations) -> Vec<u8> {
        debug_assert!(!self.stream);
        let mut out = Vec::with_capacity(self.prefix.len() + 256 + n * 12);
        out.extend_from_slice(&self.prefix);
        let all = 0..n;
        match self.api {
            Api::OpenAiChat => {
                out.extend_from_slice(br#""choices":[{"index":0,"message":{"role":"assistant","content":""#);
                write_tokens(script, all, &mut out);
                let _ = write!(out, r#""}},"logprobs":null,"finish_reason":"{}"}}],"#, self.finish);
                self.usage(&mut out);
                out.push(b'}');
            }
            Api::OpenAiCompletion => {
                out.extend_from_slice(br#""choices":[{"text":""#);
                write_tokens(script, all, &mut out);
                let _ = write!(out, r#"","index":0,"logprobs":null,"finish_reason":"{}"}}],"#, self.finish);
                self.usage(&mut out);
                out.push(b'}');
            }
            Api::OllamaChat => {
                out.extend_from_slice(br#""message":{"role":"assistant","content":""#);
                write_tokens(script, all, &mut out);
                out.extend_from_slice(b"\"},");
                self.ollama_done(d, &mut out);
            }
            Api::OllamaGenerate => {
                out.extend_from_slice(br#""response":""#);
                write_tokens(script, all, &mut out);
                out.extend_from_slice(b"\",");
                self.ollama_done(d, &mut out);
            }
        }
        out
    }

    /// A non-streaming body cut off mid-object (the malformed fault without streaming).
    pub(crate) fn truncated_body(&self) -> Vec<u8> {
        let mut out = self.prefix.clone();
        out.extend_from_slice(br#""choices":[{"index":0,"#);
        out
    }

    fn usage_null(&self, out: &mut Vec<u8>) {
        if self.include_usage {
            out.extend_from_slice(br#","usage":null"#);
        }
    }

    fn usage(&self, out: &mut Vec<u8>) {
        let (p, c) = (self.prompt_tokens, self.completion_tokens);
        let _ = write!(out, r#""usage":{{"prompt_tokens":{p},"completion_tokens":{c},"total_tokens":{}}}"#, p + c);
    }

    fn ollama_done(&self, d: &Durations, out: &mut Vec<u8>) {
        let _ = write!(
            out,
            r#""done_reason":"{}","done":true,"total_duration":{},"load_duration":{},"prompt_eval_count":{},"prompt_eval_duration":{},"eval_count":{},"eval_duration":{}}}"#,
            self.finish, d.total, d.load, self.prompt_tokens, d.prompt_eval, self.completion_tokens, d.eval
        );
    }
}

fn write_tokens(script: &Script<'_>, tokens: Range<usize>, out: &mut Vec<u8>) {
    for i in tokens {
        script.write_json(i, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::TokenTable;
    use serde_json::Value;

    fn wire(api: Api, stream: bool, include_usage: bool) -> Wire {
        Wire::new(&WireSpec {
            api,
            stream,
            id: 7,
            model_json: "\"m\\\"x\"",
            created: 1,
            created_at: "1970-01-01T00:00:00.000Z",
            include_usage,
            prompt_tokens: 3,
            completion_tokens: 2,
            truncated: true,
        })
    }

    fn sse_objects(bytes: &[u8]) -> Vec<Value> {
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(text.ends_with("data: [DONE]\n\n"));
        text.split("\n\n")
            .filter(|e| !e.is_empty() && *e != "data: [DONE]")
            .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn every_openai_stream_line_is_valid_json() {
        let answer = TokenTable::new("a \"quoted\"\nword");
        let filler = TokenTable::filler();
        let script = Script { answer: &answer, filler: &filler };
        for api in [Api::OpenAiChat, Api::OpenAiCompletion] {
            let w = wire(api, true, true);
            let mut out = Vec::new();
            w.chunk(&script, 0..1, true, &mut out);
            w.chunk(&script, 1..2, false, &mut out);
            w.finish(&Durations::default(), &mut out);
            let objs = sse_objects(&out);
            assert_eq!(objs.len(), 4, "{api:?}");
            assert_eq!(objs[0]["model"], "m\"x");
            assert_eq!(objs[2]["choices"][0]["finish_reason"], "length");
            assert_eq!(objs[3]["usage"]["total_tokens"], 5);
            assert_eq!(objs[3]["choices"].as_array().unwrap().len(), 0);
        }
    }

    #[test]
    fn every_ollama_line_is_valid_json() {
        let answer = TokenTable::new("x y");
        let filler = TokenTable::filler();
        let script = Script { answer: &answer, filler: &filler };
        for api in [Api::OllamaChat, Api::OllamaGenerate] {
            let w = wire(api, true, false);
            let mut out = Vec::new();
            w.chunk(&script, 0..2, true, &mut out);
            w.finish(&Durations { total: 9, load: 1, prompt_eval: 2, eval: 3 }, &mut out);
            let lines: Vec<Value> =
                std::str::from_utf8(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            assert_eq!(lines.len(), 2);
            assert_eq!(lines[1]["done"], true);
            assert_eq!(lines[1]["eval_count"], 2);
            assert_eq!(lines[1]["total_duration"], 9);
            let full: Value =
                serde_json::from_slice(&wire(api, false, false).full_body(&script, 3, &Durations::default())).unwrap();
            assert_eq!(full["done_reason"], "length");
        }
    }

    #[test]
    fn malformed_and_truncated_output_is_not_json() {
        for api in [Api::OpenAiChat, Api::OllamaChat] {
            let w = wire(api, true, false);
            let mut out = Vec::new();
            w.malformed(&mut out);
            let line = std::str::from_utf8(&out).unwrap().trim_end();
            assert!(serde_json::from_str::<Value>(line.trim_start_matches("data: ")).is_err());
            assert!(serde_json::from_slice::<Value>(&wire(api, false, false).truncated_body()).is_err());
        }
    }
}
