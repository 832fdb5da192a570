//! docs/operations/rollback.md (and upgrade.md, backup-restore.md), executed. Every
//! command in a page's ```sh blocks is
//! taken from the markdown (so the page and this test cannot drift) and, in page order:
//!
//! - `rune …` and `kubectl exec -n rune deploy/rune-api -- rune …` run against a real
//!   SQLite database (`/data` mapped to a temp dir) and a real `rune serve`; commands that
//!   need a cluster (`--namespace`, `--kubernetes`) go through the real kube client to the
//!   fake Kubernetes API of `rune_health::testing`. Each must exit 0.
//! - `kubectl scale deploy/rune-api|--all -n rune --replicas=0` stops the server,
//!   `--replicas=1`, `helm rollback rune` and `helm upgrade rune` start it again, as in a
//!   cluster; `helm template … --show-only templates/maintenance-job.yaml` is rendered
//!   with real helm and the Job's `rune` arguments are run.
//! - Every other `helm`/`kubectl` line is checked with the real binaries: the subcommand
//!   exists and each flag is in its `--help`; `helm upgrade … --set` lines render with
//!   `helm template`; `kubectl patch -p` bodies are valid JSON.
//! - `./scripts/health-check.sh` runs for real; `deploy/airgap/rollback.sh` must accept its flags.
//!
//! helm and kubectl come from scripts/fetch-helm.sh; without them the test says so and
//! skips those checks, except in CI (CI=true) where that is a failure.

use crate::http_mode::{http, Server, TENANT, TOKEN};
use crate::util::{Home, Run};
use rune_health::testing::FakeCluster;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const COST_ESTIMATE: &str = r#"{"vastai": true, "min_dph": 1.0, "max_dph": 2.0}"#;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// The commands of every ```sh block, continuation lines joined, comments dropped.
fn commands(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in markdown.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = !in_sh && t == "```sh";
            continue;
        }
        if !in_sh || t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            pending.push_str(head.trim_end());
            pending.push(' ');
            continue;
        }
        pending.push_str(t);
        out.push(std::mem::take(&mut pending));
    }
    out
}

/// Placeholders of the page, with values that exist here.
fn fill(cmd: &str) -> String {
    cmd.replace("<revision>", "1").replace("<good-version>", "0.1.0").replace("\"$RUNE_API_TOKEN\"", TOKEN)
}

fn words(cmd: &str) -> Vec<String> {
    shlex::split(cmd).unwrap_or_else(|| panic!("the page has a command with unbalanced quotes: {cmd}"))
}

/// helm and kubectl, or None (skip loudly; fail in CI).
fn tools() -> Option<PathBuf> {
    let out = Command::new(repo_root().join("scripts/fetch-helm.sh")).output().ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if out.status.success() && dir.join("helm").is_file() {
        return Some(dir);
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "scripts/fetch-helm.sh failed in CI: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("runbook: SKIPPING helm/kubectl checks: scripts/fetch-helm.sh failed (no network?)");
    None
}

/// The subcommand words and the flags (`--x`, `-n`) of a helm/kubectl command line.
fn split_flags(tool: &str, argv: &[String]) -> (Vec<String>, Vec<String>) {
    let multi = ["rollout", "create", "config"];
    let mut sub = vec![argv[1].clone()];
    if tool == "kubectl" && multi.contains(&argv[1].as_str()) {
        sub.push(argv[2].clone());
    }
    let flags = argv
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .filter(|a| a.starts_with('-') && *a != "-")
        .map(|a| a.split('=').next().unwrap_or(a).to_owned())
        .collect();
    (sub, flags)
}

/// The subcommand exists and accepts every flag used.
fn check_flags(bin: &Path, tool: &str, argv: &[String], line: &str) {
    let (sub, flags) = split_flags(tool, argv);
    let out = Command::new(bin).args(&sub).arg("--help").output().expect("run --help");
    assert!(out.status.success(), "`{tool} {}` does not exist (line: {line})", sub.join(" "));
    let mut help = String::from_utf8_lossy(&out.stdout).into_owned();
    if tool == "kubectl" {
        let global = Command::new(bin).arg("options").output().expect("kubectl options");
        help.push_str(&String::from_utf8_lossy(&global.stdout));
    }
    for flag in flags {
        let known = if flag.starts_with("--") {
            help.contains(&format!("{flag}="))
                || help.contains(&format!("{flag} "))
                || help.contains(&format!("{flag}\n"))
        } else {
            help.contains(&format!("{flag}, "))
        };
        assert!(known, "`{tool} {}` has no flag {flag} (line: {line})", sub.join(" "));
    }
}

/// `--set`/`--set-json` pairs of a helm line (for rendering it with `helm template`).
fn set_args(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for w in argv.windows(2) {
        if w[0] == "--set" || w[0] == "--show-only" {
            out.push(w[0].clone());
            out.push(w[1].clone());
        }
    }
    out
}

fn helm_template(helm: &Path, extra: &[String], line: &str) -> String {
    let out = Command::new(helm)
        .current_dir(repo_root())
        .args(["template", "rune", "deploy/helm/rune", "-n", "rune"])
        .args(extra)
        .output()
        .expect("helm template");
    assert!(out.status.success(), "{line}\ndoes not render: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the test stands in for: the data directory, the server, the fake cluster.
struct Site {
    data: tempfile::TempDir,
    server: Option<Server>,
    kubeconfig: PathBuf,
    manifest_jobs: Vec<String>,
}

impl Site {
    fn db_url(&self) -> String {
        format!("sqlite://{}/jobs.db", self.data.path().display())
    }

    fn start(&mut self) {
        if self.server.is_none() {
            let (url, home) = (self.db_url(), self.data.path().to_str().unwrap().to_owned());
            self.server = Some(Server::start_with(&[("RUNE_DATABASE_URL", &url), ("RUNE_HOME", &home)]));
        }
    }

    fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }

    /// `rune ARGS` as in the pod (or on a laptop): `/data` is the temp dir, the API is the
    /// live server, the cluster is the fake one.
    fn rune(&self, args: &[String]) -> Run {
        let data = self.data.path().to_str().unwrap();
        let base = self.server.as_ref().map(|s| s.base.clone()).unwrap_or_else(|| "http://127.0.0.1:9".into());
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("/data/", &format!("{data}/")).replace("http://127.0.0.1:8080", &base))
            .collect();
        let home = Home::new();
        let mut cmd = home.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>());
        cmd.env("RUNE_HOME", data)
            .env("RUNE_DATABASE_URL", self.db_url())
            .env("RUNE_API_TOKEN", TOKEN)
            .env("RUNE_API_TENANT", TENANT)
            .env("KUBECONFIG", &self.kubeconfig);
        Run(cmd.output().expect("run rune"))
    }

    /// `rune ARGS` as `kubectl exec deploy/rune-api -- rune ARGS` runs it: no client
    /// token, but the server's own RUNE_API_TOKENS in the environment.
    fn rune_in_pod(&self, args: &[String]) -> Run {
        let data = self.data.path().to_str().unwrap();
        let base = self.server.as_ref().map(|s| s.base.clone()).unwrap_or_else(|| "http://127.0.0.1:9".into());
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("/data/", &format!("{data}/")).replace("http://127.0.0.1:8080", &base))
            .collect();
        let home = Home::new();
        let mut cmd = home.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>());
        cmd.env("RUNE_HOME", data)
            .env("RUNE_DATABASE_URL", self.db_url())
            .env("RUNE_API_TOKENS", format!("{TENANT}:{TOKEN}"))
            .env_remove("KUBECONFIG");
        Run(cmd.output().expect("run rune"))
    }

    /// A job that has finished, so backups hold a terminal job.
    fn finished_job(&self) -> String {
        let s = self.server.as_ref().expect("server running");
        let (status, answer) = http(&s.addr, "POST", "/v1/jobs/cost-estimate", Some(TOKEN), Some(COST_ESTIMATE));
        assert_eq!(status, 202, "{answer}");
        let id = answer["job_id"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http(&s.addr, "GET", &format!("/v1/jobs/{id}"), Some(TOKEN), None).1["status"] != "succeeded" {
            assert!(Instant::now() < deadline, "job {id} did not finish");
            std::thread::sleep(Duration::from_millis(50));
        }
        id
    }
}

fn healthy_cluster() -> FakeCluster {
    let fake = FakeCluster::default();
    let deployment = |ns: &str, name: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns, "generation": 1},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"observedGeneration": 1, "updatedReplicas": 1, "availableReplicas": 1}})
    };
    let pod = |ns: &str, name: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 0}]}})
    };
    let renew = k8s_openapi::chrono::Utc::now() + k8s_openapi::chrono::Duration::hours(1);
    fake.put("deployments", deployment("rune", "rune-api"))
        .put("deployments", deployment("rune", "rune-ui"))
        .put("pods", pod("rune", "rune-api-1"))
        .put("pods", pod("rune", "rune-ui-1"))
        .put("deployments", deployment("rune-system", "rune-operator"))
        .put("pods", pod("rune-system", "rune-operator-1"))
        .put(
            "leases",
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "rune-operator.bench.rune.ai", "namespace": "rune-system"},
                "spec": {"holderIdentity": "rune-operator-1", "leaseDurationSeconds": 15,
                         "renewTime": renew.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()}}),
        )
        .proxy("rune", "rune-api", "healthz", 200, "{\"status\":\"ok\"}")
        .proxy("rune", "rune-api", "readyz", 200, "{\"status\":\"ok\"}");
    fake
}

/// The page has the seed's sections and the commands the issue asks for (so a rewrite
/// that drops one fails here, not in an incident).
#[test]
fn rollback_page_covers_the_seed() {
    let page = std::fs::read_to_string(repo_root().join("docs/operations/rollback.md")).unwrap();
    for heading in [
        "## Kubernetes deployments (Helm)",
        "### Chart rollback",
        "### Operator rollback",
        "### UI rollback",
        "## Container image rollback",
        "## Database schema rollback",
        "### Pre-upgrade backup",
        "### Restore from backup",
        "## Release rollback (PyPI)",
        "## Air-gapped environment rollback",
        "## Emergency shutdown",
        "## Verification after rollback",
    ] {
        assert!(page.contains(heading), "missing section {heading}");
    }
    let cmds = commands(&page).join("\n");
    for needle in [
        "helm history rune -n rune",
        "helm rollback rune-operator <revision> -n rune-system",
        "helm rollback rune-ui <revision> -n rune",
        "--set image.tag=",
        "--set image.digest=sha256:",
        "kubectl exec -n rune deploy/rune-api -- rune db backup --output /data/jobs.db.bak",
        "rune db verify",
        "{db,restore,",
        "{db,rollback,--to,",
        "pip install rune-bench==<good-version>",
        "deploy/airgap/rollback.sh",
        "estop trigger",
        "kubectl patch {} -n rune --type merge -p '{\"spec\":{\"suspend\":true}}'",
        "kubectl scale deploy --all -n rune-system --replicas=0",
        "./scripts/health-check.sh --namespace rune",
    ] {
        assert!(cmds.contains(needle), "no command with `{needle}` in rollback.md");
    }
    assert!(page.contains("`cp`") && page.contains("WAL"), "the page must say why a plain cp is unsafe");
}

/// Runs every command of rollback.md in order (see the module doc).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rollback_command_works() {
    run_page("rollback.md", 30).await;
}

/// The same for the upgrade page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_upgrade_command_works() {
    run_page("upgrade.md", 8).await;
}

/// The same for the backup and restore page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backup_restore_command_works() {
    run_page("backup-restore.md", 6).await;
}

/// Runs every command of docs/operations/PAGE (at least `min` of them) against a fresh
/// site seeded with two finished jobs, which must still be there at the end.
async fn run_page(page_name: &str, min: usize) {
    let page = std::fs::read_to_string(repo_root().join("docs/operations").join(page_name)).unwrap();
    let fake = healthy_cluster();
    let (stop_fake, stopped) = tokio::sync::oneshot::channel::<()>();
    let (url, fake_task) = fake
        .serve(async move {
            let _ = stopped.await;
        })
        .await
        .expect("fake Kubernetes API");
    let data = tempfile::tempdir().unwrap();
    let kubeconfig = FakeCluster::kubeconfig(&url, data.path()).unwrap();
    let tools = tools();
    let cmds: Vec<String> = commands(&page).iter().map(|c| fill(c)).collect();
    assert!(cmds.len() >= min, "only {} commands found in {page_name}", cmds.len());

    tokio::task::spawn_blocking(move || {
        let mut site = Site { data, server: None, kubeconfig, manifest_jobs: Vec::new() };
        site.start();
        site.manifest_jobs = vec![site.finished_job(), site.finished_job()];
        for line in &cmds {
            run_line(&mut site, tools.as_deref(), line);
        }
        // Whatever the page did (backups, schema rollbacks, restores), the jobs are there.
        site.start();
        let s = site.server.as_ref().expect("server");
        for id in &site.manifest_jobs {
            let (status, job) = http(&s.addr, "GET", &format!("/v1/jobs/{id}"), Some(TOKEN), None);
            assert_eq!((status, job["status"].as_str()), (200, Some("succeeded")), "{id}");
        }
        site.stop();
    })
    .await
    .expect("runbook steps");
    assert_eq!(fake.unexpected(), vec![]);
    let _ = stop_fake.send(());
    let _ = fake_task.await;
}

fn run_line(site: &mut Site, tools: Option<&Path>, line: &str) {
    // A pipeline: check each part; the maintenance Job is rendered and its rune args run.
    let parts: Vec<&str> = line.split(" | ").collect();
    let argv = words(parts[0]);
    let argv: Vec<String> = argv.into_iter().filter(|a| a != "&").collect();
    match argv[0].as_str() {
        "rune" => expect_ok(site.rune(&argv[1..]), line),
        "./scripts/health-check.sh" => {
            let out = Command::new(repo_root().join("scripts/health-check.sh"))
                .args(&argv[1..])
                .env("RUNE_BIN", env!("CARGO_BIN_EXE_rune"))
                .env("KUBECONFIG", &site.kubeconfig)
                .env_remove("RUNE_API_BASE_URL")
                .output()
                .expect("run health-check.sh");
            expect_ok(Run(out), line);
        }
        "deploy/airgap/rollback.sh" => {
            let script = repo_root().join("deploy/airgap/rollback.sh");
            assert!(script.is_file(), "{line}: deploy/airgap/rollback.sh is missing");
            let help = Command::new("bash").arg(&script).arg("--help").output().expect("rollback.sh --help");
            let help = String::from_utf8_lossy(&help.stdout).into_owned() + &String::from_utf8_lossy(&help.stderr);
            for flag in argv.iter().filter(|a| a.starts_with("--")) {
                assert!(help.contains(flag.as_str()), "{line}: rollback.sh has no {flag}\n{help}");
            }
        }
        "pip" => {
            // Installing a published release is not part of a test run; the pinned binary's
            // `rune --version` line right after it runs.
            assert!(argv.len() == 3 && argv[2].starts_with("rune-bench=="), "{line}");
        }
        "kubectl" => kubectl_line(site, tools, &argv, line),
        "helm" => helm_line(site, tools, &argv, line),
        other => panic!("rollback.md runs `{other}`, which this test does not know how to check: {line}"),
    }
    for part in &parts[1..] {
        let mut argv = words(part);
        if argv[0] == "xargs" {
            // `xargs -r -I{} kubectl …`: check the command xargs runs.
            argv = argv.into_iter().skip(1).skip_while(|a| a.starts_with('-')).collect();
        }
        if argv[0] == "kubectl" && argv[1] == "patch" {
            let body = argv.windows(2).find(|w| w[0] == "-p").map(|w| w[1].clone()).expect("patch -p");
            serde_json::from_str::<serde_json::Value>(&body).unwrap_or_else(|e| panic!("{line}: -p is not JSON: {e}"));
        }
        if let Some(dir) = tools {
            check_flags(&dir.join(&argv[0]), &argv[0], &argv, line);
        }
    }
}

fn expect_ok(run: Run, line: &str) {
    assert_eq!(run.code(), 0, "{line}\nstdout:\n{}\nstderr:\n{}", run.stdout(), run.stderr());
}

fn kubectl_line(site: &mut Site, tools: Option<&Path>, argv: &[String], line: &str) {
    if let Some(dir) = tools {
        check_flags(&dir.join("kubectl"), "kubectl", argv, line);
    }
    match argv[1].as_str() {
        "exec" => {
            let sep = argv.iter().position(|a| a == "--").unwrap_or_else(|| panic!("{line}: exec without --"));
            assert_eq!(argv[sep + 1], "rune", "{line}: the image has only `rune`");
            expect_ok(site.rune_in_pod(&argv[sep + 2..]), line);
        }
        "scale"
            if argv.iter().any(|a| a == "rune")
                && (argv.contains(&"deploy/rune-api".to_owned()) || argv.contains(&"--all".to_owned())) =>
        {
            if argv.iter().any(|a| a == "--replicas=0") {
                site.stop();
            } else {
                site.start();
            }
        }
        "patch" => {
            let body = argv.windows(2).find(|w| w[0] == "-p").map(|w| w[1].clone()).expect("patch -p");
            serde_json::from_str::<serde_json::Value>(&body).unwrap_or_else(|e| panic!("{line}: -p is not JSON: {e}"));
        }
        _ => {}
    }
}

fn helm_line(site: &mut Site, tools: Option<&Path>, argv: &[String], line: &str) {
    if let Some(dir) = tools {
        check_flags(&dir.join("helm"), "helm", argv, line);
    }
    let release = argv.get(2).map(String::as_str);
    match (argv[1].as_str(), release) {
        ("rollback", Some("rune")) => site.start(),
        ("upgrade", Some("rune")) => {
            if let Some(dir) = tools {
                let rendered = helm_template(&dir.join("helm"), &set_args(argv), line);
                let pin =
                    argv.iter().find_map(|a| a.strip_prefix("image.tag=").or_else(|| a.strip_prefix("image.digest=")));
                let pin = pin.unwrap_or_else(|| panic!("{line}: pins no image"));
                assert!(rendered.contains(pin), "{line}: the rendered Deployment does not use {pin}");
            }
            site.start();
        }
        ("template", _) => {
            let args: Vec<&str> = argv
                .iter()
                .find_map(|a| a.strip_prefix("maintenance.args="))
                .map(|v| v.trim_matches(|c| c == '{' || c == '}').split(',').collect())
                .unwrap_or_else(|| panic!("{line}: no maintenance.args"));
            if let Some(dir) = tools {
                let rendered = helm_template(&dir.join("helm"), &set_args(argv), line);
                for a in &args {
                    assert!(rendered.contains(&format!("- \"{a}\"")), "{line}: Job args lack {a}\n{rendered}");
                }
                assert!(rendered.contains("claimName: rune-api-data"), "{line}: the Job must mount the data volume");
            }
            assert!(site.server.is_none(), "{line}: the page must stop the API before the maintenance Job");
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            expect_ok(site.rune(&args), line);
        }
        _ => {}
    }
}

/// The extractor joins continuations, drops comments and ignores non-sh blocks.
#[test]
fn extractor() {
    let md = "text\n```sh\n# c\nrune a \\\n  --b\n\nhelm x\n```\n```console\n$ rune no\n```\n";
    assert_eq!(commands(md), vec!["rune a --b".to_owned(), "helm x".to_owned()]);
    let (sub, flags) = split_flags("kubectl", &words("kubectl rollout status deploy/x -n rune --timeout=5s"));
    assert_eq!(
        (sub, flags),
        (vec!["rollout".to_owned(), "status".to_owned()], vec!["-n".to_owned(), "--timeout".to_owned()])
    );
}
