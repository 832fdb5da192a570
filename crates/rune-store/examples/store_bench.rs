//! Store benchmark driven by `bench/store.sh`: insert rate, get-by-id and list-page
//! latency at a large job count, and the time of RUNE's online backup. Prints one JSON
//! object; the script compares it with `sqlite3 .backup` timed in the same run.
//!
//! Environment: `BENCH_DIR` (work directory, required), `BENCH_JOBS` (default
//! 1 000 000), `BENCH_RESULT_BYTES` (size of each job's result, default 900: about
//! 1 GB at 1M jobs), `BENCH_INSERTS` (measured single inserts, default 3000).

use rune_core::{JobKind, JobStatus, Timestamp};
use rune_store::{backup, CreateOutcome, JobQuery, NewJob, OpenOptions, Store};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx].as_secs_f64() * 1000.0
}

fn new_job(i: u64) -> NewJob {
    NewJob {
        tenant_id: format!("tenant-{}", i % 10).parse().expect("tenant"),
        kind: JobKind::Benchmark,
        request_json: format!("{{\"model\":\"llama3.1:8b\",\"question\":\"What is unhealthy? #{i}\"}}"),
        idempotency_key: None,
        schedule_id: None,
    }
}

/// Fills the jobs table directly (setup, not measured): realistic rows spread over 10
/// tenants and every status, oldest first.
fn bulk_fill(db: &PathBuf, jobs: u64, result_bytes: usize) -> rusqlite::Result<()> {
    let mut conn = rusqlite::Connection::open(db)?;
    conn.execute_batch("PRAGMA synchronous=OFF")?;
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO jobs (job_id, tenant_id, kind, status, request_json, result_json, error, message, created_at, updated_at, attempts, finished_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, 'done', ?7, ?7, 1, ?7)",
        )?;
        let filler = "x".repeat(result_bytes);
        let statuses = ["succeeded", "succeeded", "succeeded", "failed", "cancelled"];
        let start = Timestamp::now().as_micros() - (jobs as i64) * 1_000;
        for i in 0..jobs {
            let status = statuses[((i / 10) % 5) as usize];
            let result = format!("{{\"answer\":\"{filler}\",\"n\":{i}}}");
            stmt.execute(rusqlite::params![
                uuid::Uuid::new_v4().to_string(),
                format!("tenant-{}", i % 10),
                if i % 7 == 0 { "cost-estimate" } else { "benchmark" },
                status,
                format!("{{\"model\":\"m\",\"question\":\"q{i}\"}}"),
                result,
                Timestamp::from_micros(start + i as i64 * 1_000).as_epoch_seconds(),
            ])?;
        }
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::var("BENCH_DIR").map_err(|_| "set BENCH_DIR")?);
    let jobs = env_u64("BENCH_JOBS", 1_000_000);
    let result_bytes = env_u64("BENCH_RESULT_BYTES", 900) as usize;
    let inserts = env_u64("BENCH_INSERTS", 3000);
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("jobs.db");
    let url = format!("sqlite://{}", db.display());
    let store: Arc<dyn Store> = rune_store::open(&url, &OpenOptions::default()).await?;

    // 1. Single-job inserts through the Store: one at a time (each a durable commit),
    //    and from 16 concurrent submitters (group commit).
    let t = Instant::now();
    for i in 0..inserts {
        store.create_job(new_job(i)).await?;
    }
    let sequential_per_s = inserts as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..16u64 {
        let store = store.clone();
        set.spawn(async move {
            for i in 0..inserts / 16 {
                store.create_job(new_job(w * 1_000_000 + i)).await.map(|o| matches!(o, CreateOutcome::Created(_)))?;
            }
            Ok::<_, rune_store::StoreError>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let concurrent_per_s = (inserts / 16 * 16) as f64 / t.elapsed().as_secs_f64();
    drop(store);

    // 2. Grow to the target size, then measure reads.
    let t = Instant::now();
    bulk_fill(&db, jobs, result_bytes)?;
    let fill_s = t.elapsed().as_secs_f64();
    let store: Arc<dyn Store> = rune_store::open(&url, &OpenOptions::default()).await?;
    let total = store.count_jobs(None).await?.total;
    let sample = store.scan_jobs(None, 2000).await?;
    let mut get_lat = Vec::new();
    for j in &sample {
        let t = Instant::now();
        let got = store.get_job(None, &j.job_id).await?;
        get_lat.push(t.elapsed());
        assert!(got.is_some());
    }
    let mut list_first = Vec::new();
    let mut list_deep = Vec::new();
    for round in 0..200u64 {
        let q = JobQuery {
            tenant_id: Some(format!("tenant-{}", round % 10).parse()?),
            status: Some(JobStatus::Succeeded),
            limit: 50,
            ..Default::default()
        };
        let t = Instant::now();
        let page = store.list_jobs(&q).await?;
        list_first.push(t.elapsed());
        assert_eq!(page.jobs.len(), 50);
        // A page deep in the history: continue from a cursor 20 pages in.
        let mut cursor = page.next_cursor;
        for _ in 0..19 {
            cursor = store.list_jobs(&JobQuery { cursor: cursor.clone(), ..q.clone() }).await?.next_cursor;
        }
        let t = Instant::now();
        let page = store.list_jobs(&JobQuery { cursor, ..q.clone() }).await?;
        list_deep.push(t.elapsed());
        assert_eq!(page.jobs.len(), 50);
    }
    let db_bytes = std::fs::metadata(&db)?.len();

    // 3. Backups: the raw online copy, and the full `rune db backup` (copy, integrity
    //    check of the copy, manifest with every job's digest, fsync, rename).
    let runs = env_u64("BENCH_BACKUP_RUNS", 3);
    let mut copy_s = Vec::new();
    let mut full_s = Vec::new();
    for r in 0..runs {
        let dest = dir.join(format!("copy-{r}.db"));
        let t = Instant::now();
        store.backup_to(&dest).await?;
        copy_s.push(t.elapsed());
        std::fs::remove_file(&dest)?;
        let dest = dir.join(format!("full-{r}.db"));
        let t = Instant::now();
        backup::backup(store.as_ref(), &dest).await?;
        full_s.push(t.elapsed());
        std::fs::remove_file(&dest)?;
        std::fs::remove_file(backup::manifest_path(&dest))?;
    }
    let median = |v: &mut Vec<Duration>| percentile(v, 0.5) / 1000.0;
    let out = serde_json::json!({
        "jobs": total,
        "db_bytes": db_bytes,
        "bulk_fill_s": fill_s,
        "insert_sequential_per_s": sequential_per_s,
        "insert_concurrent16_per_s": concurrent_per_s,
        "get_by_id_ms": {"p50": percentile(&mut get_lat, 0.5), "p99": percentile(&mut get_lat, 0.99)},
        "list_page_first_ms": {"p50": percentile(&mut list_first, 0.5), "p99": percentile(&mut list_first, 0.99)},
        "list_page_deep_ms": {"p50": percentile(&mut list_deep, 0.5), "p99": percentile(&mut list_deep, 0.99)},
        "backup_copy_s_median": median(&mut copy_s),
        "backup_full_s_median": median(&mut full_s),
        "backup_runs": runs,
    });
    println!("{out}");
    Ok(())
}
