//! OpenAI-compatible generation handlers: `POST /v1/chat/completions` and
//! `POST /v1/completions`. They parse only the fields the simulator honours (model,
//! messages/prompt, stream, max_tokens, stream_options.include_usage), borrowing strings
//! from the request body where JSON allows, and hand over to [`crate::generate`].

use crate::clock::DEFAULT_KEEP_ALIVE;
use crate::generate::{self, Request};
use crate::server::{bad_request, model_not_found, Shared};
use crate::tokens::count_words;
use crate::wire::Api;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::Arc;
use tokio::time::Instant;

#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[serde(borrow)]
    messages: Vec<Message<'a>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct CompletionRequest<'a> {
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[serde(borrow)]
    prompt: Prompt<'a>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize, Default)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// `prompt`: one string or a list of strings (treated as one prompt).
#[derive(Deserialize)]
#[serde(untagged)]
enum Prompt<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Many(#[serde(borrow)] Vec<Cow<'a, str>>),
}

impl Prompt<'_> {
    fn texts(&self) -> impl Iterator<Item = &str> + '_ {
        let (one, many) = match self {
            Prompt::One(s) => (Some(s.as_ref()), &[][..]),
            Prompt::Many(v) => (None, v.as_slice()),
        };
        one.into_iter().chain(many.iter().map(|s| s.as_ref()))
    }
}

/// A chat message as both APIs send it; only role and text content matter here.
#[derive(Deserialize)]
pub(crate) struct Message<'a> {
    #[serde(default, borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<Content<'a>>,
}

/// Message content: a string, or OpenAI's list of typed parts (text parts counted).
#[derive(Deserialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Parts(#[serde(borrow)] Vec<Part<'a>>),
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

impl Message<'_> {
    fn texts(&self) -> impl Iterator<Item = &str> + '_ {
        let (one, parts) = match &self.content {
            Some(Content::Text(s)) => (Some(s.as_ref()), &[][..]),
            Some(Content::Parts(p)) => (None, p.as_slice()),
            None => (None, &[][..]),
        };
        one.into_iter().chain(parts.iter().filter_map(|p| p.text.as_deref()))
    }

    fn is_user(&self) -> bool {
        self.role.as_deref() == Some("user")
    }
}

/// Prompt tokens of a conversation: words in all messages, at least 1.
pub(crate) fn conversation_tokens(messages: &[Message<'_>]) -> u64 {
    messages.iter().flat_map(Message::texts).map(count_words).sum::<u64>().max(1)
}

/// The scripted answer for a conversation: matched against the last user message (the
/// question), or against every message when there is no user message.
pub(crate) fn conversation_answer(shared: &Shared, messages: &[Message<'_>]) -> crate::server::AnswerId {
    match messages.iter().rev().find(|m| m.is_user()) {
        Some(last_user) => shared.select_answer(|a| last_user.texts().any(|t| a.matches(t))),
        None => shared.select_answer(|a| messages.iter().flat_map(Message::texts).any(|t| a.matches(t))),
    }
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let received = Instant::now();
    let api = Api::OpenAiChat;
    let req: ChatRequest<'_> = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(api, &format!("invalid request body: {e}")),
    };
    let Some(model) = shared.find_model(&req.model) else {
        return model_not_found(api, &req.model);
    };
    model.touch(DEFAULT_KEEP_ALIVE);
    let request = Request {
        api,
        stream: req.stream.unwrap_or(false),
        model,
        prompt_tokens: conversation_tokens(&req.messages),
        answer: conversation_answer(&shared, &req.messages),
        limit: req.max_completion_tokens.or(req.max_tokens),
        include_usage: req.stream_options.unwrap_or_default().include_usage,
        received,
    };
    generate::answer(&shared, request).await
}

/// `POST /v1/completions`.
pub(crate) async fn completions(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let received = Instant::now();
    let api = Api::OpenAiCompletion;
    let req: CompletionRequest<'_> = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(api, &format!("invalid request body: {e}")),
    };
    let Some(model) = shared.find_model(&req.model) else {
        return model_not_found(api, &req.model);
    };
    model.touch(DEFAULT_KEEP_ALIVE);
    let request = Request {
        api,
        stream: req.stream.unwrap_or(false),
        model,
        prompt_tokens: req.prompt.texts().map(count_words).sum::<u64>().max(1),
        answer: shared.select_answer(|a| req.prompt.texts().any(|t| a.matches(t))),
        limit: req.max_tokens,
        include_usage: req.stream_options.unwrap_or_default().include_usage,
        received,
    };
    generate::answer(&shared, request).await
}
