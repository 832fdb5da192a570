//! `rune airgap bundle | keygen | verify` and the deploy/airgap scripts end to end.
//!
//! No cluster can run here, so the scripts meet stand-in `kubectl`, `helm`, `skopeo` and
//! `rune` executables first on PATH; each appends its command line to a log, which is
//! what the tests read: the plan, the order of the calls, the automatic rollback after a
//! failed health check, and that a tampered bundle stops before any cluster command.
//! Everything else (tar, sha256sum, openssl, the bundles themselves) is real.

use crate::image::{fake_binary, have_tool};
use crate::util::{file_hash, Home, Run};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// `rune airgap bundle` from the repository's charts, scripts and Cargo.lock.
fn bundle(home: &Home, output: &Path, extra: &[&str]) -> Run {
    let amd64 = format!("linux/amd64={}", fake_binary(home.path(), "amd64").display());
    let arm64 = format!("linux/arm64={}", fake_binary(home.path(), "arm64").display());
    let out = output.display().to_string();
    let mut args =
        vec!["airgap", "bundle", "--version", "0.1.0", "--output", &out, "--binary", &amd64, "--binary", &arm64];
    args.extend_from_slice(extra);
    let mut cmd = home.cmd(&args);
    cmd.current_dir(repo_root()).env("SOURCE_DATE_EPOCH", "1700000000");
    Run(cmd.output().expect("run rune"))
}

fn keygen(home: &Home, prefix: &str) -> (PathBuf, PathBuf) {
    let p = home.path().join(prefix);
    home.run(&["airgap", "keygen", "--output", &p.display().to_string()]).expect_code(0);
    (p.with_extension("key"), p.with_extension("pub"))
}

fn tar_list(bundle: &Path) -> Vec<String> {
    let out = Command::new("tar").arg("-tzf").arg(bundle).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

/// Two bundles from the same inputs have the same sha256, and `verify` accepts them.
#[test]
fn bundle_is_byte_for_byte_reproducible() {
    let home = Home::new();
    let a = home.path().join("a.tar.gz");
    let b = home.path().join("b.tar.gz");
    let first = bundle(&home, &a, &["--json"]).expect_code(0).json();
    bundle(&home, &b, &[]).expect_code(0);
    assert_eq!(file_hash(&a), file_hash(&b), "two bundles from the same inputs differ");
    assert_eq!(first["manifest"]["images"][0]["platforms"].as_array().unwrap().len(), 2);

    let names = tar_list(&a);
    let top = "rune-bundle-0.1.0/";
    for expected in [
        "images/ghcr.io/rune-bench/rune/0.1.0.tar",
        "scripts/bootstrap.sh",
        "scripts/upgrade.sh",
        "scripts/rollback.sh",
        "scripts/lib.sh",
        "sbom/rune.cdx.json",
        "manifest.json",
        "SHA256SUMS",
    ] {
        assert!(names.contains(&format!("{top}{expected}")), "{expected} missing from {names:?}");
    }
    assert!(names.iter().any(|n| n.starts_with(&format!("{top}charts/rune-0")) && n.ends_with(".tgz")), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with(&format!("{top}charts/rune-operator-"))), "{names:?}");
    let run = home.run(&["airgap", "verify", "--bundle", &a.display().to_string()]).expect_code(0);
    assert!(run.stdout().contains("OK (rune-bundle-0.1.0"), "{}", run.stdout());
    assert!(run.stdout().contains("signature none"), "{}", run.stdout());
}

/// A signed bundle verifies with its key (in rune and in OpenSSL), not with another key.
#[test]
fn signed_bundle_verifies_with_the_right_key_only() {
    let home = Home::new();
    let (key, public) = keygen(&home, "site");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "private key must be owner-only");
    let err = home.run(&["airgap", "keygen", "--output", &home.path().join("site").display().to_string()]);
    assert!(err.expect_code(2).stderr().contains("refusing to overwrite"));
    let (_, other_public) = keygen(&home, "other");
    let out = home.path().join("signed.tar.gz");
    bundle(&home, &out, &["--sign-key", &key.display().to_string()]).expect_code(0);
    let b = out.display().to_string();
    let ok = home.run(&["airgap", "verify", "--bundle", &b, "--public-key", &public.display().to_string(), "--json"]);
    let report = ok.expect_code(0).json();
    assert_eq!(report["signature_checked"], true);
    let bad = home.run(&["airgap", "verify", "--bundle", &b, "--public-key", &other_public.display().to_string()]);
    assert!(bad.expect_code(3).stderr().contains("signature does not match"));
    let wrong_kind = home.run(&["airgap", "verify", "--bundle", &b, "--public-key", &key.display().to_string()]);
    assert!(wrong_kind.expect_code(2).stderr().contains("not an ed25519 public key"));

    if have_tool("openssl") {
        let dir = home.path().join("x");
        std::fs::create_dir(&dir).unwrap();
        assert!(Command::new("tar").arg("-xzf").arg(&out).arg("-C").arg(&dir).status().unwrap().success());
        let top = dir.join("rune-bundle-0.1.0");
        let status = Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
            .arg(&public)
            .arg("-rawin")
            .arg("-in")
            .arg(top.join("SHA256SUMS"))
            .arg("-sigfile")
            .arg(top.join("SHA256SUMS.sig"))
            .output()
            .unwrap();
        assert!(status.status.success(), "openssl: {}", String::from_utf8_lossy(&status.stderr));
    }
}

/// Bad inputs to `airgap bundle` / `verify` exit 2 naming what to fix; a changed file exits 3.
#[test]
fn bundle_and_verify_reject_bad_input_and_tampering() {
    let home = Home::new();
    let out = home.path().join("b.tar.gz");
    let missing = home.path().join("missing").display().to_string();
    let err = bundle(&home, &out, &["--charts-dir", &missing]).expect_code(2).stderr();
    assert!(err.contains("--charts-dir"), "{err}");
    let err = bundle(&home, &out, &["--sign-key", &missing]).expect_code(2).stderr();
    assert!(err.contains("missing"), "{err}");
    let err = bundle(&home, &out, &["--cargo-lock", &missing]).expect_code(2).stderr();
    assert!(err.contains("missing"), "{err}");
    let err = home.run(&["airgap", "verify", "--bundle", &missing]).expect_code(2).stderr();
    assert!(err.contains("cannot read"), "{err}");
    let junk = home.path().join("junk.tar.gz");
    std::fs::write(&junk, b"junk").unwrap();
    let err = home.run(&["airgap", "verify", "--bundle", &junk.display().to_string()]).expect_code(2).stderr();
    assert!(err.contains("not a readable tar.gz"), "{err}");

    bundle(&home, &out, &[]).expect_code(0);
    let tampered = tamper(&home, &out, "scripts/lib.sh");
    let err = home.run(&["airgap", "verify", "--bundle", &tampered.display().to_string()]).expect_code(3).stderr();
    assert!(err.contains("scripts/lib.sh: sha256 does not match"), "{err}");
}

/// Unpacks `bundle`, appends a line to `file`, packs it again (as an attacker would).
fn tamper(home: &Home, bundle: &Path, file: &str) -> PathBuf {
    let dir = tempfile::tempdir_in(home.path()).unwrap();
    assert!(Command::new("tar").arg("-xzf").arg(bundle).arg("-C").arg(dir.path()).status().unwrap().success());
    let target = dir.path().join("rune-bundle-0.1.0").join(file);
    let mut content = std::fs::read(&target).unwrap();
    content.extend_from_slice(b"\necho pwned\n");
    std::fs::write(&target, content).unwrap();
    let out = home.path().join("tampered.tar.gz");
    let ok = Command::new("tar").arg("-czf").arg(&out).arg("-C").arg(dir.path()).arg("rune-bundle-0.1.0").status();
    assert!(ok.unwrap().success());
    out
}

/// Stand-in cluster tools recording their calls, plus the bundles and a log directory.
struct Site {
    home: Home,
    bin: PathBuf,
    calls: PathBuf,
    logs: PathBuf,
    backups: PathBuf,
    bundle: PathBuf,
    public: PathBuf,
}

const STUB_KUBECTL: &str = r#"#!/bin/sh
echo "kubectl $*" >> "$STUB_LOG"
case "$1" in
  get) exit 1 ;;
  exec) echo '{"path":"/data/backups/pre-upgrade.db","jobs":3}' ;;
esac
exit 0
"#;
const STUB_HELM: &str = r#"#!/bin/sh
echo "helm $*" >> "$STUB_LOG"
case "$1" in
  list) echo "[{\"name\":\"x\",\"namespace\":\"rune\",\"revision\":\"${STUB_HELM_REVISION:-3}\",\"status\":\"deployed\"}]" ;;
  get) echo "replicaCount: 1" ;;
  upgrade) case "$*" in *"${STUB_HELM_FAIL:-no-such-release}"*) exit 1 ;; esac ;;
esac
exit 0
"#;
const STUB_SKOPEO: &str = "#!/bin/sh\necho \"skopeo $*\" >> \"$STUB_LOG\"\nexit 0\n";
const STUB_RUNE: &str = r#"#!/bin/sh
echo "rune $*" >> "$STUB_LOG"
case "$1" in health-check) exit "${STUB_HEALTH_EXIT:-0}" ;; esac
exit 0
"#;

impl Site {
    fn new() -> Self {
        let home = Home::new();
        let bin = home.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for (name, body) in
            [("kubectl", STUB_KUBECTL), ("helm", STUB_HELM), ("skopeo", STUB_SKOPEO), ("rune", STUB_RUNE)]
        {
            let path = bin.join(name);
            std::fs::write(&path, body).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        }
        let (key, public) = keygen(&home, "site");
        let bundle_path = home.path().join("rune-bundle-0.1.0.tar.gz");
        bundle(&home, &bundle_path, &["--sign-key", &key.display().to_string()]).expect_code(0);
        let calls = home.path().join("calls.log");
        let logs = home.path().join("logs");
        let backups = home.path().join("backups");
        Site { home, bin, calls, logs, backups, bundle: bundle_path, public }
    }

    /// Runs deploy/airgap/SCRIPT with the stand-ins first on PATH.
    fn script(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let path = format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = Command::new("bash");
        cmd.arg(repo_root().join("deploy/airgap").join(script))
            .args(args)
            .env("PATH", path)
            .env("STUB_LOG", &self.calls)
            .env("LOG_DIR", &self.logs)
            .env("RUNE_BACKUP_ROOT", &self.backups)
            .env("TMPDIR", self.home.path())
            .current_dir(self.home.path())
            .stdin(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run(cmd.output().expect("run script"))
    }

    fn signed_args(&self) -> Vec<String> {
        vec![
            "--bundle".into(),
            self.bundle.display().to_string(),
            "--public-key".into(),
            self.public.display().to_string(),
        ]
    }

    /// The recorded calls, emptied for the next step.
    fn take_calls(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.calls).unwrap_or_default();
        let _ = std::fs::remove_file(&self.calls);
        text.lines().map(str::to_string).collect()
    }

    fn chart_present(&self, name: &str) -> bool {
        tar_list(&self.bundle)
            .iter()
            .any(|n| n.starts_with(&format!("rune-bundle-0.1.0/charts/{name}-")) && n.ends_with(".tgz"))
    }
}

fn position(calls: &[String], needle: &str) -> usize {
    calls.iter().position(|c| c.contains(needle)).unwrap_or_else(|| panic!("no call with {needle:?} in {calls:#?}"))
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Bootstrap verifies, then loads images keeping names and tags, then installs operator,
/// API and UI in that order, then checks health; its log lines are timestamped.
#[test]
fn bootstrap_installs_in_order_after_verifying() {
    let site = Site::new();
    let values = site.home.path().join("values.yaml");
    std::fs::write(&values, "replicaCount: 1\n").unwrap();
    let mut args = site.signed_args();
    args.extend(["--values".into(), values.display().to_string(), "--registry".into(), "reg.local:5000".into()]);
    let run = site.script("bootstrap.sh", &strs(&args), &[]).expect_code(0);
    assert!(run.stdout().contains("DEPLOYMENT PLAN (bundle 0.1.0)"), "{}", run.stdout());
    let calls = site.take_calls();
    let copy = &calls[position(&calls, "skopeo copy")];
    assert!(copy.contains("--all"), "{copy}");
    assert!(
        copy.contains("images/ghcr.io/rune-bench/rune/0.1.0.tar:0.1.0 docker://reg.local:5000/rune-bench/rune:0.1.0"),
        "{copy}"
    );
    let operator = position(&calls, "helm upgrade --install rune-operator");
    let api = position(&calls, "helm upgrade --install rune ");
    assert!(position(&calls, "kubectl cluster-info") < position(&calls, "skopeo copy"));
    assert!(position(&calls, "skopeo copy") < operator && operator < api, "{calls:#?}");
    assert!(
        calls[api].contains("--set image.repository=reg.local:5000/rune-bench/rune --set image.tag=0.1.0"),
        "{}",
        calls[api]
    );
    assert!(calls[api].contains(&format!("--values {}", values.display())), "{}", calls[api]);
    if site.chart_present("rune-ui") {
        assert!(api < position(&calls, "helm upgrade --install rune-ui"), "{calls:#?}");
    }
    assert!(api < position(&calls, "rune health-check --namespace rune --operator-namespace rune-system"));
    let log = std::fs::read_dir(&site.logs).unwrap().next().unwrap().unwrap().path();
    assert!(log.file_name().unwrap().to_str().unwrap().starts_with("bootstrap-"));
    let text = std::fs::read_to_string(&log).unwrap();
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("[20") && first.contains("Z] [INFO] "), "{first}");
    assert!(text.contains("signature valid"), "{text}");

    // A failed health check after the install is a failed verification.
    let run = site.script("bootstrap.sh", &strs(&site.signed_args()), &[("STUB_HEALTH_EXIT", "1")]);
    assert!(run.expect_code(3).stderr().contains("health check failed after the install"));
}

/// --dry-run verifies and prints the plan, and runs no cluster command at all.
#[test]
fn dry_runs_change_nothing() {
    let site = Site::new();
    let mut args = site.signed_args();
    args.push("--dry-run".into());
    for script in ["bootstrap.sh", "upgrade.sh"] {
        let run = site.script(script, &strs(&args), &[]).expect_code(0);
        assert!(run.stdout().contains("PLAN"), "{}", run.stdout());
        assert!(run.stdout().contains("[dry-run] helm upgrade --install rune-operator"), "{}", run.stdout());
        assert!(run.stderr().contains("DRY RUN complete (no changes made)"), "{}", run.stderr());
        assert_eq!(site.take_calls(), Vec::<String>::new(), "{script} --dry-run ran commands");
    }
    assert!(!site.backups.exists(), "a dry-run upgrade must not write a backup");
    let run = site.script("rollback.sh", &["--dry-run"], &[]).expect_code(0);
    assert!(run.stdout().contains("ROLLBACK PLAN (order: rune-ui rune rune-operator)"), "{}", run.stdout());
    assert!(run.stdout().contains("[dry-run] helm rollback rune 2"), "{}", run.stdout());
    let calls = site.take_calls();
    assert!(calls.iter().all(|c| c.starts_with("helm list")), "only read-only queries: {calls:#?}");
}

/// A changed file, a wrong key, or an unsigned bundle stops with exit 3 before any
/// cluster command (fail-closed).
#[test]
fn tampered_or_unverifiable_bundles_stop_before_the_cluster() {
    let site = Site::new();
    let tampered = tamper(&site.home, &site.bundle, "scripts/lib.sh");
    let public = site.public.display().to_string();
    let (_, other) = keygen(&site.home, "other");
    let other = other.display().to_string();
    let bundle = site.bundle.display().to_string();
    let tampered = tampered.display().to_string();
    let cases: [(&[&str], &str); 4] = [
        (&["--bundle", &tampered, "--public-key", &public], "checksum verification failed"),
        (&["--bundle", &bundle, "--public-key", &other], "signature verification FAILED"),
        (&["--bundle", &bundle], "the bundle is signed: pass --public-key"),
        (&["--bundle", &tampered, "--allow-unsigned"], "checksum verification failed"),
    ];
    for script in ["bootstrap.sh", "upgrade.sh"] {
        for (args, message) in cases {
            let run = site.script(script, args, &[]).expect_code(3);
            assert!(run.stderr().contains(message), "{script} {args:?}: {}", run.stderr());
            assert_eq!(site.take_calls(), Vec::<String>::new(), "{script} {args:?} touched the cluster");
        }
    }
    let unsigned = site.home.path().join("unsigned.tar.gz");
    bundle_fn(&site.home, &unsigned);
    let run = site.script("bootstrap.sh", &["--bundle", &unsigned.display().to_string()], &[]).expect_code(3);
    assert!(run.stderr().contains("unsigned: pass --allow-unsigned"), "{}", run.stderr());
    let run = site.script("bootstrap.sh", &["--bundle", &unsigned.display().to_string(), "--public-key", &public], &[]);
    assert!(run.expect_code(3).stderr().contains("not signed"));
    assert_eq!(site.take_calls(), Vec::<String>::new());
    // Checksums only, on request: proceeds.
    site.script(
        "bootstrap.sh",
        &["--bundle", &unsigned.display().to_string(), "--allow-unsigned", "--skip-health-check"],
        &[],
    )
    .expect_code(0);
}

fn bundle_fn(home: &Home, out: &Path) {
    bundle(home, out, &[]).expect_code(0);
}

/// Missing tools exit 2 before anything changes; bad usage exits 1.
#[test]
fn prerequisites_and_usage() {
    let site = Site::new();
    // PATH: the stand-ins (without kubectl) and the basic tools the scripts use, so a
    // real kubectl installed on this machine cannot hide the missing one.
    std::fs::remove_file(site.bin.join("kubectl")).unwrap();
    let basics = site.home.path().join("basics");
    std::fs::create_dir(&basics).unwrap();
    for tool in [
        "bash",
        "tar",
        "gzip",
        "sha256sum",
        "find",
        "comm",
        "awk",
        "sed",
        "sort",
        "mktemp",
        "rm",
        "mkdir",
        "date",
        "dirname",
        "basename",
        "cat",
        "head",
        "openssl",
    ] {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap();
        let real = String::from_utf8(found.stdout).unwrap();
        std::os::unix::fs::symlink(real.trim(), basics.join(tool)).unwrap();
    }
    let path = format!("{}:{}", site.bin.display(), basics.display());
    let args = site.signed_args();
    let run = site.script("bootstrap.sh", &strs(&args), &[("PATH", &path)]).expect_code(2);
    assert!(run.stderr().contains("prerequisites missing: kubectl"), "{}", run.stderr());
    assert_eq!(site.take_calls(), Vec::<String>::new());
    site.script("bootstrap.sh", &[], &[]).expect_code(1);
    site.script("bootstrap.sh", &["--bundle", "x", "--frobnicate"], &[]).expect_code(1);
    let run = site.script("bootstrap.sh", &["--bundle", "/nonexistent.tar.gz", "--allow-unsigned"], &[]).expect_code(1);
    assert!(run.stderr().contains("no such file"), "{}", run.stderr());
    let mut with_values = site.signed_args();
    with_values.extend(["--values".into(), "/nonexistent/values.yaml".into()]);
    assert!(site.script("upgrade.sh", &strs(&with_values), &[]).expect_code(1).stderr().contains("--values"));
    assert!(site.script("rollback.sh", &["--revision", "0"], &[]).expect_code(1).stderr().contains("positive integer"));
    assert!(site.script("rollback.sh", &["--component", "db"], &[]).expect_code(1).stderr().contains("--component"));
    for script in ["bootstrap.sh", "upgrade.sh", "rollback.sh"] {
        let help = site.script(script, &["--help"], &[]).expect_code(0).stdout();
        assert!(help.contains("--dry-run") && help.contains("Exit codes"), "{script}: {help}");
    }
}

/// Upgrade backs up first, upgrades in order, checks health; the backup outlives it.
#[test]
fn upgrade_backs_up_then_upgrades() {
    let site = Site::new();
    let run = site.script("upgrade.sh", &strs(&site.signed_args()), &[]).expect_code(0);
    assert!(run.stdout().contains("UPGRADE PLAN"), "{}", run.stdout());
    let calls = site.take_calls();
    let backup = position(&calls, "rune db backup --output /data/backups/pre-upgrade-0.1.0-");
    assert!(calls[backup].starts_with("kubectl exec --namespace rune deploy/rune-api -- "), "{}", calls[backup]);
    assert!(
        position(&calls, "helm get values rune-operator") < position(&calls, "helm upgrade --install rune-operator")
    );
    assert!(backup < position(&calls, "skopeo copy"));
    assert!(
        position(&calls, "helm upgrade --install rune-operator") < position(&calls, "helm upgrade --install rune ")
    );
    assert!(position(&calls, "helm upgrade --install rune ") < position(&calls, "rune health-check"));
    assert!(!calls.iter().any(|c| c.starts_with("helm rollback")), "{calls:#?}");
    let dirs: Vec<_> = std::fs::read_dir(&site.backups).unwrap().map(|d| d.unwrap().path()).collect();
    assert_eq!(dirs.len(), 1);
    let dir = &dirs[0];
    assert_eq!(std::fs::read_to_string(dir.join("rune.revision")).unwrap().trim(), "3");
    assert!(std::fs::read_to_string(dir.join("rune.values.yaml")).unwrap().contains("replicaCount"));
    assert!(std::fs::read_to_string(dir.join("db-backup.json")).unwrap().contains("pre-upgrade.db"));
    assert!(std::fs::read_to_string(dir.join("upgrade.info")).unwrap().contains("result=upgraded"));
    let leftovers: Vec<_> = std::fs::read_dir(site.home.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("rune-airgap."))
        .collect();
    assert!(leftovers.is_empty(), "the temporary unpack directory is removed");
}

/// A failed health check after the upgrade rolls back UI -> API -> operator to the
/// recorded revisions, exits 3, and leaves the backup in place.
#[test]
fn failed_health_check_rolls_back_automatically() {
    let site = Site::new();
    let run = site.script("upgrade.sh", &strs(&site.signed_args()), &[("STUB_HEALTH_EXIT", "1")]).expect_code(3);
    assert!(run.stderr().contains("rolling back automatically"), "{}", run.stderr());
    let calls = site.take_calls();
    let ui = position(&calls, "helm rollback rune-ui 3 --namespace rune");
    let api = position(&calls, "helm rollback rune 3 --namespace rune");
    let operator = position(&calls, "helm rollback rune-operator 3 --namespace rune-system");
    assert!(position(&calls, "rune health-check") < ui && ui < api && api < operator, "{calls:#?}");
    let dir = std::fs::read_dir(&site.backups).unwrap().next().unwrap().unwrap().path();
    let info = std::fs::read_to_string(dir.join("upgrade.info")).unwrap();
    assert!(info.contains("result=rolled-back") && info.contains("health check failed"), "{info}");
    assert!(dir.join("rune-operator.values-all.yaml").is_file());

    // A failing helm upgrade of the API also rolls back (exit 3), including the operator
    // that had already been upgraded.
    let run = site.script("upgrade.sh", &strs(&site.signed_args()), &[("STUB_HELM_FAIL", "install rune ")]);
    assert!(run.expect_code(3).stderr().contains("helm upgrade of rune failed"));
    let calls = site.take_calls();
    assert!(position(&calls, "helm rollback rune 3") < position(&calls, "helm rollback rune-operator 3"));
    assert_eq!(std::fs::read_dir(&site.backups).unwrap().count(), 2, "both backups are kept");
}

/// Rollback goes UI -> API -> operator, to current-1 or --revision, and --from-backup
/// uses an upgrade's recorded revisions; a failed health check after it exits 3.
#[test]
fn rollback_reverse_order_and_targets() {
    let site = Site::new();
    site.script("rollback.sh", &[], &[]).expect_code(0);
    let calls = site.take_calls();
    let ui = position(&calls, "helm rollback rune-ui 2");
    let api = position(&calls, "helm rollback rune 2");
    let operator = position(&calls, "helm rollback rune-operator 2 --namespace rune-system");
    assert!(ui < api && api < operator, "{calls:#?}");
    assert!(operator < position(&calls, "rune health-check"));

    site.script("rollback.sh", &["--revision", "1", "--component", "rune", "--namespace", "bench"], &[]).expect_code(0);
    let calls = site.take_calls();
    let rollbacks: Vec<_> = calls.iter().filter(|c| c.starts_with("helm rollback")).collect();
    assert_eq!(rollbacks.len(), 1, "{calls:#?}");
    assert!(rollbacks[0].starts_with("helm rollback rune 1 --namespace bench"), "{}", rollbacks[0]);

    let backup = site.home.path().join("manual-backup");
    std::fs::create_dir(&backup).unwrap();
    std::fs::write(backup.join("rune.revision"), "7\n").unwrap();
    site.script("rollback.sh", &["--from-backup", &backup.display().to_string()], &[]).expect_code(0);
    let calls = site.take_calls();
    let rollbacks: Vec<_> = calls.iter().filter(|c| c.starts_with("helm rollback")).collect();
    assert_eq!(rollbacks.len(), 1, "only releases with a recorded revision: {calls:#?}");
    assert!(rollbacks[0].starts_with("helm rollback rune 7"));

    site.script("rollback.sh", &[], &[("STUB_HEALTH_EXIT", "1")]).expect_code(3);
    site.take_calls();
    site.script("rollback.sh", &[], &[("STUB_HELM_REVISION", "1")]).expect_code(0);
    assert!(!site.take_calls().iter().any(|c| c.starts_with("helm rollback")), "no revision before 1");

    // --bundle: the previous bundle is verified, then re-applied in reverse order.
    let mut args = site.signed_args();
    args.push("--skip-health-check".into());
    site.script("rollback.sh", &strs(&args), &[]).expect_code(0);
    let calls = site.take_calls();
    assert!(position(&calls, "skopeo copy") < position(&calls, "helm upgrade --install rune "));
    assert!(
        position(&calls, "helm upgrade --install rune ") < position(&calls, "helm upgrade --install rune-operator")
    );
}

/// The charts packaged in Rust load in a real helm (`show chart`, `template`, `lint`).
#[test]
fn packaged_charts_load_in_helm() {
    let helm = std::env::var_os("RUNE_TEST_HELM")
        .map(PathBuf::from)
        .or_else(|| Some(repo_root().join("target/tools/bin/helm")).filter(|p| p.is_file()));
    let helm = match helm {
        Some(h) => h,
        None if have_tool("helm") => PathBuf::from("helm"),
        None => return,
    };
    let home = Home::new();
    let out = home.path().join("b.tar.gz");
    bundle(&home, &out, &[]).expect_code(0);
    assert!(Command::new("tar").arg("-xzf").arg(&out).arg("-C").arg(home.path()).status().unwrap().success());
    let charts: Vec<PathBuf> =
        std::fs::read_dir(home.path().join("rune-bundle-0.1.0/charts")).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(charts.len() >= 2, "{charts:?}");
    for chart in charts {
        for args in [&["show", "chart"][..], &["template", "t"][..], &["lint"][..]] {
            let run = Command::new(&helm).args(args).arg(&chart).output().unwrap();
            assert!(
                run.status.success(),
                "helm {args:?} {}: {}",
                chart.display(),
                String::from_utf8_lossy(&run.stderr)
            );
        }
    }
}

/// The scripts are shellcheck-clean.
#[test]
fn airgap_scripts_pass_shellcheck() {
    if !have_tool("shellcheck") {
        return;
    }
    let dir = repo_root().join("deploy/airgap");
    let out = Command::new("shellcheck")
        .arg("-x")
        .current_dir(&dir)
        .args(["bootstrap.sh", "upgrade.sh", "rollback.sh", "lib.sh"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}
