//! Configuration files end to end (issue 4, item 7): the real binary with a private
//! RUNE_HOME (holding the global `config.yaml`) and a private working directory (holding
//! the project `rune.yaml`), proving flags > env > project file > global file > defaults,
//! profile merging, and the refusals (unknown profile, secrets, broken YAML) — while
//! `--help`, `--version` and `rune init` keep working whatever the files say.

use crate::util::{file_hash, Home, Run};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A RUNE_HOME plus a project directory to run in.
struct Setup {
    home: Home,
    project: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        Self { home: Home::new(), project: tempfile::tempdir().expect("tempdir") }
    }

    fn dir(&self) -> &Path {
        self.project.path()
    }

    fn global_file(&self, yaml: &str) -> PathBuf {
        let path = self.home.path().join("config.yaml");
        std::fs::write(&path, yaml).expect("write global config");
        path
    }

    fn project_file(&self, yaml: &str) -> PathBuf {
        let path = self.dir().join("rune.yaml");
        std::fs::write(&path, yaml).expect("write rune.yaml");
        path
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.home.cmd_in(self.dir(), args);
        cmd.envs(env.iter().copied());
        Run(cmd.output().expect("run rune"))
    }

    /// `rune ARGS config --output json`, which must succeed.
    fn config(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let args = [args, &["config", "--output", "json"]].concat();
        self.run(&args, env).expect_code(0).json()
    }
}

/// `(value, source, section)` of one key in `rune config --output json`.
fn setting(config: &Value, key: &str) -> (String, String, Option<String>) {
    let row = config["settings"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["key"] == key))
        .unwrap_or_else(|| panic!("no row for {key}: {config}"));
    let text = |v: &Value| v.as_str().map(str::to_owned);
    (text(&row["value"]).unwrap_or_default(), text(&row["source"]).unwrap_or_default(), text(&row["section"]))
}

fn row(value: &str, source: &str, section: Option<&str>) -> (String, String, Option<String>) {
    (value.to_owned(), source.to_owned(), section.map(str::to_owned))
}

const GLOBAL: &str = "\
defaults:
  model: global-default
  api_tenant: global-tenant
profiles:
  ci:
    model: global-ci
    question: Global question?
    agent: global-ci-agent
";

const PROJECT: &str = "\
version: \"1\"
defaults:
  model: project-default
  agent: project-agent
profiles:
  ci:
    model: project-ci
";

/// The project's profile beats the global profile, which beats the project's defaults,
/// which beat the global defaults, which beat the built-in default; a profile defined in
/// both files is merged key by key (the original replaced the whole `profiles:` map).
#[test]
fn files_and_profiles_stack_in_order() {
    let s = Setup::new();
    let none = s.config(&[], &[]);
    assert_eq!(setting(&none, "model"), row("llama3.1:8b", "default", None));
    assert_eq!(none["files"][0]["found"], false);

    let global = s.global_file(GLOBAL);
    let only_global = s.config(&[], &[]);
    assert_eq!(setting(&only_global, "model"), row("global-default", "global file", Some("defaults")));

    let project = s.project_file(PROJECT);
    let plain = s.config(&[], &[]);
    assert_eq!(setting(&plain, "model"), row("project-default", "project file", Some("defaults")));
    assert_eq!(setting(&plain, "api_tenant"), row("global-tenant", "global file", Some("defaults")));
    assert_eq!(setting(&plain, "question").1, "default");
    let files: Vec<(&str, &str, bool)> = plain["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| (f["scope"].as_str().unwrap_or(""), f["path"].as_str().unwrap_or(""), f["found"] == true))
        .collect();
    assert_eq!(
        files,
        [("global", global.to_str().expect("utf-8"), true), ("project", project.to_str().expect("utf-8"), true)]
    );

    let ci = s.config(&["--profile", "ci"], &[]);
    assert_eq!(ci["profile"], "ci");
    assert_eq!(ci["profile_source"], "flag");
    assert_eq!(setting(&ci, "model"), row("project-ci", "project file", Some("profiles.ci")));
    assert_eq!(setting(&ci, "question"), row("Global question?", "global file", Some("profiles.ci")));
    // A global profile beats the project's defaults.
    assert_eq!(setting(&ci, "agent"), row("global-ci-agent", "global file", Some("profiles.ci")));
    assert_eq!(setting(&ci, "api_tenant"), row("global-tenant", "global file", Some("defaults")));

    // RUNE_PROFILE selects the same way; `--profile=NAME` works too.
    let by_env = s.config(&[], &[("RUNE_PROFILE", "ci")]);
    assert_eq!(by_env["profile_source"], "env");
    assert_eq!(setting(&by_env, "model").0, "project-ci");
    assert_eq!(setting(&s.config(&["--profile=ci"], &[]), "model").0, "project-ci");
    // An empty RUNE_PROFILE means no profile.
    assert_eq!(s.config(&[], &[("RUNE_PROFILE", "")])["profile"], Value::Null);
}

/// The environment beats both files and a flag beats the environment, shown by
/// `rune config` and by a command that really uses the value (the model server URL it
/// failed to reach).
#[test]
fn env_beats_files_and_flags_beat_env() {
    let s = Setup::new();
    s.global_file("defaults:\n  api_tenant: global-tenant\n  backend_url: http://127.0.0.1:9\n");
    s.project_file("defaults:\n  api_tenant: file-tenant\n  backend_url: http://127.0.0.1:1\n");

    assert_eq!(setting(&s.config(&[], &[]), "api_tenant"), row("file-tenant", "project file", Some("defaults")));
    let env = [("RUNE_API_TENANT", "env-tenant"), ("RUNE_BACKEND_URL", "http://127.0.0.1:2")];
    assert_eq!(setting(&s.config(&[], &env), "api_tenant"), row("env-tenant", "env", None));
    let flagged = s.config(&["--api-tenant", "flag-tenant"], &env);
    assert_eq!(setting(&flagged, "api_tenant"), row("flag-tenant", "flag", None));

    let reached = |args: &[&str], env: &[(&str, &str)]| {
        let run = s.run(&[&["ollama-list-models"], args].concat(), env).expect_code(1);
        let err = run.stderr();
        ["1", "2", "3", "9"]
            .into_iter()
            .find(|port| err.contains(&format!("http://127.0.0.1:{port}/")))
            .map(str::to_owned)
    };
    assert_eq!(reached(&[], &[]).as_deref(), Some("1"), "the project file's URL is used");
    assert_eq!(reached(&[], &env).as_deref(), Some("2"), "the environment beats the file");
    assert_eq!(reached(&["--backend-url", "http://127.0.0.1:3"], &env).as_deref(), Some("3"), "the flag beats both");
}

/// Booleans and numbers from a file reach clap in a form it accepts (`--log-json` only
/// takes true/false), including the inverted `backend_warmup` (`--no-backend-warmup`).
#[test]
fn typed_values_reach_the_commands() {
    let s = Setup::new();
    s.project_file(
        "defaults:\n  log_json: true\n  insecure: true\n  backend_warmup: false\n  backend_warmup_timeout: 5\n  \
         api_port: 9999\n",
    );
    let c = s.config(&[], &[]);
    assert_eq!(setting(&c, "log_json"), row("true", "project file", Some("defaults")));
    assert_eq!(setting(&c, "backend_warmup").0, "false");
    assert_eq!(setting(&c, "api_port").0, "9999");
    s.run(&["info"], &[]).expect_code(0);
    let flag = s.config(&["--insecure"], &[]);
    assert_eq!(setting(&flag, "insecure").1, "flag");
}

/// An unknown profile stops every command that runs, naming the profile, the closest
/// one, the profiles that exist and the files searched (exit 2); `--help`, `--version`
/// and `rune init` are unaffected.
#[test]
fn unknown_profile_is_refused() {
    let s = Setup::new();
    let global = s.global_file(GLOBAL);
    let project = s.project_file("profiles:\n  staging: {}\n");
    for args in [&["--profile", "stagin", "info"][..], &["config", "--profile", "stagin"]] {
        let err = s.run(args, &[]).expect_code(2).stderr();
        assert!(err.contains("unknown profile `stagin` (did you mean `staging`?)"), "{err}");
        assert!(err.contains("profiles defined: ci, staging"), "{err}");
        assert!(err.contains(&global.display().to_string()) && err.contains(&project.display().to_string()), "{err}");
    }
    let err = s.run(&["info"], &[("RUNE_PROFILE", "nope")]).expect_code(2).stderr();
    assert!(err.contains("unknown profile `nope`"), "{err}");
    s.run(&["--profile", "nope", "--help"], &[]).expect_code(0);
    s.run(&["--profile", "nope", "--version"], &[]).expect_code(0);

    let bare = Setup::new();
    let err = bare.run(&["--profile", "ci", "info"], &[]).expect_code(2).stderr();
    assert!(err.contains("no configuration file defines a profile"), "{err}");
    assert!(
        err.contains("config.yaml (not found, nor .yml)") && err.contains("rune.yaml (not found, nor .yml)"),
        "{err}"
    );
    bare.run(&["init"], &[("RUNE_PROFILE", "nope")]).expect_code(0);
}

/// A secret in a file is refused with the variable to use instead, without repeating
/// it; secrets in the environment are shown only as set, and URL passwords are masked.
#[test]
fn secrets_stay_out_of_files_and_output() {
    let s = Setup::new();
    let path = s.project_file("defaults:\n  api_token: hunter2-secret\n");
    let run = s.run(&["info"], &[]).expect_code(2);
    let err = run.stderr();
    assert!(err.contains(&format!("{}: defaults.api_token: looks like a secret", path.display())), "{err}");
    assert!(err.contains("set RUNE_API_TOKEN in the environment"), "{err}");
    assert!(!err.contains("hunter2") && !run.stdout().contains("hunter2"), "{err}");

    s.global_file("profiles:\n  prod:\n    database_url: postgres://rune:hunter2@db/rune\n");
    s.project_file("");
    let err = s.run(&["--profile", "prod", "info"], &[]).expect_code(2).stderr();
    assert!(err.contains("profiles.prod.database_url: contains a password") && !err.contains("hunter2"), "{err}");

    s.global_file("");
    let env = [("RUNE_API_TOKEN", "hunter2-token"), ("RUNE_DATABASE_URL", "postgres://rune:hunter2@db:5432/rune")];
    for output in ["table", "json"] {
        let out = s.run(&["config", "--output", output], &env).expect_code(0).stdout();
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains("postgres://rune:***@db:5432/rune"), "{out}");
    }
    let c = s.config(&[], &env);
    assert_eq!(c["secrets"][0], serde_json::json!({"env": "RUNE_API_TOKEN", "set": true}));
    assert_eq!(c["secrets"][1], serde_json::json!({"env": "RUNE_API_TOKENS", "set": false}));
}

/// Broken YAML names the file and line and stops commands (exit 2), but `--help`,
/// `--version`, `help CMD` and `rune init --force` (which repairs it) still work.
#[test]
fn broken_yaml_is_located_and_help_still_works() {
    let s = Setup::new();
    let path = s.project_file("defaults:\n  model: a\n   agent: b\n");
    let err = s.run(&["config"], &[]).expect_code(2).stderr();
    assert!(err.contains(&format!("{}:3:", path.display())) && err.contains("not valid YAML"), "{err}");
    let help = s.run(&["--help"], &[]).expect_code(0).stdout();
    assert!(help.contains("--profile <NAME>"), "{help}");
    assert!(s.run(&["--version"], &[]).expect_code(0).stdout().starts_with("rune "));
    s.run(&["help", "run-benchmark"], &[]).expect_code(0);
    s.run(&["run-benchmark", "--help"], &[]).expect_code(0);
    s.run(&["init", "--force"], &[]).expect_code(0);
    s.run(&["config"], &[]).expect_code(0);

    let dup = s.global_file("defaults:\n  model: a\n  agent: b\n  model: c\n");
    let err = s.run(&["info"], &[]).expect_code(2).stderr();
    assert!(err.contains(&format!("{}:4: not valid YAML: duplicate key `defaults.model`", dup.display())), "{err}");
}

/// Unknown keys are errors with a suggestion; every problem in a file is listed at once.
#[test]
fn unknown_keys_are_listed_with_suggestions() {
    let s = Setup::new();
    s.project_file("defaults:\n  modle: x\n  backend: grpc\nprofiles:\n  ci:\n    api_port: 70000\n");
    let err = s.run(&["info"], &[]).expect_code(2).stderr();
    assert!(err.contains("defaults.modle: unknown key (did you mean `model`?)"), "{err}");
    assert!(err.contains("defaults.backend: expected one of local, http"), "{err}");
    assert!(err.contains("profiles.ci.api_port: expected a whole number from 0 to 65535"), "{err}");
}

/// `rune init` writes a valid, commented template; a second run refuses (exit 4) and
/// leaves the file alone; `--force` overwrites; a `rune.yml` is never shadowed.
#[test]
fn init_writes_once_unless_forced() {
    let s = Setup::new();
    let out = s.run(&["init"], &[]).expect_code(0).stdout();
    let path = s.dir().join("rune.yaml");
    assert!(out.contains(&path.display().to_string()), "{out}");
    let text = std::fs::read_to_string(&path).expect("template");
    assert!(text.starts_with("# RUNE configuration") && text.contains("version: \"1\""), "{text}");
    assert!(!text.contains("api_token:"), "the template holds no secret keys");
    let ci = s.config(&["--profile", "ci"], &[]);
    assert_eq!(setting(&ci, "backend_url"), row("http://127.0.0.1:11434", "project file", Some("profiles.ci")));
    assert_eq!(setting(&ci, "model").1, "default", "defaults are commented out");

    std::fs::write(&path, "# mine\n").expect("edit");
    let before = file_hash(&path);
    let err = s.run(&["init"], &[]).expect_code(4).stderr();
    assert!(err.contains("already exists; pass --force"), "{err}");
    assert_eq!(file_hash(&path), before);
    s.run(&["init", "--force"], &[]).expect_code(0);
    assert_ne!(file_hash(&path), before);

    let other = Setup::new();
    std::fs::write(other.dir().join("rune.yml"), "defaults: {model: m}\n").expect("write");
    let err = other.run(&["init", "--force"], &[]).expect_code(4).stderr();
    assert!(err.contains("rune.yml already exists"), "{err}");
    assert!(!other.dir().join("rune.yaml").exists());
}

/// Without RUNE_HOME the global file is ~/.rune/config.yaml (or .yml); both spellings
/// at once is an error rather than a silent choice.
#[test]
fn global_file_lives_in_home_without_rune_home() {
    let s = Setup::new();
    let fake_home = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(fake_home.path().join(".rune")).expect("mkdir");
    std::fs::write(fake_home.path().join(".rune/config.yml"), "defaults:\n  model: from-home\n").expect("write");
    let run = |s: &Setup| {
        let mut cmd = s.home.cmd_in(s.dir(), &["config", "--output", "json"]);
        cmd.env_remove("RUNE_HOME").env("HOME", fake_home.path());
        Run(cmd.output().expect("run"))
    };
    let c = run(&s).expect_code(0).json();
    assert_eq!(setting(&c, "model"), row("from-home", "global file", Some("defaults")));
    std::fs::write(fake_home.path().join(".rune/config.yaml"), "").expect("write");
    let err = run(&s).expect_code(2).stderr();
    assert!(err.contains("config.yaml and") && err.contains("config.yml exist; keep one"), "{err}");
}
