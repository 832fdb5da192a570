//! An in-process server on 127.0.0.1:0 with its own database, and helpers to call it.

use rune_api::runner::{BuiltinRunner, JobContext, JobFailure, JobRunner};
use rune_core::{JobKind, JobRecord};
use rune_store::Store;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

pub const ALPHA_TOKEN: &str = "alpha-token-0123456789abcdef0123456789";
pub const BETA_TOKEN: &str = "beta-token-0123456789abcdef01234567890";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub fn postgres_available() -> bool {
    match std::env::var("RUNE_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => true,
        _ => {
            assert!(
                std::env::var("CI").map(|v| v != "true").unwrap_or(true),
                "CI must set RUNE_TEST_POSTGRES_URL (scripts/test.sh starts a server)"
            );
            eprintln!("skipping PostgreSQL case: RUNE_TEST_POSTGRES_URL is not set");
            false
        }
    }
}

/// Runs `agentic-agent` jobs as a real subprocess (`sleep 600`) that only ends when
/// cancelled, to prove cancellation kills what a job started; everything else as the
/// built-in runner does.
pub struct TestRunner;

/// Where the test runner writes the pid of the subprocess it started.
pub fn pid_file(job: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("rune-test-child-{job}.pid"))
}

#[async_trait::async_trait]
impl JobRunner for TestRunner {
    fn supports(&self, kind: JobKind) -> bool {
        matches!(kind, JobKind::CostEstimate | JobKind::AgenticAgent)
    }

    async fn run(&self, job: &JobRecord, ctx: JobContext) -> Result<Value, JobFailure> {
        if job.kind != JobKind::AgenticAgent {
            return BuiltinRunner.run(job, ctx).await;
        }
        let mut child = tokio::process::Command::new("sleep")
            .arg("600")
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| JobFailure(e.to_string()))?;
        let pid = child.id().unwrap_or(0);
        std::fs::write(pid_file(job.job_id.as_str()), pid.to_string()).map_err(|e| JobFailure(e.to_string()))?;
        ctx.progress("agent subprocess running").await;
        let status = child.wait().await.map_err(|e| JobFailure(e.to_string()))?;
        Err(JobFailure(format!("agent exited: {status}")))
    }
}

pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub engine: Engine,
    pub dir: tempfile::TempDir,
    pub db_url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start(engine: Engine, extra_env: &[(&str, &str)]) -> Self {
        let db_url = match engine {
            Engine::Postgres => Some(fresh_pg_database().await),
            Engine::Sqlite => None,
        };
        Self::start_on(engine, db_url, extra_env).await
    }

    /// A server on an existing database (`None`: a new SQLite file), e.g. a second
    /// replica sharing a PostgreSQL queue.
    pub async fn start_on(engine: Engine, db_url: Option<String>, extra_env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let db_url = db_url.unwrap_or_else(|| format!("sqlite://{}/jobs.db", dir.path().display()));
        let options = rune_store::OpenOptions { backup_dir: Some(dir.path().join("backups")), ..Default::default() };
        let store = rune_store::open(&db_url, &options).await.expect("open store");
        let mut env: HashMap<String, String> = [
            ("RUNE_API_TOKENS", format!("alpha:{ALPHA_TOKEN},beta:{BETA_TOKEN}")),
            ("RUNE_SCHEDULER_TICK_SECONDS", "0.1".into()),
            ("RUNE_JOB_LEASE_SECONDS", "3".into()),
            ("RUNE_RATE_LIMIT_RPS", "0".into()),
            ("RUNE_SHUTDOWN_GRACE_SECONDS", "1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in extra_env {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = rune_api::ServerConfig::from_env(addr, false, |k| env.get(k).cloned()).expect("config");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server_store = store.clone();
        let handle = tokio::spawn(async move {
            rune_api::serve(listener, config, server_store, Arc::new(TestRunner), async move {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
        Self { base: format!("http://{addr}"), http: reqwest::Client::new(), store, engine, dir, db_url, stop, handle }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(std::time::Duration::from_secs(20), self.handle).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request as tenant `alpha`.
    pub fn alpha(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(ALPHA_TOKEN).header("X-Tenant-ID", "alpha")
    }

    /// A request as tenant `beta`.
    pub fn beta(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(BETA_TOKEN).header("X-Tenant-ID", "beta")
    }

    /// A typed client as `alpha`.
    pub fn client(&self) -> rune_client::RuneClient {
        rune_client::RuneClient::new(rune_client::ClientConfig {
            base_url: self.base.clone(),
            token: Some(ALPHA_TOKEN.into()),
            tenant: "alpha".into(),
            ..Default::default()
        })
        .expect("client")
    }

    /// Raw SQL behind the server's back (test set-up only).
    pub async fn exec(&self, sql: &str) {
        match self.engine {
            Engine::Sqlite => {
                let conn = rusqlite::Connection::open(self.dir.path().join("jobs.db")).expect("open");
                conn.busy_timeout(std::time::Duration::from_secs(10)).expect("busy");
                conn.execute_batch(sql).expect("sql");
            }
            Engine::Postgres => {
                let (client, conn) = tokio_postgres::connect(&self.db_url, tokio_postgres::NoTls).await.expect("pg");
                let h = tokio::spawn(conn);
                client.batch_execute(sql).await.expect("pg sql");
                drop(client);
                let _ = h.await;
            }
        }
    }
}

async fn fresh_pg_database() -> String {
    let base = std::env::var("RUNE_TEST_POSTGRES_URL").expect("postgres url");
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await.expect("connect");
    let h = tokio::spawn(conn);
    let name = format!("rune_api_{}", uuid::Uuid::new_v4().simple());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create db");
    drop(client);
    let _ = h.await;
    let i = base.rfind('/').expect("db in url");
    format!("{}/{name}", &base[..i])
}
