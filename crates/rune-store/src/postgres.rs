//! The PostgreSQL engine, for teams that run several RUNE replicas against one database.
//!
//! [`PgStore`] owns a `deadpool-postgres` pool of plain (`NoTls`) connections and maps
//! every [`Store`] operation onto it with the same columns, messages and outcomes as
//! [`crate::sqlite`], which is the reference. It must not hold schema knowledge of its
//! own: DDL comes from [`crate::migrations`] (`Dialect::Postgres`) only.
//!
//! # The queue
//!
//! Several replicas claim from one `jobs` table. [`Store::claim_next_job`] is one
//! statement, `UPDATE … WHERE job_id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1)`: a
//! claimer skips rows another claimer has locked instead of waiting for them, so two
//! replicas never get the same job and never queue behind each other. Lease recovery
//! locks the expired rows the same way, so it never fights a live claim either.
//!
//! # Advisory locks
//!
//! Two session-level advisory locks, each held on a dedicated connection outside the
//! pool (a lock lives exactly as long as its session, so a crashed holder releases it):
//!
//! - [`MIGRATION_LOCK_KEY`], exclusive, for the whole of [`Store::migrate_to`] and
//!   [`Store::rollback_to`]: two replicas starting at once never migrate together; the
//!   second waits, then finds nothing left to do. A restore takes it too (as a
//!   transaction-level lock), so it never interleaves with a migration.
//! - [`RESTORE_LOCK_KEY`]: servers hold it *shared* for their lifetime
//!   ([`PgStore::hold_server_lock`]); a restore needs it *exclusive*
//!   ([`PgStore::try_exclusive_restore_lock`]) and is refused while any server runs.
//!   A server that starts during a restore waits until the restore is over.
//!
//! # Backups and restores
//!
//! A backup is a logical archive ([`crate::archive`]) read from one exported snapshot,
//! so every table shows the same instant. A restore replaces every table in one
//! transaction: a failure at any point leaves the database as it was.

use crate::backup::Manifest;
use crate::error::{Result, StoreError};
use crate::migrations::{self, AppliedMigration, Dialect, Migration};
use crate::rows::{self, JOB_COLUMNS};
use crate::url::{mask_password, DatabaseUrl};
use crate::{
    CreateOutcome, Engine, JobCounts, JobPage, JobQuery, NewJob, OpenOptions, RecoveryReport, ScheduleSpec,
    SchemaStatus, SortOrder, StatusUpdate, Store, UpdateOutcome, MAX_PAGE_SIZE, RUNE_VERSION,
};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime};
use rune_core::records::{
    ArtifactKind, ArtifactMeta, ChainState, ConcurrencyPolicy, JobEvent, NewJobEvent, ScheduleRecord,
};
use rune_core::{JobId, JobRecord, JobStatus, TenantId, Timestamp};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, GenericClient, IsolationLevel, NoTls, Row, Statement, Transaction};

/// Pooled connections per store unless `RUNE_PG_POOL_MAX` says otherwise: enough for
/// a server's request handlers and workers, small enough that a few replicas fit in
/// PostgreSQL's default `max_connections` (100).
pub const DEFAULT_POOL_MAX: usize = 16;
/// Environment variable overriding [`DEFAULT_POOL_MAX`].
pub const POOL_MAX_ENV: &str = "RUNE_PG_POOL_MAX";
/// Advisory lock key serialising migrations and rollbacks across replicas ("RUNEMIGR").
pub const MIGRATION_LOCK_KEY: i64 = i64::from_be_bytes(*b"RUNEMIGR");
/// Advisory lock key servers hold shared and restores need exclusive ("RUNERSTR").
pub const RESTORE_LOCK_KEY: i64 = i64::from_be_bytes(*b"RUNERSTR");
/// Rows buffered between an export reader and its consumer; when full, the reader
/// waits (it never buffers a whole table).
const EXPORT_CHANNEL_CAPACITY: usize = 1024;
/// Rows fetched from the server per round trip while exporting.
const EXPORT_FETCH_ROWS: i32 = 1000;
/// Rows per batch handed from the archive reader thread to a restore; the channel holds
/// [`RESTORE_CHANNEL_BATCHES`] batches, then the reader waits.
const RESTORE_BATCH: usize = 500;
/// Batches buffered between the archive reader and the restore transaction.
const RESTORE_CHANNEL_BATCHES: usize = 4;
/// How long opening a connection may take (unless the URL sets `connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an operation waits for a free pooled connection before failing.
const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest accepted `RUNE_PG_POOL_MAX`.
const POOL_MAX_LIMIT: usize = 1000;

/// A connection outside the pool, for session-level advisory locks. PostgreSQL releases
/// every lock a session holds when the session ends, so a lock held here lives exactly
/// as long as this value (or the process).
struct Session {
    client: Client,
    /// Drives the connection; it ends by itself once `client` is dropped (the
    /// connection then closes and the server releases the session's locks).
    _driver: tokio::task::JoinHandle<()>,
}

/// A column's PostgreSQL type, as far as archives are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ColType {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Bool,
    Text,
    Bytea,
    /// A type archives cannot hold (named for the error message).
    Other(String),
}

impl ColType {
    /// From a `pg_type.typname` (as `information_schema.columns.udt_name` shows it).
    fn from_udt_name(name: &str) -> Self {
        match name {
            "int2" => ColType::Int2,
            "int4" => ColType::Int4,
            "int8" => ColType::Int8,
            "float4" => ColType::Float4,
            "float8" => ColType::Float8,
            "bool" => ColType::Bool,
            "text" | "varchar" | "bpchar" | "name" => ColType::Text,
            "bytea" => ColType::Bytea,
            other => ColType::Other(other.to_owned()),
        }
    }

    /// From the type of a result column.
    fn of(ty: &Type) -> Self {
        Self::from_udt_name(ty.name())
    }
}

/// Column name → type of one table.
type ColumnTypes = HashMap<String, ColType>;

/// A [`Store`] on a PostgreSQL server.
pub struct PgStore {
    /// Connections for every ordinary operation; bounded by `RUNE_PG_POOL_MAX`.
    pool: Pool,
    /// The parsed URL, for dedicated lock sessions outside the pool.
    config: tokio_postgres::Config,
    /// The URL with its password masked, for messages.
    shown_url: String,
    /// Column types per table for [`Store::import_rows`], read from the catalog on first
    /// use and dropped whenever this store changes the schema. A `std` mutex: it is held
    /// only to look up or insert an `Arc`, never across an `.await`.
    column_types: Mutex<HashMap<String, Arc<ColumnTypes>>>,
    /// The session holding [`RESTORE_LOCK_KEY`] exclusively, between
    /// [`PgStore::try_exclusive_restore_lock`] and [`PgStore::release_restore_lock`].
    /// `std` mutex: only taken to swap the `Option`.
    restore_session: Mutex<Option<Session>>,
    /// The session holding [`RESTORE_LOCK_KEY`] shared for the store's lifetime once
    /// [`PgStore::hold_server_lock`] ran; dropped (and the lock released) with the store.
    server_session: Mutex<Option<Session>>,
    /// While a backup runs: the snapshot (from `pg_export_snapshot()`) every export
    /// reads, so all tables of the archive come from one instant. Set and cleared by
    /// [`Store::backup_to`] only; `std` mutex, only taken to copy or swap the id.
    export_snapshot: Mutex<Option<String>>,
    /// Serialises backups on this store (each one owns `export_snapshot` while it
    /// runs); a Tokio mutex because it is held across the whole export.
    backup_turn: tokio::sync::Mutex<()>,
}

impl PgStore {
    /// Connects (once, to fail fast with a clear message) without version checks;
    /// [`crate::open`] adds the checks and migrations. An empty database is fine: its
    /// schema version is 0.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidUrl`] for a URL that is not `postgres://…` or a bad
    /// `RUNE_PG_POOL_MAX`; [`StoreError::Path`] naming the (masked) URL when the server
    /// cannot be reached or refuses the connection.
    pub async fn open_raw(url: &DatabaseUrl, _options: &OpenOptions) -> Result<Self> {
        let DatabaseUrl::Postgres { url: raw } = url else {
            return Err(StoreError::InvalidUrl { url: url.to_string(), reason: "not a postgres:// URL".into() });
        };
        let shown_url = mask_password(raw);
        let mut config: tokio_postgres::Config =
            raw.parse().map_err(|e: tokio_postgres::Error| StoreError::InvalidUrl {
                url: shown_url.clone(),
                reason: format!("{e}; expected postgres://user:password@host:5432/database"),
            })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("rune");
        }
        let max_size = pool_max_from_env(&shown_url)?;
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(max_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Pool(format!("cannot build the connection pool: {e}")))?;
        let store = Self {
            pool,
            config,
            shown_url,
            column_types: Mutex::new(HashMap::new()),
            restore_session: Mutex::new(None),
            server_session: Mutex::new(None),
            export_snapshot: Mutex::new(None),
            backup_turn: tokio::sync::Mutex::new(()),
        };
        // Fail now, with the URL in the message, rather than on the first request.
        let client = store.pool.get().await.map_err(|e| store.connect_error(&pool_error_text(&e)))?;
        client.simple_query("SELECT 1").await.map_err(|e| store.connect_error(&describe(&e)))?;
        Ok(store)
    }

    /// Takes [`RESTORE_LOCK_KEY`] exclusively on a dedicated session, without waiting:
    /// true when taken (or already held by this store), false while any server holds it
    /// shared or another restore holds it. Held until [`PgStore::release_restore_lock`]
    /// or until the store is dropped.
    pub async fn try_exclusive_restore_lock(&self) -> Result<bool> {
        if lock_slot(&self.restore_session)?.is_some() {
            return Ok(true);
        }
        let session = self.connect_session().await?;
        let got: bool =
            session.client.query_one("SELECT pg_try_advisory_lock($1)", &[&RESTORE_LOCK_KEY]).await?.try_get(0)?;
        if !got {
            return Ok(false);
        }
        let mut slot = lock_slot(&self.restore_session)?;
        if slot.is_none() {
            *slot = Some(session);
        }
        Ok(true)
    }

    /// Releases the lock taken by [`PgStore::try_exclusive_restore_lock`] (a no-op when
    /// not held), so servers may start again.
    pub async fn release_restore_lock(&self) -> Result<()> {
        let session = lock_slot(&self.restore_session)?.take();
        if let Some(session) = session {
            // Closing the session would release it too; unlocking first makes the
            // release immediate rather than whenever the server notices the close.
            session.client.execute("SELECT pg_advisory_unlock($1)", &[&RESTORE_LOCK_KEY]).await?;
        }
        Ok(())
    }

    /// Declares this store a running server: holds [`RESTORE_LOCK_KEY`] shared, on a
    /// dedicated session, for the store's lifetime, so `rune db restore` refuses to run
    /// underneath it. Waits while a restore is in progress. Idempotent.
    ///
    /// If the server connection breaks, the lock is gone with it; the protocol protects
    /// against an operator's mistake, not against a partitioned server.
    pub async fn hold_server_lock(&self) -> Result<()> {
        if lock_slot(&self.server_session)?.is_some() {
            return Ok(());
        }
        let session = self.connect_session().await?;
        session.client.execute("SELECT pg_advisory_lock_shared($1)", &[&RESTORE_LOCK_KEY]).await?;
        let mut slot = lock_slot(&self.server_session)?;
        if slot.is_none() {
            *slot = Some(session);
        }
        Ok(())
    }

    /// Replaces the whole database with the contents of a logical archive (a PostgreSQL
    /// backup or any `rune db export` file), atomically: one transaction drops every RUNE
    /// table, recreates the schema at the archive's version, inserts every row and takes
    /// over the archive's database id. On any failure nothing changes.
    ///
    /// The archive is verified first (against `<archive>.manifest.json` when present).
    ///
    /// # Errors
    ///
    /// [`StoreError::InUse`] while a server holds the restore lock;
    /// [`StoreError::BadBackup`]/[`StoreError::BadArchive`] for a damaged archive or one
    /// newer than this binary.
    pub async fn restore_from_archive(&self, archive: &Path) -> Result<Manifest> {
        let manifest = if crate::backup::manifest_path(archive).is_file() {
            crate::backup::verify_backup_file(Engine::Postgres, archive).await?
        } else {
            crate::archive::manifest_of_archive(archive).await?
        };
        if manifest.schema_version > migrations::latest_version() {
            return Err(StoreError::BadBackup {
                path: archive.to_owned(),
                reason: format!(
                    "it has schema version {}, newer than this binary knows ({}); restore it with the RUNE version that wrote it",
                    manifest.schema_version,
                    migrations::latest_version()
                ),
            });
        }
        if !self.try_exclusive_restore_lock().await? {
            return Err(StoreError::InUse {
                holder: format!("a RUNE server or another restore holds the restore lock on {}", self.shown_url),
            });
        }
        let result = self.restore_locked(archive, &manifest).await;
        let released = self.release_restore_lock().await;
        self.schema_changed();
        result?;
        released?;
        Ok(manifest)
    }

    async fn restore_locked(&self, archive: &Path, manifest: &Manifest) -> Result<()> {
        let mut client = self.get().await?;
        let tx = client.transaction().await?;
        // Wait out (and then exclude) any migration; released at commit or rollback.
        tx.batch_execute(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")).await?;
        let all_tables: Vec<&str> =
            migrations::DATA_TABLES.iter().copied().chain(["rune_migrations", "rune_meta"]).collect();
        tx.batch_execute(&format!("DROP TABLE IF EXISTS {} CASCADE", all_tables.join(", "))).await?;
        tx.batch_execute(migrations::bookkeeping_sql(Dialect::Postgres)).await?;
        for m in migrations::pending(0, manifest.schema_version) {
            apply_up(&tx, m, false).await?;
        }

        let (sender, mut batches) = mpsc::channel(RESTORE_CHANNEL_BATCHES);
        let path = archive.to_owned();
        let reader = tokio::task::spawn_blocking(move || read_archive_rows(&path, &sender));
        let mut inserted: BTreeMap<String, u64> = BTreeMap::new();
        let inserting = async {
            let mut types: HashMap<String, ColumnTypes> = HashMap::new();
            while let Some((table, rows)) = batches.recv().await {
                if crate::sqlite::table_order_key(&table).is_none() {
                    return Err(StoreError::Conflict(format!("unknown table `{table}` in the archive")));
                }
                if !types.contains_key(&table) {
                    types.insert(table.clone(), load_column_types(&*tx, &table).await?);
                }
                let cols = types.get(&table).ok_or_else(|| StoreError::Worker("column types vanished".into()))?;
                let n = insert_rows(&tx, &table, cols, &rows).await?;
                *inserted.entry(table).or_default() += n;
            }
            Ok(())
        }
        .await;
        // On an insert failure the reader sees the channel closed and stops.
        drop(batches);
        let read = reader.await.map_err(|e| StoreError::Worker(e.to_string()))?;
        inserting?;
        read?;
        for (table, expected) in &manifest.table_counts {
            let got = inserted.get(table).copied().unwrap_or(0);
            if got != *expected {
                return Err(StoreError::BadArchive {
                    path: archive.to_owned(),
                    line: 0,
                    reason: format!(
                        "table `{table}`: the manifest lists {expected} rows but {got} were restored (duplicate keys, or the file changed during the restore); nothing was changed"
                    ),
                });
            }
        }
        let database_id = manifest.database_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        tx.execute(
            "INSERT INTO rune_meta (key, value) VALUES ('database_id', $1) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&database_id],
        )
        .await?;
        if migrations::tables_at(manifest.schema_version).contains(&"workflow_events") {
            reset_event_sequence(&*tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A pooled connection, keeping the server's own error when connecting fails.
    async fn get(&self) -> Result<Object> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(pg) => StoreError::Postgres(pg),
            other => StoreError::Pool(format!("{other} ({})", self.shown_url)),
        })
    }

    /// A new connection outside the pool, for a session-level advisory lock.
    async fn connect_session(&self) -> Result<Session> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(|e| self.connect_error(&describe(&e)))?;
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "PostgreSQL lock session ended with an error");
            }
        });
        Ok(Session { client, _driver: driver })
    }

    fn connect_error(&self, detail: &str) -> StoreError {
        StoreError::Path {
            path: PathBuf::from(&self.shown_url),
            reason: format!(
                "cannot connect to PostgreSQL: {detail}; check that the server is running and that the host, port, \
                 user, password and database name in --database-url / RUNE_DATABASE_URL are right"
            ),
        }
    }

    /// Forgets everything cached about the schema after this store changed it: prepared
    /// statements (their result shapes may have changed) and import column types.
    fn schema_changed(&self) {
        self.pool.manager().statement_caches.clear();
        if let Ok(mut cache) = self.column_types.lock() {
            cache.clear();
        }
    }

    /// Column types of `table`, from the cache or (with `refresh`, or on a miss) the
    /// catalog.
    async fn column_types_of(&self, client: &Client, table: &str, refresh: bool) -> Result<Arc<ColumnTypes>> {
        if !refresh {
            if let Some(t) = self.column_types.lock().ok().and_then(|c| c.get(table).cloned()) {
                return Ok(t);
            }
        }
        let types = Arc::new(load_column_types(client, table).await?);
        if let Ok(mut cache) = self.column_types.lock() {
            cache.insert(table.to_owned(), types.clone());
        }
        Ok(types)
    }

    async fn migrate_locked(client: &mut Client, target: i64) -> Result<Vec<i64>> {
        client.batch_execute(migrations::bookkeeping_sql(Dialect::Postgres)).await?;
        client
            .execute(
                "INSERT INTO rune_meta (key, value) VALUES ('database_id', $1) ON CONFLICT (key) DO NOTHING",
                &[&uuid::Uuid::new_v4().to_string()],
            )
            .await?;
        let current = current_version(&*client).await?;
        let mut applied = Vec::new();
        for m in migrations::pending(current, target) {
            let tx = client.transaction().await?;
            // Another process may have moved the schema while we waited for the lock.
            if current_version(&tx).await? >= m.version {
                continue;
            }
            apply_up(&tx, m, true).await?;
            tx.commit().await?;
            applied.push(m.version);
        }
        Ok(applied)
    }

    async fn rollback_locked(client: &mut Client, target: i64) -> Result<Vec<i64>> {
        let applied = applied_migrations(&*client).await?;
        let current = applied.last().map_or(0, |m| m.version);
        if target < 0 || target > current {
            return Err(StoreError::InvalidRollback {
                to: target,
                reason: format!("the database is at version {current}; the target must be between 0 and {current}"),
            });
        }
        let mut undone = Vec::new();
        for m in applied.iter().rev().filter(|m| m.version > target) {
            let tx = client.transaction().await?;
            if current_version(&tx).await? < m.version {
                continue;
            }
            run_statements(&tx, m.version, &m.name, &m.down_sql, true).await?;
            tx.execute("DELETE FROM rune_migrations WHERE version = $1", &[&m.version]).await?;
            tx.commit().await?;
            undone.push(m.version);
        }
        Ok(undone)
    }

    /// Runs `body` with [`MIGRATION_LOCK_KEY`] held on a dedicated session, then unlocks
    /// (closing the session would also release it, even after a failure).
    async fn with_migration_lock<T: Send>(
        &self,
        body: impl for<'c> FnOnce(&'c mut Client) -> BoxFuture<'c, T>,
    ) -> Result<T> {
        let mut session = self.connect_session().await?;
        session.client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY]).await?;
        let result = body(&mut session.client).await;
        self.schema_changed();
        let unlocked = session.client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY]).await;
        let out = result?;
        unlocked?;
        Ok(out)
    }

    fn export_stream_impl(&self, table: &str) -> Result<mpsc::Receiver<Result<Map<String, Value>>>> {
        let key = crate::sqlite::table_order_key(table)
            .ok_or_else(|| StoreError::Conflict(format!("unknown table `{table}`")))?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| StoreError::Worker(format!("export_stream needs a Tokio runtime: {e}")))?;
        let (tx, rx) = mpsc::channel(EXPORT_CHANNEL_CAPACITY);
        let pool = self.pool.clone();
        let sql = format!("SELECT * FROM {table} ORDER BY {key}");
        let table = table.to_owned();
        let snapshot = lock_snapshot(&self.export_snapshot)?.clone();
        // Detached on purpose: the task ends when the table is exhausted or when the
        // receiver is dropped (its next send fails), and it holds nothing but one pooled
        // connection until then.
        runtime.spawn(async move {
            if let Err(e) = export_rows(&pool, &table, &sql, snapshot.as_deref(), &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(rx)
    }
}

/// Streams `sql`'s rows into `out` from one consistent snapshot (the exported
/// `snapshot` of a running backup, when given), a page at a time.
async fn export_rows(
    pool: &Pool,
    table: &str,
    sql: &str,
    snapshot: Option<&str>,
    out: &mpsc::Sender<Result<Map<String, Value>>>,
) -> Result<()> {
    let mut client = pool.get().await?;
    let tx = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
    if let Some(id) = snapshot {
        // Snapshot ids are hex digits and dashes (`00000003-0000001B-1`); checked
        // because SET TRANSACTION SNAPSHOT takes no parameters.
        if !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(StoreError::Worker(format!("unexpected snapshot id `{id}`")));
        }
        tx.batch_execute(&format!("SET TRANSACTION SNAPSHOT '{id}'")).await?;
    }
    let stmt = tx.prepare(sql).await?;
    let portal = tx.bind(&stmt, &[]).await?;
    loop {
        let rows = tx.query_portal(&portal, EXPORT_FETCH_ROWS).await?;
        for row in &rows {
            if out.send(Ok(row_to_json(row, table)?)).await.is_err() {
                return Ok(());
            }
        }
        if rows.len() < EXPORT_FETCH_ROWS as usize {
            break;
        }
    }
    tx.commit().await?;
    Ok(())
}

fn lock_snapshot(m: &Mutex<Option<String>>) -> Result<MutexGuard<'_, Option<String>>> {
    m.lock().map_err(|_| StoreError::Worker("the export-snapshot mutex was poisoned by a panic".into()))
}

fn lock_slot(m: &Mutex<Option<Session>>) -> Result<MutexGuard<'_, Option<Session>>> {
    m.lock().map_err(|_| StoreError::Worker("a lock-session mutex was poisoned by a panic".into()))
}

fn pool_max_from_env(shown_url: &str) -> Result<usize> {
    match std::env::var(POOL_MAX_ENV) {
        Err(_) => Ok(DEFAULT_POOL_MAX),
        Ok(v) if v.trim().is_empty() => Ok(DEFAULT_POOL_MAX),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=POOL_MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(StoreError::InvalidUrl {
                url: shown_url.to_owned(),
                reason: format!(
                    "{POOL_MAX_ENV}=`{v}` is not a connection count; set it to a whole number from 1 to {POOL_MAX_LIMIT} (default {DEFAULT_POOL_MAX})"
                ),
            }),
        },
    }
}

use crate::error::pg_describe as describe;

fn pool_error_text(e: &PoolError) -> String {
    match e {
        PoolError::Backend(pg) => describe(pg),
        other => other.to_string(),
    }
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

fn map_unique(e: tokio_postgres::Error, what: String) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict(what)
    } else {
        StoreError::Postgres(e)
    }
}

/// A boxed future borrowing a connection, for work done under a lock.
type BoxFuture<'c, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'c>>;

/// Boxed parameters for statements built at run time.
type Params = Vec<Box<dyn ToSql + Sync + Send>>;

fn param_refs(values: &Params) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect()
}

fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn read_job(row: &Row) -> Result<JobRecord> {
    let (job_id, tenant_id, kind, status) =
        rows::job_ids(row.try_get(0)?, row.try_get(1)?, row.try_get::<_, &str>(2)?, row.try_get::<_, &str>(3)?)?;
    Ok(JobRecord {
        job_id,
        tenant_id,
        kind,
        status,
        request_json: row.try_get(4)?,
        result_json: row.try_get(5)?,
        error: row.try_get(6)?,
        message: row.try_get(7)?,
        created_at: Timestamp::from_epoch_seconds(row.try_get(8)?),
        updated_at: Timestamp::from_epoch_seconds(row.try_get(9)?),
        attempts: row.try_get::<_, Option<i32>>(10)?.unwrap_or(0).max(0) as u32,
        lease_owner: row.try_get(11)?,
        lease_expires_at: rows::ts_opt(row.try_get(12)?),
        started_at: rows::ts_opt(row.try_get(13)?),
        finished_at: rows::ts_opt(row.try_get(14)?),
        schedule_id: row.try_get(15)?,
    })
}

fn read_jobs(rows: &[Row]) -> Result<Vec<JobRecord>> {
    rows.iter().map(read_job).collect()
}

async fn get_job_on<C: GenericClient + Sync>(c: &C, id: &str) -> Result<Option<JobRecord>> {
    let row = c.query_opt(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1"), &[&id]).await?;
    row.as_ref().map(read_job).transpose()
}

async fn table_exists<C: GenericClient + Sync>(c: &C, table: &str) -> Result<bool> {
    Ok(c.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relname = $1 AND c.relkind IN ('r', 'p'))",
        &[&table],
    )
    .await?
    .try_get(0)?)
}

async fn current_version<C: GenericClient + Sync>(c: &C) -> Result<i64> {
    if !table_exists(c, "rune_migrations").await? {
        return Ok(0);
    }
    Ok(c.query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM rune_migrations", &[]).await?.try_get(0)?)
}

async fn applied_migrations<C: GenericClient + Sync>(c: &C) -> Result<Vec<AppliedMigration>> {
    if !table_exists(c, "rune_migrations").await? {
        return Ok(Vec::new());
    }
    let rows = c
        .query(
            "SELECT version, name, checksum, down_sql, applied_at, applied_by FROM rune_migrations ORDER BY version",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AppliedMigration {
                version: r.try_get(0)?,
                name: r.try_get(1)?,
                checksum: r.try_get(2)?,
                down_sql: r.try_get(3)?,
                applied_at: r.try_get(4)?,
                applied_by: r.try_get(5)?,
            })
        })
        .collect()
}

/// Executes migration SQL statement by statement, naming the failing one.
async fn run_statements(tx: &Transaction<'_>, version: i64, name: &str, sql: &str, pause: bool) -> Result<()> {
    for stmt in crate::sqlite::statements(sql) {
        tx.batch_execute(stmt).await.map_err(|e| StoreError::MigrationFailed {
            version,
            name: name.to_owned(),
            reason: format!("{} (in: {})", describe(&e), stmt.lines().next().unwrap_or_default()),
        })?;
        if pause {
            crate::testhooks::pause("migration.statement");
        }
    }
    Ok(())
}

/// Applies `m`'s up SQL inside `tx` and records it (with its down SQL).
async fn apply_up(tx: &Transaction<'_>, m: &Migration, pause: bool) -> Result<()> {
    let (up, down) = (m.up(Dialect::Postgres), m.down(Dialect::Postgres));
    run_statements(tx, m.version, m.name, up, pause).await?;
    tx.execute(
        "INSERT INTO rune_migrations (version, name, checksum, up_sql, down_sql, applied_at, applied_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &m.version,
            &m.name,
            &m.checksum(Dialect::Postgres),
            &up,
            &down,
            &Timestamp::now().as_epoch_seconds(),
            &format!("rune {RUNE_VERSION}"),
        ],
    )
    .await?;
    Ok(())
}

async fn load_column_types<C: GenericClient + Sync>(c: &C, table: &str) -> Result<ColumnTypes> {
    let rows = c
        .query(
            "SELECT column_name::text, udt_name::text FROM information_schema.columns \
             WHERE table_schema::text = current_schema() AND table_name::text = $1::text",
            &[&table],
        )
        .await?;
    rows.iter().map(|r| Ok((r.try_get::<_, String>(0)?, ColType::from_udt_name(r.try_get::<_, &str>(1)?)))).collect()
}

/// After rows with explicit ids went into `workflow_events`, moves its identity past
/// them so new events do not collide.
async fn reset_event_sequence<C: GenericClient + Sync>(c: &C) -> Result<()> {
    c.execute(
        "SELECT setval(pg_get_serial_sequence('workflow_events', 'id'), GREATEST((SELECT MAX(id) FROM workflow_events), 1))",
        &[],
    )
    .await?;
    Ok(())
}

fn row_to_json(row: &Row, table: &str) -> Result<Map<String, Value>> {
    use base64::Engine as _;
    let mut m = Map::new();
    for (i, col) in row.columns().iter().enumerate() {
        let v = match ColType::of(col.type_()) {
            ColType::Text => row.try_get::<_, Option<String>>(i)?.map_or(Value::Null, Value::String),
            ColType::Int2 => row.try_get::<_, Option<i16>>(i)?.map_or(Value::Null, Value::from),
            ColType::Int4 => row.try_get::<_, Option<i32>>(i)?.map_or(Value::Null, Value::from),
            ColType::Int8 => row.try_get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::from),
            ColType::Float4 => row
                .try_get::<_, Option<f32>>(i)?
                .and_then(|f| serde_json::Number::from_f64(f64::from(f)))
                .map_or(Value::Null, Value::Number),
            ColType::Float8 => row
                .try_get::<_, Option<f64>>(i)?
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number),
            // Integers, as SQLite stores booleans, so both engines export the same bytes.
            ColType::Bool => row.try_get::<_, Option<bool>>(i)?.map_or(Value::Null, |b| Value::from(i64::from(b))),
            ColType::Bytea => row.try_get::<_, Option<Vec<u8>>>(i)?.map_or(Value::Null, |b| {
                let mut blob = Map::new();
                blob.insert("$base64".into(), Value::String(base64::engine::general_purpose::STANDARD.encode(b)));
                Value::Object(blob)
            }),
            ColType::Other(name) => {
                return Err(StoreError::Conflict(format!(
                    "column `{}` of `{table}` has type {name}, which RUNE archives cannot hold",
                    col.name()
                )))
            }
        };
        m.insert(col.name().to_owned(), v);
    }
    Ok(m)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn json_int(v: &Value) -> std::result::Result<i64, String> {
    match v {
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(i),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
            _ => Err(format!("expected an integer, got {n}")),
        },
        Value::Bool(b) => Ok(i64::from(*b)),
        other => Err(format!("expected an integer, got {}", json_type(other))),
    }
}

fn json_float(v: &Value) -> std::result::Result<f64, String> {
    v.as_f64().ok_or_else(|| format!("expected a number, got {}", json_type(v)))
}

/// Converts an archived value to the column's real type.
fn json_to_sql(v: &Value, ty: &ColType) -> std::result::Result<Box<dyn ToSql + Sync + Send>, String> {
    use base64::Engine as _;
    let narrow = |i: i64, bits: &str| format!("{i} does not fit in the column ({bits})");
    Ok(match ty {
        ColType::Int2 => Box::new(match v {
            Value::Null => None,
            v => Some(i16::try_from(json_int(v)?).map_err(|_| narrow(json_int(v).unwrap_or_default(), "smallint"))?),
        }),
        ColType::Int4 => Box::new(match v {
            Value::Null => None,
            v => Some(i32::try_from(json_int(v)?).map_err(|_| narrow(json_int(v).unwrap_or_default(), "integer"))?),
        }),
        ColType::Int8 => Box::new(match v {
            Value::Null => None,
            v => Some(json_int(v)?),
        }),
        ColType::Float4 => Box::new(match v {
            Value::Null => None,
            v => Some(json_float(v)? as f32),
        }),
        ColType::Float8 => Box::new(match v {
            Value::Null => None,
            v => Some(json_float(v)?),
        }),
        ColType::Bool => Box::new(match v {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            Value::Number(n) if n.as_f64() == Some(0.0) => Some(false),
            Value::Number(n) if n.as_f64() == Some(1.0) => Some(true),
            other => return Err(format!("expected a boolean (0, 1, true or false), got {other}")),
        }),
        ColType::Text => Box::new(match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => return Err(format!("expected a string, got {}", json_type(other))),
        }),
        ColType::Bytea => Box::new(match v {
            Value::Null => None,
            Value::Object(m) => match m.get("$base64").and_then(Value::as_str) {
                Some(b) => Some(base64::engine::general_purpose::STANDARD.decode(b).map_err(|e| e.to_string())?),
                None => return Err("objects must be {\"$base64\": …} blobs".into()),
            },
            other => return Err(format!("expected a {{\"$base64\": …}} blob, got {}", json_type(other))),
        }),
        ColType::Other(name) => return Err(format!("the column has type {name}, which RUNE archives cannot hold")),
    })
}

/// Inserts archived rows into `table` inside `tx`, skipping rows whose key exists;
/// returns how many were inserted. Columns are checked against `types`.
async fn insert_rows(
    tx: &Transaction<'_>,
    table: &str,
    types: &ColumnTypes,
    rows: &[Map<String, Value>],
) -> Result<u64> {
    let mut statements: HashMap<String, Statement> = HashMap::new();
    let mut inserted = 0;
    for (i, row) in rows.iter().enumerate() {
        let mut values: Params = Vec::with_capacity(row.len());
        for (col, v) in row {
            let ty = types.get(col).ok_or_else(|| {
                StoreError::Conflict(format!(
                    "table `{table}` has no column `{col}` in this database (row {i}); migrate it to the archive's schema version first"
                ))
            })?;
            values.push(
                json_to_sql(v, ty)
                    .map_err(|e| StoreError::Conflict(format!("{table} row {i}, column `{col}`: {e}")))?,
            );
        }
        let cols: Vec<&str> = row.keys().map(String::as_str).collect();
        let shape = cols.join(",");
        let stmt = match statements.get(&shape) {
            Some(s) => s.clone(),
            None => {
                let sql = format!(
                    "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
                    cols.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", "),
                    (1..=cols.len()).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
                );
                let s = tx.prepare(&sql).await?;
                statements.insert(shape, s.clone());
                s
            }
        };
        inserted += tx.execute(&stmt, &param_refs(&values)).await?;
    }
    Ok(inserted)
}

/// Reads the rows of an archive (already validated) and hands them over in batches.
fn read_archive_rows(path: &Path, out: &mpsc::Sender<(String, Vec<Map<String, Value>>)>) -> Result<()> {
    use std::io::BufRead;

    #[derive(serde::Deserialize)]
    struct Line {
        table: Option<String>,
        row: Option<Map<String, Value>>,
        end: Option<Value>,
    }

    let bad = |line: u64, reason: String| StoreError::BadArchive { path: path.to_owned(), line, reason };
    let file = std::fs::File::open(path).map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
    let mut lines = std::io::BufReader::new(file).lines();
    lines.next().ok_or_else(|| bad(1, "empty file".into()))?.map_err(|e| bad(1, e.to_string()))?;
    let mut current = String::new();
    let mut batch: Vec<Map<String, Value>> = Vec::new();
    let mut lineno = 1u64;
    for line in lines {
        lineno += 1;
        let line = line.map_err(|e| bad(lineno, e.to_string()))?;
        let parsed: Line =
            serde_json::from_str(&line).map_err(|e| bad(lineno, format!("not an archive line ({e})")))?;
        if parsed.end.is_some() {
            if !batch.is_empty() {
                let _ = out.blocking_send((current, batch));
            }
            return Ok(());
        }
        let (Some(table), Some(row)) = (parsed.table, parsed.row) else {
            return Err(bad(lineno, "expected {\"table\": …, \"row\": {…}}".into()));
        };
        if table != current
            && !batch.is_empty()
            && out.blocking_send((current.clone(), std::mem::take(&mut batch))).is_err()
        {
            return Ok(()); // the restore stopped; its error is the one reported
        }
        current = table;
        batch.push(row);
        if batch.len() >= RESTORE_BATCH && out.blocking_send((current.clone(), std::mem::take(&mut batch))).is_err() {
            return Ok(());
        }
    }
    Err(bad(lineno, "the archive is truncated (no end line); re-export it".into()))
}

fn read_artifact_meta(r: &Row, job: &JobId) -> Result<ArtifactMeta> {
    let id: String = r.try_get(0)?;
    let kind = r.try_get::<_, &str>(1)?.parse().map_err(|e: rune_core::records::UnknownArtifactKind| {
        StoreError::CorruptRow { table: "audit_artifact", key: id.clone(), reason: e.to_string() }
    })?;
    Ok(ArtifactMeta {
        artifact_id: id,
        job_id: job.clone(),
        kind,
        name: r.try_get(2)?,
        size_bytes: r.try_get::<_, i64>(3)?.max(0) as u64,
        sha256: r.try_get(4)?,
        created_at: Timestamp::from_epoch_seconds(r.try_get(5)?),
    })
}

const SCHEDULE_COLUMNS: &str = "schedule_id, tenant_id, name, cron, kind, request_json, suspended, suspended_by, \
     concurrency_policy, starting_deadline_seconds, successful_runs_history_limit, failed_runs_history_limit, \
     last_schedule_time, last_job_id, created_at, updated_at";

fn read_schedule(r: &Row) -> Result<ScheduleRecord> {
    let id: String = r.try_get(0)?;
    let corrupt = |reason: String| StoreError::CorruptRow { table: "schedules", key: id.clone(), reason };
    let tenant: TenantId =
        r.try_get::<_, &str>(1)?.parse().map_err(|e: rune_core::job::InvalidId| corrupt(e.to_string()))?;
    let kind = r.try_get::<_, &str>(4)?.parse().map_err(|e: rune_core::job::UnknownJobKind| corrupt(e.to_string()))?;
    let policy: ConcurrencyPolicy = r.try_get::<_, &str>(8)?.parse().map_err(corrupt)?;
    let last_job: Option<String> = r.try_get(13)?;
    Ok(ScheduleRecord {
        schedule_id: id.clone(),
        tenant_id: tenant,
        name: r.try_get(2)?,
        cron: r.try_get(3)?,
        kind,
        request_json: r.try_get(5)?,
        suspended: r.try_get(6)?,
        suspended_by: r.try_get(7)?,
        concurrency_policy: policy,
        starting_deadline_seconds: r.try_get::<_, Option<i64>>(9)?.map(|v| v.max(0) as u64),
        successful_runs_history_limit: r.try_get::<_, i32>(10)?.max(0) as u32,
        failed_runs_history_limit: r.try_get::<_, i32>(11)?.max(0) as u32,
        last_schedule_time: rows::ts_opt(r.try_get(12)?),
        last_job_id: last_job.and_then(|j| j.parse().ok()),
        created_at: Timestamp::from_epoch_seconds(r.try_get(14)?),
        updated_at: Timestamp::from_epoch_seconds(r.try_get(15)?),
    })
}

async fn get_schedule_on(c: &Client, tenant: Option<&str>, id: &str) -> Result<Option<ScheduleRecord>> {
    let row = c
        .query_opt(
            &format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE schedule_id = $1 AND ($2::text IS NULL OR tenant_id = $2)"),
            &[&id, &tenant],
        )
        .await?;
    row.as_ref().map(read_schedule).transpose()
}

#[async_trait]
impl Store for PgStore {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    async fn create_job(&self, job: NewJob) -> Result<CreateOutcome> {
        let request_hash = rows::sha256_hex(job.request_json.as_bytes());
        let mut client = self.get().await?;
        let (tenant, kind) = (job.tenant_id.as_str(), job.kind.as_str());
        // A key can only vanish if someone deletes it by hand between our insert and our
        // read; retrying once more is then the right answer.
        for _ in 0..3 {
            let id = JobId::new_random();
            let now = Timestamp::now().as_epoch_seconds();
            let tx = client.transaction().await?;
            if let Some(key) = &job.idempotency_key {
                // The key goes in first: a concurrent creator with the same key waits on
                // our row and then sees it, so exactly one of them creates the job.
                let claimed = tx
                    .query_opt(
                        "INSERT INTO idempotency_keys (tenant_id, operation, idempotency_key, job_id, created_at, request_sha256) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING job_id",
                        &[&tenant, &kind, key, &id.as_str(), &now, &request_hash],
                    )
                    .await?;
                if claimed.is_none() {
                    tx.rollback().await?;
                    let existing = client
                        .query_opt(
                            "SELECT job_id, request_sha256 FROM idempotency_keys \
                             WHERE tenant_id = $1 AND operation = $2 AND idempotency_key = $3",
                            &[&tenant, &kind, key],
                        )
                        .await?;
                    let Some(existing) = existing else { continue };
                    let (job_id, hash): (String, Option<String>) = (existing.try_get(0)?, existing.try_get(1)?);
                    // Keys adopted from the original RUNE have no hash: treat as a replay.
                    if hash.as_deref().is_some_and(|h| h != request_hash) {
                        let existing =
                            job_id.parse().map_err(|e: rune_core::job::InvalidId| StoreError::CorruptRow {
                                table: "idempotency_keys",
                                key: key.clone(),
                                reason: e.to_string(),
                            })?;
                        return Ok(CreateOutcome::KeyConflict { existing });
                    }
                    return match get_job_on(&**client, &job_id).await? {
                        Some(j) => Ok(CreateOutcome::Replayed(j)),
                        None => Err(StoreError::CorruptRow {
                            table: "idempotency_keys",
                            key: key.clone(),
                            reason: format!("points at job {job_id}, which does not exist"),
                        }),
                    };
                }
            }
            let stmt = tx
                .prepare_cached(&format!(
                    "INSERT INTO jobs (job_id, tenant_id, kind, status, request_json, message, created_at, updated_at, schedule_id) \
                     VALUES ($1, $2, $3, 'queued', $4, 'accepted', $5, $5, $6) RETURNING {JOB_COLUMNS}"
                ))
                .await?;
            let row =
                tx.query_one(&stmt, &[&id.as_str(), &tenant, &kind, &job.request_json, &now, &job.schedule_id]).await?;
            let created = read_job(&row)?;
            tx.commit().await?;
            return Ok(CreateOutcome::Created(created));
        }
        Err(StoreError::Conflict(format!(
            "idempotency key {:?} keeps disappearing while it is read; retry the request",
            job.idempotency_key.as_deref().unwrap_or_default()
        )))
    }

    async fn get_job(&self, tenant: Option<&TenantId>, id: &JobId) -> Result<Option<JobRecord>> {
        let client = self.get().await?;
        let stmt = client.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1")).await?;
        let row = client.query_opt(&stmt, &[&id.as_str()]).await?;
        let job = row.as_ref().map(read_job).transpose()?;
        Ok(job.filter(|j| tenant.is_none_or(|t| &j.tenant_id == t)))
    }

    async fn update_status(&self, id: &JobId, update: StatusUpdate) -> Result<UpdateOutcome> {
        let client = self.get().await?;
        let preds: Vec<String> =
            JobStatus::legal_predecessors(update.status).iter().map(|s| s.as_str().to_owned()).collect();
        let terminal = update.status.is_terminal();
        let now = Timestamp::now().as_epoch_seconds();
        let stmt = client
            .prepare_cached(&format!(
                "UPDATE jobs SET status = $1::text, result_json = COALESCE($2::text, result_json), \
                 error = COALESCE($3::text, error), message = COALESCE($4::text, message), updated_at = $5::float8, \
                 finished_at = CASE WHEN $6::boolean THEN $5::float8 ELSE finished_at END, \
                 started_at = CASE WHEN $1::text = 'running' THEN COALESCE(started_at, $5::float8) ELSE started_at END, \
                 lease_owner = CASE WHEN $6::boolean THEN NULL ELSE lease_owner END, \
                 lease_expires_at = CASE WHEN $6::boolean THEN NULL ELSE lease_expires_at END \
                 WHERE job_id = $7::text AND ($8::text IS NULL OR lease_owner = $8::text) AND status = ANY($9::text[]) \
                 RETURNING {JOB_COLUMNS}"
            ))
            .await?;
        let row = client
            .query_opt(
                &stmt,
                &[
                    &update.status.as_str(),
                    &update.result_json,
                    &update.error,
                    &update.message,
                    &now,
                    &terminal,
                    &id.as_str(),
                    &update.lease_owner,
                    &preds,
                ],
            )
            .await?;
        if let Some(row) = row {
            return Ok(UpdateOutcome::Updated(read_job(&row)?));
        }
        Ok(match get_job_on(&**client, id.as_str()).await? {
            Some(j) => UpdateOutcome::Rejected { current: j.status },
            None => UpdateOutcome::NotFound,
        })
    }

    async fn set_message(&self, id: &JobId, message: &str) -> Result<bool> {
        let client = self.get().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE jobs SET message = $1, updated_at = $2 WHERE job_id = $3 AND status IN ('queued', 'running')",
            )
            .await?;
        let n = client.execute(&stmt, &[&message, &Timestamp::now().as_epoch_seconds(), &id.as_str()]).await?;
        Ok(n == 1)
    }

    async fn list_jobs(&self, query: &JobQuery) -> Result<JobPage> {
        let q = query;
        let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1");
        let mut values: Params = Vec::new();
        let mut push = |clause: &str, v: Box<dyn ToSql + Sync + Send>, sql: &mut String| {
            values.push(v);
            sql.push_str(&clause.replace('?', &format!("${}", values.len())));
        };
        if let Some(t) = &q.tenant_id {
            push(" AND tenant_id = ?::text", Box::new(t.as_str().to_owned()), &mut sql);
        }
        if let Some(k) = q.kind {
            push(" AND kind = ?::text", Box::new(k.as_str()), &mut sql);
        }
        if let Some(s) = q.status {
            push(" AND status = ?::text", Box::new(s.as_str()), &mut sql);
        }
        if let Some(from) = q.created_from {
            push(" AND created_at >= ?::float8", Box::new(from.as_epoch_seconds()), &mut sql);
        }
        if let Some(to) = q.created_to {
            push(" AND created_at < ?::float8", Box::new(to.as_epoch_seconds()), &mut sql);
        }
        if let Some(s) = &q.schedule_id {
            push(" AND schedule_id = ?::text", Box::new(s.clone()), &mut sql);
        }
        let (cmp, dir) = match q.order {
            SortOrder::Desc => ("<", "DESC"),
            SortOrder::Asc => (">", "ASC"),
        };
        if let Some(c) = &q.cursor {
            values.push(Box::new(c.created_at.as_epoch_seconds()));
            values.push(Box::new(c.job_id.clone()));
            let (a, b) = (values.len() - 1, values.len());
            sql.push_str(&format!(" AND (created_at, job_id) {cmp} (${a}::float8, ${b}::text)"));
        }
        let limit = q.limit.clamp(1, MAX_PAGE_SIZE);
        values.push(Box::new(i64::from(limit + 1)));
        sql.push_str(&format!(" ORDER BY created_at {dir}, job_id {dir} LIMIT ${}::bigint", values.len()));
        let client = self.get().await?;
        let stmt = client.prepare_cached(&sql).await?;
        let rows = client.query(&stmt, &param_refs(&values)).await?;
        let mut jobs = read_jobs(&rows)?;
        let more = jobs.len() > limit as usize;
        jobs.truncate(limit as usize);
        let next_cursor = if more {
            jobs.last().map(|j| crate::Cursor { created_at: j.created_at, job_id: j.job_id.to_string() })
        } else {
            None
        };
        Ok(JobPage { jobs, next_cursor })
    }

    async fn count_jobs(&self, tenant: Option<&TenantId>) -> Result<JobCounts> {
        let client = self.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT status, kind, COUNT(*) FROM jobs WHERE ($1::text IS NULL OR tenant_id = $1::text) GROUP BY status, kind",
            )
            .await?;
        let rows = client.query(&stmt, &[&tenant.map(|t| t.as_str())]).await?;
        let mut counts = JobCounts::default();
        for r in &rows {
            let (status, kind, n): (String, String, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            let n = n.max(0) as u64;
            counts.total += n;
            *counts.by_kind_status.entry(kind.clone()).or_default().entry(status.clone()).or_default() += n;
            *counts.by_status.entry(status).or_default() += n;
            *counts.by_kind.entry(kind).or_default() += n;
        }
        Ok(counts)
    }

    async fn claim_next_job(&self, owner: &str, lease: Duration) -> Result<Option<JobRecord>> {
        let client = self.get().await?;
        let now = Timestamp::now();
        let expires = now.plus_millis(lease.as_millis() as i64);
        // SKIP LOCKED: a row another claimer holds is passed over, never waited for.
        let stmt = client
            .prepare_cached(&format!(
                "UPDATE jobs SET status = 'running', lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1, \
                 started_at = COALESCE(started_at, $3), updated_at = $3, message = 'running' \
                 WHERE job_id = (SELECT job_id FROM jobs WHERE status = 'queued' ORDER BY created_at, job_id \
                 LIMIT 1 FOR UPDATE SKIP LOCKED) AND status = 'queued' \
                 RETURNING {JOB_COLUMNS}"
            ))
            .await?;
        let row = client.query_opt(&stmt, &[&owner, &expires.as_epoch_seconds(), &now.as_epoch_seconds()]).await?;
        row.as_ref().map(read_job).transpose()
    }

    async fn heartbeat(&self, id: &JobId, owner: &str, lease: Duration) -> Result<bool> {
        let client = self.get().await?;
        let expires = Timestamp::now().plus_millis(lease.as_millis() as i64);
        let stmt = client
            .prepare_cached(
                "UPDATE jobs SET lease_expires_at = $1 WHERE job_id = $2 AND status = 'running' AND lease_owner = $3",
            )
            .await?;
        Ok(client.execute(&stmt, &[&expires.as_epoch_seconds(), &id.as_str(), &owner]).await? == 1)
    }

    async fn release_lease(&self, id: &JobId, owner: &str, message: &str) -> Result<bool> {
        let client = self.get().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE jobs SET status = 'queued', message = $1, updated_at = $2, lease_owner = NULL, \
                 lease_expires_at = NULL, attempts = GREATEST(attempts - 1, 0) \
                 WHERE job_id = $3 AND status = 'running' AND lease_owner = $4",
            )
            .await?;
        let n = client.execute(&stmt, &[&message, &Timestamp::now().as_epoch_seconds(), &id.as_str(), &owner]).await?;
        Ok(n == 1)
    }

    async fn try_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let client = self.get().await?;
        let now = Timestamp::now();
        let value = serde_json::json!({"owner": owner, "expires_at": now.plus_millis(ttl.as_millis() as i64).as_epoch_seconds()})
            .to_string();
        let stmt = client
            .prepare_cached(
                "INSERT INTO settings (key, value_json, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at \
                 WHERE (settings.value_json::jsonb ->> 'owner') = $4 \
                    OR (settings.value_json::jsonb ->> 'expires_at')::float8 < $3",
            )
            .await?;
        let n = client.execute(&stmt, &[&format!("lease:{name}"), &value, &now.as_epoch_seconds(), &owner]).await?;
        Ok(n == 1)
    }

    async fn recover_expired_leases(&self, now: Timestamp, max_attempts: u32) -> Result<RecoveryReport> {
        let mut client = self.get().await?;
        let tx = client.transaction().await?;
        // Rows being claimed or finished right now are locked; skip them (their lease
        // is evidently alive) rather than wait.
        let rows = tx
            .query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'running' \
                     AND (lease_expires_at IS NULL OR lease_expires_at < $1) FOR UPDATE SKIP LOCKED"
                ),
                &[&now.as_epoch_seconds()],
            )
            .await?;
        let expired = read_jobs(&rows)?;
        let mut report = RecoveryReport::default();
        for job in expired {
            let owner = job.lease_owner.clone().unwrap_or_else(|| "an unknown worker".into());
            if job.attempts >= max_attempts {
                let reason = format!(
                    "worker lost: the lease held by {owner} expired; gave up after {} attempt(s) (limit {max_attempts})",
                    job.attempts
                );
                tx.execute(
                    "UPDATE jobs SET status = 'failed', error = $1, message = $1, updated_at = $2, finished_at = $2, \
                     lease_owner = NULL, lease_expires_at = NULL WHERE job_id = $3 AND status = 'running'",
                    &[&reason, &now.as_epoch_seconds(), &job.job_id.as_str()],
                )
                .await?;
                report.failed.push(job.job_id);
            } else {
                let msg =
                    format!("requeued: the lease held by {owner} expired (attempt {} of {max_attempts})", job.attempts);
                tx.execute(
                    "UPDATE jobs SET status = 'queued', message = $1, updated_at = $2, lease_owner = NULL, \
                     lease_expires_at = NULL WHERE job_id = $3 AND status = 'running'",
                    &[&msg, &now.as_epoch_seconds(), &job.job_id.as_str()],
                )
                .await?;
                report.requeued.push(job.job_id);
            }
        }
        tx.commit().await?;
        Ok(report)
    }

    async fn append_event(&self, job: &JobId, event: NewJobEvent) -> Result<i64> {
        let client = self.get().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO workflow_events (job_id, event, status, duration_ms, error_type, labels_json, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .await?;
        let row = client
            .query_one(
                &stmt,
                &[
                    &job.as_str(),
                    &event.event,
                    &event.status,
                    &event.duration_ms,
                    &event.error_type,
                    &event.labels.to_string(),
                    &Timestamp::now().as_epoch_seconds(),
                ],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn events_after(&self, job: &JobId, after_id: i64, limit: u32) -> Result<Vec<JobEvent>> {
        let client = self.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT id, event, status, duration_ms, error_type, labels_json, recorded_at FROM workflow_events \
                 WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .await?;
        let rows = client.query(&stmt, &[&job.as_str(), &after_id, &i64::from(limit.max(1))]).await?;
        rows.iter()
            .map(|r| {
                let labels: Option<String> = r.try_get(5)?;
                Ok(JobEvent {
                    id: r.try_get(0)?,
                    job_id: job.clone(),
                    event: r.try_get(1)?,
                    status: r.try_get(2)?,
                    duration_ms: r.try_get(3)?,
                    error_type: r.try_get(4)?,
                    labels: labels.and_then(|l| serde_json::from_str(&l).ok()).unwrap_or(Value::Null),
                    recorded_at: Timestamp::from_epoch_seconds(r.try_get(6)?),
                })
            })
            .collect()
    }

    async fn put_chain_state(&self, job: &JobId, state: &ChainState) -> Result<()> {
        let json = serde_json::to_string(state).map_err(|e| StoreError::Worker(e.to_string()))?;
        let client = self.get().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO chain_state (job_id, state_json, overall_status, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (job_id) DO UPDATE SET state_json = EXCLUDED.state_json, \
                 overall_status = EXCLUDED.overall_status, updated_at = EXCLUDED.updated_at",
            )
            .await?;
        client
            .execute(&stmt, &[&job.as_str(), &json, &state.overall_status(), &Timestamp::now().as_epoch_seconds()])
            .await?;
        Ok(())
    }

    async fn get_chain_state(&self, job: &JobId) -> Result<Option<ChainState>> {
        let client = self.get().await?;
        let stmt = client.prepare_cached("SELECT state_json FROM chain_state WHERE job_id = $1").await?;
        let row = client.query_opt(&stmt, &[&job.as_str()]).await?;
        row.map(|r| {
            let json: String = r.try_get(0)?;
            serde_json::from_str(&json).map_err(|e| StoreError::CorruptRow {
                table: "chain_state",
                key: job.to_string(),
                reason: e.to_string(),
            })
        })
        .transpose()
    }

    async fn put_artifact(
        &self,
        job: &JobId,
        kind: ArtifactKind,
        name: &str,
        content: Vec<u8>,
    ) -> Result<ArtifactMeta> {
        rows::check_artifact_name(name)?;
        let meta = ArtifactMeta {
            artifact_id: uuid::Uuid::new_v4().to_string(),
            job_id: job.clone(),
            kind,
            name: name.to_owned(),
            size_bytes: content.len() as u64,
            sha256: rows::sha256_hex(&content),
            created_at: Timestamp::now(),
        };
        let client = self.get().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO audit_artifact (artifact_id, job_id, kind, name, size_bytes, sha256, content, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .await?;
        client
            .execute(
                &stmt,
                &[
                    &meta.artifact_id,
                    &meta.job_id.as_str(),
                    &meta.kind.as_str(),
                    &meta.name,
                    &(meta.size_bytes as i64),
                    &meta.sha256,
                    &content,
                    &meta.created_at.as_epoch_seconds(),
                ],
            )
            .await?;
        Ok(meta)
    }

    async fn list_artifacts(&self, job: &JobId) -> Result<Vec<ArtifactMeta>> {
        let client = self.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT artifact_id, kind, name, size_bytes, sha256, created_at FROM audit_artifact \
                 WHERE job_id = $1 ORDER BY created_at, artifact_id",
            )
            .await?;
        let rows = client.query(&stmt, &[&job.as_str()]).await?;
        rows.iter().map(|r| read_artifact_meta(r, job)).collect()
    }

    async fn get_artifact(&self, job: &JobId, artifact_id: &str) -> Result<Option<(ArtifactMeta, Vec<u8>)>> {
        let client = self.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT artifact_id, kind, name, size_bytes, sha256, created_at, content FROM audit_artifact \
                 WHERE job_id = $1 AND artifact_id = $2",
            )
            .await?;
        let row = client.query_opt(&stmt, &[&job.as_str(), &artifact_id]).await?;
        match row {
            Some(r) => Ok(Some((read_artifact_meta(&r, job)?, r.try_get(6)?))),
            None => Ok(None),
        }
    }

    async fn get_setting(&self, key: &str) -> Result<Option<Value>> {
        let client = self.get().await?;
        let stmt = client.prepare_cached("SELECT value_json FROM settings WHERE key = $1").await?;
        let row = client.query_opt(&stmt, &[&key]).await?;
        row.map(|r| {
            let s: String = r.try_get(0)?;
            serde_json::from_str(&s).map_err(|e| StoreError::CorruptRow {
                table: "settings",
                key: key.to_owned(),
                reason: e.to_string(),
            })
        })
        .transpose()
    }

    async fn put_setting(&self, key: &str, value: &Value) -> Result<()> {
        let client = self.get().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO settings (key, value_json, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET value_json = EXCLUDED.value_json, updated_at = EXCLUDED.updated_at",
            )
            .await?;
        client.execute(&stmt, &[&key, &value.to_string(), &Timestamp::now().as_epoch_seconds()]).await?;
        Ok(())
    }

    async fn delete_setting(&self, key: &str) -> Result<bool> {
        let client = self.get().await?;
        let stmt = client.prepare_cached("DELETE FROM settings WHERE key = $1").await?;
        Ok(client.execute(&stmt, &[&key]).await? == 1)
    }

    async fn list_settings(&self) -> Result<BTreeMap<String, Value>> {
        let client = self.get().await?;
        let stmt = client.prepare_cached("SELECT key, value_json FROM settings ORDER BY key").await?;
        let rows = client.query(&stmt, &[]).await?;
        let mut out = BTreeMap::new();
        for r in &rows {
            let (k, v): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            let parsed = serde_json::from_str(&v).map_err(|e| StoreError::CorruptRow {
                table: "settings",
                key: k.clone(),
                reason: e.to_string(),
            })?;
            out.insert(k, parsed);
        }
        Ok(out)
    }

    async fn create_schedule(&self, spec: ScheduleSpec) -> Result<ScheduleRecord> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = Timestamp::now().as_epoch_seconds();
        let client = self.get().await?;
        let stmt = client
            .prepare_cached(&format!(
                "INSERT INTO schedules ({SCHEDULE_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, NULL, $13, $13)"
            ))
            .await?;
        client
            .execute(
                &stmt,
                &[
                    &id,
                    &spec.tenant_id.as_str(),
                    &spec.name,
                    &spec.cron,
                    &spec.kind.as_str(),
                    &spec.request_json,
                    &spec.suspended,
                    &spec.suspended.then_some("user"),
                    &spec.concurrency_policy.as_str(),
                    &spec.starting_deadline_seconds.map(|s| s as i64),
                    &clamp_i32(spec.successful_runs_history_limit),
                    &clamp_i32(spec.failed_runs_history_limit),
                    &now,
                ],
            )
            .await
            .map_err(|e| {
                map_unique(e, format!("a schedule named `{}` already exists for tenant {}", spec.name, spec.tenant_id))
            })?;
        get_schedule_on(&client, None, &id).await?.ok_or_else(|| StoreError::NotFound(format!("schedule {id}")))
    }

    async fn get_schedule(&self, tenant: Option<&TenantId>, id: &str) -> Result<Option<ScheduleRecord>> {
        let client = self.get().await?;
        get_schedule_on(&client, tenant.map(|t| t.as_str()), id).await
    }

    async fn list_schedules(&self, tenant: Option<&TenantId>) -> Result<Vec<ScheduleRecord>> {
        let client = self.get().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE ($1::text IS NULL OR tenant_id = $1::text) ORDER BY tenant_id, name"
            ))
            .await?;
        let rows = client.query(&stmt, &[&tenant.map(|t| t.as_str())]).await?;
        rows.iter().map(read_schedule).collect()
    }

    async fn update_schedule(&self, id: &str, spec: ScheduleSpec) -> Result<Option<ScheduleRecord>> {
        let client = self.get().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE schedules SET name = $1, cron = $2, kind = $3, request_json = $4, concurrency_policy = $5, \
                 starting_deadline_seconds = $6, successful_runs_history_limit = $7, failed_runs_history_limit = $8, \
                 updated_at = $9 WHERE schedule_id = $10 AND tenant_id = $11",
            )
            .await?;
        let n = client
            .execute(
                &stmt,
                &[
                    &spec.name,
                    &spec.cron,
                    &spec.kind.as_str(),
                    &spec.request_json,
                    &spec.concurrency_policy.as_str(),
                    &spec.starting_deadline_seconds.map(|s| s as i64),
                    &clamp_i32(spec.successful_runs_history_limit),
                    &clamp_i32(spec.failed_runs_history_limit),
                    &Timestamp::now().as_epoch_seconds(),
                    &id,
                    &spec.tenant_id.as_str(),
                ],
            )
            .await
            .map_err(|e| map_unique(e, format!("a schedule named `{}` already exists", spec.name)))?;
        if n == 0 {
            return Ok(None);
        }
        get_schedule_on(&client, None, id).await
    }

    async fn set_schedule_suspended(
        &self,
        id: &str,
        suspended_by: Option<&str>,
        only_if_suspended_by: Option<&str>,
    ) -> Result<Option<ScheduleRecord>> {
        let client = self.get().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE schedules SET suspended = $1, suspended_by = $2, updated_at = $3 \
                 WHERE schedule_id = $4 AND ($5::text IS NULL OR suspended_by = $5::text)",
            )
            .await?;
        client
            .execute(
                &stmt,
                &[
                    &suspended_by.is_some(),
                    &suspended_by,
                    &Timestamp::now().as_epoch_seconds(),
                    &id,
                    &only_if_suspended_by,
                ],
            )
            .await?;
        get_schedule_on(&client, None, id).await
    }

    async fn record_schedule_fire(&self, id: &str, fire_time: Timestamp, job: Option<&JobId>) -> Result<()> {
        let client = self.get().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE schedules SET last_schedule_time = $1, last_job_id = COALESCE($2::text, last_job_id), \
                 updated_at = $3 WHERE schedule_id = $4",
            )
            .await?;
        client
            .execute(
                &stmt,
                &[&fire_time.as_epoch_seconds(), &job.map(|j| j.as_str()), &Timestamp::now().as_epoch_seconds(), &id],
            )
            .await?;
        Ok(())
    }

    async fn delete_schedule(&self, tenant: Option<&TenantId>, id: &str) -> Result<bool> {
        let client = self.get().await?;
        let stmt = client
            .prepare_cached(
                "DELETE FROM schedules WHERE schedule_id = $1 AND ($2::text IS NULL OR tenant_id = $2::text)",
            )
            .await?;
        Ok(client.execute(&stmt, &[&id, &tenant.map(|t| t.as_str())]).await? == 1)
    }

    async fn schema_status(&self) -> Result<SchemaStatus> {
        let client = self.get().await?;
        let c: &Client = &client;
        let applied = applied_migrations(c).await?;
        let version = applied.last().map_or(0, |m| m.version);
        let original_detected = applied.is_empty() && table_exists(c, "jobs").await?;
        let database_id = if table_exists(c, "rune_meta").await? {
            c.query_opt("SELECT value FROM rune_meta WHERE key = 'database_id'", &[])
                .await?
                .map(|r| r.try_get(0))
                .transpose()?
        } else {
            None
        };
        Ok(SchemaStatus {
            schema_version: version,
            binary_schema_version: migrations::latest_version(),
            pending: migrations::pending(version, migrations::latest_version()).iter().map(|m| m.version).collect(),
            applied,
            original_detected,
            database_id,
        })
    }

    async fn table_counts(&self) -> Result<BTreeMap<String, u64>> {
        let client = self.get().await?;
        let c: &Client = &client;
        let mut out = BTreeMap::new();
        for table in migrations::DATA_TABLES {
            if table_exists(c, table).await? {
                let n: i64 = c.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[]).await?.try_get(0)?;
                out.insert(table.to_owned(), n.max(0) as u64);
            }
        }
        Ok(out)
    }

    async fn scan_jobs(&self, after: Option<&str>, limit: u32) -> Result<Vec<JobRecord>> {
        let client = self.get().await?;
        // Only the original columns (typed NULLs for the rest): works at every version.
        let rows = client
            .query(
                "SELECT job_id, tenant_id, kind, status, request_json, result_json, error, message, created_at, updated_at, \
                 NULL::integer, NULL::text, NULL::float8, NULL::float8, NULL::float8, NULL::text FROM jobs \
                 WHERE ($1::text IS NULL OR job_id > $1::text) ORDER BY job_id LIMIT $2",
                &[&after, &i64::from(limit.max(1))],
            )
            .await?;
        read_jobs(&rows)
    }

    async fn integrity_check(&self) -> Result<Vec<String>> {
        let client = self.get().await?;
        let c: &Client = &client;
        let mut problems = Vec::new();
        // Reading every row of every table makes the server touch every heap page,
        // which is where corruption shows up.
        for table in migrations::DATA_TABLES {
            if !table_exists(c, table).await? {
                continue;
            }
            if let Err(e) = c.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[]).await {
                problems.push(format!("{table}: {}", describe(&e)));
            }
        }
        let invalid = c
            .query(
                "SELECT ci.relname::text, ct.relname::text FROM pg_catalog.pg_index i \
                 JOIN pg_catalog.pg_class ci ON ci.oid = i.indexrelid JOIN pg_catalog.pg_class ct ON ct.oid = i.indrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = ci.relnamespace \
                 WHERE n.nspname = current_schema() AND NOT (i.indisvalid AND i.indisready) ORDER BY 1",
                &[],
            )
            .await;
        match invalid {
            Ok(rows) => {
                for r in &rows {
                    let (index, table): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                    problems
                        .push(format!("index {index} on {table} is invalid; rebuild it with `REINDEX INDEX {index}`"));
                }
            }
            Err(e) => problems.push(format!("index check: {}", describe(&e))),
        }
        Ok(problems)
    }

    async fn migrate_to(&self, target: Option<i64>) -> Result<Vec<i64>> {
        let latest = migrations::latest_version();
        let target = target.unwrap_or(latest);
        if target > latest || target < 0 {
            return Err(StoreError::InvalidRollback {
                to: target,
                reason: format!("this binary knows schema versions 0 to {latest}"),
            });
        }
        self.with_migration_lock(move |client| Box::pin(Self::migrate_locked(client, target))).await
    }

    async fn rollback_to(&self, target: i64) -> Result<Vec<i64>> {
        self.with_migration_lock(move |client| Box::pin(Self::rollback_locked(client, target))).await
    }

    async fn backup_to(&self, dest: &Path) -> Result<()> {
        let _turn = self.backup_turn.lock().await;
        // One exported snapshot for every table: the archive is a consistent point in
        // time even while jobs keep changing. It stays valid while `tx` is open; `tx`
        // runs on a dedicated session so the exports can have the whole pool (even one).
        let mut session = self.connect_session().await?;
        let tx = session
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let snapshot: String = tx.query_one("SELECT pg_export_snapshot()", &[]).await?.try_get(0)?;
        *lock_snapshot(&self.export_snapshot)? = Some(snapshot);
        let result = crate::archive::export_raw(self, dest).await;
        *lock_snapshot(&self.export_snapshot)? = None;
        tx.commit().await?;
        result.map(|_| ())
    }

    fn export_stream(&self, table: &str) -> Result<mpsc::Receiver<Result<Map<String, Value>>>> {
        self.export_stream_impl(table)
    }

    async fn import_rows(&self, table: &str, rows: Vec<Map<String, Value>>) -> Result<u64> {
        if crate::sqlite::table_order_key(table).is_none() {
            return Err(StoreError::Conflict(format!("unknown table `{table}`")));
        }
        if rows.is_empty() {
            return Ok(0);
        }
        let mut client = self.get().await?;
        let mut types = self.column_types_of(&client, table, false).await?;
        let unknown = |types: &ColumnTypes| rows.iter().flat_map(|r| r.keys()).any(|c| !types.contains_key(c));
        if unknown(&types) {
            // The schema may have moved since we looked (another replica migrated).
            types = self.column_types_of(&client, table, true).await?;
        }
        if types.is_empty() {
            return Err(StoreError::Conflict(format!(
                "table `{table}` does not exist in this database; migrate it (`rune db migrate`) before importing"
            )));
        }
        let tx = client.transaction().await?;
        let inserted = insert_rows(&tx, table, &types, &rows).await?;
        if table == "workflow_events" {
            reset_event_sequence(&*tx).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        let client = self.get().await?;
        if !table_exists(&**client, "rune_meta").await? {
            return Ok(None);
        }
        Ok(client
            .query_opt("SELECT value FROM rune_meta WHERE key = $1", &[&key])
            .await?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let client = self.get().await?;
        if !table_exists(&**client, "rune_meta").await? {
            client.batch_execute(migrations::bookkeeping_sql(Dialect::Postgres)).await?;
        }
        client
            .execute(
                "INSERT INTO rune_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&key, &value],
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Run against a real server: `RUNE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:55432/postgres`.
    //! Each test creates its own database; without the variable they skip.

    use super::*;
    use crate::{CreateOutcome, NewJob, OpenOptions};
    use rune_core::JobKind;
    use std::collections::HashSet;

    /// A new empty database on the test server, or `None` (skip) when none is configured.
    async fn fresh_url() -> Option<String> {
        let base = match std::env::var("RUNE_TEST_POSTGRES_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => {
                eprintln!("skipping PostgreSQL test: RUNE_TEST_POSTGRES_URL is not set");
                return None;
            }
        };
        let (client, conn) = tokio_postgres::connect(&base, NoTls).await.expect("connect to the test server");
        let driver = tokio::spawn(conn);
        let name = format!("rune_t_{}", uuid::Uuid::new_v4().simple());
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
        drop(client);
        let _ = driver.await;
        let (head, query) = match base.split_once('?') {
            Some((h, q)) => (h.to_owned(), format!("?{q}")),
            None => (base.clone(), String::new()),
        };
        let url = match head.rfind('/') {
            Some(i) if i > "postgresql://".len() - 1 && head[..i].contains("://") && !head[..i].ends_with('/') => {
                format!("{}/{name}{query}", &head[..i])
            }
            _ => format!("{head}/{name}{query}"),
        };
        Some(url)
    }

    async fn raw(url: &str, migrate: bool) -> PgStore {
        let parsed = DatabaseUrl::parse(url, Path::new("/")).expect("parse url");
        PgStore::open_raw(&parsed, &OpenOptions { migrate, ..OpenOptions::default() }).await.expect("open_raw")
    }

    async fn migrated(url: &str) -> PgStore {
        let store = raw(url, true).await;
        store.migrate_to(None).await.expect("migrate");
        store
    }

    fn new_job(key: Option<&str>, request: &str) -> NewJob {
        NewJob {
            tenant_id: TenantId::default_tenant(),
            kind: JobKind::CostEstimate,
            request_json: request.into(),
            idempotency_key: key.map(str::to_owned),
            schedule_id: None,
        }
    }

    async fn created(store: &dyn Store, job: NewJob) -> JobRecord {
        match store.create_job(job).await.expect("create") {
            CreateOutcome::Created(j) => j,
            other => panic!("expected Created, got {other:?}"),
        }
    }

    /// `crate::open` migrates an empty database to the latest version and records the
    /// migrations; without `migrate`, an empty database opens raw at version 0 and
    /// `open` refuses it as too old.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn open_migrates_an_empty_database() {
        let Some(url) = fresh_url().await else { return };
        let empty = raw(&url, false).await;
        let status = empty.schema_status().await.expect("status");
        assert_eq!(status.schema_version, 0);
        assert!(!status.original_detected);
        assert!(empty.table_counts().await.expect("counts").is_empty());
        let err = crate::open(&url, &OpenOptions { migrate: false, ..OpenOptions::default() }).await.err();
        assert!(matches!(err, Some(StoreError::SchemaTooOld { found: 0, .. })), "{err:?}");

        let store = crate::open(&url, &OpenOptions::default()).await.expect("open");
        let status = store.schema_status().await.expect("status");
        assert_eq!(status.schema_version, migrations::latest_version());
        assert!(status.pending.is_empty());
        assert!(status.database_id.is_some());
        assert!(status.applied.iter().all(|m| m.applied_by == format!("rune {RUNE_VERSION}")));
        assert!(store.integrity_check().await.expect("integrity").is_empty());
        // Reopening finds nothing to do and the checksums match.
        drop(crate::open(&url, &OpenOptions::default()).await.expect("reopen"));
    }

    /// A bad URL or an unreachable server fails at open with the password masked.
    #[tokio::test]
    async fn unreachable_server_is_named_without_password() {
        let parsed = DatabaseUrl::parse("postgres://rune:s3cret@127.0.0.1:1/rune", Path::new("/")).expect("parse");
        let err =
            PgStore::open_raw(&parsed, &OpenOptions::default()).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("postgres://rune:***@127.0.0.1:1/rune"), "{err}");
        assert!(err.contains("cannot connect"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    /// Same key + same request replays; same key + other request conflicts; sixteen
    /// concurrent creators with one key (over two pools, like two replicas) create
    /// exactly one job.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn idempotency_is_race_safe() {
        let Some(url) = fresh_url().await else { return };
        let store = migrated(&url).await;
        let first = created(&store, new_job(Some("k1"), r#"{"a":1}"#)).await;
        match store.create_job(new_job(Some("k1"), r#"{"a":1}"#)).await.expect("replay") {
            CreateOutcome::Replayed(j) => assert_eq!(j, first),
            other => panic!("expected Replayed, got {other:?}"),
        }
        match store.create_job(new_job(Some("k1"), r#"{"a":2}"#)).await.expect("conflict") {
            CreateOutcome::KeyConflict { existing } => assert_eq!(existing, first.job_id),
            other => panic!("expected KeyConflict, got {other:?}"),
        }
        // A key adopted from the original RUNE (no hash) replays whatever the request.
        store.exec_for_test("UPDATE idempotency_keys SET request_sha256 = NULL WHERE idempotency_key = 'k1'").await;
        assert!(matches!(
            store.create_job(new_job(Some("k1"), r#"{"b":1}"#)).await.expect("adopted"),
            CreateOutcome::Replayed(_)
        ));

        let replicas: Vec<Arc<dyn Store>> = vec![Arc::new(raw(&url, false).await), Arc::new(raw(&url, false).await)];
        let mut tasks = Vec::new();
        for i in 0..16 {
            let s = replicas[i % 2].clone();
            tasks.push(tokio::spawn(async move { s.create_job(new_job(Some("race"), r#"{"r":1}"#)).await }));
        }
        let (mut made, mut ids) = (0, HashSet::new());
        for t in tasks {
            match t.await.expect("join").expect("create") {
                CreateOutcome::Created(j) => {
                    made += 1;
                    ids.insert(j.job_id);
                }
                CreateOutcome::Replayed(j) => {
                    ids.insert(j.job_id);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((made, ids.len()), (1, 1));
        assert_eq!(store.count_jobs(None).await.expect("count").total, 2);
    }

    /// Illegal transitions change nothing and report the current status; a worker
    /// that lost its lease cannot finish the job; terminal updates clear the lease.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn status_changes_are_compare_and_set() {
        let Some(url) = fresh_url().await else { return };
        let store = migrated(&url).await;
        let job = created(&store, new_job(None, "{}")).await;
        let id = job.job_id.clone();
        assert_eq!(
            store.update_status(&id, StatusUpdate::to(JobStatus::Succeeded)).await.expect("cas"),
            UpdateOutcome::Rejected { current: JobStatus::Queued }
        );
        let claimed = store.claim_next_job("w1", Duration::from_secs(60)).await.expect("claim").expect("a job");
        assert_eq!(
            (claimed.status, claimed.attempts, claimed.lease_owner.as_deref()),
            (JobStatus::Running, 1, Some("w1"))
        );
        assert!(claimed.started_at.is_some());
        assert!(store.heartbeat(&id, "w1", Duration::from_secs(60)).await.expect("hb"));
        assert!(!store.heartbeat(&id, "w2", Duration::from_secs(60)).await.expect("hb"));
        let foreign = StatusUpdate { lease_owner: Some("w2".into()), ..StatusUpdate::to(JobStatus::Succeeded) };
        assert_eq!(
            store.update_status(&id, foreign).await.expect("cas"),
            UpdateOutcome::Rejected { current: JobStatus::Running }
        );
        assert!(store.set_message(&id, "half way").await.expect("msg"));
        let done = StatusUpdate {
            lease_owner: Some("w1".into()),
            result_json: Some("{\"ok\":true}".into()),
            ..StatusUpdate::to(JobStatus::Succeeded)
        };
        let UpdateOutcome::Updated(finished) = store.update_status(&id, done).await.expect("cas") else {
            panic!("expected Updated")
        };
        assert_eq!(finished.status, JobStatus::Succeeded);
        assert_eq!(finished.message.as_deref(), Some("half way"));
        assert!(
            finished.finished_at.is_some() && finished.lease_owner.is_none() && finished.lease_expires_at.is_none()
        );
        assert_eq!(
            store.update_status(&id, StatusUpdate::to(JobStatus::Failed)).await.expect("cas"),
            UpdateOutcome::Rejected { current: JobStatus::Succeeded }
        );
        assert!(!store.set_message(&id, "late").await.expect("msg"));
        let missing: JobId = "no-such-job".parse().expect("id");
        assert_eq!(
            store.update_status(&missing, StatusUpdate::to(JobStatus::Running)).await.expect("cas"),
            UpdateOutcome::NotFound
        );
    }

    /// Two replicas with three claimers each drain 40 jobs: every job is claimed exactly
    /// once, oldest first per claimer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 6)]
    async fn concurrent_claimers_never_share_a_job() {
        let Some(url) = fresh_url().await else { return };
        let store = migrated(&url).await;
        let mut all = HashSet::new();
        for _ in 0..40 {
            all.insert(created(&store, new_job(None, "{}")).await.job_id);
        }
        let replicas: Vec<Arc<dyn Store>> = vec![Arc::new(raw(&url, false).await), Arc::new(raw(&url, false).await)];
        let mut tasks = Vec::new();
        for i in 0..6 {
            let s = replicas[i % 2].clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(j) = s.claim_next_job(&format!("w{i}"), Duration::from_secs(60)).await.expect("claim") {
                    got.push(j.job_id);
                }
                got
            }));
        }
        let mut seen = Vec::new();
        for t in tasks {
            seen.extend(t.await.expect("join"));
        }
        let unique: HashSet<JobId> = seen.iter().cloned().collect();
        assert_eq!(seen.len(), 40, "a job was claimed twice or missed");
        assert_eq!(unique, all);
    }

    /// Expired leases are requeued, or failed with the documented reason once the
    /// attempts are used up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_leases_are_recovered() {
        let Some(url) = fresh_url().await else { return };
        let store = migrated(&url).await;
        let a = created(&store, new_job(None, "{}")).await.job_id;
        let b = created(&store, new_job(None, "{}")).await.job_id;
        store.claim_next_job("w1", Duration::from_millis(1)).await.expect("claim").expect("a");
        store.claim_next_job("w2", Duration::from_millis(1)).await.expect("claim").expect("b");
        store.exec_for_test(&format!("UPDATE jobs SET attempts = 3 WHERE job_id = '{b}'")).await;
        let later = Timestamp::now().plus_millis(1_000);
        let report = store.recover_expired_leases(later, 3).await.expect("recover");
        assert_eq!((report.requeued, report.failed), (vec![a.clone()], vec![b.clone()]));
        let failed = store.get_job(None, &b).await.expect("get").expect("b");
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(
            failed.error.as_deref(),
            Some("worker lost: the lease held by w2 expired; gave up after 3 attempt(s) (limit 3)")
        );
        let requeued = store.get_job(None, &a).await.expect("get").expect("a");
        assert_eq!(requeued.message.as_deref(), Some("requeued: the lease held by w1 expired (attempt 1 of 3)"));
        assert_eq!(requeued.status, JobStatus::Queued);
    }

    /// Cursor pagination walks every job once in both orders, and tenant filters hide
    /// other tenants' jobs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn list_jobs_pages_with_cursors() {
        let Some(url) = fresh_url().await else { return };
        let store = migrated(&url).await;
        let mut ids = Vec::new();
        for _ in 0..7 {
            ids.push(created(&store, new_job(None, "{}")).await.job_id);
        }
        for order in [SortOrder::Asc, SortOrder::Desc] {
            let mut q = JobQuery { limit: 3, order, ..JobQuery::default() };
            let mut seen = Vec::new();
            loop {
                let page = store.list_jobs(&q).await.expect("list");
                seen.extend(page.jobs.into_iter().map(|j| j.job_id));
                match page.next_cursor {
                    Some(c) => q.cursor = Some(c),
                    None => break,
                }
            }
            let mut expected = ids.clone();
            if order == SortOrder::Desc {
                expected.reverse();
            }
            assert_eq!(seen, expected);
        }
        let other: TenantId = "other".parse().expect("tenant");
        let q = JobQuery { tenant_id: Some(other.clone()), limit: 10, ..JobQuery::default() };
        assert!(store.list_jobs(&q).await.expect("list").jobs.is_empty());
        assert!(store.get_job(Some(&other), &ids[0]).await.expect("get").is_none());
        assert_eq!(store.count_jobs(Some(&TenantId::default_tenant())).await.expect("count").total, 7);
    }

    /// Rolling back to 1 runs the stored down SQL (jobs keep their original columns),
    /// and migrating again restores the latest schema.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rollback_then_migrate_again() {
        let Some(url) = fresh_url().await else { return };
        let store = migrated(&url).await;
        let job = created(&store, new_job(None, r#"{"keep":true}"#)).await;
        let err = store.rollback_to(migrations::latest_version() + 1).await.err();
        assert!(matches!(err, Some(StoreError::InvalidRollback { .. })), "{err:?}");
        let undone = store.rollback_to(1).await.expect("rollback");
        assert_eq!(undone, (2..=migrations::latest_version()).rev().collect::<Vec<_>>());
        assert_eq!(store.schema_status().await.expect("status").schema_version, 1);
        assert_eq!(
            store.table_counts().await.expect("counts").keys().cloned().collect::<Vec<_>>(),
            vec!["idempotency_keys", "jobs", "workflow_events"]
        );
        let scanned = store.scan_jobs(None, 10).await.expect("scan");
        assert_eq!(scanned.len(), 1);
        assert_eq!(scanned[0].request_json, job.request_json);
        let applied = store.migrate_to(None).await.expect("migrate");
        assert_eq!(applied, (2..=migrations::latest_version()).collect::<Vec<_>>());
        assert!(store.migrate_to(None).await.expect("again").is_empty());
        let back = store.get_job(None, &job.job_id).await.expect("get").expect("job");
        assert_eq!((back.request_json, back.attempts), (job.request_json, 0));
        created(&store, new_job(None, "{}")).await;
    }

    /// A failing migration statement rolls back that migration only and names it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failed_rollback_statement_is_reported_and_undone() {
        let Some(url) = fresh_url().await else { return };
        let store = migrated(&url).await;
        let latest = migrations::latest_version();
        store
            .exec_for_test(&format!(
                "UPDATE rune_migrations SET down_sql = 'DROP TABLE nope_missing' WHERE version = {latest}"
            ))
            .await;
        let err = store.rollback_to(latest - 1).await.expect_err("must fail").to_string();
        assert!(err.contains(&format!("migration {latest}")) && err.contains("nope_missing"), "{err}");
        assert_eq!(store.schema_status().await.expect("status").schema_version, latest);
    }

    /// Rows exported from one database import into another with the same values:
    /// booleans export as 0/1, blobs as base64, re-importing inserts nothing, and new
    /// events get ids after the imported ones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn export_import_round_trip() {
        let (Some(a_url), Some(b_url)) = (fresh_url().await, fresh_url().await) else { return };
        let (a, b) = (migrated(&a_url).await, migrated(&b_url).await);
        let job = created(&a, new_job(Some("k"), "{}")).await.job_id;
        let blob = vec![0u8, 1, 2, 255];
        let meta = a.put_artifact(&job, ArtifactKind::Log, "out.log", blob.clone()).await.expect("artifact");
        let spec = ScheduleSpec {
            tenant_id: TenantId::default_tenant(),
            name: "nightly".into(),
            cron: "0 3 * * *".into(),
            kind: JobKind::CostEstimate,
            request_json: "{}".into(),
            suspended: true,
            concurrency_policy: ConcurrencyPolicy::Forbid,
            starting_deadline_seconds: Some(30),
            successful_runs_history_limit: 3,
            failed_runs_history_limit: 1,
        };
        let schedule = a.create_schedule(spec.clone()).await.expect("schedule");
        assert!(matches!(a.create_schedule(spec).await, Err(StoreError::Conflict(_))));
        for i in 0..3 {
            a.append_event(&job, NewJobEvent { duration_ms: Some(f64::from(i) + 0.5), ..NewJobEvent::ok("step") })
                .await
                .expect("event");
        }
        a.put_setting("limits", &serde_json::json!({"max": 3})).await.expect("setting");

        for table in migrations::DATA_TABLES {
            let mut rx = a.export_stream(table).expect("export");
            let mut rows = Vec::new();
            while let Some(r) = rx.recv().await {
                rows.push(r.expect("row"));
            }
            match table {
                "schedules" => assert_eq!(rows[0]["suspended"], serde_json::json!(1)),
                "audit_artifact" => assert_eq!(rows[0]["content"], serde_json::json!({"$base64": "AAEC/w=="})),
                "workflow_events" => assert_eq!(rows.iter().map(|r| r["id"].clone()).collect::<Vec<_>>(), [1, 2, 3]),
                _ => {}
            }
            let n = rows.len() as u64;
            assert_eq!(b.import_rows(table, rows.clone()).await.expect("import"), n, "{table}");
            assert_eq!(b.import_rows(table, rows).await.expect("re-import"), 0, "{table}");
        }
        assert_eq!(a.table_counts().await.expect("a"), b.table_counts().await.expect("b"));
        let (got_meta, content) = b.get_artifact(&job, &meta.artifact_id).await.expect("get").expect("artifact");
        assert_eq!((got_meta, content), (meta, blob));
        assert_eq!(b.get_schedule(None, &schedule.schedule_id).await.expect("get"), Some(schedule));
        assert_eq!(b.events_after(&job, 0, 10).await.expect("events").len(), 3);
        assert_eq!(b.append_event(&job, NewJobEvent::ok("next")).await.expect("event"), 4);
        assert_eq!(b.list_settings().await.expect("settings"), a.list_settings().await.expect("settings"));

        let mut bad = Map::new();
        bad.insert("no_such_column".into(), Value::from(1));
        let err = b.import_rows("settings", vec![bad]).await.expect_err("must fail").to_string();
        assert!(err.contains("settings") && err.contains("no_such_column"), "{err}");
        assert!(matches!(b.import_rows("nope", Vec::new()).await, Err(StoreError::Conflict(_))));
    }

    /// A backup restores into another database with the same job history and identity;
    /// a restore is refused while a server holds the restore lock.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn backup_and_restore_under_the_server_lock() {
        let (Some(a_url), Some(b_url)) = (fresh_url().await, fresh_url().await) else { return };
        let a = migrated(&a_url).await;
        for i in 0..5 {
            let j = created(&a, new_job(Some(&format!("k{i}")), "{}")).await.job_id;
            a.append_event(&j, NewJobEvent::ok("step")).await.expect("event");
            a.put_artifact(&j, ArtifactKind::Log, "log.txt", vec![i; 10]).await.expect("artifact");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("backup.jsonl");
        let manifest = crate::backup::backup(&a, &dest).await.expect("backup");
        assert_eq!(manifest.job_history.count, 5);

        let b = migrated(&b_url).await;
        created(&b, new_job(None, "{\"doomed\":1}")).await;
        let server = raw(&b_url, false).await;
        server.hold_server_lock().await.expect("server lock");
        let err = b.restore_from_archive(&dest).await.err();
        assert!(matches!(err, Some(StoreError::InUse { .. })), "{err:?}");
        drop(server);
        // The server's session closes asynchronously; give it a moment.
        let mut restored = None;
        for _ in 0..50 {
            match b.restore_from_archive(&dest).await {
                Ok(m) => {
                    restored = Some(m);
                    break;
                }
                Err(StoreError::InUse { .. }) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => panic!("restore failed: {e}"),
            }
        }
        assert_eq!(restored.expect("restored").jobs, manifest.jobs);
        let now = crate::backup::compute_manifest(&b).await.expect("manifest");
        assert_eq!(now.jobs, manifest.jobs);
        assert_eq!(now.table_counts, manifest.table_counts);
        assert_eq!(now.database_id, a.schema_status().await.expect("status").database_id);
        let report = crate::backup::verify(&b, Some((&manifest, &dest))).await.expect("verify");
        assert!(report.ok(), "{report:?}");
        let j = b.scan_jobs(None, 1).await.expect("scan").remove(0).job_id;
        assert!(b.append_event(&j, NewJobEvent::ok("after")).await.expect("event") > 5);
        // The lock is released after a restore: a server can start again.
        raw(&b_url, false).await.hold_server_lock().await.expect("server lock again");
    }

    /// Two replicas migrating one empty database at once: the advisory lock makes one
    /// apply every migration and the other find nothing to do.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_migrations_apply_once() {
        let Some(url) = fresh_url().await else { return };
        let (a, b) = (Arc::new(raw(&url, true).await), Arc::new(raw(&url, true).await));
        let (ra, rb) = tokio::join!(a.migrate_to(None), b.migrate_to(None));
        let (ra, rb) = (ra.expect("a"), rb.expect("b"));
        let all: Vec<i64> = (1..=migrations::latest_version()).collect();
        assert!((ra == all && rb.is_empty()) || (rb == all && ra.is_empty()), "{ra:?} {rb:?}");
        assert_eq!(a.schema_status().await.expect("status").applied.len(), all.len());
    }

    /// The same rows export to the same archive lines from SQLite and from PostgreSQL
    /// (booleans as 0/1, floats and blobs alike), so archives are engine-neutral.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn archives_match_sqlite_byte_for_byte() {
        let Some(url) = fresh_url().await else { return };
        let dir = tempfile::tempdir().expect("tempdir");
        let lite = crate::open(&format!("sqlite://{}/jobs.db", dir.path().display()), &OpenOptions::default())
            .await
            .expect("sqlite");
        for i in 0..3u8 {
            let j = created(lite.as_ref(), new_job(Some(&format!("k{i}")), r#"{"x":1}"#)).await.job_id;
            lite.append_event(&j, NewJobEvent { duration_ms: Some(1.25), ..NewJobEvent::ok("step") })
                .await
                .expect("event");
            lite.put_artifact(&j, ArtifactKind::Log, "a.log", vec![i, 0, 255]).await.expect("artifact");
        }
        lite.claim_next_job("w", Duration::from_secs(5)).await.expect("claim");
        lite.create_schedule(ScheduleSpec {
            tenant_id: TenantId::default_tenant(),
            name: "s".into(),
            cron: "* * * * *".into(),
            kind: JobKind::CostEstimate,
            request_json: "{}".into(),
            suspended: true,
            concurrency_policy: ConcurrencyPolicy::Allow,
            starting_deadline_seconds: None,
            successful_runs_history_limit: 2,
            failed_runs_history_limit: 2,
        })
        .await
        .expect("schedule");
        lite.put_setting("k", &serde_json::json!([1, "two"])).await.expect("setting");
        let pg = migrated(&url).await;
        crate::archive::copy_between(lite.as_ref(), Some(&pg)).await.expect("copy");
        let (lite_file, pg_file) = (dir.path().join("lite.jsonl"), dir.path().join("pg.jsonl"));
        crate::archive::export(lite.as_ref(), &lite_file).await.expect("export sqlite");
        crate::archive::export(&pg, &pg_file).await.expect("export pg");
        let body =
            |p: &Path| std::fs::read_to_string(p).expect("read").lines().skip(1).map(str::to_owned).collect::<Vec<_>>();
        let (l, p) = (body(&lite_file), body(&pg_file));
        assert!(l.len() > 10);
        for (a, b) in l.iter().zip(&p) {
            assert_eq!(a, b);
        }
        assert_eq!(l.len(), p.len());
    }

    impl PgStore {
        /// Raw SQL behind the store's back, for tampering in tests.
        async fn exec_for_test(&self, sql: &str) {
            self.get().await.expect("connection").batch_execute(sql).await.expect("raw sql");
        }
    }
}
