//! Splits a byte stream into bounded lines (for NDJSON and SSE), independent of how the
//! network chunked it.
//!
//! Pure and allocation-light: one growing buffer, reused; no I/O.

/// A line was longer than allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineTooLong {
    /// Bytes seen without a newline.
    pub(crate) len: usize,
}

/// Accumulates bytes and hands out complete lines (without `\n` or a trailing `\r`).
#[derive(Debug)]
pub(crate) struct LineBuffer {
    buf: Vec<u8>,
    /// Start of the unread part of `buf`.
    start: usize,
    /// Bytes from `start` already known to contain no newline.
    scanned: usize,
    max: usize,
}

impl LineBuffer {
    /// A buffer that rejects lines longer than `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        LineBuffer { buf: Vec::with_capacity(8 * 1024), start: 0, scanned: 0, max }
    }

    /// Appends bytes from the network.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > self.buf.capacity() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line, lossily decoded as UTF-8; `Ok(None)` when more bytes are needed.
    pub(crate) fn next_line(&mut self) -> Result<Option<String>, LineTooLong> {
        let unread = &self.buf[self.start..];
        match unread[self.scanned..].iter().position(|&b| b == b'\n') {
            Some(pos) => {
                let end = self.scanned + pos;
                if end > self.max {
                    return Err(LineTooLong { len: end });
                }
                let line = decode(&unread[..end]);
                self.start += end + 1;
                self.scanned = 0;
                Ok(Some(line))
            }
            None => {
                self.scanned = unread.len();
                if unread.len() > self.max {
                    Err(LineTooLong { len: unread.len() })
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// At end of stream: whatever is left as a final line without a newline, if non-blank.
    pub(crate) fn finish(&mut self) -> Option<String> {
        let rest = &self.buf[self.start..];
        self.start = self.buf.len();
        self.scanned = 0;
        let line = decode(rest);
        if line.trim().is_empty() {
            None
        } else {
            Some(line)
        }
    }
}

fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(b: &mut LineBuffer) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(l) = b.next_line().unwrap() {
            out.push(l);
        }
        out
    }

    /// Lines split across network chunks are reassembled; CRLF is accepted.
    #[test]
    fn reassembles_lines() {
        let mut b = LineBuffer::new(100);
        b.push(b"{\"a\":");
        assert!(drain(&mut b).is_empty());
        b.push(b"1}\r\n{\"b\"");
        assert_eq!(drain(&mut b), vec!["{\"a\":1}"]);
        b.push(b":2}\n\n");
        assert_eq!(drain(&mut b), vec!["{\"b\":2}", ""]);
        b.push(b"tail");
        assert!(drain(&mut b).is_empty());
        assert_eq!(b.finish().as_deref(), Some("tail"));
        assert_eq!(b.finish(), None);
    }

    /// A line over the bound is rejected whether or not its newline has arrived.
    #[test]
    fn rejects_long_lines() {
        let mut b = LineBuffer::new(4);
        b.push(b"12345");
        assert_eq!(b.next_line(), Err(LineTooLong { len: 5 }));
        let mut b = LineBuffer::new(4);
        b.push(b"123456\n");
        assert_eq!(b.next_line(), Err(LineTooLong { len: 6 }));
        let mut b = LineBuffer::new(4);
        b.push(b"1234\n");
        assert_eq!(b.next_line().unwrap().as_deref(), Some("1234"));
    }

    /// Many small lines through one buffer keep memory bounded (the buffer compacts).
    #[test]
    fn compacts() {
        let mut b = LineBuffer::new(64);
        for i in 0..10_000 {
            b.push(format!("line {i}\n").as_bytes());
            assert_eq!(b.next_line().unwrap(), Some(format!("line {i}")));
        }
        assert!(b.buf.capacity() < 64 * 1024);
    }
}
