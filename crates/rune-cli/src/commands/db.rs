//! `rune db …`: schema status, migrate, rollback, backup, verify, restore, export,
//! import and the SQLite → PostgreSQL copy.

use super::Environment;
use crate::cli::DbCommand;
use crate::exit::{self, coded};
use crate::output::{print_json, print_table, OutputFormat};
use anyhow::{Context, Result};
use rune_store::{archive, backup, migrations, DatabaseUrl, Engine, OpenOptions, Store};
use serde_json::json;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Runs one `rune db` command.
pub async fn run(env: &Environment, cmd: DbCommand) -> Result<u8> {
    let url = parse_url(env, &env.database_url)?;
    match cmd {
        DbCommand::Status { output } => status(env, &url, output).await,
        DbCommand::Migrate { to, output } => migrate(env, &url, to, output).await,
        DbCommand::Rollback { to, yes, output } => rollback(env, &url, to, yes, output).await,
        DbCommand::Backup { output, json } => backup_cmd(env, &url, output, json).await,
        DbCommand::Verify { against, output } => verify(env, &url, against.as_deref(), output).await,
        DbCommand::Restore { path, yes } => restore(env, &url, &path, yes).await,
        DbCommand::Export { output } => export(env, &url, &output).await,
        DbCommand::Import { file } => import(env, &url, &file).await,
        DbCommand::WriteTestJobs { count } => write_test_jobs(env, &url, count).await,
        DbCommand::MigrateToPostgres { source, target, dry_run, output } => {
            let source = match source {
                Some(s) => parse_url(env, &s)?,
                None => url,
            };
            migrate_to_postgres(env, &source, &target, dry_run, output).await
        }
    }
}

fn parse_url(env: &Environment, raw: &str) -> Result<DatabaseUrl> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| env.home.clone());
    Ok(DatabaseUrl::parse(raw, &cwd)?)
}

/// Opens for inspection: no migration, no version refusal, no file creation.
async fn open_inspect(env: &Environment, url: &DatabaseUrl) -> Result<Arc<dyn Store>> {
    let options = OpenOptions { migrate: false, allow_newer_schema: true, ..env.open_options(url) };
    Ok(rune_store::open_parsed(url, &options).await?)
}

/// Opens for writing: refuses a newer schema, migrates an older one (with a backup).
async fn open_write(env: &Environment, url: &DatabaseUrl) -> Result<Arc<dyn Store>> {
    Ok(rune_store::open_parsed(url, &env.open_options(url)).await?)
}

fn backup_dir(env: &Environment, url: &DatabaseUrl) -> Option<PathBuf> {
    backup::backup_dir(url, &env.open_options(url))
}

async fn status(env: &Environment, url: &DatabaseUrl, output: OutputFormat) -> Result<u8> {
    let store = open_inspect(env, url).await?;
    let status = store.schema_status().await?;
    let counts = store.table_counts().await?;
    let newer = status.schema_version > status.binary_schema_version;
    if output == OutputFormat::Json {
        print_json(&json!({
            "database": url.to_string(),
            "engine": store.engine(),
            "database_id": status.database_id,
            "schema_version": status.schema_version,
            "binary_schema_version": status.binary_schema_version,
            "pending": status.pending,
            "newer_than_binary": newer,
            "original_rune_detected": status.original_detected,
            "applied": status.applied,
            "counts": counts,
        }))?;
        return Ok(exit::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "database:        {url}")?;
    writeln!(out, "engine:          {:?}", store.engine())?;
    writeln!(out, "schema version:  {} (this binary knows {})", status.schema_version, status.binary_schema_version)?;
    if newer {
        writeln!(
            out,
            "WARNING:         the schema is newer than this binary; roll it back with `rune db rollback --to {}`",
            status.binary_schema_version
        )?;
    }
    if status.original_detected {
        writeln!(
            out,
            "note:            tables of the original Python RUNE found; `rune db migrate` adopts them in place"
        )?;
    }
    let pending = if status.pending.is_empty() {
        "none".to_owned()
    } else {
        status.pending.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
    };
    writeln!(out, "pending:         {pending}")?;
    drop(out);
    let rows: Vec<Vec<String>> = counts.iter().map(|(t, n)| vec![t.clone(), n.to_string()]).collect();
    if !rows.is_empty() {
        println!();
        print_table(&["TABLE", "ROWS"], &rows)?;
    }
    Ok(exit::SUCCESS)
}

async fn migrate(env: &Environment, url: &DatabaseUrl, to: Option<i64>, output: OutputFormat) -> Result<u8> {
    let options = OpenOptions { migrate: true, allow_newer_schema: true, ..env.open_options(url) };
    let store = rune_store::open_parsed(url, &options).await?;
    let status = store.schema_status().await?;
    if status.schema_version > status.binary_schema_version {
        return Err(rune_store::StoreError::SchemaTooNew {
            found: status.schema_version,
            known: status.binary_schema_version,
            backup_hint: String::new(),
        }
        .into());
    }
    if let Some(t) = to {
        if t < status.schema_version {
            return Err(coded(
                exit::BAD_INPUT,
                format!(
                    "--to {t} is below the current version {}; use `rune db rollback --to {t}` to go down",
                    status.schema_version
                ),
            ));
        }
    }
    let (applied, backup) = backup::migrate_with_backup(store.as_ref(), to, backup_dir(env, url).as_deref()).await?;
    let after = store.schema_status().await?.schema_version;
    if output == OutputFormat::Json {
        print_json(&json!({"applied": applied, "schema_version": after, "backup": backup}))?;
    } else if applied.is_empty() {
        println!("schema is at version {after}; nothing to apply");
    } else {
        if let Some(b) = &backup {
            println!("backup taken first: {}", b.display());
        }
        println!("applied migrations {applied:?}; schema is now at version {after}");
    }
    Ok(exit::SUCCESS)
}

pub(super) fn confirm(question: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(coded(exit::REFUSED, format!("{question} — refusing without confirmation; re-run with --yes")));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
        Ok(())
    } else {
        Err(coded(exit::REFUSED, "cancelled; nothing was changed"))
    }
}

async fn rollback(env: &Environment, url: &DatabaseUrl, to: i64, yes: bool, output: OutputFormat) -> Result<u8> {
    let store = open_inspect(env, url).await?;
    let status = store.schema_status().await?;
    if to < 0 || to > status.schema_version {
        return Err(coded(
            exit::BAD_INPUT,
            format!(
                "--to {to} is not below the current schema version {}; nothing to roll back",
                status.schema_version
            ),
        ));
    }
    if to == status.schema_version {
        println!("schema is already at version {to}; nothing to roll back");
        return Ok(exit::SUCCESS);
    }
    let undone: Vec<String> =
        status.applied.iter().rev().filter(|m| m.version > to).map(|m| format!("{} ({})", m.version, m.name)).collect();
    confirm(
        &format!(
            "Roll back {url} from schema version {} to {to}, undoing {}? Data in tables or columns those migrations added is dropped (a backup is taken first)",
            status.schema_version,
            undone.join(", ")
        ),
        yes,
    )?;
    let (undone, backup) = backup::rollback_with_backup(store.as_ref(), to, backup_dir(env, url).as_deref()).await?;
    if output == OutputFormat::Json {
        print_json(&json!({"undone": undone, "schema_version": to, "backup": backup}))?;
    } else {
        if let Some(b) = &backup {
            println!("backup taken first: {}", b.display());
        }
        println!("rolled back migrations {undone:?}; schema is now at version {to}");
    }
    Ok(exit::SUCCESS)
}

async fn backup_cmd(env: &Environment, url: &DatabaseUrl, output: Option<PathBuf>, json_out: bool) -> Result<u8> {
    let store = open_inspect(env, url).await?;
    let dest = match output {
        Some(p) => p,
        None => {
            let dir = backup_dir(env, url).unwrap_or_else(|| env.home.join("backups"));
            let stamp = rune_core::Timestamp::now().to_rfc3339().replace([':', '.'], "-");
            let ext = if store.engine() == Engine::Postgres { "jsonl" } else { "db" };
            dir.join(format!("jobs-{stamp}.{ext}"))
        }
    };
    let manifest = backup::backup(store.as_ref(), &dest).await?;
    let mpath = backup::manifest_path(&dest);
    if json_out {
        print_json(&json!({
            "backup": dest,
            "manifest": mpath,
            "schema_version": manifest.schema_version,
            "jobs": manifest.job_history.count,
            "job_history_sha256": manifest.job_history.sha256,
            "table_counts": manifest.table_counts,
            "size_bytes": manifest.backup_size_bytes,
        }))?;
    } else {
        println!("backup:    {}", dest.display());
        println!("manifest:  {}", mpath.display());
        println!(
            "contents:  schema version {}, {} jobs, job history sha256 {}",
            manifest.schema_version, manifest.job_history.count, manifest.job_history.sha256
        );
        println!("verify later with: rune db verify --against {}", mpath.display());
    }
    Ok(exit::SUCCESS)
}

async fn verify(env: &Environment, url: &DatabaseUrl, against: Option<&Path>, output: OutputFormat) -> Result<u8> {
    let manifest = against.map(backup::Manifest::load).transpose()?;
    let store = open_inspect(env, url).await?;
    let report = backup::verify(store.as_ref(), manifest.as_ref().zip(against)).await?;
    if output == OutputFormat::Json {
        let mut v = serde_json::to_value(&report)?;
        v["ok"] = json!(report.ok());
        print_json(&v)?;
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "integrity:        {}",
            if report.integrity_problems.is_empty() { "ok".to_owned() } else { report.integrity_problems.join("; ") }
        )?;
        writeln!(
            out,
            "migrations:       {}",
            if report.migration_problems.is_empty() { "ok".to_owned() } else { report.migration_problems.join("; ") }
        )?;
        writeln!(out, "jobs:             {}", report.total_jobs)?;
        if manifest.is_some() {
            writeln!(out, "checked:          {} jobs from the manifest", report.checked_jobs)?;
            writeln!(out, "missing:          {}", report.missing_jobs.len())?;
            for id in &report.missing_jobs {
                writeln!(out, "  missing  {id}")?;
            }
            writeln!(out, "changed:          {}", report.changed_jobs.len())?;
            for id in &report.changed_jobs {
                writeln!(out, "  changed  {id}")?;
            }
            writeln!(out, "new since backup: {}", report.new_jobs)?;
        }
        writeln!(out, "result:           {}", if report.ok() { "PASS" } else { "FAIL" })?;
    }
    Ok(if report.ok() { exit::SUCCESS } else { exit::CHECK_FAILED })
}

async fn restore(env: &Environment, url: &DatabaseUrl, path: &Path, yes: bool) -> Result<u8> {
    match url {
        DatabaseUrl::Sqlite { path: db, .. } => {
            // Check the backup before asking anything: a bad file changes nothing.
            let manifest = backup::verify_backup_file(Engine::Sqlite, path).await?;
            confirm(
                &format!(
                    "Replace {} with {} (schema version {}, {} jobs)? The current file is kept aside",
                    db.display(),
                    path.display(),
                    manifest.schema_version,
                    manifest.job_history.count
                ),
                yes,
            )?;
            let report = backup::restore_sqlite(db, path).await?;
            println!("restored {} from {}", db.display(), path.display());
            if let Some(kept) = report.replaced_kept_at {
                println!("the replaced database is kept at {}", kept.display());
            }
            println!(
                "schema version {}; start the server (or run `rune db migrate`) to bring the schema up to date",
                report.manifest.schema_version
            );
            Ok(exit::SUCCESS)
        }
        DatabaseUrl::Postgres { .. } => {
            let manifest = archive::manifest_of_archive(path).await?;
            confirm(
                &format!(
                    "Replace every table of {url} with {} (schema version {}, {} jobs)?",
                    path.display(),
                    manifest.schema_version,
                    manifest.job_history.count
                ),
                yes,
            )?;
            let pg =
                rune_store::postgres::PgStore::open_raw(url, &OpenOptions { migrate: true, ..env.open_options(url) })
                    .await?;
            // A PostgreSQL restore replaces every table in place: keep what was there.
            let kept = if pg.table_counts().await?.values().any(|n| *n > 0) {
                Some(backup::auto_backup(&pg, backup_dir(env, url).as_deref(), "pre-restore").await?)
            } else {
                None
            };
            let manifest = pg.restore_from_archive(path).await?;
            println!("restored {url} from {} ({} jobs)", path.display(), manifest.job_history.count);
            if let Some(k) = kept {
                println!("what it replaced is backed up at {}", k.display());
            }
            Ok(exit::SUCCESS)
        }
    }
}

async fn export(env: &Environment, url: &DatabaseUrl, output: &Path) -> Result<u8> {
    if output.exists() {
        return Err(coded(exit::BAD_INPUT, format!("{} already exists; choose another --output", output.display())));
    }
    let store = open_inspect(env, url).await?;
    let counts =
        archive::export(store.as_ref(), output).await.with_context(|| format!("exporting to {}", output.display()))?;
    println!("exported to {}", output.display());
    print_table(&["TABLE", "ROWS"], &counts.iter().map(|(t, n)| vec![t.clone(), n.to_string()]).collect::<Vec<_>>())?;
    Ok(exit::SUCCESS)
}

async fn import(env: &Environment, url: &DatabaseUrl, file: &Path) -> Result<u8> {
    if !file.is_file() {
        return Err(coded(exit::BAD_INPUT, format!("{}: no such archive file", file.display())));
    }
    let store = open_write(env, url).await?;
    let report = archive::import(store.as_ref(), file).await?;
    println!("imported {} into {url}", file.display());
    print_copy_report(&report, OutputFormat::Table, false)?;
    Ok(exit::SUCCESS)
}

fn print_copy_report(
    report: &std::collections::BTreeMap<String, archive::TableCopy>,
    output: OutputFormat,
    dry_run: bool,
) -> Result<()> {
    if output == OutputFormat::Json {
        return print_json(&json!({"dry_run": dry_run, "tables": report}));
    }
    let rows: Vec<Vec<String>> = report
        .iter()
        .map(|(t, c)| {
            let skipped = c.source_rows.saturating_sub(c.inserted);
            if dry_run {
                vec![t.clone(), c.source_rows.to_string(), "-".into(), "-".into()]
            } else {
                vec![t.clone(), c.source_rows.to_string(), c.inserted.to_string(), skipped.to_string()]
            }
        })
        .collect();
    print_table(&["TABLE", "SOURCE ROWS", "COPIED", "ALREADY PRESENT"], &rows)
}

async fn migrate_to_postgres(
    env: &Environment,
    source: &DatabaseUrl,
    target: &str,
    dry_run: bool,
    output: OutputFormat,
) -> Result<u8> {
    let target_url = parse_url(env, target)?;
    if !matches!(target_url, DatabaseUrl::Postgres { .. }) {
        return Err(coded(exit::BAD_INPUT, format!("--target must be a postgres:// URL, got {target_url}")));
    }
    let src = open_inspect(env, source).await?;
    let src_version = src.schema_status().await?.schema_version;
    if src_version > migrations::latest_version() {
        return Err(rune_store::StoreError::SchemaTooNew {
            found: src_version,
            known: migrations::latest_version(),
            backup_hint: String::new(),
        }
        .into());
    }
    let dst = if dry_run { None } else { Some(open_write(env, &target_url).await?) };
    let report = archive::copy_between(src.as_ref(), dst.as_deref()).await?;
    if output == OutputFormat::Table {
        println!("{} {source} → {target_url}", if dry_run { "would copy" } else { "copied" });
    }
    print_copy_report(&report, output, dry_run)?;
    Ok(exit::SUCCESS)
}

async fn write_test_jobs(env: &Environment, url: &DatabaseUrl, count: u64) -> Result<u8> {
    let store = open_write(env, url).await?;
    let mut out = std::io::stdout().lock();
    for i in 0..count {
        let job = rune_store::NewJob {
            tenant_id: rune_core::TenantId::default_tenant(),
            kind: rune_core::JobKind::CostEstimate,
            request_json: format!("{{\"n\":{i}}}"),
            idempotency_key: None,
            schedule_id: None,
        };
        if let rune_store::CreateOutcome::Created(j) = store.create_job(job).await? {
            writeln!(out, "{}", j.job_id)?;
            out.flush()?;
        }
    }
    Ok(exit::SUCCESS)
}
