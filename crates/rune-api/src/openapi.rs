//! `GET /openapi.json` (being generated from the handlers).

use axum::Json;

/// The API description.
pub async fn document() -> Json<serde_json::Value> {
    Json(serde_json::json!({"openapi": "3.1.0"}))
}
