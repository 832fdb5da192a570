//! Configuration files: the schema of `./rune.yaml` (project) and `$RUNE_HOME/config.yaml`
//! (global), their validation, the deep merge of both with a profile, and the table that
//! maps each key to the environment variable it feeds.
//!
//! Precedence, highest first: command-line flag > environment variable > project file >
//! global file > built-in default. Within the files, a selected profile beats the
//! `defaults:` section, so the four file layers stack as
//! global `defaults` < project `defaults` < global profile < project profile, key by key
//! (a profile defined in both files is merged, it never replaces the other one).
//!
//! This module is pure: no files, no environment. The CLI reads the files, hands their
//! text to [`ConfigFile::parse`], resolves the [`Layers`] for a profile, and exports each
//! [`Resolved`] setting as its [`Key::env`] variable *only where the environment does not
//! set it already*; clap's `env = "…"` then gives flags > env > files > defaults for free.
//!
//! # What is refused
//!
//! Every problem is reported at once, each with the file name and the key path
//! (`profiles.ci.modle`): unknown keys (with a "did you mean" when one is close),
//! settings at the top level, values of the wrong type or out of range, choices that do
//! not exist, profile names that are not `[A-Za-z0-9_-]{1,64}`, and an unsupported
//! `version`. Secrets are refused outright, whatever their value: any key whose name
//! contains `token`, `password`, `passwd`, `secret`, `key` or `credential`, and any URL
//! with a password in it. Files end up in version control and backups; secrets belong in
//! the environment (`RUNE_API_TOKEN`, `RUNE_DATABASE_URL`). A refused secret's value is
//! never repeated in the message. YAML syntax errors name the file, line and column.
//!
//! # Example
//!
//! ```
//! use rune_core::config::{ConfigFile, Layers, Origin};
//!
//! let global = ConfigFile::parse("config.yaml", "defaults: {model: a, api_tenant: team}\n\
//!     profiles: {ci: {model: b, question: Why?}}\n")?;
//! let project = ConfigFile::parse("rune.yaml", "version: \"1\"\n\
//!     defaults: {model: c}\nprofiles: {ci: {model: d}}\n")?;
//! let layers = Layers { global: Some(global), project: Some(project), searched: vec![] };
//!
//! let plain = layers.resolve(None)?;
//! assert_eq!(plain.get("model"), Some("c")); // project defaults beat global defaults
//! assert_eq!(plain.get("api_tenant"), Some("team")); // a key only the global file sets stays
//!
//! let ci = layers.resolve(Some("ci"))?;
//! assert_eq!(ci.get("model"), Some("d")); // the project's profile wins
//! assert_eq!(ci.settings["question"].origin, Origin::GlobalProfile); // merged key by key
//! assert_eq!(ci.settings["question"].value, "Why?");
//!
//! let err = ConfigFile::parse("rune.yaml", "defaults:\n  api_token: hunter2\n").unwrap_err();
//! assert!(err.to_string().contains("RUNE_API_TOKEN") && !err.to_string().contains("hunter2"));
//! assert!(layers.resolve(Some("prod")).is_err());
//! # Ok::<(), rune_core::config::ConfigError>(())
//! ```

use crate::validate::FieldError;
use serde_norway::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};

/// The only file format version this build reads (`version: "1"`, optional).
pub const VERSION: &str = "1";

/// Longest profile name; names are `[A-Za-z0-9_-]`, like the API's settings profiles.
pub const MAX_PROFILE_NAME_LEN: usize = 64;

/// What a key's value must be; the value is checked when the file is parsed, so a bad one
/// is reported with its file and key path rather than later as a confusing flag error.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Kind {
    /// Non-empty text. A YAML number is accepted as its text (`42`); quote values whose
    /// spelling matters (`"3.10"`, `"0042"`).
    Text,
    /// A URL; refused when it carries a password (`scheme://user:password@host`).
    Url,
    /// One of these words, exactly.
    Choice(&'static [&'static str]),
    /// `true` or `false` (YAML booleans only: `yes`/`on` are text in YAML 1.2).
    Bool,
    /// A whole number within the bounds.
    Integer {
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// A number (whole or decimal) within the bounds.
    Number {
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
    },
    /// An IPv4 or IPv6 address.
    Ip,
    /// A list of non-empty words without commas (or one comma-separated string), exported
    /// joined by commas.
    List,
}

/// Which part of RUNE reads a key; groups the `rune init` template and the docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// Every command: where jobs run, the API to talk to, the database, logging.
    Client,
    /// `run-benchmark`, `run-agentic-agent`, `run-llm-instance`, `ollama-list-models`.
    Run,
    /// `rune serve`.
    Server,
}

impl Group {
    /// A heading for listings.
    pub fn title(self) -> &'static str {
        match self {
            Group::Client => "every command",
            Group::Run => "benchmark and agent runs",
            Group::Server => "rune serve",
        }
    }
}

/// One configurable key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Key {
    /// Name in the file (`snake_case`, the env var without `RUNE_`, lower-cased, except
    /// where the original chose otherwise).
    pub name: &'static str,
    /// The environment variable the value is exported as.
    pub env: &'static str,
    /// What the value must be.
    pub kind: Kind,
    /// Who reads it.
    pub group: Group,
    /// A plausible value for templates and docs (valid for [`Key::kind`]).
    pub example: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
}

/// Every key a configuration file may set. The CLI's tests check that each one is read
/// by a clap argument or by the server's settings, and that the examples pass clap's own
/// value parsers, so nothing here is dead or unparseable.
pub const KEYS: &[Key] = &[
    Key {
        name: "backend",
        env: "RUNE_BACKEND",
        kind: Kind::Choice(&["local", "http"]),
        group: Group::Client,
        example: "http",
        summary: "where job commands run: `local` (the job database here) or `http` (a RUNE API server)",
    },
    Key {
        name: "api_base_url",
        env: "RUNE_API_BASE_URL",
        kind: Kind::Url,
        group: Group::Client,
        example: "https://rune.example.com",
        summary: "base URL of the RUNE API (with backend http); the token stays in RUNE_API_TOKEN",
    },
    Key {
        name: "api_tenant",
        env: "RUNE_API_TENANT",
        kind: Kind::Text,
        group: Group::Client,
        example: "team-a",
        summary: "tenant sent as X-Tenant-ID (with backend http)",
    },
    Key {
        name: "insecure",
        env: "RUNE_INSECURE",
        kind: Kind::Bool,
        group: Group::Client,
        example: "false",
        summary: "skip TLS certificate verification of the API (self-signed test servers only)",
    },
    Key {
        name: "database_url",
        env: "RUNE_DATABASE_URL",
        kind: Kind::Url,
        group: Group::Client,
        example: "sqlite:///var/lib/rune/jobs.db",
        summary: "job database (default sqlite://$RUNE_HOME/jobs.db); a URL with a password belongs in the environment",
    },
    Key {
        name: "backup_dir",
        env: "RUNE_BACKUP_DIR",
        kind: Kind::Text,
        group: Group::Client,
        example: "/var/backups/rune",
        summary: "where automatic pre-migration backups go",
    },
    Key {
        name: "log",
        env: "RUNE_LOG",
        kind: Kind::Text,
        group: Group::Client,
        example: "info",
        summary: "log filter (`debug`, `rune_api=debug`, …); by default warn, info for `rune serve`",
    },
    Key {
        name: "log_json",
        env: "RUNE_LOG_JSON",
        kind: Kind::Bool,
        group: Group::Client,
        example: "true",
        summary: "log as JSON lines on stderr",
    },
    Key {
        name: "backend_type",
        env: "RUNE_BACKEND_TYPE",
        kind: Kind::Choice(&["ollama", "openai"]),
        group: Group::Run,
        example: "openai",
        summary: "protocol of the model server",
    },
    Key {
        name: "backend_url",
        env: "RUNE_BACKEND_URL",
        kind: Kind::Url,
        group: Group::Run,
        example: "http://localhost:11434",
        summary: "base URL of the model server",
    },
    Key {
        name: "model",
        env: "RUNE_MODEL",
        kind: Kind::Text,
        group: Group::Run,
        example: "qwen2.5:7b",
        summary: "model name as the backend knows it",
    },
    Key {
        name: "question",
        env: "RUNE_QUESTION",
        kind: Kind::Text,
        group: Group::Run,
        example: "Why is the checkout pod restarting?",
        summary: "question asked when no suite is given",
    },
    Key {
        name: "agent",
        env: "RUNE_AGENT",
        kind: Kind::Text,
        group: Group::Run,
        example: "holmes",
        summary: "agent: llm, holmes, k8sgpt, stdio, http",
    },
    Key {
        name: "suite",
        env: "RUNE_SUITE",
        kind: Kind::Text,
        group: Group::Run,
        example: "sre-basics",
        summary: "benchmark suite: a built-in name or a suite YAML file",
    },
    Key {
        name: "kubeconfig",
        env: "RUNE_KUBECONFIG",
        kind: Kind::Text,
        group: Group::Run,
        example: "/etc/rune/kubeconfig",
        summary: "kubeconfig for agents that inspect a live cluster",
    },
    Key {
        name: "backend_warmup",
        env: "RUNE_NO_BACKEND_WARMUP",
        kind: Kind::Bool,
        group: Group::Run,
        example: "false",
        summary: "load the model before measuring (false = --no-backend-warmup)",
    },
    Key {
        name: "backend_warmup_timeout",
        env: "RUNE_BACKEND_WARMUP_TIMEOUT",
        kind: Kind::Integer { min: 1, max: 86_400 },
        group: Group::Run,
        example: "300",
        summary: "seconds allowed for the warm-up",
    },
    Key {
        name: "api_host",
        env: "RUNE_API_HOST",
        kind: Kind::Ip,
        group: Group::Server,
        example: "0.0.0.0",
        summary: "address `rune serve` listens on",
    },
    Key {
        name: "api_port",
        env: "RUNE_API_PORT",
        kind: Kind::Integer { min: 0, max: 65_535 },
        group: Group::Server,
        example: "8080",
        summary: "port `rune serve` listens on (0 = any free port)",
    },
    Key {
        name: "max_concurrent_jobs",
        env: "RUNE_MAX_CONCURRENT_JOBS",
        kind: Kind::Integer { min: 1, max: 1024 },
        group: Group::Server,
        example: "8",
        summary: "jobs run at once by one server",
    },
    Key {
        name: "job_timeout_seconds",
        env: "RUNE_JOB_TIMEOUT_SECONDS",
        kind: Kind::Number { min: 1.0, max: 604_800.0 },
        group: Group::Server,
        example: "7200",
        summary: "a job running longer fails",
    },
    Key {
        name: "job_lease_seconds",
        env: "RUNE_JOB_LEASE_SECONDS",
        kind: Kind::Number { min: 1.0, max: 3600.0 },
        group: Group::Server,
        example: "30",
        summary: "lease of a running job (renewed at a third of it)",
    },
    Key {
        name: "job_max_attempts",
        env: "RUNE_JOB_MAX_ATTEMPTS",
        kind: Kind::Integer { min: 1, max: 100 },
        group: Group::Server,
        example: "3",
        summary: "claims before an orphaned job fails",
    },
    Key {
        name: "rate_limit_rps",
        env: "RUNE_RATE_LIMIT_RPS",
        kind: Kind::Number { min: 0.0, max: 1e9 },
        group: Group::Server,
        example: "50",
        summary: "sustained requests per second per tenant (0 disables the limit)",
    },
    Key {
        name: "rate_limit_burst",
        env: "RUNE_RATE_LIMIT_BURST",
        kind: Kind::Number { min: 1.0, max: 1e9 },
        group: Group::Server,
        example: "100",
        summary: "burst per tenant",
    },
    Key {
        name: "auth_failures_per_minute",
        env: "RUNE_AUTH_FAILURES_PER_MINUTE",
        kind: Kind::Integer { min: 1, max: 1_000_000 },
        group: Group::Server,
        example: "10",
        summary: "failed logins per client address per minute before 429",
    },
    Key {
        name: "request_timeout_seconds",
        env: "RUNE_REQUEST_TIMEOUT_SECONDS",
        kind: Kind::Number { min: 1.0, max: 3600.0 },
        group: Group::Server,
        example: "30",
        summary: "whole-request timeout (not event streams)",
    },
    Key {
        name: "shutdown_grace_seconds",
        env: "RUNE_SHUTDOWN_GRACE_SECONDS",
        kind: Kind::Number { min: 0.0, max: 3600.0 },
        group: Group::Server,
        example: "60",
        summary: "drain time on SIGTERM before running jobs are requeued",
    },
    Key {
        name: "scheduler",
        env: "RUNE_SCHEDULER",
        kind: Kind::Bool,
        group: Group::Server,
        example: "false",
        summary: "run the embedded cron scheduler on this replica",
    },
    Key {
        name: "scheduler_tick_seconds",
        env: "RUNE_SCHEDULER_TICK_SECONDS",
        kind: Kind::Number { min: 0.05, max: 3600.0 },
        group: Group::Server,
        example: "5",
        summary: "how often schedules are checked",
    },
    Key {
        name: "estop_tenants",
        env: "RUNE_ESTOP_TENANTS",
        kind: Kind::List,
        group: Group::Server,
        example: "ops",
        summary: "tenants allowed to engage or release the E-Stop (all tenants when unset)",
    },
];

/// The key called `name`, if it is configurable.
pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// The key exported as `env`, if any.
pub fn key_for_env(env: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.env == env)
}

/// Words that make a key name a secret; matched anywhere in the lower-cased name.
const SECRET_WORDS: [&str; 6] = ["token", "password", "passwd", "secret", "key", "credential"];

/// Names that look like settings but are deliberately not configurable from a file, with
/// why and what to use instead. Checked before the secret test, so `idempotency_key`
/// gets the accurate reason.
const NOT_CONFIGURABLE: &[(&str, &str)] = &[
    ("profile", "a file cannot choose its own profile; use --profile NAME or RUNE_PROFILE=NAME"),
    ("rune_home", "RUNE_HOME decides where the global file is, so no file can set it; use --rune-home or RUNE_HOME"),
    ("idempotency_key", "an idempotency key belongs to one submission; use --idempotency-key or RUNE_IDEMPOTENCY_KEY"),
    (
        "allow_unauthenticated",
        "serving without authentication is chosen per start, never by a file; use --allow-unauthenticated",
    ),
    ("attestation", "attestation is not supported by this build"),
];

/// True when a key name looks like it holds a secret.
pub fn looks_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w))
}

/// The environment variable that holds the secret a refused key was probably meant for.
fn secret_env(name: &str) -> Option<&'static str> {
    match name.to_ascii_lowercase().as_str() {
        "api_token" | "token" | "rune_api_token" => Some("RUNE_API_TOKEN"),
        "api_tokens" | "tokens" | "rune_api_tokens" => Some("RUNE_API_TOKENS"),
        "vast_api_key" | "vastai_api_key" => Some("VAST_API_KEY"),
        "database_password" | "db_password" | "postgres_password" => Some("RUNE_DATABASE_URL"),
        _ => None,
    }
}

fn secret_message(name: &str) -> String {
    let fix = match secret_env(name) {
        Some(env) => format!("set {env} in the environment instead"),
        None => "set it in the environment instead (for example RUNE_API_TOKEN for the API token)".to_owned(),
    };
    format!(
        "looks like a secret, and secrets are never read from configuration files (files end up in version control \
         and backups); {fix}"
    )
}

/// Settings of one section: key name → the text exported as the key's env var.
pub type Settings = BTreeMap<&'static str, String>;

/// One parsed, valid configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigFile {
    /// The name given to [`ConfigFile::parse`] (a path), used in messages.
    pub name: String,
    /// The `defaults:` section.
    pub defaults: Settings,
    /// The `profiles:` section, by profile name.
    pub profiles: BTreeMap<String, Settings>,
}

/// Why a configuration file or profile cannot be used. Every variant names the file(s).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not YAML, or has a duplicate key.
    #[error("{}", render_syntax(file, *line, *column, message))]
    Syntax {
        /// File name as given.
        file: String,
        /// 1-based line, when the YAML parser knows it.
        line: Option<usize>,
        /// 1-based column, when the YAML parser knows it.
        column: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// The document is YAML but breaks the schema; one line per problem,
    /// `file: key.path: message`.
    #[error("{}", render_problems(file, problems))]
    Invalid {
        /// File name as given.
        file: String,
        /// Every problem, in document order; never empty.
        problems: Vec<FieldError>,
    },
    /// The requested profile is defined in none of the files.
    #[error("{}", render_unknown_profile(profile, available, searched))]
    UnknownProfile {
        /// The name asked for.
        profile: String,
        /// Profiles the files define, sorted.
        available: Vec<String>,
        /// The files looked for, in precedence order, as the caller described them.
        searched: Vec<String>,
    },
}

impl ConfigError {
    /// The individual problems of [`ConfigError::Invalid`] (empty for the others).
    pub fn problems(&self) -> &[FieldError] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

fn render_syntax(file: &str, line: Option<usize>, column: Option<usize>, message: &str) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}: not valid YAML: {message}"),
        (Some(l), None) => format!("{file}:{l}: not valid YAML: {message}"),
        _ => format!("{file}: not valid YAML: {message}"),
    }
}

fn render_problems(file: &str, problems: &[FieldError]) -> String {
    problems.iter().map(|p| format!("{file}: {}: {}", p.field, p.message)).collect::<Vec<_>>().join("\n")
}

fn render_unknown_profile(profile: &str, available: &[String], searched: &[String]) -> String {
    let mut s = format!("unknown profile `{profile}`");
    if let Some(close) = closest(profile, available.iter().map(String::as_str)) {
        s.push_str(&format!(" (did you mean `{close}`?)"));
    }
    if available.is_empty() {
        s.push_str("; no configuration file defines a profile");
    } else {
        s.push_str(&format!("; profiles defined: {}", available.join(", ")));
    }
    if !searched.is_empty() {
        s.push_str(&format!("; files searched: {}", searched.join(", ")));
    }
    s.push_str(". Profiles come from --profile or RUNE_PROFILE (see `rune config` and docs/configuration.md)");
    s
}

/// Collects problems while reading one file.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), message: message.into() });
    }
}

impl ConfigFile {
    /// Parses and validates a configuration file. `name` labels every message (pass the
    /// path); nothing is read from it. An empty or comment-only file is valid and empty.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Syntax`] with the line and column for text that is not YAML (or has
    /// a duplicate key), [`ConfigError::Invalid`] listing every schema problem.
    pub fn parse(name: &str, yaml: &str) -> Result<ConfigFile, ConfigError> {
        let doc: Yaml = serde_norway::from_str(yaml).map_err(|e| syntax_error(name, yaml, &e))?;
        let mut file = ConfigFile { name: name.to_owned(), ..ConfigFile::default() };
        let mut p = Problems::default();
        match &doc {
            Yaml::Null => {}
            Yaml::Mapping(map) => {
                for (k, v) in map {
                    let Some(k) = k.as_str() else {
                        p.push("$", format!("keys must be text, found {}", yaml_type(k)));
                        continue;
                    };
                    match k {
                        "version" => check_version(v, &mut p),
                        "defaults" => file.defaults = read_settings("defaults", v, &mut p),
                        "profiles" => file.profiles = read_profiles(v, &mut p),
                        other => p.push(other, top_level_problem(other)),
                    }
                }
            }
            other => p.push(
                "$",
                format!("expected a mapping with version, defaults and profiles, found {}", yaml_type(other)),
            ),
        }
        if p.0.is_empty() {
            Ok(file)
        } else {
            Err(ConfigError::Invalid { file: name.to_owned(), problems: p.0 })
        }
    }
}

/// Turns the YAML parser's error into one that names the file and line. Duplicate keys
/// are reported by the parser at the document start, so their lines are found in the text.
fn syntax_error(file: &str, yaml: &str, e: &serde_norway::Error) -> ConfigError {
    let mut message = e.to_string();
    let mut line = e.location().map(|l| l.line());
    let mut column = e.location().map(|l| l.column());
    if let (Some(l), Some(c)) = (line, column) {
        if let Some(stripped) = message.strip_suffix(&format!(" at line {l} column {c}")) {
            message = stripped.to_owned();
        }
    }
    if let Some((path, dup)) = message.split_once("duplicate entry with key ") {
        let path = path.trim_end_matches(": ").to_owned();
        let dup = dup.trim_matches('"').to_owned();
        let key_path = if path.is_empty() { dup.clone() } else { format!("{path}.{dup}") };
        // The parser points at the start of the mapping holding the duplicate; in block
        // style its keys all sit at that column, so the second such line is the culprit.
        let found = match (line, column) {
            (Some(l), Some(c)) => duplicate_lines(yaml, &dup, l, c.saturating_sub(1)),
            _ => Vec::new(),
        };
        message = format!("duplicate key `{key_path}`; each key may appear once per mapping");
        if let [first, second, ..] = found.as_slice() {
            message =
                format!("duplicate key `{key_path}` (first on line {first}); each key may appear once per mapping");
            line = Some(*second);
        }
        column = None;
    }
    ConfigError::Syntax { file: file.to_owned(), line, column, message }
}

/// Lines (1-based) of the block mapping starting at `start`/`indent` whose key is `key`.
fn duplicate_lines(yaml: &str, key: &str, start: usize, indent: usize) -> Vec<usize> {
    let quoted = format!("\"{key}\"");
    let single = format!("'{key}'");
    let mut found = Vec::new();
    for (i, text) in yaml.lines().enumerate().skip(start.saturating_sub(1)) {
        let body = text.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let depth = text.len() - body.len();
        if depth < indent && i + 1 > start {
            break; // the mapping has ended
        }
        if depth != indent {
            continue;
        }
        let rest = [key, quoted.as_str(), single.as_str()].iter().find_map(|k| body.strip_prefix(k));
        if rest.is_some_and(|r| r.trim_start().starts_with(':')) {
            found.push(i + 1);
        }
    }
    found
}

fn check_version(v: &Yaml, p: &mut Problems) {
    let ok = match v {
        Yaml::String(s) => s == VERSION,
        Yaml::Number(n) => n.as_u64() == Some(1),
        _ => false,
    };
    if !ok {
        p.push("version", format!("unsupported version {}; this build reads version \"{VERSION}\"", show(v)));
    }
}

fn top_level_problem(name: &str) -> String {
    if let Some(k) = key(name) {
        return format!("`{}` is a setting: put it under `defaults:` (or under a profile in `profiles:`)", k.name);
    }
    if let Some(why) = special_problem(name) {
        return why;
    }
    let mut s = "unknown key; a configuration file has `version`, `defaults` and `profiles`".to_owned();
    if let Some(close) = closest(name, ["version", "defaults", "profiles"]) {
        s = format!(
            "unknown key (did you mean `{close}`?); a configuration file has `version`, `defaults` and `profiles`"
        );
    }
    s
}

/// The message for a name that is refused for a reason other than being unknown.
fn special_problem(name: &str) -> Option<String> {
    if let Some((_, why)) = NOT_CONFIGURABLE.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        return Some(format!("not configurable in a file: {why}"));
    }
    looks_secret(name).then(|| secret_message(name))
}

fn read_settings(path: &str, v: &Yaml, p: &mut Problems) -> Settings {
    let mut out = Settings::new();
    let map = match v {
        Yaml::Null => return out,
        Yaml::Mapping(map) => map,
        other => {
            p.push(path, format!("expected a mapping of settings (`model: …`), found {}", yaml_type(other)));
            return out;
        }
    };
    for (k, value) in map {
        let Some(name) = k.as_str() else {
            p.push(path, format!("keys must be text, found {}", yaml_type(k)));
            continue;
        };
        let field = format!("{path}.{name}");
        match key(name) {
            Some(spec) => {
                if let Some(text) = read_value(&field, spec, value, p) {
                    out.insert(spec.name, text);
                }
            }
            None => p.push(field, unknown_key_problem(name)),
        }
    }
    out
}

fn unknown_key_problem(name: &str) -> String {
    if let Some(why) = special_problem(name) {
        return why;
    }
    if ["version", "defaults", "profiles"].contains(&name) {
        return format!("`{name}` belongs at the top level of the file, not inside a section");
    }
    match closest(name, KEYS.iter().map(|k| k.name)) {
        Some(close) => format!("unknown key (did you mean `{close}`?); docs/configuration.md lists every key"),
        None => "unknown key; docs/configuration.md lists every key".to_owned(),
    }
}

fn read_profiles(v: &Yaml, p: &mut Problems) -> BTreeMap<String, Settings> {
    let mut out = BTreeMap::new();
    let map = match v {
        Yaml::Null => return out,
        Yaml::Mapping(map) => map,
        other => {
            p.push("profiles", format!("expected a mapping of profile name → settings, found {}", yaml_type(other)));
            return out;
        }
    };
    for (k, body) in map {
        let Some(name) = k.as_str() else {
            p.push("profiles", format!("profile names must be text, found {}", yaml_type(k)));
            continue;
        };
        let field = format!("profiles.{name}");
        if !valid_profile_name(name) {
            p.push(field, format!("profile names are 1-{MAX_PROFILE_NAME_LEN} letters, digits, '-' or '_'"));
            continue;
        }
        let settings = read_settings(&field, body, p);
        out.insert(name.to_owned(), settings);
    }
    out
}

/// Whether `name` may name a profile: 1-64 ASCII letters, digits, `-` or `_`.
pub fn valid_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PROFILE_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks one value against its key's kind and renders it as the env var's text.
/// Booleans become `true`/`false`: every boolean RUNE reads accepts those, while clap's
/// plain `bool` flags (`--log-json`) reject `1`/`0`.
fn read_value(field: &str, spec: &Key, v: &Yaml, p: &mut Problems) -> Option<String> {
    if v.is_null() {
        p.push(field, "has no value; give one, or delete the line to fall back to the next layer");
        return None;
    }
    let bad = |p: &mut Problems, expected: String| {
        p.push(field, format!("expected {expected}, found {}", describe(v)));
        None
    };
    match spec.kind {
        Kind::Text | Kind::Url => {
            let text = match v {
                Yaml::String(s) => s.clone(),
                Yaml::Number(n) => n.to_string(),
                _ => return bad(p, "text".into()),
            };
            if text.trim().is_empty() {
                p.push(field, "is empty; delete the line to fall back to the next layer");
                return None;
            }
            if spec.kind == Kind::Url && url_has_password(&text) {
                let env = spec.env;
                p.push(
                    field,
                    format!(
                        "contains a password, and secrets are never read from configuration files; \
                         put the whole URL in {env} in the environment instead"
                    ),
                );
                return None;
            }
            Some(text)
        }
        Kind::Choice(choices) => match v.as_str() {
            Some(s) if choices.contains(&s) => Some(s.to_owned()),
            _ => {
                let mut expected = format!("one of {}", choices.join(", "));
                if let Some(close) = v.as_str().and_then(|s| closest(s, choices.iter().copied())) {
                    expected = format!("{expected} (did you mean `{close}`?)");
                }
                bad(p, expected)
            }
        },
        Kind::Bool => match v {
            Yaml::Bool(b) => Some(b.to_string()),
            _ => bad(p, "true or false".into()),
        },
        Kind::Integer { min, max } => match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Some(n.to_string()),
            _ => bad(p, format!("a whole number from {min} to {max}")),
        },
        Kind::Number { min, max } => match v {
            Yaml::Number(n) => match n.as_f64() {
                Some(x) if x.is_finite() && (min..=max).contains(&x) => {
                    Some(n.as_u64().map(|u| u.to_string()).unwrap_or_else(|| x.to_string()))
                }
                _ => bad(p, format!("a number from {min} to {max}")),
            },
            _ => bad(p, format!("a number from {min} to {max}")),
        },
        Kind::Ip => match v.as_str().map(|s| s.trim().parse::<std::net::IpAddr>()) {
            Some(Ok(ip)) => Some(ip.to_string()),
            _ => bad(p, "an IP address such as 127.0.0.1 or 0.0.0.0".into()),
        },
        Kind::List => {
            let items: Option<Vec<String>> = match v {
                Yaml::String(s) => Some(s.split(',').map(|i| i.trim().to_owned()).collect()),
                Yaml::Sequence(seq) => seq.iter().map(|i| i.as_str().map(|s| s.trim().to_owned())).collect(),
                _ => None,
            };
            match items {
                Some(items) if !items.is_empty() && items.iter().all(|i| !i.is_empty() && !i.contains(',')) => {
                    Some(items.join(","))
                }
                _ => bad(p, "a list of names (or one comma-separated string)".into()),
            }
        }
    }
}

/// `scheme://user:password@host…`: a URL carrying a password.
pub(crate) fn url_has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.rsplit_once('@').is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// What a value is, for messages: its type and, for short scalars, the value itself.
fn describe(v: &Yaml) -> String {
    match v {
        Yaml::Bool(_) | Yaml::Number(_) => format!("{} {}", yaml_type(v), show(v)),
        Yaml::String(s) if s.chars().count() <= 40 => format!("{} {}", yaml_type(v), show(v)),
        other => yaml_type(other).to_owned(),
    }
}

fn show(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => format!("{s:?}"),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        other => yaml_type(other).to_owned(),
    }
}

fn yaml_type(v: &Yaml) -> &'static str {
    match v {
        Yaml::Null => "nothing (null)",
        Yaml::Bool(_) => "the boolean",
        Yaml::Number(_) => "the number",
        Yaml::String(_) => "the text",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a mapping",
        Yaml::Tagged(_) => "a tagged value",
    }
}

/// The candidate closest to `input` when it is close enough to be a likely typo (at most
/// two edits, and at most half of the input's length).
fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let input = input.to_ascii_lowercase().replace('-', "_");
    candidates
        .into_iter()
        .map(|c| (edit_distance(&input, c), c))
        .filter(|(d, _)| *d <= 2 && d * 2 <= input.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and adjacent
/// transpositions each cost one (so `modle` is one edit from `model`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Which file a file-provided setting came from, and whether from its profile. Ordered
/// by precedence, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// `defaults:` of `$RUNE_HOME/config.yaml`.
    GlobalDefaults,
    /// `defaults:` of `./rune.yaml`.
    ProjectDefaults,
    /// The selected profile in `$RUNE_HOME/config.yaml`.
    GlobalProfile,
    /// The selected profile in `./rune.yaml`.
    ProjectProfile,
}

impl Origin {
    /// True for the project file (`./rune.yaml`).
    pub fn is_project(self) -> bool {
        matches!(self, Origin::ProjectDefaults | Origin::ProjectProfile)
    }

    /// True when the value came from the selected profile rather than `defaults:`.
    pub fn is_profile(self) -> bool {
        matches!(self, Origin::GlobalProfile | Origin::ProjectProfile)
    }
}

/// A value the files give for one key, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The text to export as the key's env var.
    pub value: String,
    /// The winning layer.
    pub origin: Origin,
}

/// The parsed files, global below project, plus what was searched (for messages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layers {
    /// `$RUNE_HOME/config.yaml` (or `.yml`), when it exists.
    pub global: Option<ConfigFile>,
    /// `./rune.yaml` (or `.yml`), when it exists.
    pub project: Option<ConfigFile>,
    /// Every path looked at, in precedence order, as the caller wants it shown
    /// (`/home/me/.rune/config.yaml (not found)`).
    pub searched: Vec<String>,
}

impl Layers {
    /// Every profile either file defines, sorted.
    pub fn profiles(&self) -> BTreeSet<&str> {
        self.files().flat_map(|f| f.profiles.keys().map(String::as_str)).collect()
    }

    fn files(&self) -> impl Iterator<Item = &ConfigFile> {
        self.global.iter().chain(self.project.iter())
    }

    /// Merges the layers key by key: global `defaults` < project `defaults` < global
    /// profile < project profile.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownProfile`] when `profile` is given and neither file defines
    /// it, naming the files searched and the profiles that exist.
    pub fn resolve(&self, profile: Option<&str>) -> Result<Resolved, ConfigError> {
        if let Some(name) = profile {
            if !self.profiles().contains(name) {
                return Err(ConfigError::UnknownProfile {
                    profile: name.to_owned(),
                    available: self.profiles().into_iter().map(str::to_owned).collect(),
                    searched: self.searched.clone(),
                });
            }
        }
        let mut settings = BTreeMap::new();
        let mut layer = |section: Option<&Settings>, origin: Origin| {
            for (k, v) in section.into_iter().flatten() {
                settings.insert(*k, Setting { value: v.clone(), origin });
            }
        };
        layer(self.global.as_ref().map(|f| &f.defaults), Origin::GlobalDefaults);
        layer(self.project.as_ref().map(|f| &f.defaults), Origin::ProjectDefaults);
        if let Some(name) = profile {
            layer(self.global.as_ref().and_then(|f| f.profiles.get(name)), Origin::GlobalProfile);
            layer(self.project.as_ref().and_then(|f| f.profiles.get(name)), Origin::ProjectProfile);
        }
        Ok(Resolved { profile: profile.map(str::to_owned), settings })
    }
}

/// The files' settings after merging, for one profile (or none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The selected profile.
    pub profile: Option<String>,
    /// Key name → winning value and layer.
    pub settings: BTreeMap<&'static str, Setting>,
}

impl Resolved {
    /// The value the files give `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(|s| s.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse("rune.yaml", yaml)
    }

    fn problems(yaml: &str) -> Vec<(String, String)> {
        match parse(yaml) {
            Ok(f) => panic!("expected problems, parsed {f:?}"),
            Err(e) => e.problems().iter().map(|p| (p.field.clone(), p.message.clone())).collect(),
        }
    }

    /// The key table is coherent: unique names and env vars, names that pass the file's
    /// own rules (not secret-looking, not special), and examples valid for their kind.
    #[test]
    fn key_table_is_coherent() {
        let names: BTreeSet<_> = KEYS.iter().map(|k| k.name).collect();
        let envs: BTreeSet<_> = KEYS.iter().map(|k| k.env).collect();
        assert_eq!(names.len(), KEYS.len());
        assert_eq!(envs.len(), KEYS.len());
        for k in KEYS {
            assert!(k.env.starts_with("RUNE_"), "{}", k.env);
            assert!(!looks_secret(k.name), "{} looks like a secret", k.name);
            assert!(special_problem(k.name).is_none(), "{}", k.name);
            let example = match k.kind {
                Kind::Text | Kind::Url | Kind::Choice(_) | Kind::Ip | Kind::List => format!("{:?}", k.example),
                _ => k.example.to_owned(),
            };
            let file = parse(&format!("defaults:\n  {}: {example}\n", k.name)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(file.defaults[k.name], k.example, "{}", k.name);
            assert_eq!(key_for_env(k.env).map(|x| x.name), Some(k.name));
        }
    }

    /// Empty, comment-only and section-only files are valid and set nothing.
    #[test]
    fn empty_files_are_valid() {
        for yaml in ["", "# nothing yet\n", "version: \"1\"\ndefaults:\nprofiles:\n", "version: 1\nprofiles:\n  ci:\n"]
        {
            let f = parse(yaml).unwrap_or_else(|e| panic!("{yaml:?}: {e}"));
            assert!(f.defaults.is_empty(), "{yaml:?}");
        }
        assert!(parse("profiles:\n  ci:\n").unwrap().profiles["ci"].is_empty());
    }

    /// Values of every kind are checked and rendered as the env var's text.
    #[test]
    fn values_are_rendered_for_the_environment() {
        let f = parse(
            "defaults:\n  insecure: true\n  scheduler: false\n  api_port: 9090\n  rate_limit_rps: 0.5\n  \
             job_timeout_seconds: 60\n  api_tenant: 42\n  api_host: '::1'\n  estop_tenants: [ops, sre]\n  \
             backend: http\n  model: llama3.1:8b\n",
        )
        .unwrap();
        let d = &f.defaults;
        assert_eq!(d["insecure"], "true");
        assert_eq!(d["scheduler"], "false");
        assert_eq!(d["api_port"], "9090");
        assert_eq!(d["rate_limit_rps"], "0.5");
        assert_eq!(d["job_timeout_seconds"], "60");
        assert_eq!(d["api_tenant"], "42");
        assert_eq!(d["api_host"], "::1");
        assert_eq!(d["estop_tenants"], "ops,sre");
        assert_eq!(d["backend"], "http");
        assert_eq!(d["model"], "llama3.1:8b");
        assert_eq!(parse("defaults: {estop_tenants: 'a, b'}").unwrap().defaults["estop_tenants"], "a,b");
    }

    /// Wrong types, out-of-range numbers, unknown choices, nulls and empty text are each
    /// reported with the key path and what was expected; all of them in one error.
    #[test]
    fn bad_values_are_all_reported() {
        let got = problems(
            "defaults:\n  insecure: yes\n  api_port: 70000\n  backend: grpc\n  backend_type: olama\n  \
             model:\n  kubeconfig: ''\n  rate_limit_burst: 0\n  api_host: localhost\n  \
             backend_warmup_timeout: 1.5\n  estop_tenants: {a: 1}\n  question: [a]\n",
        );
        let want = [
            ("defaults.insecure", "expected true or false, found the text \"yes\""),
            ("defaults.api_port", "expected a whole number from 0 to 65535, found the number 70000"),
            ("defaults.backend", "expected one of local, http, found the text \"grpc\""),
            ("defaults.backend_type", "did you mean `ollama`?"),
            ("defaults.model", "has no value"),
            ("defaults.kubeconfig", "is empty"),
            ("defaults.rate_limit_burst", "a number from 1 to 1000000000"),
            ("defaults.api_host", "an IP address"),
            ("defaults.backend_warmup_timeout", "a whole number"),
            ("defaults.estop_tenants", "a list of names"),
            ("defaults.question", "expected text, found a list"),
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for ((field, message), (want_field, want_message)) in got.iter().zip(want) {
            assert_eq!(field, want_field);
            assert!(message.contains(want_message), "{field}: {message}");
        }
    }

    /// Unknown keys are errors, with a suggestion when one is a likely typo; top-level
    /// settings and misplaced sections say where they belong.
    #[test]
    fn unknown_and_misplaced_keys() {
        let got = problems(
            "defaults:\n  modle: x\n  backend-url: http://h\n  frobnicate: 1\n  profiles: {}\n\
             profiles:\n  ci:\n    qestion: q\nmodel: x\ndefualts: {}\nattestation: {driver: tpm}\n",
        );
        let find = |f: &str| got.iter().find(|(field, _)| field == f).map(|(_, m)| m.as_str()).unwrap_or_default();
        assert!(find("defaults.modle").contains("did you mean `model`?"), "{got:?}");
        assert!(find("defaults.backend-url").contains("did you mean `backend_url`?"), "{got:?}");
        assert!(find("defaults.frobnicate").starts_with("unknown key; docs/configuration.md"), "{got:?}");
        assert!(find("defaults.profiles").contains("top level"), "{got:?}");
        assert!(find("profiles.ci.qestion").contains("did you mean `question`?"), "{got:?}");
        assert!(find("model").contains("put it under `defaults:`"), "{got:?}");
        assert!(find("defualts").contains("did you mean `defaults`?"), "{got:?}");
        assert!(find("attestation").contains("not supported"), "{got:?}");
        assert_eq!(got.len(), 8, "{got:#?}");
    }

    /// Secrets are refused wherever they appear, pointing at the env var, and the secret
    /// itself never appears in the message.
    #[test]
    fn secrets_are_refused_without_echo() {
        let yaml = "api_token: s3cr3t-top\ndefaults:\n  api_token: s3cr3t-a\n  vast_api_key: s3cr3t-b\n  \
                    db_password: s3cr3t-c\n  database_url: postgres://rune:s3cr3t-d@db/rune\n\
                    profiles:\n  prod:\n    openai_api_key: s3cr3t-e\n    SECRET: s3cr3t-f\n    \
                    api_base_url: https://u:s3cr3t-g@api.example.com/x\n";
        let err = parse(yaml).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("s3cr3t"), "{text}");
        let got: BTreeMap<_, _> = err.problems().iter().map(|p| (p.field.as_str(), p.message.as_str())).collect();
        assert_eq!(got.len(), 8, "{got:#?}");
        assert!(got["api_token"].contains("RUNE_API_TOKEN"));
        assert!(got["defaults.api_token"].contains("set RUNE_API_TOKEN in the environment"));
        assert!(got["defaults.vast_api_key"].contains("VAST_API_KEY"));
        assert!(got["defaults.db_password"].contains("RUNE_DATABASE_URL"));
        assert!(got["defaults.database_url"].contains("put the whole URL in RUNE_DATABASE_URL"));
        assert!(got["profiles.prod.openai_api_key"].contains("looks like a secret"));
        assert!(got["profiles.prod.SECRET"].contains("looks like a secret"));
        assert!(got["profiles.prod.api_base_url"].contains("RUNE_API_BASE_URL"));
        // A user name without a password, or an `@` in the path, is not a secret.
        let ok = parse("defaults:\n  database_url: postgres://rune@db/rune\n  backend_url: http://h/a@b:c\n");
        assert!(ok.is_ok(), "{ok:?}");
    }

    /// Keys that are not configurable say why and what to use instead.
    #[test]
    fn not_configurable_keys_explain() {
        let got = problems("defaults:\n  profile: ci\n  idempotency_key: k\n  rune_home: /x\n");
        assert!(got[0].1.contains("--profile NAME or RUNE_PROFILE"), "{got:?}");
        assert!(got[1].1.contains("RUNE_IDEMPOTENCY_KEY") && !got[1].1.contains("secret"), "{got:?}");
        assert!(got[2].1.contains("--rune-home"), "{got:?}");
    }

    /// The version is optional, but when present it must be 1.
    #[test]
    fn version_is_checked() {
        assert!(parse("version: 1\n").is_ok());
        assert!(parse("version: '1'\n").is_ok());
        let got = problems("version: \"2\"\n");
        assert_eq!(got[0].0, "version");
        assert!(got[0].1.contains("unsupported version \"2\""), "{got:?}");
    }

    /// Profile names are restricted and sections must be mappings.
    #[test]
    fn structure_is_checked() {
        let got = problems("profiles:\n  'bad name': {}\n  ok: [1]\n");
        assert_eq!(got[0].0, "profiles.bad name");
        assert_eq!(
            got[1],
            ("profiles.ok".to_owned(), "expected a mapping of settings (`model: …`), found a list".into())
        );
        assert!(problems("- a\n- b\n")[0].1.contains("expected a mapping"));
        assert!(problems("defaults: text\n")[0].1.contains("found the text"));
        assert!(problems("profiles: [ci]\n")[0].1.contains("profile name → settings"));
        assert!(problems("defaults:\n  1: x\n")[0].1.contains("keys must be text"));
        assert!(valid_profile_name("prod-eu_1") && !valid_profile_name("") && !valid_profile_name(&"a".repeat(65)));
    }

    /// Syntax errors and duplicate keys name the file and the line.
    #[test]
    fn syntax_errors_name_file_and_line() {
        let err = parse("defaults:\n  model: a\n   backend: http\n").unwrap_err();
        let ConfigError::Syntax { line, .. } = &err else { panic!("{err:?}") };
        assert_eq!(*line, Some(3));
        assert!(err.to_string().starts_with("rune.yaml:3:"), "{err}");
        assert!(!err.to_string().contains(" at line 3 column"), "location given once: {err}");

        let err = parse("defaults:\n  model: a\n  agent: b\n  model: c\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "rune.yaml:4: not valid YAML: duplicate key `defaults.model` (first on line 2); each key may appear once per mapping"
        );
        let err = parse("version: 1\n# c\nversion: 1\n").unwrap_err();
        assert!(
            err.to_string().starts_with("rune.yaml:3: not valid YAML: duplicate key `version` (first on line 1)"),
            "{err}"
        );
        let yaml = "profiles:\n  ci:\n    model: a\n  prod:\n    model: b\n    agent: c\n    model: d\n";
        let err = parse(yaml).unwrap_err();
        assert!(
            err.to_string().starts_with("rune.yaml:7: not valid YAML: duplicate key `profiles.prod.model`"),
            "{err}"
        );
        let err = parse("defaults: {model: [1}\n").unwrap_err();
        assert!(err.to_string().starts_with("rune.yaml:1:"), "{err}");
    }

    fn layers() -> Layers {
        let global = ConfigFile::parse(
            "/home/me/.rune/config.yaml",
            "defaults:\n  model: g-default\n  api_tenant: g-tenant\n  agent: g-agent\n\
             profiles:\n  ci:\n    model: g-ci\n    question: g-question\n    agent: g-ci-agent\n  global-only:\n    suite: g-suite\n",
        )
        .unwrap();
        let project = ConfigFile::parse(
            "rune.yaml",
            "defaults:\n  model: p-default\n  agent: p-agent\nprofiles:\n  ci:\n    model: p-ci\n  project-only:\n    suite: p-suite\n",
        )
        .unwrap();
        Layers {
            global: Some(global),
            project: Some(project),
            searched: vec!["/home/me/.rune/config.yaml".into(), "rune.yaml".into()],
        }
    }

    /// The four layers merge key by key in the documented order; a profile defined in
    /// both files is merged, and profiles defined in only one file are still found.
    #[test]
    fn merge_is_deep_and_ordered() {
        let l = layers();
        let plain = l.resolve(None).unwrap();
        assert_eq!(plain.settings["model"], Setting { value: "p-default".into(), origin: Origin::ProjectDefaults });
        assert_eq!(plain.settings["api_tenant"].origin, Origin::GlobalDefaults);
        assert_eq!(plain.get("question"), None);

        let ci = l.resolve(Some("ci")).unwrap();
        assert_eq!(ci.settings["model"], Setting { value: "p-ci".into(), origin: Origin::ProjectProfile });
        assert_eq!(ci.settings["question"], Setting { value: "g-question".into(), origin: Origin::GlobalProfile });
        // A global profile beats the project's defaults.
        assert_eq!(ci.settings["agent"], Setting { value: "g-ci-agent".into(), origin: Origin::GlobalProfile });
        assert_eq!(ci.settings["api_tenant"].origin, Origin::GlobalDefaults);
        assert_eq!(ci.profile.as_deref(), Some("ci"));

        assert_eq!(l.resolve(Some("global-only")).unwrap().get("suite"), Some("g-suite"));
        assert_eq!(l.resolve(Some("project-only")).unwrap().get("suite"), Some("p-suite"));
        assert_eq!(l.profiles().into_iter().collect::<Vec<_>>(), ["ci", "global-only", "project-only"]);
        assert!(Origin::ProjectProfile > Origin::GlobalProfile && Origin::GlobalProfile > Origin::ProjectDefaults);
    }

    /// An unknown profile names itself, the nearest profile, all profiles and the files.
    #[test]
    fn unknown_profile_is_explained() {
        let err = layers().resolve(Some("cj")).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("unknown profile `cj` (did you mean `ci`?)"), "{text}");
        assert!(text.contains("profiles defined: ci, global-only, project-only"), "{text}");
        assert!(text.contains("files searched: /home/me/.rune/config.yaml, rune.yaml"), "{text}");
        let none =
            Layers { searched: vec!["a (not found)".into()], ..Layers::default() }.resolve(Some("x")).unwrap_err();
        assert!(none.to_string().contains("no configuration file defines a profile; files searched: a (not found)"));
        assert_eq!(Layers::default().resolve(None).unwrap(), Resolved::default());
    }

    /// Suggestions only for likely typos.
    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("modle", "model"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(closest("modle", ["model", "agent"]), Some("model"));
        assert_eq!(closest("Backend-URL", ["backend_url"]), Some("backend_url"));
        assert_eq!(closest("zz", ["ci"]), None);
        assert_eq!(closest("completely", ["model"]), None);
    }
}
