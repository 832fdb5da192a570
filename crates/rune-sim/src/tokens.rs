//! Simulated tokenization. A token is one whitespace-separated word, so counts are exact
//! and predictable by tests: the prompt's count is its word count (at least 1), and an
//! answer is cut or padded (with a fixed filler sequence) to exactly the requested number
//! of words. Answer tables are split and JSON-escaped once at startup so that rendering a
//! chunk only copies bytes. No I/O here.

/// Padding words used once an answer runs out; a recognisable placeholder sequence.
const FILLER: &str = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut \
     labore et dolore magna aliqua";

/// An answer split into tokens, each with the whitespace that precedes it (none for the
/// first), so concatenating tokens reproduces the text's own spacing and line breaks.
/// Tokens are stored JSON-escaped without quotes: every body is written by hand from them.
#[derive(Debug)]
pub(crate) struct TokenTable {
    json: Box<[Box<str>]>,
}

impl TokenTable {
    pub(crate) fn new(text: &str) -> TokenTable {
        let mut json: Vec<Box<str>> = Vec::new();
        let text = text.trim_start();
        let mut start = 0;
        let mut in_word = false;
        for (i, c) in text.char_indices() {
            if c.is_whitespace() {
                if in_word {
                    json.push(escape(&text[start..i]).into());
                    start = i;
                    in_word = false;
                }
            } else {
                in_word = true;
            }
        }
        if in_word {
            json.push(escape(&text[start..]).into());
        }
        TokenTable { json: json.into() }
    }

    /// The filler words, stored without whitespace: [`Script`] adds the separating space.
    pub(crate) fn filler() -> TokenTable {
        TokenTable { json: FILLER.split_whitespace().map(|w| escape(w).into()).collect() }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.json.len()
    }
}

/// The `i`-th completion token of one request: the answer's tokens, then filler words.
pub(crate) struct Script<'a> {
    pub(crate) answer: &'a TokenTable,
    /// Never empty: built from [`FILLER`] by the server.
    pub(crate) filler: &'a TokenTable,
}

impl Script<'_> {
    /// Appends token `i`, JSON-escaped, to a body being written.
    pub(crate) fn write_json(&self, i: usize, out: &mut Vec<u8>) {
        match self.answer.json.get(i) {
            Some(t) => out.extend_from_slice(t.as_bytes()),
            None => {
                if i > 0 {
                    out.push(b' ');
                }
                let f = &self.filler.json;
                if let Some(t) = f.get((i - self.answer.json.len()) % f.len().max(1)) {
                    out.extend_from_slice(t.as_bytes());
                }
            }
        }
    }

    /// The first `n` tokens as text, decoded back from JSON (tests only).
    #[cfg(test)]
    pub(crate) fn text(&self, n: usize) -> String {
        let mut s = b"\"".to_vec();
        for i in 0..n {
            self.write_json(i, &mut s);
        }
        s.push(b'"');
        serde_json::from_slice(&s).unwrap()
    }
}

/// JSON string contents (no quotes) for `s`.
pub(crate) fn escape(s: &str) -> String {
    let quoted = serde_json::Value::from(s).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

/// Words in one piece of prompt text; the caller sums over pieces and applies the minimum
/// of one token.
pub(crate) fn count_words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_their_leading_whitespace_and_reassemble_the_text() {
        let t = TokenTable::new("  Hello,\n\n\"world\"  x ");
        assert_eq!(t.len(), 3);
        let filler = TokenTable::filler();
        let s = Script { answer: &t, filler: &filler };
        assert_eq!(s.text(3), "Hello,\n\n\"world\"  x");
        let mut json = Vec::new();
        s.write_json(1, &mut json);
        assert_eq!(String::from_utf8(json).unwrap(), "\\n\\n\\\"world\\\"");
    }

    #[test]
    fn answers_are_cut_or_padded_to_exactly_n_words() {
        let t = TokenTable::new("one two three");
        let filler = TokenTable::filler();
        let s = Script { answer: &t, filler: &filler };
        assert_eq!(s.text(2), "one two");
        assert_eq!(s.text(5), "one two three lorem ipsum");
        let long = s.text(100);
        assert_eq!(long.split_whitespace().count(), 100);
    }

    #[test]
    fn an_empty_answer_is_all_filler_without_leading_space() {
        let t = TokenTable::new("   ");
        let filler = TokenTable::filler();
        let s = Script { answer: &t, filler: &filler };
        assert_eq!(s.text(2), "lorem ipsum");
        let mut json = Vec::new();
        s.write_json(0, &mut json);
        s.write_json(1, &mut json);
        assert_eq!(json, b"lorem ipsum");
    }

    #[test]
    fn prompt_words_are_counted_by_whitespace() {
        assert_eq!(count_words(" a  b\nc\t"), 3);
        assert_eq!(count_words(""), 0);
    }
}
