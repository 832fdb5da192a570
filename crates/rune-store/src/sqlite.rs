//! The SQLite engine: WAL mode, one writer thread with group commit, pooled readers.
//!
//! SQLite allows one writer at a time. Rather than let every request fight for the
//! write lock (and sleep in `busy_timeout`), all writes go to one thread that owns the
//! write connection. It drains whatever is waiting (up to [`MAX_BATCH`] operations) into
//! one transaction, giving each operation its own savepoint so one failure does not undo
//! the others, and commits once: one fsync for the whole batch with
//! `synchronous=FULL`, which is what makes durable submissions fast.
//!
//! Reads run on `spawn_blocking` with connections from a small pool; WAL lets them
//! proceed while the writer commits. Schema changes (migrations, rollback) run on the
//! writer thread too, as exclusive operations between batches.

use crate::error::{Result, StoreError};
use crate::lock::DbLock;
use crate::migrations::{self, AppliedMigration, Dialect};
use crate::rows::{self, JOB_COLUMNS};
use crate::url::DatabaseUrl;
use crate::{
    CreateOutcome, Engine, JobCounts, JobPage, JobQuery, NewJob, OpenOptions, RecoveryReport, ScheduleSpec,
    SchemaStatus, SortOrder, StatusUpdate, Store, UpdateOutcome, MAX_PAGE_SIZE, RUNE_VERSION,
};
use async_trait::async_trait;
use rune_core::records::{
    ArtifactKind, ArtifactMeta, ChainState, ConcurrencyPolicy, JobEvent, NewJobEvent, ScheduleRecord,
};
use rune_core::{JobId, JobRecord, JobStatus, TenantId, Timestamp};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, TransactionBehavior};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most write operations committed in one transaction.
pub const MAX_BATCH: usize = 256;
/// Write operations waiting for the writer before submitters wait (backpressure).
const WRITE_QUEUE_CAPACITY: usize = 4096;
/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;
/// How long a connection waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows buffered between an export reader and its consumer.
const EXPORT_CHANNEL_CAPACITY: usize = 1024;

type ExclusiveFn = Box<dyn FnOnce(&mut Connection) + Send>;

trait BatchOp: Send {
    /// Runs inside the batch transaction; returns whether it succeeded.
    fn apply(&mut self, conn: &Connection) -> bool;
    /// Delivers the outcome once the batch committed (or failed to).
    fn complete(self: Box<Self>, commit: &std::result::Result<(), CommitFailure>);
}

struct Op<T, F> {
    f: Option<F>,
    out: Option<Result<T>>,
    tx: oneshot::Sender<Result<T>>,
}

impl<T: Send, F: FnOnce(&Connection) -> Result<T> + Send> BatchOp for Op<T, F> {
    fn apply(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else { return false };
        let out = f(conn);
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn complete(self: Box<Self>, commit: &std::result::Result<(), CommitFailure>) {
        let out = match (self.out, commit) {
            (Some(Ok(v)), Ok(())) => Ok(v),
            (Some(Ok(_)), Err(e)) => Err(StoreError::CommitFailed { reason: e.reason.clone(), code: e.code }),
            (Some(Err(e)), _) => Err(e),
            (None, _) => Err(StoreError::Worker("operation was not run".into())),
        };
        let _ = self.tx.send(out);
    }
}

enum WriteMsg {
    Batch(Box<dyn BatchOp>),
    Exclusive(ExclusiveFn),
}

/// Idle read connections; a `std` mutex because it is held only to push or pop.
struct ReaderPool {
    path: PathBuf,
    synchronous_full: bool,
    /// Open connections read-only and leave the journal mode alone (backups, restores).
    read_only: bool,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    fn get(&self) -> Result<Connection> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(conn);
        }
        if self.read_only {
            let conn = Connection::open_with_flags(&self.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|e| describe_open_error(&self.path, e))?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            return Ok(conn);
        }
        open_connection(&self.path, self.synchronous_full)
    }

    fn put(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
    }
}

/// A [`Store`] on an SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    /// Sender side of the writer thread's queue; the thread exits when the last sender
    /// (this store) is dropped. Bounded: submitters wait when the writer falls behind.
    /// `None` for a read-only store.
    writer: Option<mpsc::Sender<WriteMsg>>,
    readers: Arc<ReaderPool>,
    /// Held for the store's lifetime when opened as a server.
    _lock: Option<DbLock>,
}

fn open_connection(path: &Path, synchronous_full: bool) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| describe_open_error(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // journal_mode returns a row; WAL persists in the file once set.
    let mode: String =
        conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(|e| describe_open_error(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Path {
            path: path.to_owned(),
            reason: format!(
                "could not switch the database to WAL mode (got `{mode}`); is the file on a network file system?"
            ),
        });
    }
    conn.execute_batch(if synchronous_full { "PRAGMA synchronous=FULL;" } else { "PRAGMA synchronous=NORMAL;" })?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn describe_open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    let dir = path.parent().map(|p| p.display().to_string()).unwrap_or_default();
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::CannotOpen => StoreError::Path {
            path: path.to_owned(),
            reason: format!("cannot open the database file; check that `{dir}` exists and is writable (or set RUNE_HOME / --database-url to a writable place)"),
        },
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ReadOnly => StoreError::Path {
            path: path.to_owned(),
            reason: format!("the database or its directory `{dir}` is read-only; RUNE needs to write the file and its -wal/-shm companions"),
        },
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase => StoreError::Path {
            path: path.to_owned(),
            reason: "is not an SQLite database (wrong file, or corrupt); restore a backup with `rune db restore`".into(),
        },
        _ => StoreError::Path { path: path.to_owned(), reason: e.to_string() },
    }
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<WriteMsg>) {
    while let Some(msg) = rx.blocking_recv() {
        let first = match msg {
            WriteMsg::Exclusive(f) => {
                f(&mut conn);
                continue;
            }
            WriteMsg::Batch(op) => op,
        };
        let mut batch = vec![first];
        let mut then_exclusive = None;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(WriteMsg::Batch(op)) => batch.push(op),
                Ok(WriteMsg::Exclusive(f)) => {
                    then_exclusive = Some(f);
                    break;
                }
                Err(_) => break,
            }
        }
        run_batch(&conn, batch);
        if let Some(f) = then_exclusive {
            f(&mut conn);
        }
    }
}

/// Why a group commit failed, shared by every operation in the batch (so each caller
/// can tell a full disk from a bug).
#[derive(Debug, Clone)]
struct CommitFailure {
    reason: String,
    code: Option<rusqlite::ErrorCode>,
}

impl From<rusqlite::Error> for CommitFailure {
    fn from(e: rusqlite::Error) -> Self {
        CommitFailure { code: e.sqlite_error_code(), reason: e.to_string() }
    }
}

fn run_batch(conn: &Connection, mut batch: Vec<Box<dyn BatchOp>>) {
    let commit = (|| -> std::result::Result<(), CommitFailure> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for op in batch.iter_mut() {
            conn.execute_batch("SAVEPOINT op")?;
            if op.apply(conn) {
                conn.execute_batch("RELEASE op")?;
            } else {
                conn.execute_batch("ROLLBACK TO op; RELEASE op")?;
            }
        }
        crate::testhooks::pause("sqlite.before-commit");
        Ok(conn.execute_batch("COMMIT")?)
    })();
    if commit.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for op in batch {
        op.complete(&commit);
    }
}

impl SqliteStore {
    /// Opens (creating when `options.migrate`) the database without version checks;
    /// [`crate::open`] adds the checks and migrations.
    pub async fn open_raw(url: &DatabaseUrl, options: &OpenOptions) -> Result<Self> {
        let DatabaseUrl::Sqlite { path, synchronous_full } = url else {
            return Err(StoreError::InvalidUrl { url: url.to_string(), reason: "not an sqlite:// URL".into() });
        };
        let (path, synchronous_full) = (path.clone(), *synchronous_full);
        if !path.exists() {
            if !options.migrate {
                return Err(StoreError::Path {
                    path,
                    reason: "no database here; create it with `rune db migrate` or by starting `rune serve`, or point --database-url / RUNE_DATABASE_URL at the right file".into(),
                });
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Path {
                    path: dir.to_owned(),
                    reason: format!(
                        "cannot create the database directory: {e}; choose a writable RUNE_HOME or --database-url"
                    ),
                })?;
            }
        } else if path.is_dir() {
            return Err(StoreError::Path {
                path,
                reason: "is a directory; give the database file, e.g. …/jobs.db".into(),
            });
        }
        let lock = Some(DbLock::shared(&path)?);
        let p2 = path.clone();
        let conn = tokio::task::spawn_blocking(move || open_connection(&p2, synchronous_full))
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))??;
        let (tx, rx) = mpsc::channel(WRITE_QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("rune-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StoreError::io("starting the SQLite writer thread", e))?;
        let readers = Arc::new(ReaderPool {
            path: path.clone(),
            synchronous_full,
            read_only: false,
            idle: Mutex::new(Vec::new()),
        });
        Ok(Self { path, writer: Some(tx), readers, _lock: lock })
    }

    /// Opens a database file strictly read-only, without switching it to WAL: for
    /// inspecting backups, which must stay byte-for-byte unchanged. Writes fail.
    pub fn open_readonly(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(StoreError::Path { path: path.to_owned(), reason: "no such file".into() });
        }
        let readers = Arc::new(ReaderPool {
            path: path.to_owned(),
            synchronous_full: false,
            read_only: true,
            idle: Mutex::new(Vec::new()),
        });
        let store = Self { path: path.to_owned(), writer: None, readers, _lock: None };
        // Fail now, not on first use, if it is not a database.
        let conn = store.readers.get()?;
        conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
            .map_err(|e| describe_open_error(path, e))?;
        store.readers.put(conn);
        Ok(store)
    }

    /// SQLite's `quick_check`: every page and record is readable and well-formed (index
    /// contents are not cross-checked). Empty when healthy.
    pub async fn quick_check(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare("PRAGMA quick_check")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows.into_iter().filter(|s| s != "ok").collect())
        })
        .await
    }

    fn sender(&self) -> Result<&mpsc::Sender<WriteMsg>> {
        self.writer.as_ref().ok_or_else(|| StoreError::Path {
            path: self.path.clone(),
            reason: "opened read-only; this operation writes".into(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn read<T: Send + 'static>(&self, f: impl FnOnce(&Connection) -> Result<T> + Send + 'static) -> Result<T> {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get()?;
            let out = f(&conn);
            pool.put(conn);
            out
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))?
    }

    async fn write<T: Send + 'static>(&self, f: impl FnOnce(&Connection) -> Result<T> + Send + 'static) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let op = Op { f: Some(f), out: None, tx };
        self.sender()?
            .send(WriteMsg::Batch(Box::new(op)))
            .await
            .map_err(|_| StoreError::Worker("the SQLite writer thread has stopped".into()))?;
        rx.await.map_err(|_| StoreError::Worker("the SQLite writer dropped an operation".into()))?
    }

    async fn exclusive<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let run: ExclusiveFn = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        self.sender()?
            .send(WriteMsg::Exclusive(run))
            .await
            .map_err(|_| StoreError::Worker("the SQLite writer thread has stopped".into()))?;
        rx.await.map_err(|_| StoreError::Worker("the SQLite writer dropped an operation".into()))?
    }
}

fn read_job(row: &Row<'_>) -> Result<JobRecord> {
    let (job_id, tenant_id, kind, status) =
        rows::job_ids(row.get(0)?, row.get(1)?, &row.get::<_, String>(2)?, &row.get::<_, String>(3)?)?;
    Ok(JobRecord {
        job_id,
        tenant_id,
        kind,
        status,
        request_json: row.get(4)?,
        result_json: row.get(5)?,
        error: row.get(6)?,
        message: row.get(7)?,
        created_at: Timestamp::from_epoch_seconds(row.get(8)?),
        updated_at: Timestamp::from_epoch_seconds(row.get(9)?),
        attempts: row.get::<_, Option<i64>>(10)?.unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
        lease_owner: row.get(11)?,
        lease_expires_at: rows::ts_opt(row.get(12)?),
        started_at: rows::ts_opt(row.get(13)?),
        finished_at: rows::ts_opt(row.get(14)?),
        schedule_id: row.get(15)?,
    })
}

fn collect_jobs(stmt: &mut rusqlite::Statement<'_>, params: impl rusqlite::Params) -> Result<Vec<JobRecord>> {
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(read_job(row)?);
    }
    Ok(out)
}

fn get_job_conn(conn: &Connection, id: &str) -> Result<Option<JobRecord>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?1"))?;
    Ok(collect_jobs(&mut stmt, [id])?.pop())
}

fn table_exists(conn: &Connection, table: &str) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |_| Ok(()))
        .optional()?
        .is_some())
}

fn current_version(conn: &Connection) -> Result<i64> {
    if !table_exists(conn, "rune_migrations")? {
        return Ok(0);
    }
    Ok(conn.query_row("SELECT COALESCE(MAX(version), 0) FROM rune_migrations", [], |r| r.get(0))?)
}

fn applied_migrations(conn: &Connection) -> Result<Vec<AppliedMigration>> {
    if !table_exists(conn, "rune_migrations")? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT version, name, checksum, down_sql, applied_at, applied_by FROM rune_migrations ORDER BY version",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(AppliedMigration {
            version: r.get(0)?,
            name: r.get(1)?,
            checksum: r.get(2)?,
            down_sql: r.get(3)?,
            applied_at: r.get(4)?,
            applied_by: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Splits migration SQL into statements (RUNE's migrations contain no `;` in literals).
pub(crate) fn statements(sql: &str) -> impl Iterator<Item = &str> {
    sql.split(';').map(str::trim).filter(|s| !s.is_empty())
}

fn run_migration_step(
    conn: &mut Connection,
    version: i64,
    name: &str,
    sql: &str,
    record: Option<(&str, &str, &str)>,
) -> Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let current = current_version(&tx)?;
    // Another process may have moved the schema while we waited for the lock.
    let wanted = record.is_some();
    if (wanted && current >= version) || (!wanted && current < version) {
        return Ok(false);
    }
    for stmt in statements(sql) {
        tx.execute_batch(stmt).map_err(|e| StoreError::MigrationFailed {
            version,
            name: name.to_owned(),
            reason: format!("{e} (in: {})", stmt.lines().next().unwrap_or_default()),
        })?;
        crate::testhooks::pause("migration.statement");
    }
    match record {
        Some((checksum, up, down)) => {
            tx.execute(
                "INSERT INTO rune_migrations (version, name, checksum, up_sql, down_sql, applied_at, applied_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    version,
                    name,
                    checksum,
                    up,
                    down,
                    Timestamp::now().as_epoch_seconds(),
                    format!("rune {RUNE_VERSION}")
                ],
            )?;
        }
        None => {
            tx.execute("DELETE FROM rune_migrations WHERE version = ?1", [version])?;
        }
    }
    tx.commit()?;
    Ok(true)
}

fn value_to_json(v: ValueRef<'_>) -> Value {
    use base64::Engine as _;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => {
            let mut m = Map::new();
            m.insert("$base64".into(), Value::String(base64::engine::general_purpose::STANDARD.encode(b)));
            Value::Object(m)
        }
    }
}

fn json_to_value(v: &Value) -> std::result::Result<SqlValue, String> {
    use base64::Engine as _;
    Ok(match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().ok_or("number out of range")?),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Object(m) => match m.get("$base64").and_then(Value::as_str) {
            Some(b) => SqlValue::Blob(base64::engine::general_purpose::STANDARD.decode(b).map_err(|e| e.to_string())?),
            None => return Err("objects must be {\"$base64\": …} blobs".into()),
        },
        Value::Array(_) => return Err("arrays are not column values".into()),
    })
}

/// Key columns used to order exports (stable across engines).
pub(crate) fn table_order_key(table: &str) -> Option<&'static str> {
    Some(match table {
        "jobs" => "job_id",
        "idempotency_keys" => "tenant_id, operation, idempotency_key",
        "workflow_events" => "id",
        "chain_state" => "job_id",
        "audit_artifact" => "artifact_id",
        "settings" => "key",
        "schedules" => "schedule_id",
        _ => return None,
    })
}

fn read_schedule(r: &Row<'_>) -> Result<ScheduleRecord> {
    let id: String = r.get(0)?;
    let corrupt = |reason: String| StoreError::CorruptRow { table: "schedules", key: id.clone(), reason };
    let tenant: TenantId =
        r.get::<_, String>(1)?.parse().map_err(|e: rune_core::job::InvalidId| corrupt(e.to_string()))?;
    let kind = r.get::<_, String>(4)?.parse().map_err(|e: rune_core::job::UnknownJobKind| corrupt(e.to_string()))?;
    let policy: ConcurrencyPolicy = r.get::<_, String>(8)?.parse().map_err(corrupt)?;
    let last_job: Option<String> = r.get(13)?;
    Ok(ScheduleRecord {
        schedule_id: id.clone(),
        tenant_id: tenant,
        name: r.get(2)?,
        cron: r.get(3)?,
        kind,
        request_json: r.get(5)?,
        suspended: r.get::<_, i64>(6)? != 0,
        suspended_by: r.get(7)?,
        concurrency_policy: policy,
        starting_deadline_seconds: r.get::<_, Option<i64>>(9)?.map(|v| v.max(0) as u64),
        successful_runs_history_limit: r.get::<_, i64>(10)?.clamp(0, u32::MAX as i64) as u32,
        failed_runs_history_limit: r.get::<_, i64>(11)?.clamp(0, u32::MAX as i64) as u32,
        last_schedule_time: rows::ts_opt(r.get(12)?),
        last_job_id: last_job.and_then(|j| j.parse().ok()),
        created_at: Timestamp::from_epoch_seconds(r.get(14)?),
        updated_at: Timestamp::from_epoch_seconds(r.get(15)?),
    })
}

const SCHEDULE_COLUMNS: &str = "schedule_id, tenant_id, name, cron, kind, request_json, suspended, suspended_by, \
     concurrency_policy, starting_deadline_seconds, successful_runs_history_limit, failed_runs_history_limit, \
     last_schedule_time, last_job_id, created_at, updated_at";

fn get_schedule_conn(conn: &Connection, tenant: Option<&str>, id: &str) -> Result<Option<ScheduleRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE schedule_id = ?1 AND (?2 IS NULL OR tenant_id = ?2)"
    ))?;
    let mut rows = stmt.query(params![id, tenant])?;
    match rows.next()? {
        Some(r) => Ok(Some(read_schedule(r)?)),
        None => Ok(None),
    }
}

fn map_unique(e: rusqlite::Error, what: String) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict(what)
        }
        _ => StoreError::Sqlite(e),
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    async fn create_job(&self, job: NewJob) -> Result<CreateOutcome> {
        let request_hash = rows::sha256_hex(job.request_json.as_bytes());
        self.write(move |conn| {
            if let Some(key) = &job.idempotency_key {
                let existing: Option<(String, Option<String>)> = conn
                    .prepare_cached(
                        "SELECT job_id, request_sha256 FROM idempotency_keys \
                         WHERE tenant_id = ?1 AND operation = ?2 AND idempotency_key = ?3",
                    )?
                    .query_row(params![job.tenant_id.as_str(), job.kind.as_str(), key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((job_id, hash)) = existing {
                    // Keys adopted from the original RUNE have no hash: treat as a replay.
                    if hash.as_deref().is_some_and(|h| h != request_hash) {
                        let existing = job_id.parse().map_err(|e: rune_core::job::InvalidId| StoreError::CorruptRow {
                            table: "idempotency_keys",
                            key: key.clone(),
                            reason: e.to_string(),
                        })?;
                        return Ok(CreateOutcome::KeyConflict { existing });
                    }
                    return match get_job_conn(conn, &job_id)? {
                        Some(j) => Ok(CreateOutcome::Replayed(j)),
                        None => Err(StoreError::CorruptRow {
                            table: "idempotency_keys",
                            key: key.clone(),
                            reason: format!("points at job {job_id}, which does not exist"),
                        }),
                    };
                }
            }
            let id = JobId::new_random();
            let now = Timestamp::now().as_epoch_seconds();
            let mut stmt = conn.prepare_cached(&format!(
                "INSERT INTO jobs (job_id, tenant_id, kind, status, request_json, message, created_at, updated_at, schedule_id) \
                 VALUES (?1, ?2, ?3, 'queued', ?4, 'accepted', ?5, ?5, ?6) RETURNING {JOB_COLUMNS}"
            ))?;
            let created = collect_jobs(
                &mut stmt,
                params![id.as_str(), job.tenant_id.as_str(), job.kind.as_str(), job.request_json, now, job.schedule_id],
            )?
            .pop()
            .ok_or_else(|| StoreError::Worker("insert returned no row".into()))?;
            if let Some(key) = &job.idempotency_key {
                conn.prepare_cached(
                    "INSERT INTO idempotency_keys (tenant_id, operation, idempotency_key, job_id, created_at, request_sha256) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![job.tenant_id.as_str(), job.kind.as_str(), key, id.as_str(), now, request_hash])?;
            }
            Ok(CreateOutcome::Created(created))
        })
        .await
    }

    async fn get_job(&self, tenant: Option<&TenantId>, id: &JobId) -> Result<Option<JobRecord>> {
        let (tenant, id) = (tenant.cloned(), id.clone());
        self.read(move |conn| {
            let job = get_job_conn(conn, id.as_str())?;
            Ok(job.filter(|j| tenant.as_ref().is_none_or(|t| &j.tenant_id == t)))
        })
        .await
    }

    async fn update_status(&self, id: &JobId, update: StatusUpdate) -> Result<UpdateOutcome> {
        let id = id.clone();
        self.write(move |conn| {
            let preds: Vec<&str> = JobStatus::legal_predecessors(update.status).iter().map(|s| s.as_str()).collect();
            let terminal = update.status.is_terminal();
            let now = Timestamp::now().as_epoch_seconds();
            let placeholders = (0..preds.len()).map(|i| format!("?{}", i + 9)).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "UPDATE jobs SET status = ?1, result_json = COALESCE(?2, result_json), error = COALESCE(?3, error), \
                 message = COALESCE(?4, message), updated_at = ?5, \
                 finished_at = CASE WHEN ?6 THEN ?5 ELSE finished_at END, \
                 started_at = CASE WHEN ?1 = 'running' THEN COALESCE(started_at, ?5) ELSE started_at END, \
                 lease_owner = CASE WHEN ?6 THEN NULL ELSE lease_owner END, \
                 lease_expires_at = CASE WHEN ?6 THEN NULL ELSE lease_expires_at END \
                 WHERE job_id = ?7 AND (?8 IS NULL OR lease_owner = ?8) AND status IN ({placeholders}) \
                 RETURNING {JOB_COLUMNS}"
            );
            let mut values: Vec<SqlValue> = vec![
                update.status.as_str().to_owned().into(),
                update.result_json.into(),
                update.error.into(),
                update.message.into(),
                now.into(),
                i64::from(terminal).into(),
                id.as_str().to_owned().into(),
                update.lease_owner.into(),
            ];
            values.extend(preds.iter().map(|s| SqlValue::from((*s).to_owned())));
            let mut stmt = conn.prepare_cached(&sql)?;
            if let Some(job) = collect_jobs(&mut stmt, params_from_iter(values))?.pop() {
                return Ok(UpdateOutcome::Updated(job));
            }
            Ok(match get_job_conn(conn, id.as_str())? {
                Some(j) => UpdateOutcome::Rejected { current: j.status },
                None => UpdateOutcome::NotFound,
            })
        })
        .await
    }

    async fn set_message(&self, id: &JobId, message: &str) -> Result<bool> {
        let (id, message) = (id.clone(), message.to_owned());
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE jobs SET message = ?1, updated_at = ?2 WHERE job_id = ?3 AND status IN ('queued', 'running')",
                )?
                .execute(params![message, Timestamp::now().as_epoch_seconds(), id.as_str()])?;
            Ok(n == 1)
        })
        .await
    }

    async fn list_jobs(&self, query: &JobQuery) -> Result<JobPage> {
        let q = query.clone();
        self.read(move |conn| {
            let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1");
            let mut values: Vec<SqlValue> = Vec::new();
            let mut push = |clause: &str, v: SqlValue, sql: &mut String| {
                values.push(v);
                sql.push_str(&clause.replace('?', &format!("?{}", values.len())));
            };
            if let Some(t) = &q.tenant_id {
                push(" AND tenant_id = ?", t.as_str().to_owned().into(), &mut sql);
            }
            if let Some(k) = q.kind {
                push(" AND kind = ?", k.as_str().to_owned().into(), &mut sql);
            }
            if let Some(s) = q.status {
                push(" AND status = ?", s.as_str().to_owned().into(), &mut sql);
            }
            if let Some(from) = q.created_from {
                push(" AND created_at >= ?", from.as_epoch_seconds().into(), &mut sql);
            }
            if let Some(to) = q.created_to {
                push(" AND created_at < ?", to.as_epoch_seconds().into(), &mut sql);
            }
            if let Some(s) = &q.schedule_id {
                push(" AND schedule_id = ?", s.clone().into(), &mut sql);
            }
            let (cmp, dir) = match q.order {
                SortOrder::Desc => ("<", "DESC"),
                SortOrder::Asc => (">", "ASC"),
            };
            if let Some(c) = &q.cursor {
                values.push(c.created_at.as_epoch_seconds().into());
                values.push(c.job_id.clone().into());
                let (a, b) = (values.len() - 1, values.len());
                sql.push_str(&format!(" AND (created_at, job_id) {cmp} (?{a}, ?{b})"));
            }
            let limit = q.limit.clamp(1, MAX_PAGE_SIZE);
            values.push(i64::from(limit + 1).into());
            sql.push_str(&format!(" ORDER BY created_at {dir}, job_id {dir} LIMIT ?{}", values.len()));
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut jobs = collect_jobs(&mut stmt, params_from_iter(values))?;
            let more = jobs.len() > limit as usize;
            jobs.truncate(limit as usize);
            let next_cursor = if more {
                jobs.last().map(|j| crate::Cursor { created_at: j.created_at, job_id: j.job_id.to_string() })
            } else {
                None
            };
            Ok(JobPage { jobs, next_cursor })
        })
        .await
    }

    async fn count_jobs(&self, tenant: Option<&TenantId>) -> Result<JobCounts> {
        let tenant = tenant.map(|t| t.as_str().to_owned());
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT status, kind, COUNT(*) FROM jobs WHERE (?1 IS NULL OR tenant_id = ?1) GROUP BY status, kind",
            )?;
            let mut rows = stmt.query([tenant])?;
            let mut counts = JobCounts::default();
            while let Some(r) = rows.next()? {
                let (status, kind, n): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
                let n = n.max(0) as u64;
                counts.total += n;
                *counts.by_kind_status.entry(kind.clone()).or_default().entry(status.clone()).or_default() += n;
                *counts.by_status.entry(status).or_default() += n;
                *counts.by_kind.entry(kind).or_default() += n;
            }
            Ok(counts)
        })
        .await
    }

    async fn claim_next_job(&self, owner: &str, lease: Duration) -> Result<Option<JobRecord>> {
        let owner = owner.to_owned();
        self.write(move |conn| {
            let now = Timestamp::now();
            let expires = now.plus_millis(lease.as_millis() as i64);
            let mut stmt = conn.prepare_cached(&format!(
                "UPDATE jobs SET status = 'running', lease_owner = ?1, lease_expires_at = ?2, attempts = attempts + 1, \
                 started_at = COALESCE(started_at, ?3), updated_at = ?3, message = 'running' \
                 WHERE job_id = (SELECT job_id FROM jobs WHERE status = 'queued' ORDER BY created_at, job_id LIMIT 1) \
                 RETURNING {JOB_COLUMNS}"
            ))?;
            Ok(collect_jobs(&mut stmt, params![owner, expires.as_epoch_seconds(), now.as_epoch_seconds()])?.pop())
        })
        .await
    }

    async fn heartbeat(&self, id: &JobId, owner: &str, lease: Duration) -> Result<bool> {
        let (id, owner) = (id.clone(), owner.to_owned());
        self.write(move |conn| {
            let expires = Timestamp::now().plus_millis(lease.as_millis() as i64);
            let n = conn
                .prepare_cached(
                    "UPDATE jobs SET lease_expires_at = ?1 WHERE job_id = ?2 AND status = 'running' AND lease_owner = ?3",
                )?
                .execute(params![expires.as_epoch_seconds(), id.as_str(), owner])?;
            Ok(n == 1)
        })
        .await
    }

    async fn release_lease(&self, id: &JobId, owner: &str, message: &str) -> Result<bool> {
        let (id, owner, message) = (id.clone(), owner.to_owned(), message.to_owned());
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE jobs SET status = 'queued', message = ?1, updated_at = ?2, lease_owner = NULL, \
                     lease_expires_at = NULL, attempts = MAX(attempts - 1, 0) \
                     WHERE job_id = ?3 AND status = 'running' AND lease_owner = ?4",
                )?
                .execute(params![message, Timestamp::now().as_epoch_seconds(), id.as_str(), owner])?;
            Ok(n == 1)
        })
        .await
    }

    async fn try_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let (key, owner) = (format!("lease:{name}"), owner.to_owned());
        self.write(move |conn| {
            let now = Timestamp::now();
            let value = serde_json::json!({"owner": owner, "expires_at": now.plus_millis(ttl.as_millis() as i64).as_epoch_seconds()});
            let n = conn
                .prepare_cached(
                    "INSERT INTO settings (key, value_json, updated_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at \
                     WHERE json_extract(settings.value_json, '$.owner') = ?4 \
                        OR json_extract(settings.value_json, '$.expires_at') < ?3",
                )?
                .execute(params![key, value.to_string(), now.as_epoch_seconds(), owner])?;
            Ok(n == 1)
        })
        .await
    }

    async fn recover_expired_leases(&self, now: Timestamp, max_attempts: u32) -> Result<RecoveryReport> {
        self.write(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < ?1)"
            ))?;
            let expired = collect_jobs(&mut stmt, [now.as_epoch_seconds()])?;
            let mut report = RecoveryReport::default();
            for job in expired {
                let owner = job.lease_owner.clone().unwrap_or_else(|| "an unknown worker".into());
                if job.attempts >= max_attempts {
                    let reason = format!(
                        "worker lost: the lease held by {owner} expired; gave up after {} attempt(s) (limit {max_attempts})",
                        job.attempts
                    );
                    conn.prepare_cached(
                        "UPDATE jobs SET status = 'failed', error = ?1, message = ?1, updated_at = ?2, finished_at = ?2, \
                         lease_owner = NULL, lease_expires_at = NULL WHERE job_id = ?3 AND status = 'running'",
                    )?
                    .execute(params![reason, now.as_epoch_seconds(), job.job_id.as_str()])?;
                    report.failed.push(job.job_id);
                } else {
                    let msg = format!("requeued: the lease held by {owner} expired (attempt {} of {max_attempts})", job.attempts);
                    conn.prepare_cached(
                        "UPDATE jobs SET status = 'queued', message = ?1, updated_at = ?2, lease_owner = NULL, \
                         lease_expires_at = NULL WHERE job_id = ?3 AND status = 'running'",
                    )?
                    .execute(params![msg, now.as_epoch_seconds(), job.job_id.as_str()])?;
                    report.requeued.push(job.job_id);
                }
            }
            Ok(report)
        })
        .await
    }

    async fn append_event(&self, job: &JobId, event: NewJobEvent) -> Result<i64> {
        let job = job.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO workflow_events (job_id, event, status, duration_ms, error_type, labels_json, recorded_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                job.as_str(),
                event.event,
                event.status,
                event.duration_ms,
                event.error_type,
                event.labels.to_string(),
                Timestamp::now().as_epoch_seconds()
            ])?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    async fn events_after(&self, job: &JobId, after_id: i64, limit: u32) -> Result<Vec<JobEvent>> {
        let job = job.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, event, status, duration_ms, error_type, labels_json, recorded_at FROM workflow_events \
                 WHERE job_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            )?;
            let mut rows = stmt.query(params![job.as_str(), after_id, i64::from(limit.max(1))])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let labels: Option<String> = r.get(5)?;
                out.push(JobEvent {
                    id: r.get(0)?,
                    job_id: job.clone(),
                    event: r.get(1)?,
                    status: r.get(2)?,
                    duration_ms: r.get(3)?,
                    error_type: r.get(4)?,
                    labels: labels.and_then(|l| serde_json::from_str(&l).ok()).unwrap_or(Value::Null),
                    recorded_at: Timestamp::from_epoch_seconds(r.get(6)?),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn put_chain_state(&self, job: &JobId, state: &ChainState) -> Result<()> {
        let (job, json, overall) = (
            job.clone(),
            serde_json::to_string(state).map_err(|e| StoreError::Worker(e.to_string()))?,
            state.overall_status(),
        );
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO chain_state (job_id, state_json, overall_status, updated_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT(job_id) DO UPDATE SET state_json = excluded.state_json, \
                 overall_status = excluded.overall_status, updated_at = excluded.updated_at",
            )?
            .execute(params![job.as_str(), json, overall, Timestamp::now().as_epoch_seconds()])?;
            Ok(())
        })
        .await
    }

    async fn get_chain_state(&self, job: &JobId) -> Result<Option<ChainState>> {
        let job = job.clone();
        self.read(move |conn| {
            let json: Option<String> = conn
                .prepare_cached("SELECT state_json FROM chain_state WHERE job_id = ?1")?
                .query_row([job.as_str()], |r| r.get(0))
                .optional()?;
            json.map(|j| {
                serde_json::from_str(&j).map_err(|e| StoreError::CorruptRow {
                    table: "chain_state",
                    key: job.to_string(),
                    reason: e.to_string(),
                })
            })
            .transpose()
        })
        .await
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
        let m = meta.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO audit_artifact (artifact_id, job_id, kind, name, size_bytes, sha256, content, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                m.artifact_id,
                m.job_id.as_str(),
                m.kind.as_str(),
                m.name,
                m.size_bytes as i64,
                m.sha256,
                content,
                m.created_at.as_epoch_seconds()
            ])?;
            Ok(())
        })
        .await?;
        Ok(meta)
    }

    async fn list_artifacts(&self, job: &JobId) -> Result<Vec<ArtifactMeta>> {
        let job = job.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT artifact_id, kind, name, size_bytes, sha256, created_at FROM audit_artifact \
                 WHERE job_id = ?1 ORDER BY created_at, artifact_id",
            )?;
            let mut rows = stmt.query([job.as_str()])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(read_artifact_meta(r, &job)?);
            }
            Ok(out)
        })
        .await
    }

    async fn get_artifact(&self, job: &JobId, artifact_id: &str) -> Result<Option<(ArtifactMeta, Vec<u8>)>> {
        let (job, artifact_id) = (job.clone(), artifact_id.to_owned());
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT artifact_id, kind, name, size_bytes, sha256, created_at, content FROM audit_artifact \
                 WHERE job_id = ?1 AND artifact_id = ?2",
            )?;
            let mut rows = stmt.query(params![job.as_str(), artifact_id])?;
            match rows.next()? {
                Some(r) => Ok(Some((read_artifact_meta(r, &job)?, r.get(6)?))),
                None => Ok(None),
            }
        })
        .await
    }

    async fn get_setting(&self, key: &str) -> Result<Option<Value>> {
        let key = key.to_owned();
        self.read(move |conn| {
            let v: Option<String> = conn
                .prepare_cached("SELECT value_json FROM settings WHERE key = ?1")?
                .query_row([&key], |r| r.get(0))
                .optional()?;
            v.map(|s| {
                serde_json::from_str(&s).map_err(|e| StoreError::CorruptRow {
                    table: "settings",
                    key: key.clone(),
                    reason: e.to_string(),
                })
            })
            .transpose()
        })
        .await
    }

    async fn put_setting(&self, key: &str, value: &Value) -> Result<()> {
        let (key, value) = (key.to_owned(), value.to_string());
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO settings (key, value_json, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at",
            )?
            .execute(params![key, value, Timestamp::now().as_epoch_seconds()])?;
            Ok(())
        })
        .await
    }

    async fn delete_setting(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.write(move |conn| Ok(conn.prepare_cached("DELETE FROM settings WHERE key = ?1")?.execute([key])? == 1))
            .await
    }

    async fn list_settings(&self) -> Result<BTreeMap<String, Value>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT key, value_json FROM settings ORDER BY key")?;
            let mut rows = stmt.query([])?;
            let mut out = BTreeMap::new();
            while let Some(r) = rows.next()? {
                let (k, v): (String, String) = (r.get(0)?, r.get(1)?);
                let parsed = serde_json::from_str(&v).map_err(|e| StoreError::CorruptRow {
                    table: "settings",
                    key: k.clone(),
                    reason: e.to_string(),
                })?;
                out.insert(k, parsed);
            }
            Ok(out)
        })
        .await
    }

    async fn create_schedule(&self, spec: ScheduleSpec) -> Result<ScheduleRecord> {
        self.write(move |conn| {
            let id = uuid::Uuid::new_v4().to_string();
            let now = Timestamp::now().as_epoch_seconds();
            conn.prepare_cached(&format!(
                "INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, NULL, NULL, ?13, ?13)"
            ))?
            .execute(params![
                id,
                spec.tenant_id.as_str(),
                spec.name,
                spec.cron,
                spec.kind.as_str(),
                spec.request_json,
                i64::from(spec.suspended),
                spec.suspended.then_some("user"),
                spec.concurrency_policy.as_str(),
                spec.starting_deadline_seconds.map(|s| s as i64),
                i64::from(spec.successful_runs_history_limit),
                i64::from(spec.failed_runs_history_limit),
                now
            ])
            .map_err(|e| map_unique(e, format!("a schedule named `{}` already exists for tenant {}", spec.name, spec.tenant_id)))?;
            get_schedule_conn(conn, None, &id)?.ok_or_else(|| StoreError::NotFound(format!("schedule {id}")))
        })
        .await
    }

    async fn get_schedule(&self, tenant: Option<&TenantId>, id: &str) -> Result<Option<ScheduleRecord>> {
        let (tenant, id) = (tenant.map(|t| t.as_str().to_owned()), id.to_owned());
        self.read(move |conn| get_schedule_conn(conn, tenant.as_deref(), &id)).await
    }

    async fn list_schedules(&self, tenant: Option<&TenantId>) -> Result<Vec<ScheduleRecord>> {
        let tenant = tenant.map(|t| t.as_str().to_owned());
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE (?1 IS NULL OR tenant_id = ?1) ORDER BY tenant_id, name"
            ))?;
            let mut rows = stmt.query([tenant])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(read_schedule(r)?);
            }
            Ok(out)
        })
        .await
    }

    async fn update_schedule(&self, id: &str, spec: ScheduleSpec) -> Result<Option<ScheduleRecord>> {
        let id = id.to_owned();
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE schedules SET name = ?1, cron = ?2, kind = ?3, request_json = ?4, concurrency_policy = ?5, \
                     starting_deadline_seconds = ?6, successful_runs_history_limit = ?7, failed_runs_history_limit = ?8, \
                     updated_at = ?9 WHERE schedule_id = ?10 AND tenant_id = ?11",
                )?
                .execute(params![
                    spec.name,
                    spec.cron,
                    spec.kind.as_str(),
                    spec.request_json,
                    spec.concurrency_policy.as_str(),
                    spec.starting_deadline_seconds.map(|s| s as i64),
                    i64::from(spec.successful_runs_history_limit),
                    i64::from(spec.failed_runs_history_limit),
                    Timestamp::now().as_epoch_seconds(),
                    id,
                    spec.tenant_id.as_str()
                ])
                .map_err(|e| map_unique(e, format!("a schedule named `{}` already exists", spec.name)))?;
            if n == 0 {
                return Ok(None);
            }
            get_schedule_conn(conn, None, &id)
        })
        .await
    }

    async fn set_schedule_suspended(
        &self,
        id: &str,
        suspended_by: Option<&str>,
        only_if_suspended_by: Option<&str>,
    ) -> Result<Option<ScheduleRecord>> {
        let (id, by, only) = (id.to_owned(), suspended_by.map(str::to_owned), only_if_suspended_by.map(str::to_owned));
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE schedules SET suspended = ?1, suspended_by = ?2, updated_at = ?3 \
                 WHERE schedule_id = ?4 AND (?5 IS NULL OR suspended_by = ?5)",
            )?
            .execute(params![
                i64::from(by.is_some()),
                by,
                Timestamp::now().as_epoch_seconds(),
                id,
                only
            ])?;
            get_schedule_conn(conn, None, &id)
        })
        .await
    }

    async fn record_schedule_fire(&self, id: &str, fire_time: Timestamp, job: Option<&JobId>) -> Result<()> {
        let (id, job) = (id.to_owned(), job.map(|j| j.as_str().to_owned()));
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE schedules SET last_schedule_time = ?1, last_job_id = COALESCE(?2, last_job_id), updated_at = ?3 \
                 WHERE schedule_id = ?4",
            )?
            .execute(params![fire_time.as_epoch_seconds(), job, Timestamp::now().as_epoch_seconds(), id])?;
            Ok(())
        })
        .await
    }

    async fn delete_schedule(&self, tenant: Option<&TenantId>, id: &str) -> Result<bool> {
        let (tenant, id) = (tenant.map(|t| t.as_str().to_owned()), id.to_owned());
        self.write(move |conn| {
            Ok(conn
                .prepare_cached("DELETE FROM schedules WHERE schedule_id = ?1 AND (?2 IS NULL OR tenant_id = ?2)")?
                .execute(params![id, tenant])?
                == 1)
        })
        .await
    }

    async fn schema_status(&self) -> Result<SchemaStatus> {
        self.read(|conn| {
            let applied = applied_migrations(conn)?;
            let version = applied.last().map_or(0, |m| m.version);
            let original_detected = applied.is_empty() && table_exists(conn, "jobs")?;
            let database_id = if table_exists(conn, "rune_meta")? {
                conn.query_row("SELECT value FROM rune_meta WHERE key = 'database_id'", [], |r| r.get(0)).optional()?
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
        })
        .await
    }

    async fn table_counts(&self) -> Result<BTreeMap<String, u64>> {
        self.read(|conn| {
            let mut out = BTreeMap::new();
            for table in migrations::DATA_TABLES {
                if table_exists(conn, table)? {
                    let n: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
                    out.insert(table.to_owned(), n.max(0) as u64);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn scan_jobs(&self, after: Option<&str>, limit: u32) -> Result<Vec<JobRecord>> {
        let after = after.map(str::to_owned);
        self.read(move |conn| {
            // Only the original columns: this works at every schema version.
            let mut stmt = conn.prepare_cached(
                "SELECT job_id, tenant_id, kind, status, request_json, result_json, error, message, created_at, updated_at, \
                 NULL, NULL, NULL, NULL, NULL, NULL FROM jobs WHERE (?1 IS NULL OR job_id > ?1) ORDER BY job_id LIMIT ?2",
            )?;
            collect_jobs(&mut stmt, params![after, i64::from(limit.max(1))])
        })
        .await
    }

    async fn integrity_check(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare("PRAGMA integrity_check")?;
            let problems: Vec<String> = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .filter(|s| s != "ok")
                .collect();
            Ok(problems)
        })
        .await
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
        self.exclusive(move |conn| {
            conn.execute_batch(migrations::bookkeeping_sql(Dialect::Sqlite))?;
            conn.execute(
                "INSERT OR IGNORE INTO rune_meta (key, value) VALUES ('database_id', ?1)",
                [uuid::Uuid::new_v4().to_string()],
            )?;
            let current = current_version(conn)?;
            let mut applied = Vec::new();
            for m in migrations::pending(current, target) {
                let up = m.up(Dialect::Sqlite);
                let down = m.down(Dialect::Sqlite);
                let checksum = m.checksum(Dialect::Sqlite);
                if run_migration_step(conn, m.version, m.name, up, Some((&checksum, up, down)))? {
                    applied.push(m.version);
                }
            }
            Ok(applied)
        })
        .await
    }

    async fn rollback_to(&self, target: i64) -> Result<Vec<i64>> {
        self.exclusive(move |conn| {
            let applied = applied_migrations(conn)?;
            let current = applied.last().map_or(0, |m| m.version);
            if target < 0 || target > current {
                return Err(StoreError::InvalidRollback {
                    to: target,
                    reason: format!("the database is at version {current}; the target must be between 0 and {current}"),
                });
            }
            let mut undone = Vec::new();
            for m in applied.iter().rev().filter(|m| m.version > target) {
                if run_migration_step(conn, m.version, &m.name, &m.down_sql, None)? {
                    undone.push(m.version);
                }
            }
            Ok(undone)
        })
        .await
    }

    async fn backup_to(&self, dest: &Path) -> Result<()> {
        let dest = dest.to_owned();
        self.read(move |src| {
            let mut dst = Connection::open(&dest).map_err(|e| describe_open_error(&dest, e))?;
            {
                let backup = rusqlite::backup::Backup::new(src, &mut dst)?;
                // One step: the copy is taken inside one read transaction, so it is a
                // consistent snapshot however busy the writer is (a stepped backup would
                // restart on every concurrent commit).
                backup.step(-1)?;
            }
            crate::testhooks::pause("backup.copied");
            // Fold the copy into one self-contained file (no -wal beside it).
            dst.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            dst.execute_batch("PRAGMA journal_mode=DELETE")?;
            drop(dst);
            Ok(())
        })
        .await
    }

    async fn import_rows(&self, table: &str, rows: Vec<Map<String, Value>>) -> Result<u64> {
        let table = table.to_owned();
        if table_order_key(&table).is_none() {
            return Err(StoreError::Conflict(format!("unknown table `{table}`")));
        }
        self.write(move |conn| {
            let known: Vec<String> = conn
                .prepare(&format!("PRAGMA table_info({table})"))?
                .query_map([], |r| r.get::<_, String>(1))?
                .collect::<rusqlite::Result<_>>()?;
            if known.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "table `{table}` does not exist at this schema version; run `rune db migrate` first"
                )));
            }
            let mut inserted = 0;
            for (i, row) in rows.iter().enumerate() {
                if let Some(bad) = row.keys().find(|c| !known.contains(c)) {
                    return Err(StoreError::Conflict(format!(
                        "{table} row {i}: unknown column `{bad}`; expected some of: {}",
                        known.join(", ")
                    )));
                }
                let cols: Vec<&String> = row.keys().collect();
                let values = row
                    .values()
                    .map(json_to_value)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| StoreError::Conflict(format!("{table} row {i}: {e}")))?;
                let sql = format!(
                    "INSERT OR IGNORE INTO {table} ({}) VALUES ({})",
                    cols.iter().map(|c| format!("\"{}\"", c.replace('"', ""))).collect::<Vec<_>>().join(", "),
                    (1..=cols.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
                );
                inserted += conn.prepare_cached(&sql)?.execute(params_from_iter(values))? as u64;
            }
            Ok(inserted)
        })
        .await
    }

    fn export_stream(&self, table: &str) -> Result<mpsc::Receiver<Result<Map<String, Value>>>> {
        self.export_stream_impl(table)
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_owned();
        self.read(move |conn| {
            if !table_exists(conn, "rune_meta")? {
                return Ok(None);
            }
            Ok(conn.query_row("SELECT value FROM rune_meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
        })
        .await
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |conn| {
            conn.execute_batch(migrations::bookkeeping_sql(Dialect::Sqlite))?;
            conn.execute(
                "INSERT INTO rune_meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
        .await
    }
}

fn read_artifact_meta(r: &Row<'_>, job: &JobId) -> Result<ArtifactMeta> {
    let id: String = r.get(0)?;
    let kind = r.get::<_, String>(1)?.parse().map_err(|e: rune_core::records::UnknownArtifactKind| {
        StoreError::CorruptRow { table: "audit_artifact", key: id.clone(), reason: e.to_string() }
    })?;
    Ok(ArtifactMeta {
        artifact_id: id,
        job_id: job.clone(),
        kind,
        name: r.get(2)?,
        size_bytes: r.get::<_, i64>(3)?.max(0) as u64,
        sha256: r.get(4)?,
        created_at: Timestamp::from_epoch_seconds(r.get(5)?),
    })
}

impl SqliteStore {
    fn export_stream_impl(&self, table: &str) -> Result<mpsc::Receiver<Result<Map<String, Value>>>> {
        let key = table_order_key(table).ok_or_else(|| StoreError::Conflict(format!("unknown table `{table}`")))?;
        let (tx, rx) = mpsc::channel(EXPORT_CHANNEL_CAPACITY);
        let pool = self.readers.clone();
        let sql = format!("SELECT * FROM {table} ORDER BY {key}");
        tokio::task::spawn_blocking(move || {
            let run = || -> Result<()> {
                let conn = pool.get()?;
                {
                    let mut stmt = conn.prepare(&sql)?;
                    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
                    let mut rows = stmt.query([])?;
                    while let Some(r) = rows.next()? {
                        let mut m = Map::new();
                        for (i, n) in names.iter().enumerate() {
                            m.insert(n.clone(), value_to_json(r.get_ref(i)?));
                        }
                        if tx.blocking_send(Ok(m)).is_err() {
                            break;
                        }
                    }
                }
                pool.put(conn);
                Ok(())
            };
            if let Err(e) = run() {
                let _ = tx.blocking_send(Err(e));
            }
        });
        Ok(rx)
    }
}
