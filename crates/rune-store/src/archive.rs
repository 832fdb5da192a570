//! Engine-neutral archives: `rune db export` / `import`, PostgreSQL backups, and the
//! SQLite → PostgreSQL copy.
//!
//! An archive is JSON Lines. The first line is a header (format, schema version,
//! database id, engine, RUNE version); each following line is one row,
//! `{"table": …, "row": {column: value}}` with blobs as `{"$base64": …}`; the last line
//! is `{"end": {table: rows}}`, so a truncated file is detected instead of half-imported.
//! Tables are written in [`migrations::DATA_TABLES`] order, rows ordered by key, so the
//! same database always exports to the same bytes.

use crate::backup::{JobHistory, Manifest, MANIFEST_FORMAT};
use crate::error::{Result, StoreError};
use crate::{migrations, Engine, Store, RUNE_VERSION};
use rune_core::digest::{job_digest, DigestMode, HistoryHasher};
use rune_core::{JobRecord, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

/// Identifies archive files.
pub const ARCHIVE_FORMAT: &str = "rune-archive";
/// Rows inserted per import transaction.
const IMPORT_BATCH: usize = 500;

/// The first line of an archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchiveHeader {
    /// Always [`ARCHIVE_FORMAT`].
    pub format: String,
    /// Archive format version.
    pub format_version: u32,
    /// Schema version of the exported database.
    pub schema_version: i64,
    /// Identity of the exported database.
    pub database_id: Option<String>,
    /// Engine it came from.
    pub engine: Engine,
    /// RUNE version that wrote it.
    pub rune_version: String,
    /// When (RFC 3339).
    pub created_at: String,
}

#[derive(Serialize, Deserialize)]
struct RowLine {
    table: String,
    row: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
struct EndLine {
    end: BTreeMap<String, u64>,
}

/// Writes a consistent archive of every data table of `store` to `dest`, even while
/// the store is being written: PostgreSQL exports every table from one snapshot (its
/// `backup_to`); SQLite first takes an online copy and exports that. Returns rows per
/// table.
pub async fn export(store: &dyn Store, dest: &Path) -> Result<BTreeMap<String, u64>> {
    match store.engine() {
        Engine::Postgres => {
            store.backup_to(dest).await?;
            let m = manifest_of_archive(dest).await?;
            Ok(m.table_counts.into_iter().filter(|(_, n)| *n > 0).collect())
        }
        Engine::Sqlite => {
            let mut name = dest.as_os_str().to_owned();
            name.push(format!(".snapshot-{}.db", std::process::id()));
            let snapshot = std::path::PathBuf::from(name);
            let _ = std::fs::remove_file(&snapshot);
            store.backup_to(&snapshot).await?;
            let result = async {
                let copy = crate::sqlite::SqliteStore::open_readonly(&snapshot)?;
                export_raw(&copy, dest).await
            }
            .await;
            let _ = std::fs::remove_file(&snapshot);
            result
        }
    }
}

/// Writes the archive by streaming each table from `store` as it is now (tables are
/// read one after the other; callers that need one point in time use [`export`]).
/// Atomic: temp file, then rename.
pub(crate) async fn export_raw(store: &dyn Store, dest: &Path) -> Result<BTreeMap<String, u64>> {
    let status = store.schema_status().await?;
    let header = ArchiveHeader {
        format: ARCHIVE_FORMAT.into(),
        format_version: 1,
        schema_version: status.schema_version,
        database_id: status.database_id.clone(),
        engine: store.engine(),
        rune_version: RUNE_VERSION.into(),
        created_at: Timestamp::now().to_rfc3339(),
    };
    let mut tmp_name = dest.as_os_str().to_owned();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp_name);
    let io = |e: std::io::Error| StoreError::io(format!("writing {}", tmp.display()), e);
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut out = BufWriter::new(file);
    writeln!(out, "{}", to_line(&header)?).map_err(io)?;
    let mut counts = BTreeMap::new();
    for table in migrations::tables_at(status.schema_version) {
        let mut rx = store.export_stream(table)?;
        let mut n = 0u64;
        while let Some(row) = rx.recv().await {
            let row = row?;
            writeln!(out, "{}", to_line(&RowLine { table: (*table).to_owned(), row })?).map_err(io)?;
            n += 1;
        }
        counts.insert((*table).to_owned(), n);
    }
    writeln!(out, "{}", to_line(&EndLine { end: counts.clone() })?).map_err(io)?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, dest).map_err(|e| StoreError::io(format!("renaming {} into place", tmp.display()), e))?;
    Ok(counts)
}

fn to_line<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Worker(e.to_string()))
}

/// Reads an archive line by line, checking structure; calls `on_row` for each row.
fn read_archive(
    path: &Path,
    mut on_row: impl FnMut(&str, Map<String, Value>) -> Result<()>,
) -> Result<(ArchiveHeader, BTreeMap<String, u64>)> {
    let bad = |line: u64, reason: String| StoreError::BadArchive { path: path.to_owned(), line, reason };
    let file = std::fs::File::open(path).map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
    let mut lines = std::io::BufReader::new(file).lines();
    let first = lines
        .next()
        .ok_or_else(|| bad(1, "empty file; expected a RUNE archive written by `rune db export`".into()))?
        .map_err(|e| bad(1, e.to_string()))?;
    let header: ArchiveHeader =
        serde_json::from_str(&first).map_err(|e| bad(1, format!("not a RUNE archive header ({e})")))?;
    if header.format != ARCHIVE_FORMAT || header.format_version != 1 {
        return Err(bad(1, format!("unsupported archive format `{}` v{}", header.format, header.format_version)));
    }
    let known_tables = migrations::tables_at(header.schema_version);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut lineno = 1u64;
    for line in lines {
        lineno += 1;
        let line = line.map_err(|e| bad(lineno, e.to_string()))?;
        if let Ok(end) = serde_json::from_str::<EndLine>(&line) {
            let nonzero: BTreeMap<String, u64> =
                end.end.iter().filter(|(_, n)| **n > 0).map(|(t, n)| (t.clone(), *n)).collect();
            if nonzero != counts {
                return Err(bad(lineno, format!("row counts {:?} do not match the trailer {:?}", counts, end.end)));
            }
            return Ok((header, counts));
        }
        let row: RowLine = serde_json::from_str(&line).map_err(|e| bad(lineno, format!("not an archive row ({e})")))?;
        if !known_tables.contains(&row.table.as_str()) {
            return Err(bad(
                lineno,
                format!("unknown table `{}` for schema version {}", row.table, header.schema_version),
            ));
        }
        *counts.entry(row.table.clone()).or_default() += 1;
        on_row(&row.table, row.row).map_err(|e| bad(lineno, e.to_string()))?;
    }
    Err(bad(lineno, "the archive is truncated (no end line); re-export it".into()))
}

fn job_from_row(row: &Map<String, Value>) -> Result<JobRecord> {
    let s = |k: &str| row.get(k).and_then(Value::as_str).map(str::to_owned);
    let f = |k: &str| row.get(k).and_then(Value::as_f64);
    let missing = |k: &str| StoreError::Worker(format!("jobs row without `{k}`"));
    let (job_id, tenant_id, kind, status) = crate::rows::job_ids(
        s("job_id").ok_or_else(|| missing("job_id"))?,
        s("tenant_id").ok_or_else(|| missing("tenant_id"))?,
        &s("kind").ok_or_else(|| missing("kind"))?,
        &s("status").ok_or_else(|| missing("status"))?,
    )?;
    Ok(JobRecord {
        job_id,
        tenant_id,
        kind,
        status,
        request_json: s("request_json").ok_or_else(|| missing("request_json"))?,
        result_json: s("result_json"),
        error: s("error"),
        message: s("message"),
        created_at: Timestamp::from_epoch_seconds(f("created_at").ok_or_else(|| missing("created_at"))?),
        updated_at: Timestamp::from_epoch_seconds(f("updated_at").unwrap_or(0.0)),
        attempts: 0,
        lease_owner: None,
        lease_expires_at: None,
        started_at: None,
        finished_at: None,
        schedule_id: None,
    })
}

/// Computes the manifest an archive describes (used to verify PostgreSQL backups).
pub async fn manifest_of_archive(path: &Path) -> Result<Manifest> {
    let mut jobs = BTreeMap::new();
    let (header, counts) = read_archive(path, |table, row| {
        if table == "jobs" {
            let job = job_from_row(&row)?;
            let mode = DigestMode::for_status(job.status);
            jobs.insert(job.job_id.to_string(), (mode, job_digest(&job, mode)));
        }
        Ok(())
    })?;
    let mut hasher = HistoryHasher::default();
    for (id, (mode, digest)) in &jobs {
        hasher.add(id, *mode, digest);
    }
    let mut table_counts: BTreeMap<String, u64> =
        migrations::tables_at(header.schema_version).iter().map(|t| ((*t).to_owned(), 0)).collect();
    table_counts.extend(counts);
    Ok(Manifest {
        format: MANIFEST_FORMAT.into(),
        format_version: 1,
        database_id: header.database_id,
        engine: header.engine,
        schema_version: header.schema_version,
        created_at: header.created_at,
        rune_version: header.rune_version,
        backup_file: None,
        backup_sha256: None,
        backup_size_bytes: None,
        table_counts,
        job_history: JobHistory { count: jobs.len() as u64, sha256: hasher.finish() },
        jobs: jobs.into_iter().map(|(id, (mode, d))| (id, format!("{}:{d}", mode.tag()))).collect(),
    })
}

/// Per-table outcome of an import or copy.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableCopy {
    /// Rows read from the source.
    pub source_rows: u64,
    /// Rows inserted (the rest were already present).
    pub inserted: u64,
}

/// Imports an archive into `store` (already migrated to the latest schema). Rows whose
/// key exists are left alone, so an import can be re-run. When the target held no jobs,
/// it takes over the archive's database id (it is the same database, moved).
pub async fn import(store: &dyn Store, path: &Path) -> Result<BTreeMap<String, TableCopy>> {
    // First pass validates the whole file before anything is written.
    let (header, _) = read_archive(path, |_, _| Ok(()))?;
    if header.schema_version > migrations::latest_version() {
        return Err(StoreError::BadArchive {
            path: path.to_owned(),
            line: 1,
            reason: format!(
                "written at schema version {}, newer than this binary knows ({}); import it with a newer RUNE",
                header.schema_version,
                migrations::latest_version()
            ),
        });
    }
    let was_empty = store.table_counts().await?.get("jobs").copied().unwrap_or(0) == 0;
    let mut report: BTreeMap<String, TableCopy> = BTreeMap::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, Vec<Map<String, Value>>)>(4);
    let path_owned = path.to_owned();
    let reader = tokio::task::spawn_blocking(move || {
        let mut batch: Vec<Map<String, Value>> = Vec::new();
        let mut current = String::new();
        let res = read_archive(&path_owned, |table, row| {
            if table != current && !batch.is_empty() {
                let _ = tx.blocking_send((std::mem::take(&mut current), std::mem::take(&mut batch)));
            }
            current = table.to_owned();
            batch.push(row);
            if batch.len() >= IMPORT_BATCH {
                let _ = tx.blocking_send((current.clone(), std::mem::take(&mut batch)));
            }
            Ok(())
        });
        if !batch.is_empty() {
            let _ = tx.blocking_send((current, batch));
        }
        res
    });
    while let Some((table, rows)) = rx.recv().await {
        let n = rows.len() as u64;
        let inserted = store.import_rows(&table, rows).await?;
        let entry = report.entry(table).or_default();
        entry.source_rows += n;
        entry.inserted += inserted;
    }
    reader.await.map_err(|e| StoreError::Worker(e.to_string()))??;
    if was_empty {
        if let Some(id) = header.database_id {
            store.set_meta("database_id", &id).await?;
        }
    }
    Ok(report)
}

/// Copies every data table from `source` into `target` (both open; target migrated).
/// Re-runnable: rows already in the target are skipped. With `dry_run`, only counts.
pub async fn copy_between(source: &dyn Store, target: Option<&dyn Store>) -> Result<BTreeMap<String, TableCopy>> {
    let status = source.schema_status().await?;
    let target_empty = match target {
        Some(t) => t.table_counts().await?.get("jobs").copied().unwrap_or(0) == 0,
        None => false,
    };
    let mut report = BTreeMap::new();
    for table in migrations::tables_at(status.schema_version) {
        let mut rx = source.export_stream(table)?;
        let mut entry = TableCopy::default();
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        while let Some(row) = rx.recv().await {
            batch.push(row?);
            entry.source_rows += 1;
            if batch.len() >= IMPORT_BATCH {
                if let Some(t) = target {
                    entry.inserted += t.import_rows(table, std::mem::take(&mut batch)).await?;
                } else {
                    batch.clear();
                }
            }
        }
        if let (Some(t), false) = (target, batch.is_empty()) {
            entry.inserted += t.import_rows(table, batch).await?;
        }
        report.insert((*table).to_owned(), entry);
    }
    if let (Some(t), true, Some(id)) = (target, target_empty, status.database_id) {
        t.set_meta("database_id", &id).await?;
    }
    Ok(report)
}
