//! `/v1/settings`: a tenant's configuration (defaults, named profiles, active profile),
//! stored in the database, with secrets redacted on the way out.

use crate::error::{ApiError, ApiResult};
use crate::middleware::{JsonBody, Tenant};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rune_core::api::ErrorBody;
use rune_core::TenantId;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Keys whose values never leave the server.
const SECRET_KEYS: [&str; 6] = ["api_token", "token", "password", "api_key", "secret", "vast_api_key"];

fn key(tenant: &TenantId) -> String {
    format!("tenant:{tenant}:rune_config")
}

async fn load(state: &AppState, tenant: &TenantId) -> ApiResult<Map<String, Value>> {
    Ok(match state.store.get_setting(&key(tenant)).await? {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    })
}

fn redact(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let secret = SECRET_KEYS.iter().any(|s| k.to_ascii_lowercase().contains(s));
                    (k.clone(), if secret && !v.is_null() { json!("[REDACTED]") } else { redact(v) })
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

fn obj(m: &Map<String, Value>, k: &str) -> Map<String, Value> {
    m.get(k).and_then(Value::as_object).cloned().unwrap_or_default()
}

fn view(config: &Map<String, Value>) -> Value {
    let defaults = obj(config, "defaults");
    let profiles = obj(config, "profiles");
    let active = config.get("active_profile").and_then(Value::as_str).map(str::to_owned);
    let mut effective = defaults.clone();
    if let Some(p) = active.as_deref().and_then(|a| profiles.get(a)).and_then(Value::as_object) {
        for (k, v) in p {
            effective.insert(k.clone(), v.clone());
        }
    }
    redact(
        &json!({"defaults": defaults, "profiles": profiles, "active_profile": active, "effective_config": effective}),
    )
}

/// `GET /v1/settings`.
#[utoipa::path(get, path = "/v1/settings", tag = "settings", responses((status = 200, body = Object)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
) -> ApiResult<Json<Value>> {
    Ok(Json(view(&load(&state, &tenant).await?)))
}

/// `PUT|PATCH|POST /v1/settings` with `{"settings"?: {...}, "profile"?: name,
/// "active_profile"?: name}`: merges `settings` into the defaults (or into `profile`).
#[utoipa::path(put, path = "/v1/settings", tag = "settings", request_body = Object,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let Value::Object(body) = body else { return Err(ApiError::BadRequest("expected a JSON object".into())) };
    if let Some(unknown) = body.keys().find(|k| !["settings", "profile", "active_profile"].contains(&k.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "unknown field `{unknown}`; expected settings, profile, active_profile"
        )));
    }
    if !body.contains_key("settings") && !body.contains_key("active_profile") {
        return Err(ApiError::BadRequest(
            "nothing to update: give `settings` (an object) and/or `active_profile`".into(),
        ));
    }
    let mut config = load(&state, &tenant).await?;
    if let Some(settings) = body.get("settings") {
        let Value::Object(settings) = settings else {
            return Err(ApiError::BadRequest("`settings` must be an object".into()));
        };
        let target = match body.get("profile") {
            Some(Value::String(p)) => {
                let mut profiles = obj(&config, "profiles");
                let mut profile = obj(&profiles, p);
                profile.extend(settings.clone());
                profiles.insert(p.clone(), Value::Object(profile));
                ("profiles", Value::Object(profiles))
            }
            Some(_) => return Err(ApiError::BadRequest("`profile` must be a string".into())),
            None => {
                let mut defaults = obj(&config, "defaults");
                defaults.extend(settings.clone());
                ("defaults", Value::Object(defaults))
            }
        };
        config.insert(target.0.into(), target.1);
    }
    match body.get("active_profile") {
        None => {}
        Some(Value::Null) => {
            config.remove("active_profile");
        }
        Some(Value::String(p)) if obj(&config, "profiles").contains_key(p) => {
            config.insert("active_profile".into(), json!(p));
        }
        Some(other) => return Err(ApiError::BadRequest(format!("active_profile {other} is not an existing profile"))),
    }
    state.store.put_setting(&key(&tenant), &Value::Object(config)).await?;
    Ok(Json(json!({"status": "updated"})))
}

/// `GET /v1/settings/export?profile=`: the configuration as a `rune.yaml` download.
/// The body is JSON, which every YAML 1.2 parser reads as YAML.
#[utoipa::path(get, path = "/v1/settings/export", tag = "settings", params(("profile" = Option<String>, Query)),
    responses((status = 200, content_type = "text/yaml"), (status = 404, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Query(params): Query<BTreeMap<String, String>>,
) -> ApiResult<Response> {
    let config = load(&state, &tenant).await?;
    let profile = params.get("profile");
    let profiles = obj(&config, "profiles");
    let selected = match profile {
        Some(p) => {
            let body = profiles.get(p).cloned().ok_or_else(|| ApiError::NotFound(format!("profile {p}")))?;
            json!({ p.clone(): body })
        }
        None => Value::Object(profiles),
    };
    let doc = redact(&json!({"version": "1", "defaults": obj(&config, "defaults"), "profiles": selected}));
    let mut response = serde_json::to_string_pretty(&doc).unwrap_or_default().into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/yaml; charset=utf-8"));
    let name = format!("attachment; filename=\"rune-{}.yaml\"", profile.map(String::as_str).unwrap_or("defaults"));
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

fn check_profile_name(name: &str) -> ApiResult<()> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::BadRequest("profile names are 1-64 letters, digits, '-' or '_'".into()));
    }
    Ok(())
}

/// `POST /v1/settings/profiles` with `{"name", "settings": {...}}` → 201.
#[utoipa::path(post, path = "/v1/settings/profiles", tag = "settings", request_body = Object,
    responses((status = 201, body = Object), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_profile(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::BadRequest("`name` (string) is required".into()))?;
    check_profile_name(name)?;
    let settings = match body.get("settings") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(ApiError::BadRequest("`settings` must be an object".into())),
    };
    let mut config = load(&state, &tenant).await?;
    let mut profiles = obj(&config, "profiles");
    if profiles.contains_key(name) {
        return Err(ApiError::Conflict(format!(
            "profile `{name}` already exists; PUT /v1/settings/profiles/{name} replaces it"
        )));
    }
    profiles.insert(name.to_owned(), Value::Object(settings));
    config.insert("profiles".into(), Value::Object(profiles));
    state.store.put_setting(&key(&tenant), &Value::Object(config)).await?;
    Ok((StatusCode::CREATED, Json(json!({"status": "created", "profile": name}))))
}

/// `GET /v1/settings/profiles/{name}` (reads; the original deleted here).
#[utoipa::path(get, path = "/v1/settings/profiles/{name}", tag = "settings", params(("name" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get_profile(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let config = load(&state, &tenant).await?;
    let profile =
        obj(&config, "profiles").get(&name).cloned().ok_or_else(|| ApiError::NotFound(format!("profile {name}")))?;
    Ok(Json(redact(&json!({"name": name, "settings": profile}))))
}

/// `PUT /v1/settings/profiles/{name}` with `{"settings": {...}}`: creates or replaces.
#[utoipa::path(put, path = "/v1/settings/profiles/{name}", tag = "settings", params(("name" = String, Path)), request_body = Object,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub async fn put_profile(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    check_profile_name(&name)?;
    let Some(Value::Object(settings)) = body.get("settings") else {
        return Err(ApiError::BadRequest("`settings` (object) is required".into()));
    };
    let mut config = load(&state, &tenant).await?;
    let mut profiles = obj(&config, "profiles");
    profiles.insert(name.clone(), Value::Object(settings.clone()));
    config.insert("profiles".into(), Value::Object(profiles));
    state.store.put_setting(&key(&tenant), &Value::Object(config)).await?;
    Ok(Json(json!({"status": "updated", "profile": name})))
}

/// `DELETE /v1/settings/profiles/{name}`.
#[utoipa::path(delete, path = "/v1/settings/profiles/{name}", tag = "settings", params(("name" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn delete_profile(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut config = load(&state, &tenant).await?;
    let mut profiles = obj(&config, "profiles");
    if profiles.remove(&name).is_none() {
        return Err(ApiError::NotFound(format!("profile {name}")));
    }
    if config.get("active_profile").and_then(Value::as_str) == Some(name.as_str()) {
        config.remove("active_profile");
    }
    config.insert("profiles".into(), Value::Object(profiles));
    state.store.put_setting(&key(&tenant), &Value::Object(config)).await?;
    Ok(Json(json!({"status": "deleted", "profile": name})))
}
