//! The middleware in front of every page: find or start the session, send visitors
//! without credentials to the login form when the API requires a token, refuse
//! state-changing requests without the session's CSRF token, and add the security
//! headers (a strict Content-Security-Policy: scripts only from `/static`).

use crate::session::{self, csrf_matches, Session};
use crate::UiState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Largest form body accepted (a schedule's request JSON fits easily).
pub const MAX_FORM_BYTES: usize = 1 << 20;

/// Form field carrying the CSRF token (htmx requests send the `X-CSRF-Token` header).
pub const CSRF_FIELD: &str = "_csrf";

/// The Content-Security-Policy of every page: no inline or third-party script can run,
/// even if some markup slipped through escaping.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// What a handler knows about the request's session.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The session (authenticated, except on `/login`).
    pub session: Session,
    /// Whether the API requires a token (shows the logout button).
    pub auth_required: bool,
    /// `HX-Target` of an htmx request: render only that fragment.
    pub hx_target: Option<String>,
}

impl Ctx {
    /// The session's API client.
    ///
    /// # Panics
    ///
    /// Never on guarded routes other than `/login`: the guard only lets authenticated
    /// sessions through.
    pub fn client(&self) -> Result<&rune_client::RuneClient, rune_client::ClientError> {
        self.session.client.as_ref().ok_or_else(|| rune_client::ClientError::Api {
            status: 401,
            code: "unauthorized".into(),
            message: "log in first".into(),
            fields: Vec::new(),
        })
    }
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A local path safe to redirect to after login (never another origin).
pub fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') && !next.starts_with("/login") {
        next
    } else {
        "/runs"
    }
}

/// A redirect that also works for htmx requests (which follow `HX-Redirect`).
pub fn redirect(is_htmx: bool, to: &str) -> Response {
    let mut resp = if is_htmx { StatusCode::OK.into_response() } else { StatusCode::SEE_OTHER.into_response() };
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(if is_htmx { "HX-Redirect" } else { "Location" }, v);
    }
    resp
}

fn csrf_from_form(body: &[u8]) -> Option<String> {
    std::str::from_utf8(body).ok()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == CSRF_FIELD).then(|| v.to_owned())
    })
}

fn plain(status: StatusCode, text: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text.to_owned()).into_response()
}

/// The guard itself (see the module docs).
pub async fn guard(State(ui): State<UiState>, mut req: Request, next: Next) -> Response {
    let is_htmx = req.headers().contains_key("HX-Request");
    let presented = req
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| session::cookie_value(h, session::COOKIE))
        .map(str::to_owned);
    let mut new_cookie = None;
    let mut session = match presented.and_then(|id| ui.sessions().get(&id)) {
        Some(s) => s,
        None => {
            let s = ui.sessions().create(None, None);
            new_cookie = Some(s.id.clone());
            s
        }
    };
    let path = req.uri().path().to_owned();
    let auth_required = match ui.auth_required().await {
        Ok(r) => r,
        Err(e) => {
            let resp = crate::pages::api_down(&ui, &e);
            return finish(&ui, resp, new_cookie.as_deref());
        }
    };
    if !session.is_authenticated() && path != "/login" {
        if auth_required {
            let here = match req.uri().query() {
                Some(q) => format!("{path}?{q}"),
                None => path.clone(),
            };
            let to = format!("/login?next={}", encode(safe_next(&here)));
            return finish(&ui, redirect(is_htmx, &to), new_cookie.as_deref());
        }
        match ui.client("default", None) {
            Ok(client) => match ui.sessions().authenticate(&session.id, "default".into(), client) {
                Some(s) => session = s,
                None => return finish(&ui, redirect(is_htmx, &path), None),
            },
            Err(e) => return finish(&ui, crate::pages::api_down(&ui, &e), new_cookie.as_deref()),
        }
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let header_token = req.headers().get("X-CSRF-Token").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return finish(&ui, plain(StatusCode::PAYLOAD_TOO_LARGE, "form too large"), new_cookie.as_deref());
        };
        let token = header_token.or_else(|| csrf_from_form(&bytes)).unwrap_or_default();
        if !csrf_matches(&session.csrf, &token) {
            tracing::warn!(path = %path, "refused a form without a valid CSRF token");
            let resp = plain(
                StatusCode::FORBIDDEN,
                "This form is missing its security token or it has expired. Reload the page and try again.",
            );
            return finish(&ui, resp, new_cookie.as_deref());
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    let hx_target = if is_htmx && !req.headers().contains_key("HX-History-Restore-Request") {
        req.headers().get("HX-Target").and_then(|v| v.to_str().ok()).map(str::to_owned)
    } else {
        None
    };
    req.extensions_mut().insert(Ctx { session, auth_required, hx_target });
    let resp = next.run(req).await;
    finish(&ui, resp, new_cookie.as_deref())
}

/// Adds the security headers and, for a new session, its cookie.
fn finish(ui: &UiState, mut resp: Response, new_session: Option<&str>) -> Response {
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(h, "content-security-policy", CSP);
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "same-origin");
    set(h, "cache-control", "no-store");
    if let Some(id) = new_session {
        if let Ok(v) = HeaderValue::from_str(&session::set_cookie(id, ui.config().secure_cookies)) {
            h.append(header::SET_COOKIE, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only local paths survive as login targets.
    #[test]
    fn next_is_local() {
        assert_eq!(safe_next("/runs/abc?x=1"), "/runs/abc?x=1");
        for bad in ["//evil.example", "https://evil.example", "\\\\evil", "/\\evil", "", "/login?next=/x"] {
            assert_eq!(safe_next(bad), "/runs", "{bad}");
        }
    }

    /// The CSRF field is found among other fields; absent or malformed bodies give none.
    #[test]
    fn csrf_field() {
        assert_eq!(csrf_from_form(b"a=1&_csrf=abc&b=2").as_deref(), Some("abc"));
        assert_eq!(csrf_from_form(b"a=1&b=2"), None);
        assert_eq!(csrf_from_form(b"\xff\xfe"), None);
        assert_eq!(encode("/runs?x=a b"), "/runs%3Fx%3Da%20b");
    }
}
