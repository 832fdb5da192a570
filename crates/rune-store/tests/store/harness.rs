//! Fresh databases for each test: an SQLite file in a temp dir, or a new PostgreSQL
//! database on the test server, plus raw SQL access for tampering.

use rune_store::{OpenOptions, Store};
use std::path::PathBuf;
use std::sync::Arc;

/// One test's database.
pub struct Harness {
    pub store: Arc<dyn Store>,
    pub url: String,
    pub dir: tempfile::TempDir,
    pg_admin: Option<tokio_postgres::Client>,
    pub is_pg: bool,
}

impl Harness {
    pub fn options(&self) -> OpenOptions {
        OpenOptions { backup_dir: Some(self.dir.path().join("backups")), ..Default::default() }
    }

    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/jobs.db", dir.path().display());
        let options = OpenOptions { backup_dir: Some(dir.path().join("backups")), ..Default::default() };
        let store = rune_store::open(&url, &options).await.expect("open sqlite");
        Self { store, url, dir, pg_admin: None, is_pg: false }
    }

    /// A new, empty PostgreSQL database, or `None` (skip) when no server is configured.
    pub async fn postgres() -> Option<Self> {
        let (url, client) = fresh_pg_database().await?;
        let dir = tempfile::tempdir().expect("tempdir");
        let options = OpenOptions { backup_dir: Some(dir.path().join("backups")), ..Default::default() };
        let store = rune_store::open(&url, &options).await.expect("open postgres");
        Some(Self { store, url, dir, pg_admin: Some(client), is_pg: true })
    }

    /// Reopens the store (after raw tampering or schema changes).
    pub async fn reopen(&self, options: &OpenOptions) -> rune_store::Result<Arc<dyn Store>> {
        rune_store::open(&self.url, options).await
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.dir.path().join("jobs.db")
    }

    /// Runs raw SQL on the database behind the store's back.
    pub async fn exec(&self, sql: &str) {
        match &self.pg_admin {
            Some(c) => c.batch_execute(sql).await.expect("raw pg sql"),
            None => {
                let conn = rusqlite::Connection::open(self.sqlite_path()).expect("raw open");
                conn.busy_timeout(std::time::Duration::from_secs(10)).expect("busy");
                conn.execute_batch(sql).expect("raw sqlite sql");
            }
        }
    }
}

/// Creates `rune_t_<random>` on the server named by `RUNE_TEST_POSTGRES_URL` and
/// returns its URL and an admin client connected to it.
pub async fn fresh_pg_database() -> Option<(String, tokio_postgres::Client)> {
    let base = match std::env::var("RUNE_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("RUNE_TEST_POSTGRES_URL is not set: CI must run the PostgreSQL half of the store suite (scripts/test.sh starts a server)");
            }
            eprintln!("skipping PostgreSQL case: RUNE_TEST_POSTGRES_URL is not set (scripts/test.sh starts a server)");
            return None;
        }
    };
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await.expect("connect to test postgres");
    tokio::spawn(conn);
    let name = format!("rune_t_{}", uuid::Uuid::new_v4().simple());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
    let url = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => format!("{}/{name}", &base[..i]),
        _ => format!("{base}/{name}"),
    };
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect to new db");
    tokio::spawn(conn);
    Some((url, admin))
}
