//! Forms that change something: login and logout, cancel and re-run, schedules, E-Stop.
//! Every POST has passed the CSRF check in [`crate::guard`] before it gets here.

use crate::guard::{redirect, safe_next, Ctx};
use crate::pages::{fail, page};
use crate::session;
use crate::UiState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use minijinja::context;
use rune_core::api::{EstopRequest, ScheduleRequest};
use serde::Deserialize;
use std::collections::HashMap;

/// `?next=` of the login form.
#[derive(Debug, Deserialize)]
pub struct Next {
    /// Where to go after logging in.
    pub next: Option<String>,
}

/// `GET /login`.
pub async fn login_form(State(ui): State<UiState>, Extension(ctx): Extension<Ctx>, Query(q): Query<Next>) -> Response {
    if !ctx.auth_required {
        return redirect(false, "/runs");
    }
    let next = safe_next(q.next.as_deref().unwrap_or("/runs")).to_owned();
    login_page(&ui, &ctx, &next, None, "", StatusCode::OK).await
}

async fn login_page(
    ui: &UiState,
    ctx: &Ctx,
    next: &str,
    error: Option<&str>,
    tenant: &str,
    status: StatusCode,
) -> Response {
    let vars = context! { next => next, error => error, tenant_value => tenant };
    let mut resp = page(ui, ctx, "login.html", "login", vars).await;
    *resp.status_mut() = status;
    resp
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct Login {
    /// Tenant.
    #[serde(default)]
    pub tenant: String,
    /// Bearer token (kept in this process only).
    #[serde(default)]
    pub token: String,
    /// Where to go afterwards.
    #[serde(default)]
    pub next: String,
}

/// `POST /login`: checks the tenant and token against the API, then starts a new
/// session (a new id, so a session id planted before login is worthless).
pub async fn login(State(ui): State<UiState>, Extension(ctx): Extension<Ctx>, Form(form): Form<Login>) -> Response {
    let next = safe_next(&form.next).to_owned();
    let tenant = form.tenant.trim().to_owned();
    let token = form.token.trim().to_owned();
    if tenant.is_empty() || token.is_empty() {
        let msg = "Enter both the tenant and its API token.";
        return login_page(&ui, &ctx, &next, Some(msg), &tenant, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let client = match ui.client(&tenant, Some(token)) {
        Ok(c) => c,
        Err(e) => return fail(&ui, &ctx, e),
    };
    match client.estop_status().await {
        Ok(_) => {
            let fresh = ui.sessions().create(Some(tenant), Some(client));
            ui.sessions().remove(&ctx.session.id);
            let mut resp = redirect(false, &next);
            if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&fresh.id, ui.config().secure_cookies)) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) if e.status() == Some(401) => {
            let msg = "That tenant and token were not accepted by the API.";
            login_page(&ui, &ctx, &next, Some(msg), &tenant, StatusCode::UNAUTHORIZED).await
        }
        Err(e) if e.status() == Some(429) => {
            let msg = "Too many failed logins from here; wait a minute and try again.";
            login_page(&ui, &ctx, &next, Some(msg), &tenant, StatusCode::TOO_MANY_REQUESTS).await
        }
        Err(e) => fail(&ui, &ctx, e),
    }
}

/// `POST /logout`: forgets the session (and with it the token).
pub async fn logout(State(ui): State<UiState>, Extension(ctx): Extension<Ctx>) -> Response {
    ui.sessions().remove(&ctx.session.id);
    let mut resp = redirect(false, if ctx.auth_required { "/login" } else { "/runs" });
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(ui.config().secure_cookies)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /runs/{id}/cancel`.
pub async fn cancel(State(ui): State<UiState>, Extension(ctx): Extension<Ctx>, Path(id): Path<String>) -> Response {
    let result = match ctx.client() {
        Ok(c) => c.cancel_job(&id).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => redirect(false, &format!("/runs/{}", crate::guard::encode(&id))),
        Err(e) => fail(&ui, &ctx, e),
    }
}

/// `POST /runs/{id}/rerun`: submits the same request again as a new run.
pub async fn rerun(State(ui): State<UiState>, Extension(ctx): Extension<Ctx>, Path(id): Path<String>) -> Response {
    let client = match ctx.client() {
        Ok(c) => c,
        Err(e) => return fail(&ui, &ctx, e),
    };
    let job = match client.get_job(&id).await {
        Ok(j) => j,
        Err(e) => return fail(&ui, &ctx, e),
    };
    match client.submit(&job.kind.to_string(), &job.request, None).await {
        Ok(accepted) => redirect(false, &format!("/runs/{}", crate::guard::encode(&accepted.job_id))),
        Err(e) => fail(&ui, &ctx, e),
    }
}

/// `POST /schedules`: creates a schedule; a bad field keeps every value in the form.
pub async fn create_schedule(
    State(ui): State<UiState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let keep = minijinja::Value::from_serialize(&form);
    let request: serde_json::Value = match serde_json::from_str(&get("request")) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => {
            let msg = "request: enter the job's request as a JSON object, e.g. {\"backend_url\": \"http://127.0.0.1:11434\", \"model\": \"llama3.1:8b\"}";
            return crate::pages::schedules_page(&ui, &ctx, Some(msg.into()), keep).await;
        }
    };
    let body = serde_json::json!({
        "name": get("name"), "cron": get("cron"), "kind": get("kind"), "request": request,
        "suspended": form.contains_key("suspended"),
        "concurrency_policy": if get("concurrency_policy").is_empty() { "Forbid".to_owned() } else { get("concurrency_policy") },
    });
    let req: ScheduleRequest = match serde_json::from_value(body) {
        Ok(r) => r,
        Err(e) => return crate::pages::schedules_page(&ui, &ctx, Some(format!("invalid schedule: {e}")), keep).await,
    };
    let result = match ctx.client() {
        Ok(c) => c.create_schedule(&req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => redirect(false, "/schedules"),
        Err(e) if e.status().is_some_and(|s| (400..500).contains(&s) && s != 401) => {
            crate::pages::schedules_page(&ui, &ctx, Some(e.to_string()), keep).await
        }
        Err(e) => fail(&ui, &ctx, e),
    }
}

async fn schedule_action(ui: UiState, ctx: Ctx, id: String, action: &str) -> Response {
    let client = match ctx.client() {
        Ok(c) => c,
        Err(e) => return fail(&ui, &ctx, e),
    };
    let result = match action {
        "suspend" => client.suspend_schedule(&id).await.map(|_| ()),
        "resume" => client.resume_schedule(&id).await.map(|_| ()),
        _ => client.delete_schedule(&id).await,
    };
    match result {
        Ok(()) => redirect(ctx.hx_target.is_some(), "/schedules"),
        Err(e) => fail(&ui, &ctx, e),
    }
}

/// `POST /schedules/{id}/suspend`.
pub async fn suspend_schedule(
    State(ui): State<UiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    schedule_action(ui, ctx, id, "suspend").await
}

/// `POST /schedules/{id}/resume`.
pub async fn resume_schedule(
    State(ui): State<UiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    schedule_action(ui, ctx, id, "resume").await
}

/// `POST /schedules/{id}/delete`.
pub async fn delete_schedule(
    State(ui): State<UiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    schedule_action(ui, ctx, id, "delete").await
}

/// The E-Stop form.
#[derive(Debug, Deserialize)]
pub struct EstopForm {
    /// Why (required: it is shown in the banner and the audit trail).
    #[serde(default)]
    pub reason: String,
    /// The "I understand" checkbox.
    #[serde(default)]
    pub confirm: Option<String>,
}

/// `POST /estop`: engages the E-Stop after the confirmation box is ticked.
pub async fn estop_trigger(
    State(ui): State<UiState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<EstopForm>,
) -> Response {
    let reason = form.reason.trim().to_owned();
    if reason.is_empty() || form.confirm.as_deref() != Some("yes") {
        let status = match ctx.client() {
            Ok(c) => c.estop_status().await.unwrap_or_default(),
            Err(e) => return fail(&ui, &ctx, e),
        };
        let vars = context! { status => status, error => "Give a reason and tick the confirmation box to engage the E-Stop.", reason_value => reason };
        let mut resp = page(&ui, &ctx, "estop.html", "estop", vars).await;
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return resp;
    }
    let actor = format!("{} (web UI)", ctx.session.tenant.as_deref().unwrap_or("default"));
    let result = match ctx.client() {
        Ok(c) => c.estop_trigger(&EstopRequest { reason: Some(reason), actor: Some(actor) }).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => redirect(false, "/estop"),
        Err(e) => fail(&ui, &ctx, e),
    }
}

/// `POST /estop/release`.
pub async fn estop_release(State(ui): State<UiState>, Extension(ctx): Extension<Ctx>) -> Response {
    let result = match ctx.client() {
        Ok(c) => c.estop_release().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => redirect(false, "/estop"),
        Err(e) => fail(&ui, &ctx, e),
    }
}
