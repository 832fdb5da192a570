//! Model catalogues: the Vast.ai model table and the models a backend serves.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::Json;
use rune_core::api::ErrorBody;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Models RUNE knows how to place on a rented GPU: name, VRAM needed, disk needed.
pub const VASTAI_MODELS: &[(&str, u32, u32)] = &[
    ("llama3.1:8b", 8_192, 40),
    ("llama3.1:70b", 49_152, 120),
    ("llama3.2:3b", 4_096, 30),
    ("qwen2.5:7b", 8_192, 40),
    ("qwen2.5:32b", 24_576, 80),
    ("mistral:7b", 8_192, 40),
    ("mixtral:8x7b", 32_768, 100),
    ("gemma2:9b", 10_240, 40),
    ("gemma2:27b", 24_576, 80),
    ("phi3:14b", 12_288, 50),
    ("deepseek-r1:14b", 12_288, 50),
    ("deepseek-r1:32b", 24_576, 80),
];

/// `GET /v1/catalog/vastai-models` → `{"models": [{name, vram_mb, required_disk_gb}]}`
/// (the shape the original client reads).
#[utoipa::path(get, path = "/v1/catalog/vastai-models", tag = "catalog", responses((status = 200, body = Object)))]
pub async fn vastai_models() -> Json<Value> {
    let models: Vec<Value> = VASTAI_MODELS
        .iter()
        .map(|(name, vram, disk)| json!({"name": name, "vram_mb": vram, "required_disk_gb": disk}))
        .collect();
    Json(json!({ "models": models }))
}

/// `GET /v1/llm/models?backend_url=&backend_type=ollama|openai` (also
/// `/v1/catalog/models` and the 0.0.0a5 `/v1/ollama/models`) →
/// `{"models": [...], "running_models": [...]}`.
#[utoipa::path(get, path = "/v1/llm/models", tag = "catalog",
    params(("backend_url" = String, Query), ("backend_type" = Option<String>, Query, description = "ollama (default) or openai")),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn llm_models(
    State(state): State<AppState>,
    Query(params): Query<BTreeMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let url = params
        .get("backend_url")
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .ok_or_else(|| {
            ApiError::BadRequest("backend_url is required: an http:// or https:// URL of the model server".into())
        })?
        .trim_end_matches('/')
        .to_owned();
    let backend_type = params.get("backend_type").map(String::as_str).unwrap_or("ollama");
    let http = state.http.clone();
    let names = |v: &Value, list: &str, field: &str| -> Vec<String> {
        v.get(list)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|m| m.get(field).and_then(Value::as_str).map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    match backend_type {
        "ollama" => {
            let tags = fetch(&http, &url, "/api/tags").await?;
            let running = fetch(&http, &url, "/api/ps").await.ok();
            Ok(Json(json!({
                "models": names(&tags, "models", "name"),
                "running_models": running.map(|r| names(&r, "models", "name")).unwrap_or_default(),
            })))
        }
        "openai" => {
            let models = fetch(&http, &url, "/v1/models").await?;
            Ok(Json(json!({"models": names(&models, "data", "id"), "running_models": []})))
        }
        other => Err(ApiError::BadRequest(format!("backend_type `{other}` is not supported; use ollama or openai"))),
    }
}

async fn fetch(http: &reqwest::Client, url: &str, path: &str) -> ApiResult<Value> {
    let response = http
        .get(format!("{url}{path}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| ApiError::Unavailable(format!("backend {url} unreachable: {e}")))?;
    if !response.status().is_success() {
        return Err(ApiError::Unavailable(format!("backend {url} answered {} for {path}", response.status())));
    }
    response.json::<Value>().await.map_err(|e| ApiError::Unavailable(format!("backend {url}{path}: not JSON: {e}")))
}
