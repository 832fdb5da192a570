//! Backups with manifests, verification against a manifest, restore, and the
//! migrate/rollback paths that back up first.
//!
//! A backup is a file (SQLite: a self-contained database file written with the online
//! backup API, never a copy of a live WAL database; PostgreSQL: a logical archive, see
//! [`crate::archive`]) plus `<file>.manifest.json`: schema version, per-table row counts,
//! and a digest of every job (see [`rune_core::digest`]). The manifest is computed from
//! the backup itself after it is written, so it describes exactly what was saved.
//! `verify` compares a live database with a manifest and lists every job that is missing
//! or changed.

use crate::error::{Result, StoreError};
use crate::url::DatabaseUrl;
use crate::{migrations, sqlite::SqliteStore, Engine, OpenOptions, Store, RUNE_VERSION};
use rune_core::digest::{job_digest, DigestMode, HistoryHasher};
use rune_core::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Identifies manifest files.
pub const MANIFEST_FORMAT: &str = "rune-backup-manifest";
/// Jobs read per page while digesting.
const SCAN_PAGE: u32 = 5_000;

/// What a backup holds, written beside it as `<backup>.manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Manifest format version.
    pub format_version: u32,
    /// Identity of the database the backup came from.
    pub database_id: Option<String>,
    /// Engine of that database.
    pub engine: Engine,
    /// Schema version of the backup.
    pub schema_version: i64,
    /// When the backup was taken (RFC 3339).
    pub created_at: String,
    /// RUNE version that took it.
    pub rune_version: String,
    /// File name of the backup (beside the manifest).
    pub backup_file: Option<String>,
    /// SHA-256 of the backup file.
    pub backup_sha256: Option<String>,
    /// Size of the backup file.
    pub backup_size_bytes: Option<u64>,
    /// Rows per data table.
    pub table_counts: BTreeMap<String, u64>,
    /// Job history summary.
    pub job_history: JobHistory,
    /// Per-job digest: `job_id → "<t|i>:<16 hex>"` (`t`: terminal, full digest; `i`:
    /// still running then, identity only).
    pub jobs: BTreeMap<String, String>,
}

/// Count and checksum of the job history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobHistory {
    /// Jobs.
    pub count: u64,
    /// SHA-256 over every `(job_id, mode, digest)` in id order.
    pub sha256: String,
}

impl Manifest {
    /// Reads and checks a manifest file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| StoreError::BadBackup {
            path: path.to_owned(),
            reason: format!("cannot read the manifest: {e}"),
        })?;
        Self::parse(&text).map_err(|reason| StoreError::BadBackup { path: path.to_owned(), reason })
    }

    /// Parses and checks a manifest's text; the error is the reason, for a message that
    /// also names the file. Also the fuzz target for manifests.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let m: Manifest = serde_json::from_str(text).map_err(|e| format!("not a RUNE backup manifest ({e})"))?;
        if m.format != MANIFEST_FORMAT || m.format_version != 1 {
            return Err(format!("unsupported manifest format `{}` v{}", m.format, m.format_version));
        }
        if let Some(id) = m.jobs.iter().find(|(_, entry)| parse_entry(entry).is_none()).map(|(id, _)| id) {
            return Err(format!("malformed entry for job {}", id.escape_debug()));
        }
        Ok(m)
    }

    /// Writes the manifest atomically (temp file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| StoreError::Worker(e.to_string()))?;
        write_atomically(path, &json)
    }
}

fn parse_entry(entry: &str) -> Option<(DigestMode, &str)> {
    let (tag, digest) = entry.split_once(':')?;
    let mut chars = tag.chars();
    let mode = DigestMode::from_tag(chars.next()?)?;
    (chars.next().is_none() && digest.len() == 16).then_some((mode, digest))
}

/// The manifest path of a backup file.
pub fn manifest_path(backup: &Path) -> PathBuf {
    let mut s = backup.as_os_str().to_owned();
    s.push(".manifest.json");
    PathBuf::from(s)
}

/// Computes a manifest describing `store` as it is now.
pub async fn compute_manifest(store: &dyn Store) -> Result<Manifest> {
    let status = store.schema_status().await?;
    let table_counts = store.table_counts().await?;
    let mut jobs = BTreeMap::new();
    let mut hasher = HistoryHasher::default();
    let mut after: Option<String> = None;
    loop {
        let page = store.scan_jobs(after.as_deref(), SCAN_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.job_id.to_string());
        for job in &page {
            let mode = DigestMode::for_status(job.status);
            let digest = job_digest(job, mode);
            hasher.add(job.job_id.as_str(), mode, &digest);
            jobs.insert(job.job_id.to_string(), format!("{}:{digest}", mode.tag()));
        }
    }
    Ok(Manifest {
        format: MANIFEST_FORMAT.into(),
        format_version: 1,
        database_id: status.database_id,
        engine: store.engine(),
        schema_version: status.schema_version,
        created_at: Timestamp::now().to_rfc3339(),
        rune_version: RUNE_VERSION.into(),
        backup_file: None,
        backup_sha256: None,
        backup_size_bytes: None,
        table_counts,
        job_history: JobHistory { count: jobs.len() as u64, sha256: hasher.finish() },
        jobs,
    })
}

/// The outcome of comparing a database with a manifest.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Engine-level integrity problems.
    pub integrity_problems: Vec<String>,
    /// Migration checksum problems.
    pub migration_problems: Vec<String>,
    /// Jobs in the manifest that are gone.
    pub missing_jobs: Vec<String>,
    /// Jobs in the manifest whose content changed.
    pub changed_jobs: Vec<String>,
    /// Jobs created after the manifest (expected on a live database).
    pub new_jobs: u64,
    /// Jobs checked against the manifest.
    pub checked_jobs: u64,
    /// Jobs in the database.
    pub total_jobs: u64,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.integrity_problems.is_empty()
            && self.migration_problems.is_empty()
            && self.missing_jobs.is_empty()
            && self.changed_jobs.is_empty()
    }
}

/// Checks integrity and migration checksums; with a manifest, also that every job in it
/// is present and unchanged. Fails (rather than reporting) only when the manifest is
/// from a different database.
pub async fn verify(store: &dyn Store, manifest: Option<(&Manifest, &Path)>) -> Result<VerifyReport> {
    let mut report = VerifyReport { integrity_problems: store.integrity_check().await?, ..Default::default() };
    let status = store.schema_status().await?;
    for applied in &status.applied {
        if let Some(m) = migrations::by_version(applied.version) {
            if m.checksum(store.dialect()) != applied.checksum {
                report.migration_problems.push(format!(
                    "migration {} ({}) checksum differs from this binary's",
                    applied.version, applied.name
                ));
            }
        }
    }
    if let Some((manifest, path)) = manifest {
        if let (Some(theirs), Some(ours)) = (&manifest.database_id, &status.database_id) {
            if theirs != ours {
                return Err(StoreError::BadBackup {
                    path: path.to_owned(),
                    reason: format!(
                        "this manifest belongs to database {theirs}, but the database checked is {ours}; \
                         pass the manifest written by a backup of this database"
                    ),
                });
            }
        }
    }
    let expected = manifest.map(|(m, _)| &m.jobs);
    let mut seen = 0u64;
    let mut after: Option<String> = None;
    loop {
        let page = store.scan_jobs(after.as_deref(), SCAN_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.job_id.to_string());
        for job in &page {
            report.total_jobs += 1;
            let Some(entry) = expected.and_then(|e| e.get(job.job_id.as_str())) else {
                report.new_jobs += u64::from(expected.is_some());
                continue;
            };
            seen += 1;
            let Some((mode, digest)) = parse_entry(entry) else { continue };
            if job_digest(job, mode) != digest {
                report.changed_jobs.push(job.job_id.to_string());
            }
        }
    }
    if let Some(expected) = expected {
        report.checked_jobs = seen;
        if seen < expected.len() as u64 {
            // Second pass only on failure: find which ones are gone.
            let mut present = std::collections::HashSet::new();
            let mut after: Option<String> = None;
            loop {
                let page = store.scan_jobs(after.as_deref(), SCAN_PAGE).await?;
                let Some(last) = page.last() else { break };
                after = Some(last.job_id.to_string());
                present.extend(page.into_iter().map(|j| j.job_id.to_string()));
            }
            report.missing_jobs = expected.keys().filter(|k| !present.contains(*k)).cloned().collect();
        }
    }
    Ok(report)
}

/// Where automatic backups of `url` go.
pub fn backup_dir(url: &DatabaseUrl, options: &OpenOptions) -> Option<PathBuf> {
    options.backup_dir.clone().or_else(|| url.sqlite_path().and_then(Path::parent).map(|d| d.join("backups")))
}

/// The newest backup in `dir` whose manifest has schema version ≤ `version`.
pub fn newest_backup_at_or_below(dir: &Path, version: i64) -> Option<PathBuf> {
    let mut best: Option<(String, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let name = path.file_name()?.to_string_lossy().into_owned();
        let Some(backup_name) = name.strip_suffix(".manifest.json") else { continue };
        let Ok(m) = Manifest::load(&path) else { continue };
        let backup = dir.join(backup_name);
        if m.schema_version <= version && backup.exists() && best.as_ref().is_none_or(|(t, _)| m.created_at > *t) {
            best = Some((m.created_at, backup));
        }
    }
    best.map(|(_, p)| p)
}

fn fsync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let mut f = std::fs::File::create(&tmp).map_err(|e| StoreError::io(format!("creating {}", tmp.display()), e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| StoreError::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io(format!("renaming {} into place", tmp.display()), e))?;
    if let Some(dir) = path.parent() {
        fsync_dir(dir);
    }
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".tmp-{}", std::process::id()));
    PathBuf::from(s)
}

/// Hex SHA-256 and size of a file, streamed.
pub fn file_sha256(path: &Path) -> Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).map_err(|e| StoreError::io(format!("reading {}", path.display()), e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| StoreError::io(format!("reading {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex::encode(h.finalize()), total))
}

/// Computes the manifest of a finished backup file by reading the file itself.
///
/// `thorough` runs SQLite's full `integrity_check` (every index against its table: what
/// a restore wants); otherwise `quick_check` (every page and record, not index contents:
/// enough to prove a copy the backup API just wrote). The check and the manifest run in
/// parallel.
pub async fn manifest_of_backup_file(engine: Engine, file: &Path, thorough: bool) -> Result<(Manifest, Vec<String>)> {
    match engine {
        Engine::Sqlite => {
            let copy = SqliteStore::open_readonly(file)?;
            let check = async {
                if thorough {
                    copy.integrity_check().await
                } else {
                    copy.quick_check().await
                }
            };
            let (problems, manifest) = tokio::join!(check, compute_manifest(&copy));
            Ok((manifest?, problems?))
        }
        Engine::Postgres => crate::archive::manifest_of_archive(file).await.map(|m| (m, Vec::new())),
    }
}

/// Takes an online backup of `store` to `dest` and writes `dest.manifest.json`.
/// Nothing appears at `dest` unless the backup is complete and passed its checks.
pub async fn backup(store: &dyn Store, dest: &Path) -> Result<Manifest> {
    if dest.exists() {
        return Err(StoreError::Path {
            path: dest.to_owned(),
            reason: "already exists; choose another --output or remove it (backups are never overwritten)".into(),
        });
    }
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Path {
            path: dir.to_owned(),
            reason: format!("cannot create the backup directory: {e}"),
        })?;
    }
    let tmp = tmp_path(dest);
    let _ = std::fs::remove_file(&tmp);
    let result = async {
        store.backup_to(&tmp).await?;
        // Sync and hash the file while the copy is checked and its manifest computed.
        let hashing = {
            let tmp = tmp.clone();
            tokio::task::spawn_blocking(move || {
                let f =
                    std::fs::File::open(&tmp).map_err(|e| StoreError::io(format!("opening {}", tmp.display()), e))?;
                f.sync_all().map_err(|e| StoreError::io(format!("syncing {}", tmp.display()), e))?;
                file_sha256(&tmp)
            })
        };
        let checked = manifest_of_backup_file(store.engine(), &tmp, false).await;
        let hashed = hashing.await.map_err(|e| StoreError::Worker(e.to_string()))?;
        let (mut manifest, problems) = checked?;
        if !problems.is_empty() {
            return Err(StoreError::BadBackup {
                path: dest.to_owned(),
                reason: format!("the copy failed its integrity check: {}", problems.join("; ")),
            });
        }
        let (sha, size) = hashed?;
        manifest.backup_file = dest.file_name().map(|n| n.to_string_lossy().into_owned());
        manifest.backup_sha256 = Some(sha);
        manifest.backup_size_bytes = Some(size);
        crate::testhooks::pause("backup.before-rename");
        std::fs::rename(&tmp, dest).map_err(|e| StoreError::io(format!("renaming {} into place", tmp.display()), e))?;
        manifest.save(&manifest_path(dest))?;
        if let Some(dir) = dest.parent() {
            fsync_dir(dir);
        }
        Ok(manifest)
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Checks a backup file against its manifest (hash, integrity, every job) and returns
/// the manifest.
pub async fn verify_backup_file(engine: Engine, file: &Path) -> Result<Manifest> {
    let bad = |reason: String| StoreError::BadBackup { path: file.to_owned(), reason };
    if !file.is_file() {
        return Err(bad("no such backup file".into()));
    }
    let mpath = manifest_path(file);
    if !mpath.is_file() {
        return Err(bad(format!(
            "its manifest {} is missing; a backup without a manifest cannot be proven complete",
            mpath.display()
        )));
    }
    let manifest = Manifest::load(&mpath)?;
    let (sha, size) = file_sha256(file)?;
    if manifest.backup_sha256.as_deref() != Some(sha.as_str()) || manifest.backup_size_bytes != Some(size) {
        return Err(bad(format!(
            "its SHA-256 ({sha}, {size} bytes) does not match the manifest ({}, {} bytes): the file is corrupt or not the one the manifest describes",
            manifest.backup_sha256.as_deref().unwrap_or("none"),
            manifest.backup_size_bytes.unwrap_or(0)
        )));
    }
    let (actual, problems) =
        manifest_of_backup_file(engine, file, true).await.map_err(|e| bad(format!("cannot be read: {e}")))?;
    if !problems.is_empty() {
        return Err(bad(format!("failed its integrity check: {}", problems.join("; "))));
    }
    if actual.jobs != manifest.jobs || actual.schema_version != manifest.schema_version {
        return Err(bad("its contents do not match its manifest".into()));
    }
    Ok(manifest)
}

/// Runs pending migrations up to `target`, first taking a verified backup into
/// `backup_dir` when the database holds data.
pub async fn migrate_with_backup(
    store: &dyn Store,
    target: Option<i64>,
    backup_dir: Option<&Path>,
) -> Result<(Vec<i64>, Option<PathBuf>)> {
    let status = store.schema_status().await?;
    let target_v = target.unwrap_or(status.binary_schema_version);
    let steps = migrations::pending(status.schema_version, target_v);
    if steps.is_empty() {
        return Ok((Vec::new(), None));
    }
    let mut taken = None;
    if steps.iter().any(|m| m.changes_schema) && holds_data(store).await? {
        let label = format!("pre-migrate-v{}-to-v{target_v}", status.schema_version);
        taken = Some(auto_backup(store, backup_dir, &label).await?);
    }
    Ok((store.migrate_to(Some(target_v)).await?, taken))
}

/// Rolls the schema back to `target`, first taking a verified backup into `backup_dir`.
pub async fn rollback_with_backup(
    store: &dyn Store,
    target: i64,
    backup_dir: Option<&Path>,
) -> Result<(Vec<i64>, Option<PathBuf>)> {
    let status = store.schema_status().await?;
    if target < 0 || target > status.schema_version {
        return Err(StoreError::InvalidRollback {
            to: target,
            reason: format!(
                "the database is at version {}; the target must be between 0 and that",
                status.schema_version
            ),
        });
    }
    if target == status.schema_version {
        return Ok((Vec::new(), None));
    }
    let label = format!("pre-rollback-v{}-to-v{target}", status.schema_version);
    let taken = if holds_data(store).await? { Some(auto_backup(store, backup_dir, &label).await?) } else { None };
    Ok((store.rollback_to(target).await?, taken))
}

async fn holds_data(store: &dyn Store) -> Result<bool> {
    Ok(store.table_counts().await?.values().any(|n| *n > 0))
}

/// Takes a verified backup named `jobs-<label>-<time>.<db|jsonl>` in `dir`: what RUNE
/// does on its own before any change it cannot undo.
pub async fn auto_backup(store: &dyn Store, dir: Option<&Path>, label: &str) -> Result<PathBuf> {
    let dir = dir.ok_or_else(|| StoreError::Path {
        path: PathBuf::from("(backup directory)"),
        reason: "no directory for the automatic pre-migration backup; set RUNE_BACKUP_DIR or --backup-dir".into(),
    })?;
    let ext = match store.engine() {
        Engine::Sqlite => "db",
        Engine::Postgres => "jsonl",
    };
    let stamp = Timestamp::now().to_rfc3339().replace([':', '.'], "-");
    let dest = dir.join(format!("jobs-{label}-{stamp}.{ext}"));
    backup(store, &dest).await?;
    tracing::info!(backup = %dest.display(), "automatic backup taken before schema change");
    Ok(dest)
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The manifest of the restored backup.
    pub manifest: Manifest,
    /// Where the replaced database was kept (SQLite).
    pub replaced_kept_at: Option<PathBuf>,
}

/// Restores an SQLite database file from a verified backup, atomically.
///
/// Refuses while a server holds the database. The current database is first
/// checkpointed, then kept as `<db>.replaced-<time>` (a hard link, so the swap is one
/// `rename`): after a crash at any point the database path holds either the old or the
/// new database, never a mix.
pub async fn restore_sqlite(db: &Path, backup_file: &Path) -> Result<RestoreReport> {
    let manifest = verify_backup_file(Engine::Sqlite, backup_file).await?;
    if manifest.schema_version > migrations::latest_version() {
        return Err(StoreError::BadBackup {
            path: backup_file.to_owned(),
            reason: format!(
                "it has schema version {}, newer than this binary knows ({}); restore it with the RUNE version that wrote it",
                manifest.schema_version,
                migrations::latest_version()
            ),
        });
    }
    if let Some(dir) = db.parent() {
        if !dir.is_dir() {
            return Err(StoreError::Path { path: dir.to_owned(), reason: "directory does not exist".into() });
        }
    }
    let _lock = crate::lock::DbLock::acquire(db, "rune db restore")?;
    let staged = {
        let mut s = db.as_os_str().to_owned();
        s.push(".restoring");
        PathBuf::from(s)
    };
    std::fs::copy(backup_file, &staged)
        .map_err(|e| StoreError::io(format!("copying the backup to {}", staged.display()), e))?;
    std::fs::File::open(&staged)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io(format!("syncing {}", staged.display()), e))?;
    let mut replaced_kept_at = None;
    if db.exists() {
        // Fold the WAL into the main file so the kept copy is complete and no stale WAL
        // frames can be replayed onto the restored file.
        {
            let conn = rusqlite::Connection::open(db)?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        let stamp = Timestamp::now().to_rfc3339().replace([':', '.'], "-");
        let mut kept = db.as_os_str().to_owned();
        kept.push(format!(".replaced-{stamp}"));
        let kept = PathBuf::from(kept);
        std::fs::hard_link(db, &kept)
            .map_err(|e| StoreError::io(format!("keeping the old database as {}", kept.display()), e))?;
        replaced_kept_at = Some(kept);
        for suffix in ["-wal", "-shm"] {
            let mut side = db.as_os_str().to_owned();
            side.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(side));
        }
    }
    crate::testhooks::pause("restore.before-rename");
    std::fs::rename(&staged, db)
        .map_err(|e| StoreError::io(format!("moving the restored database into {}", db.display()), e))?;
    if let Some(dir) = db.parent() {
        fsync_dir(dir);
    }
    Ok(RestoreReport { manifest, replaced_kept_at })
}
