//! SQLite-specific behaviour: adopting databases written by the original Python RUNE,
//! online backups under write load, restore semantics, and bad paths.

use rune_core::{JobKind, JobStatus};
use rune_store::backup;
use rune_store::{CreateOutcome, NewJob, OpenOptions, StatusUpdate};
use std::path::Path;

/// The schema rune-bench 0.0.0a5 creates (`job_store.py`): three tables, no version
/// table, float epoch-second timestamps. Written here from the reference description.
const ORIGINAL_0_0_0A5: &str = r#"
CREATE TABLE jobs (job_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
    request_json TEXT NOT NULL, result_json TEXT, error TEXT, message TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE idempotency_keys (tenant_id TEXT NOT NULL, operation TEXT NOT NULL, idempotency_key TEXT NOT NULL,
    job_id TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (tenant_id, operation, idempotency_key));
CREATE TABLE workflow_events (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT, event TEXT NOT NULL, status TEXT NOT NULL,
    duration_ms REAL, error_type TEXT, labels_json TEXT, recorded_at REAL NOT NULL);
CREATE INDEX idx_workflow_events_job_id ON workflow_events(job_id);
CREATE INDEX idx_workflow_events_event ON workflow_events(event);
"#;

/// The later original versions' extra tables and their `schema_version` bookkeeping
/// (reference §3.3: migrations 0001–0006).
const ORIGINAL_LATER: &str = r#"
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL);
INSERT INTO schema_version VALUES (1, 1714500000.0), (2, 1714500000.0), (3, 1714500000.0),
    (4, 1714500000.0), (5, 1714500000.0), (6, 1714500000.0);
CREATE TABLE chain_state (job_id TEXT PRIMARY KEY, state_json TEXT NOT NULL, overall_status TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE audit_artifact (artifact_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    size_bytes INTEGER NOT NULL, sha256 TEXT NOT NULL, content BLOB NOT NULL, created_at REAL NOT NULL);
CREATE INDEX idx_audit_artifact_job ON audit_artifact(job_id);
CREATE TABLE settings (key TEXT PRIMARY KEY, value_json TEXT NOT NULL, updated_at REAL NOT NULL);
INSERT INTO settings VALUES ('rune_config', '{"defaults":{"model":"llama3.1:8b"}}', 1714500000.5);
INSERT INTO audit_artifact VALUES ('a1', '11111111-1111-4111-8111-111111111111', 'log', 'run.log', 3, 'x', X'616263', 1714500001.25);
"#;

/// Rows as the original server wrote them: sorted-key request JSON, `time.time()`
/// floats with sub-microsecond digits, a job left `running` by a crash.
const ORIGINAL_ROWS: &str = r#"
INSERT INTO jobs VALUES ('11111111-1111-4111-8111-111111111111', 'default', 'benchmark', 'succeeded',
    '{"backend_url": "http://ollama:11434", "model": "llama3.1:8b", "question": "What is unhealthy?"}',
    '{"answer": "pod crashloop"}', NULL, 'accepted', 1714500000.1234567, 1714500042.7654321);
INSERT INTO jobs VALUES ('22222222-2222-4222-8222-222222222222', 'team-a', 'agentic-agent', 'failed',
    '{"question": "q"}', NULL, 'boom', 'accepted', 1714500100.5, 1714500101.0);
INSERT INTO jobs VALUES ('33333333-3333-4333-8333-333333333333', 'default', 'benchmark', 'running',
    '{"question": "q2"}', NULL, NULL, 'accepted', 1714500200.0, 1714500200.0);
INSERT INTO idempotency_keys VALUES ('default', 'benchmark', 'key-1', '11111111-1111-4111-8111-111111111111', 1714500000.1234567);
INSERT INTO workflow_events (job_id, event, status, duration_ms, error_type, labels_json, recorded_at)
    VALUES ('11111111-1111-4111-8111-111111111111', 'agent.ask', 'ok', 41000.5, NULL, '{}', 1714500042.0);
"#;

fn write_fixture(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).expect("fixture");
    conn.execute_batch(sql).expect("fixture sql");
}

async fn adopt_and_check(sql: &str, expect_artifacts: bool) {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("jobs.db");
    write_fixture(&db, sql);
    let url = format!("sqlite://{}", db.display());
    let inspect =
        rune_store::open(&url, &OpenOptions { migrate: false, allow_newer_schema: true, ..Default::default() })
            .await
            .expect("inspect");
    let status = inspect.schema_status().await.expect("status");
    assert_eq!(status.schema_version, 0);
    assert!(status.original_detected, "original tables recognised");
    let before = backup::compute_manifest(inspect.as_ref()).await.expect("manifest of the original");
    drop(inspect);
    let store = rune_store::open(&url, &OpenOptions::default()).await.expect("adopt in place");
    let status = store.schema_status().await.expect("status");
    assert_eq!(status.schema_version, rune_store::migrations::latest_version());
    // An automatic backup of the original was taken before migrating.
    let backups: Vec<_> = std::fs::read_dir(dir.path().join("backups")).expect("backups dir").flatten().collect();
    assert!(backups.iter().any(|e| e.file_name().to_string_lossy().contains("pre-migrate-v0")), "{backups:?}");
    // Every original row is intact and readable through the store.
    let mpath = dir.path().join("before.manifest.json");
    before.save(&mpath).expect("save");
    let report = backup::verify(store.as_ref(), Some((&before, &mpath))).await.expect("verify");
    assert!(report.ok() && report.checked_jobs == 3, "{report:?}");
    let job = store
        .get_job(None, &"11111111-1111-4111-8111-111111111111".parse().expect("id"))
        .await
        .expect("get")
        .expect("present");
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.result_json.as_deref(), Some(r#"{"answer": "pod crashloop"}"#));
    assert_eq!(job.created_at.as_micros(), 1_714_500_000_123_457, "float seconds kept to the microsecond");
    assert_eq!(store.events_after(&job.job_id, 0, 10).await.expect("events").len(), 1);
    // The adopted idempotency key (no payload hash) still replays.
    let replay = store
        .create_job(NewJob {
            tenant_id: "default".parse().expect("t"),
            kind: JobKind::Benchmark,
            request_json: "{}".into(),
            idempotency_key: Some("key-1".into()),
            schedule_id: None,
        })
        .await
        .expect("replay");
    assert!(matches!(replay, CreateOutcome::Replayed(ref j) if j.job_id == job.job_id), "{replay:?}");
    // The crash-orphaned `running` job is recoverable: no lease, so it is requeued.
    let rec = store.recover_expired_leases(rune_core::Timestamp::now(), 3).await.expect("recover");
    assert_eq!(rec.requeued.len(), 1);
    if expect_artifacts {
        assert_eq!(store.list_artifacts(&job.job_id).await.expect("arts").len(), 1);
        assert!(store.get_setting("rune_config").await.expect("setting").is_some());
    }
    // The original's own bookkeeping is left alone, so the Python server could still run.
    let conn = rusqlite::Connection::open(&db).expect("raw");
    let has_schema_version: i64 = conn
        .query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'schema_version'", [], |r| r.get(0))
        .expect("q");
    assert_eq!(has_schema_version, i64::from(expect_artifacts));
    conn.execute(
        "INSERT INTO jobs(job_id, tenant_id, kind, status, request_json, result_json, error, message, created_at, updated_at) \
         VALUES ('44444444-4444-4444-8444-444444444444', 'default', 'benchmark', 'queued', '{}', NULL, NULL, 'accepted', 1.0, 1.0)",
        [],
    )
    .expect("the original's INSERT still works after migration");
}

/// A database written by rune-bench 0.0.0a5 (no version table) is adopted in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_rune_bench_0_0_0a5_database() {
    adopt_and_check(&format!("{ORIGINAL_0_0_0A5}{ORIGINAL_ROWS}"), false).await;
}

/// A database written by later original versions (`schema_version` 1–6) is adopted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_later_original_database() {
    adopt_and_check(&format!("{ORIGINAL_0_0_0A5}{ORIGINAL_LATER}{ORIGINAL_ROWS}"), true).await;
}

/// A backup taken while writers are busy is a consistent snapshot: it verifies, and
/// every job acknowledged before the backup started is in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_backup_under_write_load_is_consistent() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}/jobs.db", dir.path().display());
    let store = rune_store::open(&url, &OpenOptions::default()).await.expect("open");
    let mut before = Vec::new();
    for _ in 0..200 {
        if let CreateOutcome::Created(j) = store.create_job(job()).await.expect("c") {
            before.push(j.job_id);
        }
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let CreateOutcome::Created(j) = store.create_job(job()).await.expect("c") {
                    store.update_status(&j.job_id, StatusUpdate::to(JobStatus::Cancelled)).await.expect("u");
                }
                n += 1;
            }
            n
        })
    };
    let bpath = dir.path().join("live.bak");
    let manifest = backup::backup(store.as_ref(), &bpath).await.expect("backup under load");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.await.expect("writer");
    assert!(written > 0, "writes ran concurrently with the backup");
    assert!(before.iter().all(|id| manifest.jobs.contains_key(id.as_str())), "acknowledged jobs are in the backup");
    backup::verify_backup_file(rune_store::Engine::Sqlite, &bpath).await.expect("backup verifies");
    // A self-contained file: no -wal beside it.
    assert!(!dir.path().join("live.bak-wal").exists());
}

fn job() -> NewJob {
    NewJob {
        tenant_id: "default".parse().expect("t"),
        kind: JobKind::Benchmark,
        request_json: "{}".into(),
        idempotency_key: None,
        schedule_id: None,
    }
}

/// Restore refuses while the database is open elsewhere, then swaps atomically and
/// keeps the replaced file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_while_open_and_keeps_the_replaced_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("jobs.db");
    let url = format!("sqlite://{}", db.display());
    let store = rune_store::open(&url, &OpenOptions::default()).await.expect("open");
    for _ in 0..3 {
        store.create_job(job()).await.expect("c");
    }
    let bpath = dir.path().join("good.bak");
    let m = backup::backup(store.as_ref(), &bpath).await.expect("backup");
    store.create_job(job()).await.expect("after backup");
    let err = backup::restore_sqlite(&db, &bpath).await.expect_err("in use").to_string();
    assert!(err.contains("in use"), "{err}");
    drop(store);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let report = backup::restore_sqlite(&db, &bpath).await.expect("restore");
    let kept = report.replaced_kept_at.expect("kept");
    assert!(kept.exists());
    let restored = rune_store::open(&url, &OpenOptions::default()).await.expect("reopen");
    assert_eq!(restored.count_jobs(None).await.expect("c").total, 3);
    let mpath = backup::manifest_path(&bpath);
    assert!(backup::verify(restored.as_ref(), Some((&m, &mpath))).await.expect("v").ok());
    let old =
        rune_store::open(&format!("sqlite://{}", kept.display()), &OpenOptions::default()).await.expect("kept opens");
    assert_eq!(old.count_jobs(None).await.expect("c").total, 4, "the replaced database is whole");
}

/// Bad paths give one clear message and create nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_paths_are_explained() {
    let dir = tempfile::tempdir().expect("tmp");
    let missing = dir.path().join("nope/jobs.db");
    let err = rune_store::open(
        &format!("sqlite://{}", missing.display()),
        &OpenOptions { migrate: false, ..Default::default() },
    )
    .await
    .err()
    .expect("missing")
    .to_string();
    assert!(err.contains("no database here") && err.contains("rune db migrate"), "{err}");
    assert!(!missing.parent().expect("p").exists(), "nothing created");
    let not_db = dir.path().join("notes.txt");
    let text = "hello, this is not a database at all, just text ".repeat(4);
    std::fs::write(&not_db, &text).expect("w");
    let err = rune_store::open(&format!("sqlite://{}", not_db.display()), &OpenOptions::default())
        .await
        .err()
        .expect("not a db")
        .to_string();
    assert!(err.contains("not an SQLite database"), "{err}");
    assert_eq!(std::fs::read_to_string(&not_db).expect("r"), text, "file untouched");
    let err = rune_store::open(&format!("sqlite://{}", dir.path().display()), &OpenOptions::default())
        .await
        .err()
        .expect("dir")
        .to_string();
    assert!(err.contains("is a directory"), "{err}");
    let missing_backup = dir.path().join("none.bak");
    let err = backup::restore_sqlite(&dir.path().join("jobs.db"), &missing_backup)
        .await
        .expect_err("missing backup")
        .to_string();
    assert!(err.contains("no such backup file"), "{err}");
}
