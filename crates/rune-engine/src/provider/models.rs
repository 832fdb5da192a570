//! How much GPU RAM and disk each model RUNE can rent a GPU for needs.
//!
//! The table is what the offer search asks for: an offer with less GPU RAM than the
//! model needs would run it partly on the CPU and skew every measurement. Pure data and
//! one lookup; no I/O. (The API's catalog route keeps its own copy: this crate must not
//! depend on `rune-api`.)

use super::ProviderError;
use crate::backend::ollama_model_name;

/// GPU RAM and disk one model needs on a rented instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSizing {
    /// The Ollama model name, with its tag.
    pub name: &'static str,
    /// GPU RAM the offer must have (per GPU: the model must fit on one), MB.
    pub vram_mb: u32,
    /// Disk to rent (image, model weights and headroom), GB.
    pub disk_gb: u32,
}

const fn sizing(name: &'static str, vram_mb: u32, disk_gb: u32) -> ModelSizing {
    ModelSizing { name, vram_mb, disk_gb }
}

/// Every model RUNE can provision a Vast.ai instance for.
pub const VASTAI_MODELS: &[ModelSizing] = &[
    sizing("llama3.1:8b", 8_192, 40),
    sizing("llama3.1:70b", 49_152, 120),
    sizing("llama3.2:3b", 4_096, 30),
    sizing("qwen2.5:7b", 8_192, 40),
    sizing("qwen2.5:32b", 24_576, 80),
    sizing("mistral:7b", 8_192, 40),
    sizing("mixtral:8x7b", 32_768, 100),
    sizing("gemma2:9b", 10_240, 40),
    sizing("gemma2:27b", 24_576, 80),
    sizing("phi3:14b", 12_288, 50),
    sizing("deepseek-r1:14b", 12_288, 50),
    sizing("deepseek-r1:32b", 24_576, 80),
];

/// The sizing for `model` (LiteLLM's `ollama/` and `ollama_chat/` prefixes are ignored);
/// [`ProviderError::UnknownModel`] lists the known names otherwise.
pub fn model_sizing(model: &str) -> Result<&'static ModelSizing, ProviderError> {
    let name = ollama_model_name(model.trim());
    VASTAI_MODELS.iter().find(|m| m.name == name).ok_or_else(|| ProviderError::UnknownModel {
        model: model.to_owned(),
        known: VASTAI_MODELS.iter().map(|m| m.name.to_owned()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known models resolve (with or without a routing prefix); unknown ones list the
    /// alternatives.
    #[test]
    fn lookup() {
        assert_eq!(model_sizing("llama3.1:70b").unwrap().vram_mb, 49_152);
        assert_eq!(model_sizing("ollama/qwen2.5:32b").unwrap().disk_gb, 80);
        let e = model_sizing("llama9:1t").unwrap_err().to_string();
        assert!(e.contains("`llama9:1t`") && e.contains("llama3.1:8b, llama3.1:70b"), "{e}");
    }

    /// Names are unique and every entry asks for something.
    #[test]
    fn table_is_consistent() {
        for (i, m) in VASTAI_MODELS.iter().enumerate() {
            assert!(m.vram_mb > 0 && m.disk_gb > 0, "{m:?}");
            assert!(VASTAI_MODELS[i + 1..].iter().all(|o| o.name != m.name), "duplicate {}", m.name);
        }
    }
}
