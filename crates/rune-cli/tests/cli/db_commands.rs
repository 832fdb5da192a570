//! `rune db …` end to end, including every documented bad-input case.

use crate::util::{file_hash, Home};

/// status on a database that does not exist: exit 2, the fix named, nothing created.
#[test]
fn status_of_missing_database_explains_and_creates_nothing() {
    let home = Home::new();
    let run = home.run(&["db", "status"]).expect_code(2);
    assert!(run.stderr().contains("no database here") && run.stderr().contains("rune db migrate"), "{}", run.stderr());
    assert!(!home.db().exists());
}

/// migrate creates the database; status --output json has the documented keys.
#[test]
fn migrate_then_status_json() {
    let home = Home::new();
    home.run(&["db", "migrate"]).expect_code(0);
    let status = home.run(&["db", "status", "--output", "json"]).expect_code(0).json();
    for key in ["schema_version", "binary_schema_version", "pending", "counts"] {
        assert!(status.get(key).is_some(), "missing key {key}: {status}");
    }
    assert_eq!(status["schema_version"], status["binary_schema_version"]);
    assert_eq!(status["pending"], serde_json::json!([]));
    assert_eq!(status["counts"]["jobs"], 0);
    let table = home.run(&["db", "status"]).expect_code(0).stdout();
    assert!(table.contains("pending:         none"), "{table}");
}

/// The full rollback drill: backup → rollback to 1 → migrate → verify against the
/// manifest passes; tampering makes verify exit 3 naming the jobs.
#[test]
fn backup_rollback_migrate_verify_and_tamper() {
    let home = Home::new();
    home.run(&["db", "write-test-jobs", "--count", "25"]).expect_code(0);
    let bak = home.path().join("jobs.db.bak");
    let bak_s = bak.to_str().expect("utf8");
    home.run(&["db", "backup", "--output", bak_s]).expect_code(0);
    let manifest = format!("{bak_s}.manifest.json");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).expect("manifest")).expect("json");
    assert_eq!(m["job_history"]["count"], 25);
    assert_eq!(m["table_counts"]["jobs"], 25);
    assert!(m["rune_version"].is_string() && m["created_at"].is_string() && m["schema_version"].is_i64());
    // Without --yes and without a terminal: refused, nothing changed. (Compare what the
    // database holds, not its file bytes: in WAL mode merely opening and closing it may
    // checkpoint the log into the main file.)
    let before = home.run(&["db", "status", "--output", "json"]).json();
    let run = home.run(&["db", "rollback", "--to", "1"]).expect_code(4);
    assert!(run.stderr().contains("--yes"), "{}", run.stderr());
    let after = home.run(&["db", "status", "--output", "json"]).json();
    assert_eq!((&after["schema_version"], &after["counts"]), (&before["schema_version"], &before["counts"]));
    home.run(&["db", "verify", "--against", &manifest]).expect_code(0);
    let run = home.run(&["db", "rollback", "--to", "1", "--yes"]).expect_code(0);
    assert!(run.stdout().contains("backup taken first"), "{}", run.stdout());
    assert_eq!(home.run(&["db", "status", "--output", "json"]).json()["schema_version"], 1);
    home.run(&["db", "migrate"]).expect_code(0);
    let ok = home.run(&["db", "verify", "--against", &manifest]).expect_code(0);
    assert!(ok.stdout().contains("PASS"), "{}", ok.stdout());
    // Tamper with the history behind RUNE's back.
    let conn = rusqlite::Connection::open(home.db()).expect("raw");
    let ids: Vec<String> = conn
        .prepare("SELECT job_id FROM jobs ORDER BY job_id LIMIT 2")
        .expect("p")
        .query_map([], |r| r.get(0))
        .expect("q")
        .collect::<Result<_, _>>()
        .expect("ids");
    conn.execute("DELETE FROM jobs WHERE job_id = ?1", [&ids[0]]).expect("delete");
    conn.execute("UPDATE jobs SET request_json = '{\"n\":-1}' WHERE job_id = ?1", [&ids[1]]).expect("update");
    drop(conn);
    let bad = home.run(&["db", "verify", "--against", &manifest]).expect_code(3);
    assert!(bad.stdout().contains(&format!("missing  {}", ids[0])), "{}", bad.stdout());
    assert!(bad.stdout().contains(&format!("changed  {}", ids[1])), "{}", bad.stdout());
    let json = home.run(&["db", "verify", "--against", &manifest, "--output", "json"]).expect_code(3).json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["missing_jobs"], serde_json::json!([ids[0]]));
    // Restore the backup: history is whole again and the tampered file is kept aside.
    home.run(&["db", "restore", bak_s, "--yes"]).expect_code(0);
    home.run(&["db", "verify", "--against", &manifest]).expect_code(0);
    let kept = std::fs::read_dir(home.path())
        .expect("ls")
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("jobs.db.replaced-"));
    assert!(kept, "replaced database kept aside");
}

/// Malformed URLs: exit 2 with a message naming a correct form.
#[test]
fn malformed_database_url() {
    let home = Home::new();
    for (url, needle) in [
        ("mysql://db/rune", "unsupported scheme"),
        ("sqlite://", "no file path"),
        ("postgres://u:pw@h:port/db", "expected postgres://"),
    ] {
        let run = home.run(&["--database-url", url, "db", "status"]).expect_code(2);
        assert!(run.stderr().contains(needle), "{url}: {}", run.stderr());
        assert!(!run.stderr().contains(":pw@"), "password shown: {}", run.stderr());
    }
}

/// A corrupt backup is refused before anything is touched.
#[test]
fn corrupt_backup_is_refused_and_changes_nothing() {
    let home = Home::new();
    home.run(&["db", "write-test-jobs", "--count", "5"]).expect_code(0);
    let bak = home.path().join("b.db");
    home.run(&["db", "backup", "--output", bak.to_str().expect("utf8")]).expect_code(0);
    let mut bytes = std::fs::read(&bak).expect("read");
    let n = bytes.len();
    bytes[n - 100] ^= 0x5a;
    std::fs::write(&bak, bytes).expect("write");
    let before = file_hash(&home.db());
    let run = home.run(&["db", "restore", bak.to_str().expect("utf8"), "--yes"]).expect_code(2);
    assert!(run.stderr().contains("does not match the manifest"), "{}", run.stderr());
    assert_eq!(file_hash(&home.db()), before, "database untouched");
    // A manifest-less file and a missing file are refused the same way.
    let lone = home.path().join("lone.db");
    std::fs::copy(home.db(), &lone).expect("copy");
    let run = home.run(&["db", "restore", lone.to_str().expect("utf8"), "--yes"]).expect_code(2);
    assert!(run.stderr().contains("manifest") && run.stderr().contains("missing"), "{}", run.stderr());
    let run = home.run(&["db", "restore", "/nonexistent/backup.db", "--yes"]).expect_code(2);
    assert!(run.stderr().contains("no such backup file"), "{}", run.stderr());
}

/// A manifest from another database: exit 2, says so.
#[test]
fn manifest_from_another_database() {
    let a = Home::new();
    let b = Home::new();
    for h in [&a, &b] {
        h.run(&["db", "write-test-jobs", "--count", "3"]).expect_code(0);
    }
    let bak = a.path().join("a.db");
    a.run(&["db", "backup", "--output", bak.to_str().expect("utf8")]).expect_code(0);
    let manifest = format!("{}.manifest.json", bak.display());
    let run = b.run(&["db", "verify", "--against", &manifest]).expect_code(2);
    assert!(run.stderr().contains("belongs to database"), "{}", run.stderr());
    let garbage = b.path().join("garbage.json");
    std::fs::write(&garbage, "{\"not\": \"a manifest\"}").expect("w");
    let run = b.run(&["db", "verify", "--against", garbage.to_str().expect("utf8")]).expect_code(2);
    assert!(run.stderr().contains("not a RUNE backup manifest"), "{}", run.stderr());
}

/// A read-only directory: one clear message, exit 2. (As root, permission bits do not
/// apply, so the command runs as `nobody` through setpriv.)
#[test]
fn read_only_directory() {
    let home = Home::new();
    let ro = home.path().join("ro");
    std::fs::create_dir(&ro).expect("mkdir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let url = format!("sqlite://{}/jobs.db", ro.display());
    let is_root = std::process::Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    let output = if is_root {
        if std::process::Command::new("setpriv").arg("--version").output().is_err() {
            eprintln!("skipping: running as root without setpriv");
            return;
        }
        // A copy nobody can execute, wherever the build directory is (e.g. under /root).
        let bin = home.path().join("rune-bin");
        std::fs::copy(env!("CARGO_BIN_EXE_rune"), &bin).expect("copy binary");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(["--database-url", &url, "db", "migrate"])
            .env("RUNE_HOME", &ro)
            .output()
            .expect("setpriv")
    } else {
        home.cmd(&["--database-url", &url, "db", "migrate"]).output().expect("run")
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&ro.display().to_string())
            && (stderr.contains("writable") || stderr.contains("read-only") || stderr.contains("Permission denied")),
        "{stderr}"
    );
    assert!(std::fs::read_dir(&ro).expect("ls").next().is_none(), "nothing created");
}

/// A database newer than the binary: migrate refuses with the rollback command, and
/// `rollback --to <known>` (using the stored down SQL) makes it usable again.
#[test]
fn newer_schema_refused_with_exact_fix() {
    let home = Home::new();
    home.run(&["db", "migrate"]).expect_code(0);
    let known = home.run(&["db", "status", "--output", "json"]).json()["binary_schema_version"].as_i64().expect("v");
    let conn = rusqlite::Connection::open(home.db()).expect("raw");
    conn.execute_batch(&format!(
        "CREATE TABLE from_the_future (x INTEGER); INSERT INTO rune_migrations VALUES ({}, 'future', 'c', 'CREATE TABLE from_the_future (x INTEGER)', 'DROP TABLE from_the_future', 1.0, 'rune 99.0.0')",
        known + 1
    ))
    .expect("fake upgrade");
    drop(conn);
    let run = home.run(&["db", "migrate"]).expect_code(4);
    assert!(run.stderr().contains(&format!("rune db rollback --to {known}")), "{}", run.stderr());
    let status = home.run(&["db", "status"]).expect_code(0).stdout();
    assert!(status.contains("newer than this binary"), "{status}");
    home.run(&["db", "rollback", "--to", &known.to_string(), "--yes"]).expect_code(0);
    home.run(&["db", "migrate"]).expect_code(0);
    home.run(&["db", "verify"]).expect_code(0);
}

/// Export, import into a fresh database, and the job history verifies there.
#[test]
fn export_import_via_cli() {
    let a = Home::new();
    a.run(&["db", "write-test-jobs", "--count", "10"]).expect_code(0);
    let archive = a.path().join("all.jsonl");
    a.run(&["db", "export", "--output", archive.to_str().expect("utf8")]).expect_code(0);
    let bak = a.path().join("a.db");
    a.run(&["db", "backup", "--output", bak.to_str().expect("utf8")]).expect_code(0);
    let b = Home::new();
    let run = b.run(&["db", "import", archive.to_str().expect("utf8")]).expect_code(0);
    assert!(run.stdout().contains("jobs"), "{}", run.stdout());
    b.run(&["db", "verify", "--against", &format!("{}.manifest.json", bak.display())]).expect_code(0);
    let again = b.run(&["db", "import", archive.to_str().expect("utf8")]).expect_code(0);
    assert!(
        again.stdout().lines().any(|l| l.starts_with("jobs") && l.split_whitespace().nth(2) == Some("0")),
        "{}",
        again.stdout()
    );
    let bad = b.path().join("bad.jsonl");
    std::fs::write(&bad, "not json\n").expect("w");
    let run = b.run(&["db", "import", bad.to_str().expect("utf8")]).expect_code(2);
    assert!(run.stderr().contains("line 1"), "{}", run.stderr());
}

/// `migrate-to-postgres` copies everything (settings too), is re-runnable, and
/// `--dry-run` only counts. Runs when a PostgreSQL server is configured.
#[test]
fn migrate_to_postgres_end_to_end() {
    let Some(target) = fresh_pg_url() else { return };
    let home = Home::new();
    home.run(&["db", "write-test-jobs", "--count", "40"]).expect_code(0);
    let bak = home.path().join("s.db");
    home.run(&["db", "backup", "--output", bak.to_str().expect("utf8")]).expect_code(0);
    let dry = home
        .run(&["db", "migrate-to-postgres", "--target", &target, "--dry-run", "--output", "json"])
        .expect_code(0)
        .json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["tables"]["jobs"]["source_rows"], 40);
    let first = home.run(&["db", "migrate-to-postgres", "--target", &target, "--output", "json"]).expect_code(0).json();
    assert_eq!(first["tables"]["jobs"]["inserted"], 40);
    let second =
        home.run(&["db", "migrate-to-postgres", "--target", &target, "--output", "json"]).expect_code(0).json();
    assert_eq!(second["tables"]["jobs"]["inserted"], 0, "re-runnable");
    let manifest = format!("{}.manifest.json", bak.display());
    home.run(&["--database-url", &target, "db", "verify", "--against", &manifest]).expect_code(0);
    // PostgreSQL backup (logical archive) and restore through the CLI.
    let pg_bak = home.path().join("pg.jsonl");
    home.run(&["--database-url", &target, "db", "backup", "--output", pg_bak.to_str().expect("utf8")]).expect_code(0);
    home.run(&["--database-url", &target, "db", "rollback", "--to", "1", "--yes"]).expect_code(0);
    home.run(&["--database-url", &target, "db", "restore", pg_bak.to_str().expect("utf8"), "--yes"]).expect_code(0);
    home.run(&["--database-url", &target, "db", "verify", "--against", &manifest]).expect_code(0);
    let status = home.run(&["--database-url", &target, "db", "status", "--output", "json"]).expect_code(0).json();
    assert_eq!(status["schema_version"], status["binary_schema_version"]);
}

/// A fresh database on the test PostgreSQL server, or `None` (skip) without one.
pub fn fresh_pg_url() -> Option<String> {
    let base = match std::env::var("RUNE_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(std::env::var("CI").map(|v| v != "true").unwrap_or(true), "CI must set RUNE_TEST_POSTGRES_URL");
            eprintln!("skipping: RUNE_TEST_POSTGRES_URL is not set");
            return None;
        }
    };
    let name = format!("rune_cli_{}", uuid::Uuid::new_v4().simple());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await.expect("connect");
        let h = tokio::spawn(conn);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create db");
        drop(client);
        let _ = h.await;
    });
    let i = base.rfind('/').expect("db in url");
    Some(format!("{}/{name}", &base[..i]))
}
