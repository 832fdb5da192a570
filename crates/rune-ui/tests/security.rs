//! The UI's security properties over real HTTP: a real RUNE API (in process, real
//! SQLite file, tokens required) and the UI pointed at it over loopback, driven with
//! plain HTTP requests (no browser needed).
//!
//! - pages without a session redirect to the login form when the API requires a token;
//! - forms without the session's CSRF token are refused with 403 and change nothing;
//! - script-like text in agent answers and job fields is rendered inert;
//! - the API token never appears in anything sent to the browser.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use rune_api::runner::{JobContext, JobFailure, JobRunner};
use rune_core::{JobKind, JobRecord};
use serde_json::{json, Value};
use std::sync::Arc;

const TENANT: &str = "alpha";
const TOKEN: &str = "alpha-token-0123456789abcdef0123456789";
const EVIL_ANSWER: &str = "<script>alert('answer')</script><img src=x onerror=alert(1)>";
const EVIL_CASE: &str = "\"><svg onload=alert(2)>";
const EVIL_QUESTION: &str = "</textarea><script>alert('question')</script>";

/// Finishes every job at once with script-like text in the answer, a case id and a
/// fact, as a compromised agent or backend might return.
struct EvilRunner;

#[async_trait::async_trait]
impl JobRunner for EvilRunner {
    fn supports(&self, _kind: JobKind) -> bool {
        true
    }

    async fn run(&self, _job: &JobRecord, ctx: JobContext) -> Result<Value, JobFailure> {
        ctx.progress(EVIL_ANSWER).await;
        Ok(json!({
            "answer": EVIL_ANSWER,
            "cases": [{"case_id": EVIL_CASE, "agent": "llm", "model": "m", "score": 0.5, "passed": false,
                       "matched": ["<b>fact</b>"], "missed": ["<i>gone</i>"], "latency_ms": 12.0, "ttft_ms": 3.0,
                       "prompt_tokens": 5, "completion_tokens": 7, "cost_usd": null, "error": null,
                       "answer": EVIL_ANSWER}],
            "summary": {"groups": []}
        }))
    }
}

struct Setup {
    api: String,
    ui: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite://{}/jobs.db", dir.path().display());
    let store = rune_store::open(&db, &Default::default()).await.expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let env = |k: &str| match k {
        "RUNE_API_TOKENS" => Some(format!("{TENANT}:{TOKEN}")),
        "RUNE_RATE_LIMIT_RPS" => Some("0".into()),
        _ => None,
    };
    let config = rune_api::ServerConfig::from_env(addr, false, env).expect("config");
    tokio::spawn(async move {
        let _ = rune_api::serve(listener, config, store, Arc::new(EvilRunner), std::future::pending()).await;
    });
    let api = format!("http://{addr}");
    let ui_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ui = format!("http://{}", ui_listener.local_addr().expect("addr"));
    let config = rune_ui::UiConfig { api_base_url: api.clone(), ..Default::default() };
    tokio::spawn(async move {
        let _ = rune_ui::serve(ui_listener, config, std::future::pending()).await;
    });
    let http = reqwest::Client::builder().redirect(Policy::none()).build().expect("client");
    Setup { api, ui, http, _dir: dir }
}

fn cookie_of(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("rune_session=") && !v.contains("Max-Age=0"))
        .map(str::to_owned)
}

fn csrf_of(html: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let start = html.find(marker).map(|i| i + marker.len()).expect("page has a CSRF field");
    html[start..start + 64].to_owned()
}

/// Logs in through the form; returns the session cookie and the CSRF token.
async fn login(s: &Setup) -> (String, String) {
    let resp = s.http.get(format!("{}/login", s.ui)).send().await.expect("login page");
    let pre = cookie_of(&resp).expect("a pre-login session");
    let pre = pre.split(';').next().expect("cookie").to_owned();
    let csrf = csrf_of(&resp.text().await.expect("body"));
    let form = [("_csrf", csrf.as_str()), ("tenant", TENANT), ("token", TOKEN), ("next", "/runs")];
    let resp = s.http.post(format!("{}/login", s.ui)).header(COOKIE, &pre).form(&form).send().await.expect("login");
    assert_eq!(resp.status(), 303, "login succeeds");
    let set = cookie_of(&resp).expect("session cookie");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let cookie = set.split(';').next().expect("cookie").to_owned();
    assert_ne!(cookie, pre, "login issues a new session id");
    let page = s.http.get(format!("{}/runs", s.ui)).header(COOKIE, &cookie).send().await.expect("runs");
    assert_eq!(page.status(), 200);
    let csrf = csrf_of(&page.text().await.expect("body"));
    (cookie, csrf)
}

/// Without a session every page redirects to the login form (keeping where the user
/// was going); a wrong token is refused; the pre-login session cannot act.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_without_session_redirect_to_login() {
    let s = setup().await;
    for path in ["/runs", "/runs/abc", "/compare?ids=a&ids=b", "/new", "/schedules", "/estop", "/system", "/load"] {
        let resp = s.http.get(format!("{}{path}", s.ui)).send().await.expect("get");
        assert_eq!(resp.status(), 303, "{path}");
        let to = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(to.starts_with("/login?next=/") && !to[7..].contains(['&', '?']), "{path} → {to}");
    }
    // htmx requests get HX-Redirect instead of a redirect htmx would follow silently.
    let resp = s.http.get(format!("{}/runs", s.ui)).header("HX-Request", "true").send().await.expect("get");
    assert_eq!(resp.headers().get("HX-Redirect").and_then(|v| v.to_str().ok()), Some("/login?next=/runs"));
    // A wrong token: 401 with a message, and no session.
    let resp = s.http.get(format!("{}/login", s.ui)).send().await.expect("login page");
    let pre = cookie_of(&resp).expect("cookie").split(';').next().expect("cookie").to_owned();
    let csrf = csrf_of(&resp.text().await.expect("body"));
    let bad = [
        ("_csrf", csrf.as_str()),
        ("tenant", TENANT),
        ("token", "wrong-token-0123456789abcdef0123456"),
        ("next", "/runs"),
    ];
    let resp = s.http.post(format!("{}/login", s.ui)).header(COOKIE, &pre).form(&bad).send().await.expect("post");
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.expect("body").contains("not accepted"));
    let resp = s.http.get(format!("{}/runs", s.ui)).header(COOKIE, &pre).send().await.expect("get");
    assert_eq!(resp.status(), 303, "a failed login leaves the session anonymous");
    // An open redirect through `next` is not possible.
    let (cookie, _) = login(&s).await;
    assert!(!cookie.is_empty());
    let resp = s.http.get(format!("{}/login?next=//evil.example", s.ui)).send().await.expect("get");
    let html = resp.text().await.expect("body");
    assert!(html.contains("name=\"next\" value=\"&#x2f;runs\"") && !html.contains("evil"), "unsafe next replaced");
}

/// A POST without the session's CSRF token (or with another one) is refused with 403
/// and changes nothing; with the token it works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_csrf_token_are_refused() {
    let s = setup().await;
    let (cookie, csrf) = login(&s).await;
    let estop_active = || async {
        let v: Value = s
            .http
            .get(format!("{}/v1/estop", s.api))
            .bearer_auth(TOKEN)
            .header("X-Tenant-ID", TENANT)
            .send()
            .await
            .expect("estop")
            .json()
            .await
            .expect("json");
        v["active"].as_bool().expect("active")
    };
    let form = [("reason", "drill"), ("confirm", "yes")];
    let resp = s.http.post(format!("{}/estop", s.ui)).header(COOKIE, &cookie).form(&form).send().await.expect("post");
    assert_eq!(resp.status(), 403, "no token");
    let wrong = [
        ("reason", "drill"),
        ("confirm", "yes"),
        ("_csrf", "0000000000000000000000000000000000000000000000000000000000000000"),
    ];
    let resp = s.http.post(format!("{}/estop", s.ui)).header(COOKIE, &cookie).form(&wrong).send().await.expect("post");
    assert_eq!(resp.status(), 403, "wrong token");
    let resp = s
        .http
        .post(format!("{}/estop", s.ui))
        .header(COOKIE, &cookie)
        .header("X-CSRF-Token", "nope")
        .form(&form)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 403, "wrong header token");
    assert!(!estop_active().await, "nothing happened");
    // Logout needs the token too.
    let resp = s.http.post(format!("{}/logout", s.ui)).header(COOKIE, &cookie).send().await.expect("post");
    assert_eq!(resp.status(), 403);
    // With the token (form field or htmx header) the same forms work.
    let ok = [("reason", "drill"), ("confirm", "yes"), ("_csrf", csrf.as_str())];
    let resp = s.http.post(format!("{}/estop", s.ui)).header(COOKIE, &cookie).form(&ok).send().await.expect("post");
    assert_eq!(resp.status(), 303);
    assert!(estop_active().await);
    let resp = s
        .http
        .post(format!("{}/estop/release", s.ui))
        .header(COOKIE, &cookie)
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 303);
    assert!(!estop_active().await);
    // Logout ends the session: the cookie no longer opens pages.
    let resp = s
        .http
        .post(format!("{}/logout", s.ui))
        .header(COOKIE, &cookie)
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 303);
    let resp = s.http.get(format!("{}/runs", s.ui)).header(COOKIE, &cookie).send().await.expect("get");
    assert_eq!(resp.status(), 303);
}

/// Script-like text from agents and from job fields is escaped on every page that shows
/// it, the pages forbid inline script (CSP), exports are downloads, and the token never
/// reaches the browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_like_content_is_inert() {
    let s = setup().await;
    let (cookie, _) = login(&s).await;
    let body = json!({"agent": "llm", "model": "m", "question": EVIL_QUESTION, "backend_url": "http://127.0.0.1:9"});
    let accepted: Value = s
        .http
        .post(format!("{}/v1/jobs/agentic-agent", s.api))
        .bearer_auth(TOKEN)
        .header("X-Tenant-ID", TENANT)
        .json(&body)
        .send()
        .await
        .expect("submit")
        .json()
        .await
        .expect("json");
    let id = accepted["job_id"].as_str().expect("job id").to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let job: Value = s
            .http
            .get(format!("{}/v1/jobs/{id}", s.api))
            .bearer_auth(TOKEN)
            .header("X-Tenant-ID", TENANT)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        if job["status"] == "succeeded" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "job never finished: {job}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for path in [format!("/runs/{id}"), "/runs".to_owned(), format!("/compare?ids={id}"), format!("/new?from={id}")] {
        let resp = s.http.get(format!("{}{path}", s.ui)).header(COOKIE, &cookie).send().await.expect("get");
        assert_eq!(resp.status(), 200, "{path}");
        let csp = resp.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let script_src = csp.split(';').map(str::trim).find(|d| d.starts_with("script-src")).unwrap_or_default();
        assert_eq!(script_src, "script-src 'self'", "{csp}");
        let html = resp.text().await.expect("body");
        for raw in [EVIL_ANSWER, EVIL_CASE, EVIL_QUESTION, "<script>alert", "<svg onload", "<img src=x", "<b>fact</b>"]
        {
            assert!(!html.contains(raw), "{path} contains raw {raw:?}");
        }
        assert!(!html.contains(TOKEN), "{path} leaks the token");
    }
    let detail = s.http.get(format!("{}/runs/{id}", s.ui)).header(COOKIE, &cookie).send().await.expect("get");
    let html = detail.text().await.expect("body");
    assert!(html.contains("&lt;script&gt;alert(&#x27;answer&#x27;)&lt;&#x2f;script&gt;"), "answer shown as text");
    assert!(html.contains("&lt;svg onload=alert(2)&gt;"), "case id shown as text");
    assert!(html.contains("&lt;b&gt;fact&lt;&#x2f;b&gt;"), "facts shown as text");
    // Every inline <script> is a JSON data block, never executable.
    for part in html.split("<script").skip(1) {
        let tag = part.split('>').next().unwrap_or_default();
        assert!(tag.contains("src=\"/static/") || tag.contains("type=\"application/json\""), "inline script: {tag}");
    }
    // htmx asks for the table only: a fragment, not a page.
    let frag = s
        .http
        .get(format!("{}/runs?kind=agentic-agent", s.ui))
        .header(COOKIE, &cookie)
        .header("HX-Request", "true")
        .header("HX-Target", "runs-table")
        .send()
        .await
        .expect("fragment")
        .text()
        .await
        .expect("body");
    assert!(frag.trim_start().starts_with("<div id=\"runs-table\">") && !frag.contains("<html"), "{frag}");
    assert!(frag.contains(&id[..8]));
    // The live view proxies the API's event stream; Last-Event-ID resumes after an event.
    let live = |last: Option<String>| {
        let mut req = s.http.get(format!("{}/runs/{id}/live", s.ui)).header(COOKIE, &cookie);
        if let Some(l) = last {
            req = req.header("Last-Event-ID", l);
        }
        async move { req.send().await.expect("live").text().await.expect("stream") }
    };
    let all = live(None).await;
    let ids: Vec<String> = all
        .lines()
        .filter_map(|l| l.strip_prefix("id: ").or_else(|| l.strip_prefix("id:")))
        .map(str::to_owned)
        .collect();
    assert!(ids.len() >= 2, "events with ids: {all}");
    assert!(all.contains("event: end"), "the stream ends at the terminal state: {all}");
    let resumed = live(Some(ids[0].clone())).await;
    assert!(!resumed.lines().any(|l| l.trim_start_matches("id:").trim() == ids[0]), "{resumed}");
    assert!(resumed.lines().any(|l| l.trim_start_matches("id:").trim() == ids[1]), "{resumed}");
    assert!(!resumed.contains(TOKEN));
    let csv = s.http.get(format!("{}/runs/{id}/export.csv", s.ui)).header(COOKIE, &cookie).send().await.expect("csv");
    assert!(csv
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .starts_with("attachment"));
}

/// Embedded in the API server (`rune_api::serve_with`, what `rune serve` does): the UI
/// answers at `/` on the same port, calling the API over loopback, while `/v1`, the
/// probes and the API's JSON 404 are unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_in_the_api_server() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite://{}/jobs.db", dir.path().display());
    let store = rune_store::open(&db, &Default::default()).await.expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let env = |k: &str| (k == "RUNE_API_TOKENS").then(|| format!("{TENANT}:{TOKEN}"));
    let config = rune_api::ServerConfig::from_env(addr, false, env).expect("config");
    let base = format!("http://{addr}");
    let ui = rune_ui::router(rune_ui::UiConfig { api_base_url: base.clone(), ..Default::default() }).expect("ui");
    tokio::spawn(async move {
        let _ =
            rune_api::serve_with(listener, config, store, Arc::new(EvilRunner), Some(ui), std::future::pending()).await;
    });
    let http = reqwest::Client::builder().redirect(Policy::none()).build().expect("client");
    let mut ready = false;
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "server up");
    let resp = http.get(format!("{base}/")).send().await.expect("get /");
    assert_eq!(resp.status(), 303, "the UI answers at /");
    let resp = http.get(format!("{base}/login")).send().await.expect("login");
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.expect("body").contains("Log in to RUNE"));
    let resp = http.get(format!("{base}/static/htmx.min.js")).send().await.expect("asset");
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.expect("body").len() > 40_000, "vendored htmx served from the binary");
    assert_eq!(
        http.get(format!("{base}/v1/jobs")).send().await.expect("api").status(),
        401,
        "the API still guards /v1"
    );
    let resp = http.get(format!("{base}/no/such/page")).send().await.expect("404");
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.expect("the API's JSON 404");
    assert_eq!(body["code"], "not_found");
}
