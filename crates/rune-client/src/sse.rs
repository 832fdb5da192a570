//! A Server-Sent Events parser for the run trace stream.
//!
//! Parses the `text/event-stream` format (fields `event`, `data`, `id`, comments, CR/LF
//! line endings, multi-line `data`) incrementally from arbitrary chunk boundaries.

use crate::ClientError;
use futures_util::{Stream, StreamExt};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// `event:` (defaults to `message`).
    pub event: String,
    /// `data:` lines joined by `\n`.
    pub data: String,
    /// `id:` of this event, if given.
    pub id: Option<String>,
}

/// Incremental parser: feed bytes, collect complete events.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
    id: Option<String>,
}

/// Longest line accepted; a longer one means the stream is not SSE.
pub const MAX_LINE: usize = 1 << 20;

impl SseParser {
    /// Feeds a chunk; returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, String> {
        self.buffer.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self.buffer.iter().position(|b| *b == b'\n' || *b == b'\r') {
            // A CR followed by LF is one line ending; wait for more bytes if CR ends the buffer.
            let skip = if self.buffer[pos] == b'\r' {
                match self.buffer.get(pos + 1) {
                    Some(b'\n') => 2,
                    Some(_) => 1,
                    None => break,
                }
            } else {
                1
            };
            let line: Vec<u8> = self.buffer.drain(..pos + skip).take(pos).collect();
            let line = String::from_utf8(line).map_err(|_| "event stream line is not UTF-8".to_owned())?;
            if let Some(ev) = self.line(&line) {
                out.push(ev);
            }
        }
        if self.buffer.len() > MAX_LINE {
            return Err(format!("event stream line longer than {MAX_LINE} bytes"));
        }
        Ok(out)
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            if self.data.is_empty() && self.event.is_none() {
                return None;
            }
            let ev = SseEvent {
                event: self.event.take().unwrap_or_else(|| "message".into()),
                data: std::mem::take(&mut self.data).join("\n"),
                id: self.id.take(),
            };
            return Some(ev);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => self.data.push(value.to_owned()),
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

/// Turns a byte stream into a stream of events, ending after an `end` event.
pub fn events<S, B, E>(bytes: S, url: String) -> impl Stream<Item = Result<SseEvent, ClientError>>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    futures_util::stream::unfold(
        (bytes, SseParser::default(), std::collections::VecDeque::new(), false, url),
        |(mut bytes, mut parser, mut queue, mut ended, url)| async move {
            loop {
                if let Some(ev) = queue.pop_front() {
                    let ev: SseEvent = ev;
                    if ev.event == "end" {
                        ended = true;
                        queue.clear();
                    }
                    return Some((Ok(ev), (bytes, parser, queue, ended, url)));
                }
                if ended {
                    return None;
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => match parser.feed(chunk.as_ref()) {
                        Ok(evs) => queue.extend(evs),
                        Err(reason) => {
                            return Some((
                                Err(ClientError::Decode { url: url.clone(), reason }),
                                (bytes, parser, queue, true, url),
                            ))
                        }
                    },
                    Some(Err(e)) => {
                        let err = ClientError::Transport { url: url.clone(), reason: e.to_string() };
                        return Some((Err(err), (bytes, parser, queue, true, url)));
                    }
                    None => return None,
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events split at every possible byte boundary parse identically.
    #[test]
    fn any_chunking() {
        let text =
            b"event: log\r\nid: 7\r\ndata: {\"a\":1}\r\n\r\n: keep-alive\n\nevent: end\ndata: one\ndata: two\n\n";
        let whole = SseParser::default().feed(text).unwrap();
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0], SseEvent { event: "log".into(), data: "{\"a\":1}".into(), id: Some("7".into()) });
        assert_eq!(whole[1].data, "one\ntwo");
        for split in 0..text.len() {
            let mut p = SseParser::default();
            let mut got = p.feed(&text[..split]).unwrap();
            got.extend(p.feed(&text[split..]).unwrap());
            assert_eq!(got, whole, "split at {split}");
        }
    }

    /// Malformed input is an error, not a panic: invalid UTF-8 and endless lines.
    #[test]
    fn malformed() {
        assert!(SseParser::default().feed(b"data: \xff\xfe\n\n").is_err());
        let mut p = SseParser::default();
        assert!(p.feed(&vec![b'x'; MAX_LINE + 1]).is_err());
        // Fields without a colon and unknown fields are ignored, as the spec says.
        let evs = SseParser::default().feed(b"data\nretry: 5\nfoo: bar\n\n").unwrap();
        assert_eq!(evs, vec![SseEvent { event: "message".into(), data: String::new(), id: None }]);
    }
}
