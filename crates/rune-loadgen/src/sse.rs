//! Streaming response parsing on byte slices: OpenAI server-sent events (`data: {...}`
//! lines, `data: [DONE]`) and Ollama NDJSON. The parser decides, per event, whether it
//! carried output (a non-empty `content`/`text`/`response` string), whether it is the
//! usage/final event, or whether it is broken, without allocating or decoding JSON: the
//! only JSON decoded is the one usage/final object per request.
//!
//! A line split across two network reads is kept in one reused carry buffer; nothing else
//! is copied.

/// Stream framing of the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// OpenAI-compatible SSE.
    Sse,
    /// Ollama newline-delimited JSON.
    Ndjson,
}

/// Token counts reported by the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

/// One meaningful event found in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An event that carried output text.
    Content,
    /// The server's token counts (OpenAI usage chunk, Ollama final object).
    Usage(Usage),
    /// The end marker (`[DONE]`, or Ollama's `"done":true`).
    Done,
    /// A line that is not a complete JSON object.
    Malformed,
    /// An in-stream error object.
    ServerError,
}

/// Incremental parser; one per worker, reset per request.
#[derive(Debug)]
pub struct StreamParser {
    framing: Framing,
    /// The unfinished tail of the previous read (reused; grows to the longest line).
    carry: Vec<u8>,
}

impl StreamParser {
    /// A parser for `framing`.
    pub fn new(framing: Framing) -> Self {
        Self { framing, carry: Vec::with_capacity(1024) }
    }

    /// Forgets any partial line (a new request starts).
    pub fn reset(&mut self) {
        self.carry.clear();
    }

    /// Feeds bytes as they arrive; calls `on_event` for each complete event.
    pub fn feed(&mut self, mut bytes: &[u8], mut on_event: impl FnMut(Event)) {
        if !self.carry.is_empty() {
            match memchr_newline(bytes) {
                None => {
                    self.carry.extend_from_slice(bytes);
                    return;
                }
                Some(i) => {
                    self.carry.extend_from_slice(&bytes[..=i]);
                    bytes = &bytes[i + 1..];
                    let line = std::mem::take(&mut self.carry);
                    self.line(&line, &mut on_event);
                    self.carry = line;
                    self.carry.clear();
                }
            }
        }
        while let Some(i) = memchr_newline(bytes) {
            self.line(&bytes[..i], &mut on_event);
            bytes = &bytes[i + 1..];
        }
        self.carry.extend_from_slice(bytes);
    }

    /// Whether an unfinished line is pending (a stream that ends here was cut).
    pub fn has_partial(&self) -> bool {
        !trim(&self.carry).is_empty()
    }

    fn line(&self, line: &[u8], on_event: &mut impl FnMut(Event)) {
        let line = trim(line);
        if line.is_empty() {
            return;
        }
        let payload = match self.framing {
            Framing::Sse => match line.strip_prefix(b"data:") {
                Some(p) => trim(p),
                // Comments (`: keep-alive`), `event:`, `id:` and `retry:` lines carry no data.
                None => return,
            },
            Framing::Ndjson => line,
        };
        if payload == b"[DONE]" {
            on_event(Event::Done);
            return;
        }
        if payload.first() != Some(&b'{') || payload.last() != Some(&b'}') {
            on_event(Event::Malformed);
            return;
        }
        if payload.starts_with(b"{\"error\"") {
            on_event(Event::ServerError);
            return;
        }
        if has_text(payload) {
            on_event(Event::Content);
        }
        match self.framing {
            Framing::Sse => {
                if find(payload, b"\"usage\":{").is_some() {
                    if let Some(u) = decode_usage(payload) {
                        on_event(Event::Usage(u));
                    }
                }
            }
            Framing::Ndjson => {
                if find(payload, b"\"done\":true").is_some() {
                    if let Some(u) = decode_usage(payload) {
                        on_event(Event::Usage(u));
                    }
                    on_event(Event::Done);
                }
            }
        }
    }
}

/// Whether an event carries a non-empty output string.
fn has_text(payload: &[u8]) -> bool {
    [&b"\"content\":\""[..], b"\"text\":\"", b"\"response\":\""].iter().any(|key| {
        let mut rest = payload;
        while let Some(at) = find(rest, key) {
            let after = &rest[at + key.len()..];
            if after.first().is_some_and(|b| *b != b'"') {
                return true;
            }
            rest = after;
        }
        false
    })
}

/// Decodes the usage of an OpenAI usage chunk or an Ollama final object (once per request).
fn decode_usage(payload: &[u8]) -> Option<Usage> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        return Some(Usage {
            prompt_tokens: u.get("prompt_tokens")?.as_u64()?,
            completion_tokens: u.get("completion_tokens")?.as_u64()?,
        });
    }
    Some(Usage {
        prompt_tokens: v.get("prompt_eval_count").and_then(|x| x.as_u64()).unwrap_or(0),
        completion_tokens: v.get("eval_count")?.as_u64()?,
    })
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|c| *c == b'\n')
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(framing: Framing, pieces: &[&[u8]]) -> Vec<Event> {
        let mut p = StreamParser::new(framing);
        let mut out = Vec::new();
        for piece in pieces {
            p.feed(piece, |e| out.push(e));
        }
        out
    }

    const CHAT: &[u8] = b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n\
data: [DONE]\n\n";

    /// A role-only first chunk is not output; content, usage and [DONE] are found.
    #[test]
    fn openai_chat_stream() {
        let u = Usage { prompt_tokens: 5, completion_tokens: 2 };
        let want = vec![Event::Content, Event::Content, Event::Usage(u), Event::Done];
        assert_eq!(events(Framing::Sse, &[CHAT]), want);
        // Split at every byte boundary: same events.
        for cut in 1..CHAT.len() {
            assert_eq!(events(Framing::Sse, &[&CHAT[..cut], &CHAT[cut..]]), want, "cut at {cut}");
        }
    }

    /// Completions (`text`), CRLF endings, comments and empty strings.
    #[test]
    fn completions_and_comments() {
        let s = b": keep-alive\r\n\r\ndata: {\"choices\":[{\"text\":\"\"}]}\r\n\r\ndata: {\"choices\":[{\"text\":\"a\"}]}\r\n\r\n";
        assert_eq!(events(Framing::Sse, &[s]), [Event::Content]);
    }

    /// Broken lines and in-stream errors are reported, never panicked on.
    #[test]
    fn malformed_and_errors() {
        let s = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\n\ndata: {\"error\":{\"message\":\"x\"}}\n\ndata: nope\n\n";
        assert_eq!(events(Framing::Sse, &[s]), [Event::Malformed, Event::ServerError, Event::Malformed]);
        let mut p = StreamParser::new(Framing::Sse);
        p.feed(b"data: {\"choices\"", |_| {});
        assert!(p.has_partial());
        p.reset();
        assert!(!p.has_partial());
    }

    /// Ollama NDJSON: content lines, and the final object carrying counts and done.
    #[test]
    fn ollama_ndjson() {
        let s = b"{\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n\
{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"prompt_eval_count\":3,\"eval_count\":9}\n";
        let u = Usage { prompt_tokens: 3, completion_tokens: 9 };
        assert_eq!(events(Framing::Ndjson, &[s]), [Event::Content, Event::Usage(u), Event::Done]);
        let g = b"{\"response\":\"x\",\"done\":false}\n{\"response\":\"\",\"done\":false}\n";
        assert_eq!(events(Framing::Ndjson, &[g]), [Event::Content]);
    }

    /// Escaped quotes inside content still count as content.
    #[test]
    fn escaped_content() {
        let s = b"data: {\"choices\":[{\"delta\":{\"content\":\"\\\"q\\\"\"}}]}\n\n";
        assert_eq!(events(Framing::Sse, &[s]), [Event::Content]);
    }
}
