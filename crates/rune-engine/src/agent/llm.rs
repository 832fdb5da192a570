//! The built-in `llm` agent: asks the model directly through a [`Backend`], framed as an
//! SRE diagnosing an incident, with the case's evidence rendered as labelled sections and
//! truncated to fit the model's context window when that window is known.
//!
//! It needs nothing but an LLM endpoint, so it is the baseline every other agent is
//! compared with. Prompt rendering is pure ([`render_context`]) and tested on its own.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde_json::json;

use super::{
    Agent, AgentAnswer, AgentConfig, AgentContext, AgentError, AgentEvent, AgentQuestion, ContextDoc, LlmConfig,
};
use crate::backend::{
    backend_for, Backend, BackendError, BackendKind, BackendOptions, ChatMessage, ChatRequest, ModelInfo,
};

/// The system prompt: who the model is and what a good answer contains.
pub const SRE_SYSTEM_PROMPT: &str = "You are an experienced site reliability engineer (SRE) diagnosing an incident \
in a production Kubernetes environment. Base your diagnosis on the evidence provided; do not invent facts that the \
evidence does not support. Answer with: (1) the root cause, naming the affected resources (namespace, workload, pod, \
container) exactly as they appear in the evidence; (2) the evidence that supports it; (3) concrete remediation steps. \
If the evidence is insufficient, say what additional information you would collect and how.";

/// Conservative bytes-per-token estimate used to size the evidence (real tokenisers
/// average about 4 bytes per token on English and logs; 3 leaves headroom).
const BYTES_PER_TOKEN: usize = 3;
/// Smallest context window requested from Ollama (its own default is smaller and silently
/// truncates long prompts).
const MIN_NUM_CTX: u64 = 4096;

/// A backend with the kind and URL it was built for.
type CachedBackend = (BackendKind, String, Arc<dyn Backend>);

/// The `llm` agent.
pub struct LlmAgent {
    options: BackendOptions,
    cfg: LlmConfig,
    /// The last backend built, reused while questions target the same server. Std mutex:
    /// held only to clone or replace the `Arc`, never across an await.
    cache: Mutex<Option<CachedBackend>>,
}

impl LlmAgent {
    /// An `llm` agent using `config.backend` for its model calls.
    pub fn new(config: &AgentConfig) -> Self {
        LlmAgent { options: config.backend.clone(), cfg: config.llm.clone(), cache: Mutex::new(None) }
    }

    fn backend(&self, kind: BackendKind, url: &str) -> Result<Arc<dyn Backend>, BackendError> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((k, u, b)) = cache.as_ref() {
            if *k == kind && u == url {
                return Ok(b.clone());
            }
        }
        let b = backend_for(kind, url, self.options.clone())?;
        *cache = Some((kind, url.to_owned(), b.clone()));
        Ok(b)
    }
}

/// Splits `budget` bytes over documents of the given lengths: short documents keep
/// everything, the rest share what is left equally.
fn allocate(lens: &[usize], budget: usize) -> Vec<usize> {
    if lens.iter().sum::<usize>() <= budget {
        return lens.to_vec();
    }
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by_key(|&i| lens[i]);
    let mut alloc = vec![0; lens.len()];
    let mut remaining = budget;
    for (done, &i) in order.iter().enumerate() {
        let share = remaining / (lens.len() - done);
        alloc[i] = lens[i].min(share);
        remaining -= alloc[i];
    }
    alloc
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Keeps the first third and the last two thirds of `keep` bytes (the end of a log is
/// usually where the failure is), marking the cut.
fn cut_middle(s: &str, keep: usize) -> String {
    if s.len() <= keep {
        return s.to_owned();
    }
    let head_end = floor_boundary(s, keep / 3);
    let tail_start = {
        let mut i = s.len() - (keep - keep / 3);
        while i < s.len() && !s.is_char_boundary(i) {
            i += 1;
        }
        i
    };
    format!(
        "{}\n[… {} bytes omitted to fit the model's context window …]\n{}",
        &s[..head_end],
        tail_start - head_end,
        &s[tail_start..]
    )
}

/// Renders the question and its evidence as labelled sections. With `budget` (bytes for
/// the whole message), evidence is shortened to fit; returns whether anything was cut.
pub fn render_context(question: &str, docs: &[ContextDoc], budget: Option<usize>) -> (String, bool) {
    let header = |d: &ContextDoc| format!("### {} ({})\n--- BEGIN {} ---\n", d.name, d.kind, d.name);
    let footer = |d: &ContextDoc| format!("\n--- END {} ---\n\n", d.name);
    let mut out = format!("## Question\n{}\n\n", question.trim());
    if docs.is_empty() {
        out.push_str("(No evidence was attached; answer from the question alone.)\n");
        return (out, false);
    }
    out.push_str("## Evidence\n\n");
    let lens: Vec<usize> = docs.iter().map(|d| d.content.len()).collect();
    let alloc = match budget {
        Some(b) => {
            let overhead: usize = out.len() + docs.iter().map(|d| header(d).len() + footer(d).len()).sum::<usize>();
            allocate(&lens, b.saturating_sub(overhead))
        }
        None => lens.clone(),
    };
    let mut truncated = false;
    for (d, keep) in docs.iter().zip(alloc) {
        out.push_str(&header(d));
        if keep < d.content.len() {
            truncated = true;
            out.push_str(&cut_middle(&d.content, keep));
        } else {
            out.push_str(&d.content);
        }
        out.push_str(&footer(d));
    }
    (out, truncated)
}

/// How big a window to ask Ollama for: enough for prompt and answer, at least
/// [`MIN_NUM_CTX`], rounded up to 1024, never above the model's maximum.
fn context_window(info: &ModelInfo, prompt_bytes: usize, reserve: u64) -> Option<u64> {
    let max = info.context_length?;
    let needed = (prompt_bytes / BYTES_PER_TOKEN) as u64 + reserve;
    Some(needed.max(MIN_NUM_CTX).div_ceil(1024).saturating_mul(1024).min(max))
}

#[async_trait]
impl Agent for LlmAgent {
    fn name(&self) -> &str {
        "llm"
    }

    async fn ask(&self, q: &AgentQuestion, ctx: &AgentContext) -> Result<AgentAnswer, AgentError> {
        let agent = self.name();
        let url = q.backend_url.as_deref().map(str::trim).filter(|u| !u.is_empty()).ok_or_else(|| {
            AgentError::MissingInput {
                agent: agent.into(),
                field: "a backend URL".into(),
                hint: "pass --backend-url (e.g. http://localhost:11434 for Ollama, http://localhost:8000 for vLLM)"
                    .into(),
            }
        })?;
        let backend = self.backend(q.backend_type, url).map_err(|e| AgentError::backend(agent, e))?;
        let deadline = tokio::time::Instant::now() + ctx.timeout;
        let timeout = || AgentError::Timeout { agent: agent.into(), after: ctx.timeout };

        ctx.emit(AgentEvent::Progress { message: format!("reading the context window of {}", q.model) });
        let info = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return Err(AgentError::Cancelled { agent: agent.into() }),
            r = tokio::time::timeout_at(deadline, backend.model_info(&q.model)) => r.map_err(|_| timeout())?,
        };
        let info = match info {
            Ok(i) => Some(i),
            // The chat would fail the same way; fail now with the clearer error.
            Err(
                e @ (BackendError::Unreachable { .. }
                | BackendError::Auth { .. }
                | BackendError::Timeout { .. }
                | BackendError::Cancelled { .. }),
            ) => return Err(AgentError::backend(agent, e)),
            // Anything else (an unlisted model on a server that serves it anyway, a proxy
            // without the listing endpoint) only costs the truncation; the chat decides.
            Err(e) => {
                ctx.emit(AgentEvent::Warning {
                    message: format!("context window unknown ({e}); the evidence is sent untruncated"),
                });
                None
            }
        };
        let reserve = match (self.cfg.max_tokens, info.as_ref().and_then(ModelInfo::output_reserve)) {
            (Some(m), _) => Some(u64::from(m)),
            (None, r) => r,
        };
        let budget = info.as_ref().and_then(|i| i.context_length).map(|ctx_len| {
            let tokens = ctx_len.saturating_sub(reserve.unwrap_or(0));
            let bytes = usize::try_from(tokens).unwrap_or(usize::MAX).saturating_mul(BYTES_PER_TOKEN);
            bytes.saturating_sub(SRE_SYSTEM_PROMPT.len())
        });
        let (user, truncated) = render_context(&q.question, &q.context, budget);
        if truncated {
            ctx.emit(AgentEvent::Warning {
                message: format!(
                    "evidence shortened to fit the {}-token context window of {}",
                    info.as_ref().and_then(|i| i.context_length).unwrap_or_default(),
                    q.model
                ),
            });
        }
        let window =
            info.as_ref().and_then(|i| context_window(i, SRE_SYSTEM_PROMPT.len() + user.len(), reserve.unwrap_or(0)));
        let req = ChatRequest {
            model: q.model.clone(),
            messages: vec![ChatMessage::system(SRE_SYSTEM_PROMPT), ChatMessage::user(user)],
            max_tokens: self.cfg.max_tokens,
            temperature: self.cfg.temperature,
            seed: None,
            context_window: window,
        };
        ctx.emit(AgentEvent::Progress { message: format!("asking {} at {}", q.model, backend.base_url()) });
        let resp = tokio::time::timeout_at(deadline, backend.chat(&req, &ctx.cancel))
            .await
            .map_err(|_| timeout())?
            .map_err(|e| AgentError::backend(agent, e))?;
        if resp.text.trim().is_empty() {
            ctx.emit(AgentEvent::Warning { message: format!("{} returned an empty answer", resp.model) });
        }
        Ok(AgentAnswer {
            raw: json!({
                "model": resp.model,
                "finish_reason": resp.finish_reason,
                "server_timing": resp.server_timing,
                "context_length": info.as_ref().and_then(|i| i.context_length),
                "context_window": window,
                "context_truncated": truncated,
            }),
            text: resp.text,
            usage: resp.usage,
            timing: Some(resp.timing),
            artifacts: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, content: &str) -> ContextDoc {
        ContextDoc { name: name.into(), kind: "logs".into(), content: content.into() }
    }

    /// Without a budget every document is rendered whole, labelled with name and kind.
    #[test]
    fn renders_sections() {
        let (s, cut) = render_context("Why?", &[doc("pod logs", "OOMKilled")], None);
        assert!(!cut);
        assert!(s.starts_with("## Question\nWhy?\n"));
        assert!(s.contains("### pod logs (logs)\n--- BEGIN pod logs ---\nOOMKilled\n--- END pod logs ---"));
        let (s, _) = render_context("Why?", &[], Some(10));
        assert!(s.contains("No evidence"));
    }

    /// Under a budget, short documents stay whole, long ones are cut in the middle keeping
    /// their end, and the whole message fits.
    #[test]
    fn truncates_to_budget() {
        let long = format!("START{}FAILURE AT THE END", "x".repeat(10_000));
        let docs = [doc("short", "tiny"), doc("long", &long)];
        let (s, cut) = render_context("Why?", &docs, Some(2_000));
        assert!(cut);
        assert!(s.len() <= 2_100, "{}", s.len());
        assert!(s.contains("tiny"));
        assert!(s.contains("START"));
        assert!(s.contains("FAILURE AT THE END"));
        assert!(s.contains("bytes omitted"));
    }

    /// Allocation gives short items everything and splits the rest equally.
    #[test]
    fn allocation() {
        assert_eq!(allocate(&[10, 20], 100), vec![10, 20]);
        assert_eq!(allocate(&[10, 1000, 1000], 310), vec![10, 150, 150]);
        assert_eq!(allocate(&[5, 5], 0), vec![0, 0]);
    }

    /// Cuts never split a UTF-8 character.
    #[test]
    fn cut_respects_utf8() {
        let s = "é".repeat(1000);
        let c = cut_middle(&s, 101);
        assert!(c.contains("omitted"));
    }

    /// The requested window covers prompt and answer, has a floor, and never exceeds the model.
    #[test]
    fn window_sizing() {
        let info = |c| ModelInfo { context_length: Some(c), ..ModelInfo::default() };
        assert_eq!(context_window(&info(131_072), 3_000, 1024), Some(4096));
        assert_eq!(context_window(&info(131_072), 30_000, 2048), Some(12_288));
        assert_eq!(context_window(&info(8192), 300_000, 2048), Some(8192));
        assert_eq!(context_window(&ModelInfo::default(), 10, 10), None);
    }
}
