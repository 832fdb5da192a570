//! Exact prompt lengths from a local Hugging Face `tokenizer.json`.
//!
//! Without a tokenizer, prompt lengths are matched to the backend's own count (a probe
//! request). With one (`--tokenizer PATH`), every synthetic prompt is built so the
//! tokenizer counts exactly the requested number of tokens in its text, offline and
//! before the run starts, the way peers that take a tokenizer do. The count is of the
//! user text only: a server's `prompt_tokens` adds its chat template's tokens on top.

use crate::error::LoadError;
use crate::rng::SplitMix64;
use crate::workload::{Prompt, Workload, VOCABULARY};
use std::path::Path;

/// A tokenizer loaded from `tokenizer.json`, counting tokens without special tokens.
pub struct LocalTokenizer {
    inner: tokenizers::Tokenizer,
    path: String,
}

impl std::fmt::Debug for LocalTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTokenizer").field("path", &self.path).finish()
    }
}

/// Correction rounds per prompt before it is padded token by token.
const MAX_ROUNDS: usize = 24;

impl LocalTokenizer {
    /// Loads `path` (a Hugging Face `tokenizer.json`; a directory holding one is accepted).
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let file = if path.is_dir() { path.join("tokenizer.json") } else { path.to_owned() };
        let bytes = std::fs::read(&file).map_err(|source| LoadError::Read { path: file.clone(), source })?;
        let inner = tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| LoadError::Parse {
            path: file.clone(),
            message: format!(
                "not a Hugging Face tokenizer.json ({e}); give the tokenizer.json of the served model \
                 (from its Hugging Face repository), or leave out --tokenizer to match the server's own count"
            ),
        })?;
        Ok(Self { inner, path: file.display().to_string() })
    }

    /// Where it was loaded from (for the run's environment block).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Tokens in `text`, without the special tokens a template would add.
    pub fn count(&self, text: &str) -> Result<u64, LoadError> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| LoadError::invalid("tokenizer", format!("{} cannot encode a prompt: {e}", self.path)))?;
        Ok(encoding.len() as u64)
    }

    /// `count` synthetic prompts of exactly `target` tokens each (when the vocabulary
    /// allows: a prompt that cannot be hit exactly is the closest one below, and the
    /// returned number says how many prompts are exact). Seeded like
    /// [`Workload::synthetic`]; each prompt starts with a distinct word.
    pub fn synthetic(&self, target: u64, count: usize, turns: u32, seed: u64) -> Result<(Workload, usize), LoadError> {
        let mut exact = 0;
        let mut prompts = Vec::with_capacity(count.max(1));
        for i in 0..count.max(1) {
            let text = self.prompt(i, target, seed)?;
            if self.count(&text)? == target {
                exact += 1;
            }
            prompts.push(Prompt { text, output_tokens: None });
        }
        Ok((Workload::from_prompts(prompts, turns), exact))
    }

    /// Prompt `i`: a word count corrected by the observed tokens per word until the
    /// count is reached or straddled, then padded with one-token words.
    fn prompt(&self, i: usize, target: u64, seed: u64) -> Result<String, LoadError> {
        let words_of = |n: u64| {
            let mut rng = SplitMix64::new(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut text = format!("q{i}");
            for _ in 1..n {
                text.push(' ');
                text.push_str(VOCABULARY[rng.below(VOCABULARY.len())]);
            }
            text
        };
        let mut words = target.max(1);
        // The longest prompt known to be at or under the target.
        let mut best_under: Option<(u64, String)> = None;
        for _ in 0..MAX_ROUNDS {
            let text = words_of(words);
            let n = self.count(&text)?;
            if n == target {
                return Ok(text);
            }
            if n < target && best_under.as_ref().is_none_or(|(b, _)| n > *b) {
                best_under = Some((n, text));
            }
            let per_word = (n as f64 / words as f64).max(f64::MIN_POSITIVE);
            let step = ((target as f64 - n as f64) / per_word).round() as i64;
            let step = if step == 0 {
                if n < target {
                    1
                } else {
                    -1
                }
            } else {
                step
            };
            let next = (words as i64 + step).max(1) as u64;
            if next == words {
                break;
            }
            words = next;
        }
        // Pad the closest prompt under the target with the cheapest filler that still
        // counts: most tokenizers read " a" as one token.
        // Nothing at or under the target (a target shorter than the distinct first word):
        // fillers alone.
        let (mut n, mut text) = best_under.unwrap_or_default();
        for filler in [" a", " x", " 1", "."] {
            while n < target {
                let candidate = format!("{text}{filler}");
                let m = self.count(&candidate)?;
                if m <= n || m > target {
                    break;
                }
                text = candidate;
                n = m;
            }
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WordPiece tokenizer whose vocabulary holds single letters and digits only, so a
    /// word of length L is L tokens: prompt lengths must be corrected, not guessed.
    fn letter_tokenizer(dir: &Path) -> std::path::PathBuf {
        let mut vocab = serde_json::Map::new();
        vocab.insert("[UNK]".into(), 0.into());
        for c in ('a'..='z').chain('0'..='9') {
            let n = vocab.len();
            vocab.insert(c.to_string(), n.into());
            vocab.insert(format!("##{c}"), (n + 1).into());
        }
        let json = serde_json::json!({
            "version": "1.0",
            "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null,
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": null, "decoder": null,
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100, "vocab": vocab}
        });
        let path = dir.join("tokenizer.json");
        std::fs::write(&path, json.to_string()).expect("write tokenizer");
        path
    }

    /// Every prompt is exactly the target length by the tokenizer's own count, for
    /// several targets, and the same seed gives the same prompts.
    #[test]
    fn synthetic_prompts_have_the_exact_token_count() {
        let dir = tempfile::tempdir().expect("tmp");
        let tok = LocalTokenizer::load(&letter_tokenizer(dir.path())).expect("load");
        assert_eq!(tok.count("ab cd").expect("count"), 4);
        for target in [1, 7, 64, 257] {
            let (workload, exact) = tok.synthetic(target, 20, 1, 42).expect("prompts");
            assert_eq!(exact, 20, "target {target}");
            for p in &workload.prompts {
                assert_eq!(tok.count(&p.text).expect("count"), target, "{}", p.text);
            }
            let (again, _) = tok.synthetic(target, 20, 1, 42).expect("prompts");
            assert_eq!(again.sha256, workload.sha256, "seeded and reproducible");
        }
    }

    /// A missing file and a file that is not a tokenizer name the file and the fix.
    #[test]
    fn bad_tokenizer_files_are_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let missing = LocalTokenizer::load(&dir.path().join("nope.json")).expect_err("missing");
        assert!(missing.to_string().contains("nope.json"), "{missing}");
        let bad = dir.path().join("tokenizer.json");
        std::fs::write(&bad, "{\"model\": 3}").expect("write");
        let err = LocalTokenizer::load(dir.path()).expect_err("not a tokenizer").to_string();
        assert!(err.contains("tokenizer.json") && err.contains("not a Hugging Face tokenizer.json"), "{err}");
    }
}
