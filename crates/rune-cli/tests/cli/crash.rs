//! Crash safety: `SIGKILL` in the middle of writes, a migration, a backup and a restore.
//! Afterwards the database opens, passes `verify`, and lost no committed job.
//!
//! The kill points are made deterministic with `RUNE_TEST_PAUSE_AT` (see
//! `rune_store::testhooks`): the process announces `RUNE_PAUSED <point>` on stderr and
//! sleeps there, and the test kills it at that moment.

use crate::util::Home;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Waits until the child prints `RUNE_PAUSED <point>` on stderr, then kills it (-9).
fn kill_at_pause(mut child: Child, point: &str) {
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "never reached pause point {point}");
        match lines.next() {
            Some(Ok(line)) if line.trim() == format!("RUNE_PAUSED {point}") => break,
            Some(Ok(_)) => continue,
            other => panic!("process ended before pause point {point}: {other:?}; status {:?}", child.wait()),
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

fn job_ids(home: &Home) -> std::collections::HashSet<String> {
    let conn = rusqlite::Connection::open(home.db()).expect("open");
    let mut stmt = conn.prepare("SELECT job_id FROM jobs").expect("prepare");
    stmt.query_map([], |r| r.get(0)).expect("query").collect::<Result<_, _>>().expect("ids")
}

/// Killed while writing: every job whose id was printed (committed) survives, and the
/// database verifies.
#[test]
fn sigkill_during_writes_loses_no_committed_job() {
    let home = Home::new();
    home.run(&["db", "migrate"]).expect_code(0);
    let mut child =
        home.cmd(&["db", "write-test-jobs", "--count", "1000000"]).stdout(Stdio::piped()).spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut acknowledged = Vec::new();
    for line in BufReader::new(stdout).lines() {
        acknowledged.push(line.expect("line"));
        if acknowledged.len() >= 300 {
            break;
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let present = job_ids(&home);
    let lost: Vec<_> = acknowledged.iter().filter(|id| !present.contains(*id)).collect();
    assert!(lost.is_empty(), "committed jobs lost: {lost:?}");
    home.run(&["db", "verify"]).expect_code(0);
    home.run(&["db", "write-test-jobs", "--count", "3"]).expect_code(0);
}

/// Killed between the statements of a migration: the migration is rolled back whole,
/// the next `migrate` completes it, and the history is intact.
#[test]
fn sigkill_during_migration_rolls_it_back_whole() {
    let home = Home::new();
    home.run(&["db", "write-test-jobs", "--count", "50"]).expect_code(0);
    let bak = home.path().join("m.db");
    home.run(&["db", "backup", "--output", bak.to_str().expect("utf8")]).expect_code(0);
    home.run(&["db", "rollback", "--to", "2", "--yes"]).expect_code(0);
    let child = home
        .cmd(&["db", "migrate"])
        .env("RUNE_TEST_PAUSE_AT", "migration.statement:30000")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    kill_at_pause(child, "migration.statement");
    let status = home.run(&["db", "status", "--output", "json"]).expect_code(0).json();
    assert_eq!(status["schema_version"], 2, "the interrupted migration left no trace: {status}");
    home.run(&["db", "migrate"]).expect_code(0);
    let manifest = format!("{}.manifest.json", bak.display());
    home.run(&["db", "verify", "--against", &manifest]).expect_code(0);
}

/// Killed during a backup: nothing appears at the destination, the database is fine,
/// and the same backup can be taken again.
#[test]
fn sigkill_during_backup_leaves_no_partial_backup() {
    let home = Home::new();
    home.run(&["db", "write-test-jobs", "--count", "50"]).expect_code(0);
    let bak = home.path().join("interrupted.db");
    let child = home
        .cmd(&["db", "backup", "--output", bak.to_str().expect("utf8")])
        .env("RUNE_TEST_PAUSE_AT", "backup.copied:30000")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    kill_at_pause(child, "backup.copied");
    assert!(!bak.exists(), "no partial backup at the destination");
    assert!(!std::path::Path::new(&format!("{}.manifest.json", bak.display())).exists());
    home.run(&["db", "verify"]).expect_code(0);
    home.run(&["db", "backup", "--output", bak.to_str().expect("utf8")]).expect_code(0);
    home.run(&["db", "verify", "--against", &format!("{}.manifest.json", bak.display())]).expect_code(0);
}

/// Killed during a restore, just before the swap: the old database is still in place
/// and whole; the restore can be re-run.
#[test]
fn sigkill_during_restore_keeps_old_or_new_never_a_mix() {
    let home = Home::new();
    home.run(&["db", "write-test-jobs", "--count", "20"]).expect_code(0);
    let bak = home.path().join("r.db");
    home.run(&["db", "backup", "--output", bak.to_str().expect("utf8")]).expect_code(0);
    home.run(&["db", "write-test-jobs", "--count", "5"]).expect_code(0);
    let before = job_ids(&home);
    let child = home
        .cmd(&["db", "restore", bak.to_str().expect("utf8"), "--yes"])
        .env("RUNE_TEST_PAUSE_AT", "restore.before-rename:30000")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    kill_at_pause(child, "restore.before-rename");
    assert_eq!(job_ids(&home), before, "old database still in place, nothing lost");
    home.run(&["db", "verify"]).expect_code(0);
    home.run(&["db", "restore", bak.to_str().expect("utf8"), "--yes"]).expect_code(0);
    assert_eq!(job_ids(&home).len(), 20);
    home.run(&["db", "verify", "--against", &format!("{}.manifest.json", bak.display())]).expect_code(0);
}
