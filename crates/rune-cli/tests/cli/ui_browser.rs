//! The web UI in a real browser: headless Chromium driven over WebDriver (chromedriver,
//! through the `fantoccini` client) against a real `rune serve` with authentication on,
//! which embeds the UI at `/`, and a real `rune sim-llm` as the model server.
//!
//! One journey, in order: log in; launch a benchmark from the New run form (models
//! listed from the backend, cost estimate, confirmation when the gate asks); watch it
//! finish live on the run page; re-run it; compare the two runs; create, suspend and
//! resume a schedule; trigger and release the E-Stop (with its banner on every page).
//! A screenshot of each page goes to `target/ui-screenshots/` (or
//! `$RUNE_UI_SCREENSHOTS`), which CI keeps as an artifact.
//!
//! Without chromium and chromedriver the test is skipped with a loud message, except in
//! CI (`CI=true`), where that is a failure.

use crate::util::Home;
use fantoccini::{Client, ClientBuilder, Locator};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TENANT: &str = "alpha";
const TOKEN: &str = "alpha-token-0123456789abcdef0123456789";

/// A child process killed on drop.
struct Proc {
    child: Child,
    addr: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `cmd` and waits for the `http://ADDR` it announces on stderr.
fn spawn_announced(mut cmd: Command) -> Proc {
    let mut child = cmd.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("http://") {
                let addr: String = line[i + 7..].chars().take_while(|c| !c.is_whitespace() && *c != ')').collect();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).expect("process announced its address");
    Proc { child, addr }
}

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|n| std::env::split_paths(&path).map(|d| d.join(n)).find(|p| p.is_file()))
}

/// Chromium and chromedriver, or `None` (after a loud message) when they are missing
/// outside CI. In CI a missing browser fails the test.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = std::env::var_os("RUNE_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| which(&["chromium", "chromium-browser", "google-chrome"]));
    let driver = which(&["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            let msg = "chromium and chromedriver are needed for the UI browser test (apt-get install chromium chromium-driver)";
            assert!(std::env::var("CI").map(|v| v != "true").unwrap_or(true), "{msg}");
            eprintln!("\n**********\nSKIPPED ui_browser: {msg}\n**********\n");
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn screenshots_dir() -> PathBuf {
    let dir = std::env::var_os("RUNE_UI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots"));
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

async fn shot(c: &Client, dir: &Path, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("save screenshot");
}

async fn text(c: &Client, css: &str) -> String {
    // htmx may swap the element between finding and reading it: find it again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if let Ok(t) = e.text().await {
                return t;
            }
        }
        assert!(Instant::now() < deadline, "no readable element {css}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn path(c: &Client) -> String {
    let url = c.current_url().await.expect("url");
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

async fn click(c: &Client, css: &str) {
    // As in `text`: a swapped element is found again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if e.click().await.is_ok() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "no clickable element {css}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fill(c: &Client, css: &str, value: &str) {
    let e = c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css(css)).await.expect(css);
    e.clear().await.expect("clear");
    e.send_keys(value).await.expect("type");
}

/// Waits until `cond` holds, polling; fails with `what` after `secs`.
async fn until<F, Fut>(secs: u64, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Submits the New run form (estimate, then launch, confirming if the gate asks) and
/// returns the new run's id.
async fn launch(c: &Client, sim: &str, dir: &Path) -> String {
    c.goto(&format!("{}/new", base(c).await)).await.expect("new");
    fill(c, "#backend_url", &format!("http://{sim}")).await;
    // Leaving the field triggers the model picker (htmx → UI → API → sim-llm).
    click(c, "#repetitions").await;
    until(20, "models listed from the backend", || async {
        c.find(Locator::Css("#models-status")).await.ok().is_some()
            && text(c, "#models-status").await.contains("model(s)")
    })
    .await;
    let options = c.find_all(Locator::Css("#model-list option")).await.expect("options");
    assert_eq!(options.len(), 1, "sim-llm serves one model");
    assert_eq!(options[0].attr("value").await.expect("value").as_deref(), Some("sim-llama"));
    fill(c, "#model", "sim-llama").await;
    click(c, "#estimate-button").await;
    let estimate = text(c, "#estimate").await;
    assert!(estimate.contains("Projected cost") && estimate.contains("confidence"), "{estimate}");
    shot(c, dir, "03-new-run-estimate").await;
    let url = c.find(Locator::Css("#backend_url")).await.expect("url").prop("value").await.expect("value");
    assert_eq!(url.as_deref(), Some(format!("http://{sim}").as_str()), "values kept across steps");
    if c.find(Locator::Css("#confirm")).await.is_ok() {
        // The gate asks for confirmation (confidence or spend): tick the box.
        assert!(text(c, "#gate-reasons").await.contains("confidence"));
        click(c, "#confirm").await;
        shot(c, dir, "04-new-run-confirm").await;
    }
    click(c, "#launch-button").await;
    until(20, "the run page", || async { path(c).await.starts_with("/runs/") }).await;
    text(c, "#run-id").await
}

async fn base(c: &Client) -> String {
    let url = c.current_url().await.expect("url");
    format!(
        "{}://{}",
        url.scheme(),
        url.host_str().zip(url.port()).map(|(h, p)| format!("{h}:{p}")).unwrap_or_default()
    )
}

/// Waits on the run page until the live view reports a terminal state (the page's
/// script reloads itself after the stream's `end` event; no reload by the test).
async fn watch_until_finished(c: &Client) -> bool {
    let mut saw_live = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(live) = c.find(Locator::Css("#live")).await {
            match live.attr("data-terminal").await.ok().flatten().as_deref() {
                Some("true") => return saw_live,
                Some(_) => saw_live = true,
                None => {}
            }
        }
        assert!(Instant::now() < deadline, "the run never finished in the browser");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The whole journey (see the module docs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_journey_in_headless_chromium() {
    let Some((chromium, chromedriver)) = browser() else { return };
    let dir = screenshots_dir();
    let home = Home::new();
    let mut serve = home.cmd(&["serve", "--port", "0"]);
    serve
        .env("RUNE_API_TOKENS", format!("{TENANT}:{TOKEN}"))
        .env("RUNE_RATE_LIMIT_RPS", "0")
        .env("RUNE_SHUTDOWN_GRACE_SECONDS", "0")
        .env_remove("RUNE_API_HOST")
        .env_remove("RUNE_API_PORT")
        .env_remove("RUNE_API_AUTH_DISABLED")
        .env_remove("RUNE_NO_UI");
    let api = spawn_announced(serve);
    // Slow enough (12 cases × ~0.6 s) that the run is still going when its page opens.
    let sim = spawn_announced(home.cmd(&[
        "sim-llm",
        "--port",
        "0",
        "--ttft-ms",
        "20",
        "--itl-ms",
        "10",
        "--output-tokens",
        "60",
        "--models",
        "sim-llama",
    ]));
    let port = free_port();
    let driver = Proc {
        child: Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver"),
        addr: format!("127.0.0.1:{port}"),
    };
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1366,1000"]
        }),
    );
    let mut client = None;
    for _ in 0..100 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://{}", driver.addr))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let c = client.expect("chromedriver session");
    let ui = format!("http://{}", api.addr);

    // Log in: the first page redirects to the login form.
    c.goto(&format!("{ui}/runs")).await.expect("goto");
    assert!(path(&c).await.starts_with("/login"), "redirected to login");
    shot(&c, &dir, "01-login").await;
    fill(&c, "#tenant", TENANT).await;
    fill(&c, "#token", TOKEN).await;
    click(&c, "#login-submit").await;
    until(20, "the runs page after login", || async { path(&c).await == "/runs" }).await;
    assert!(text(&c, "main").await.contains("No runs match"), "empty state");
    shot(&c, &dir, "02-runs-empty").await;

    // Launch a benchmark against sim-llm and watch it finish live.
    let first = launch(&c, &sim.addr, &dir).await;
    let saw_live = watch_until_finished(&c).await;
    assert!(saw_live, "the run page was open while the run was still going");
    assert!(text(&c, ".status").await.contains("succeeded"));
    let events = c.find_all(Locator::Css("#events li")).await.expect("events");
    assert!(events.len() >= 3, "events recorded: {}", events.len());
    let cases = c.find_all(Locator::Css("#cases tbody tr")).await.expect("cases");
    assert!(cases.len() >= 12, "per-case scores: {}", cases.len());
    assert!(text(&c, "#stat-score").await.ends_with('%'));
    shot(&c, &dir, "05-run-detail").await;

    // Re-run it: a second run with the same configuration.
    click(&c, "#rerun").await;
    until(20, "the second run's page", || async {
        path(&c).await.starts_with("/runs/") && !path(&c).await.contains(&first)
    })
    .await;
    let second = text(&c, "#run-id").await;
    watch_until_finished(&c).await;

    // Compare the two runs from the runs list.
    c.goto(&format!("{ui}/runs")).await.expect("goto");
    for id in [&first, &second] {
        click(&c, &format!("input[name=ids][value=\"{id}\"]")).await;
    }
    shot(&c, &dir, "06-runs").await;
    click(&c, "#compare-button").await;
    until(20, "the compare page", || async { path(&c).await.starts_with("/compare?") }).await;
    let table = text(&c, "#compare-table").await;
    assert!(table.contains(&first[..8]) && table.contains(&second[..8]), "{table}");
    assert!(table.contains("Verdict"));
    assert!(text(&c, "#leaderboard").await.contains("sim-llama"));
    shot(&c, &dir, "07-compare").await;

    // A schedule: create, suspend, resume.
    c.goto(&format!("{ui}/schedules")).await.expect("goto");
    fill(&c, "#schedule-name", "nightly-sim").await;
    fill(&c, "#schedule-cron", "0 3 * * *").await;
    let request = format!(
        "{{\"backend_url\": \"http://{}\", \"model\": \"sim-llama\", \"suite\": \"sre-basics\", \"agent\": \"llm\"}}",
        sim.addr
    );
    fill(&c, "#schedule-request", &request).await;
    click(&c, "#create-schedule").await;
    let state = || async { text(&c, "tr[data-schedule=\"nightly-sim\"] .schedule-state").await };
    until(20, "the new schedule", || async { state().await.contains("active") }).await;
    shot(&c, &dir, "08-schedules").await;
    click(&c, "tr[data-schedule=\"nightly-sim\"] button.suspend").await;
    until(20, "the schedule suspended", || async { state().await.contains("suspended") }).await;
    shot(&c, &dir, "09-schedule-suspended").await;
    click(&c, "tr[data-schedule=\"nightly-sim\"] button.resume").await;
    until(20, "the schedule resumed", || async { state().await.contains("active") }).await;

    // The E-Stop: trigger with a reason; the banner shows on every page; release.
    c.goto(&format!("{ui}/estop")).await.expect("goto");
    fill(&c, "#estop-reason", "browser drill").await;
    click(&c, "#estop-confirm").await;
    click(&c, "#estop-trigger").await;
    let banner = text(&c, "#estop-banner").await;
    assert!(banner.contains("E-STOP ACTIVE") && banner.contains("browser drill"), "{banner}");
    shot(&c, &dir, "10-estop-active").await;
    c.goto(&format!("{ui}/schedules")).await.expect("goto");
    assert!(text(&c, "#estop-banner").await.contains("E-STOP ACTIVE"), "banner on every page");
    assert!(state().await.contains("estop"), "the E-Stop suspended the schedule");
    c.goto(&format!("{ui}/estop")).await.expect("goto");
    click(&c, "#estop-release").await;
    c.accept_alert().await.expect("confirm the release");
    until(20, "the E-Stop released", || async { c.find(Locator::Css("#estop-banner")).await.is_err() }).await;
    assert!(text(&c, "#estop-status").await.contains("Not engaged"));
    shot(&c, &dir, "11-estop-released").await;

    // The remaining pages render.
    c.goto(&format!("{ui}/system")).await.expect("goto");
    assert_eq!(text(&c, "#api-ready").await, "ok");
    shot(&c, &dir, "12-system").await;
    c.goto(&format!("{ui}/load")).await.expect("goto");
    shot(&c, &dir, "13-load").await;
    c.goto(&format!("{ui}/runs/{first}")).await.expect("goto");
    c.execute("document.documentElement.setAttribute('data-theme', 'light')", vec![]).await.expect("theme");
    shot(&c, &dir, "14-run-detail-light").await;
    c.close().await.expect("close the browser");
    drop(driver);
    eprintln!("UI screenshots saved in {}", dir.display());
}
