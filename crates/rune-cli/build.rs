//! Stamps the binary with its git commit and build date for `rune --version`.
//!
//! Reproducible builds need the same bytes from the same source, so the date is not the
//! wall clock: it is `SOURCE_DATE_EPOCH` when set (the reproducible-builds convention),
//! else the commit's own time, and only without git the current time. `RUNE_GIT_COMMIT`
//! overrides the commit for builds outside a checkout (e.g. from a source archive).

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=RUNE_GIT_COMMIT");
    // Re-run when HEAD moves (a commit or checkout), only if there is a checkout: a
    // missing rerun-if-changed path would make cargo re-run this script every build.
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        for file in ["HEAD", "packed-refs"] {
            let path = format!("{git_dir}/{file}");
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let path = format!("{git_dir}/{head_ref}");
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    let commit = std::env::var("RUNE_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .or_else(|| git(&["log", "-1", "--format=%ct"]).and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0));
    println!("cargo:rustc-env=RUNE_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=RUNE_BUILD_EPOCH={epoch}");
}
