//! `rune init` (writes a commented `./rune.yaml`) and `rune config` (the configuration in
//! effect: the profile, the files read, and each key's value, source and variable).
//!
//! Neither prints a secret: tokens appear only as "set"/"not set", and passwords in URLs
//! are masked. Loading and applying the files is `crate::config`'s job, not this module's.

use super::Environment;
use crate::cli::GlobalArgs;
use crate::config::{clap_defaults, declared_default, Report, PROJECT_FILES};
use crate::exit::{self, coded};
use crate::output::{print_json, print_table, OutputFormat};
use anyhow::{Context, Result};
use rune_core::config::{Group, Key, Kind, KEYS};
use serde_json::{json, Value};
use std::io::Write;

/// Secrets RUNE reads; they come from the environment only and are never shown.
const SECRETS: [&str; 2] = ["RUNE_API_TOKEN", "RUNE_API_TOKENS"];

/// `rune init [--force]`: writes the template to `./rune.yaml`; exit 4 when one exists
/// and `--force` is not given (or when a `./rune.yml` would then compete with it).
pub fn init(force: bool) -> Result<u8> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let path = cwd.join(PROJECT_FILES[0]);
    let other = cwd.join(PROJECT_FILES[1]);
    if other.is_file() {
        return Err(coded(
            exit::REFUSED,
            format!(
                "{} already exists and is this project's configuration; edit it, or remove it before `rune init`",
                other.display()
            ),
        ));
    }
    let text = template();
    let written = if force {
        std::fs::write(&path, &text)
    } else {
        // create_new: never overwrite, even if the file appears after a check.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
    };
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(coded(
                exit::REFUSED,
                format!("{} already exists; pass --force to overwrite it", path.display()),
            ))
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot write {}", path.display()))),
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "wrote {}; edit it, then `rune config` shows the settings in effect", path.display())?;
    Ok(exit::SUCCESS)
}

/// One key's effective value and where it came from.
struct Row {
    key: &'static Key,
    value: Option<String>,
    source: &'static str,
    /// `defaults` or `profiles.NAME`, for values from a file.
    section: Option<String>,
}

fn rows(report: &Report, env: &Environment) -> Vec<Row> {
    KEYS.iter()
        .map(|key| {
            let (value, source, section) = if let Some(v) = report.flags.get(key.env) {
                (Some(v.clone()), "flag", None)
            } else if report.preset.contains(key.env) {
                (std::env::var_os(key.env).map(|v| v.to_string_lossy().into_owned()), "env", None)
            } else if let Some(s) = report.files.get(key.name) {
                let section = match (&report.profile, s.origin.is_profile()) {
                    (Some(p), true) => format!("profiles.{p}"),
                    _ => "defaults".to_owned(),
                };
                (
                    Some(s.value.clone()),
                    if s.origin.is_project() { "project file" } else { "global file" },
                    Some(section),
                )
            } else {
                (default_text(key, env), "default", None)
            };
            let value = match key.kind {
                Kind::Url => value.map(|v| rune_store::url::mask_password(&v)),
                _ => value,
            };
            Row { key, value, source, section }
        })
        .collect()
}

/// The built-in default as shown to people: one value, one per command, or what the
/// code computes.
fn default_text(key: &Key, env: &Environment) -> Option<String> {
    if let Some(d) = declared_default(key) {
        return Some(d);
    }
    let per_command = clap_defaults(key);
    if !per_command.is_empty() {
        let parts: Vec<String> =
            per_command.iter().map(|(cmd, v)| format!("{v} ({})", cmd.trim_start_matches("rune "))).collect();
        return Some(parts.join("; "));
    }
    match key.env {
        // Nothing set it, so the environment holds the computed default.
        "RUNE_DATABASE_URL" => Some(env.database_url.clone()),
        "RUNE_LOG" => Some("warn (info for serve)".to_owned()),
        _ => None,
    }
}

/// `rune config [--output table|json]`.
pub fn show(report: &Report, global: &GlobalArgs, env: &Environment, output: OutputFormat) -> Result<u8> {
    let rows = rows(report, env);
    let secrets: Vec<(&str, bool)> = SECRETS
        .iter()
        .map(|name| {
            let set = match *name {
                "RUNE_API_TOKEN" => global.api_token.as_deref().is_some_and(|t| !t.is_empty()),
                other => std::env::var_os(other).is_some_and(|v| !v.is_empty()),
            };
            (*name, set)
        })
        .collect();
    let profile_source = report.profile.as_ref().map(|_| if report.profile_from_flag { "flag" } else { "env" });
    match output {
        OutputFormat::Json => {
            let settings: Vec<Value> = rows
                .iter()
                .map(|r| {
                    json!({"key": r.key.name, "value": r.value, "source": r.source, "section": r.section, "env": r.key.env})
                })
                .collect();
            let files: Vec<Value> = report
                .searched
                .iter()
                .map(|s| json!({"scope": s.scope, "path": s.path.display().to_string(), "found": s.found}))
                .collect();
            let secrets: Vec<Value> = secrets.iter().map(|(env, set)| json!({"env": env, "set": set})).collect();
            print_json(&json!({
                "profile": report.profile,
                "profile_source": profile_source,
                "profiles": report.profiles,
                "files": files,
                "settings": settings,
                "secrets": secrets,
            }))?;
        }
        OutputFormat::Table => {
            {
                let mut out = std::io::stdout().lock();
                match (&report.profile, profile_source) {
                    (Some(p), Some("flag")) => writeln!(out, "profile: {p} (from --profile)")?,
                    (Some(p), _) => writeln!(out, "profile: {p} (from RUNE_PROFILE)")?,
                    (None, _) => writeln!(out, "profile: none (choose one with --profile NAME or RUNE_PROFILE)")?,
                }
                if !report.profiles.is_empty() {
                    writeln!(out, "profiles defined: {}", report.profiles.join(", "))?;
                }
                writeln!(out, "files, lowest precedence first:")?;
                for s in &report.searched {
                    let scope = format!("{:?}", s.scope).to_lowercase();
                    let state = if s.found { "" } else { "  (not found)" };
                    writeln!(out, "  {scope:<8} {}{state}", s.path.display())?;
                }
                writeln!(out)?;
            }
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let source = match &r.section {
                        Some(section) => format!("{} ({section})", r.source),
                        None => r.source.to_owned(),
                    };
                    vec![r.key.name.to_owned(), r.value.clone().unwrap_or_else(|| "-".into()), source, r.key.env.into()]
                })
                .collect();
            print_table(&["KEY", "VALUE", "SOURCE", "ENV"], &table)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "\nsecrets (environment only, never shown):")?;
            for (env, set) in &secrets {
                writeln!(out, "  {env:<16} {}", if *set { "set" } else { "not set" })?;
            }
        }
    }
    Ok(exit::SUCCESS)
}

const HEADER: &str = "\
# RUNE configuration for this project, written by `rune init`.
# Reference: docs/configuration.md
#
# Precedence, highest first:
#   command-line flag > environment variable > this file (./rune.yaml)
#   > $RUNE_HOME/config.yaml (default ~/.rune/config.yaml) > built-in default.
# A profile (`rune --profile NAME ...` or RUNE_PROFILE=NAME) is merged over `defaults:`
# key by key, in both files. `rune config` shows every value in effect and its source.
#
# Secrets never go in this file: export RUNE_API_TOKEN (client) and RUNE_API_TOKENS
# (rune serve) instead, and keep passwords out of URLs here (a database URL with a
# password belongs in RUNE_DATABASE_URL). Keys that look like secrets are refused.
";

const PROFILES: &str = "
# Named sets of settings, used only when selected. A profile with the same name in
# ~/.rune/config.yaml is merged with this one key by key (this file wins).
profiles:
  # rune --profile local ...: a model server on this machine.
  local:
    backend: local
    backend_type: ollama
    backend_url: \"http://localhost:11434\"

  # rune --profile ci ...: CI against the simulated server (`rune sim-llm --port 11434`).
  ci:
    backend_url: \"http://127.0.0.1:11434\"
    backend_warmup: false
    log_json: true

  # rune --profile shared ...: jobs run on a RUNE API server (export RUNE_API_TOKEN).
  shared:
    backend: http
    api_base_url: \"https://rune.example.com\"
    api_tenant: team-a
";

/// The `rune init` template: every key, commented out with its default (or an example
/// when it has none), grouped by who reads it, then three example profiles. Generated
/// from the key table and clap's defaults, so it lists exactly what this build accepts.
pub fn template() -> String {
    let mut t = String::from(HEADER);
    t.push_str("version: \"1\"\n\n");
    t.push_str("# Used unless a profile or the environment says otherwise. Uncomment to change.\n");
    t.push_str("defaults:\n");
    for (i, group) in [Group::Client, Group::Run, Group::Server].into_iter().enumerate() {
        if i > 0 {
            t.push('\n');
        }
        t.push_str(&format!("  # --- {} ---\n", group.title()));
        for key in KEYS.iter().filter(|k| k.group == group) {
            let declared = declared_default(key);
            let note = match &declared {
                Some(d) => format!(" (default {d})"),
                None => {
                    let parts: Vec<String> = clap_defaults(key)
                        .iter()
                        .map(|(cmd, v)| format!("{v} for {}", cmd.trim_start_matches("rune ")))
                        .collect();
                    if parts.is_empty() {
                        String::new()
                    } else {
                        format!(" (default {})", parts.join(", "))
                    }
                }
            };
            t.push_str(&format!("  # {}: {}{note}\n", key.env, key.summary));
            let value = declared.unwrap_or_else(|| key.example.to_owned());
            t.push_str(&format!("  # {}: {}\n", key.name, yaml_scalar(key, &value)));
        }
    }
    t.push_str(PROFILES);
    t
}

/// `value` as YAML: numbers and booleans bare, text double-quoted (a JSON string is a
/// valid YAML double-quoted scalar).
fn yaml_scalar(key: &Key, value: &str) -> String {
    match key.kind {
        Kind::Bool | Kind::Integer { .. } | Kind::Number { .. } => value.to_owned(),
        _ => serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rune_core::config::ConfigFile;

    /// The template is a valid file as written (only the profiles are active), and
    /// uncommenting every key line gives a valid file that sets every key.
    #[test]
    fn template_is_valid_commented_and_uncommented() {
        let t = template();
        let file = ConfigFile::parse("rune.yaml", &t).unwrap_or_else(|e| panic!("{e}"));
        assert!(file.defaults.is_empty());
        assert_eq!(file.profiles.keys().collect::<Vec<_>>(), ["ci", "local", "shared"]);
        assert_eq!(file.profiles["ci"]["backend_warmup"], "false");

        let uncommented: String = t
            .lines()
            .map(|line| match line.strip_prefix("  # ") {
                Some(rest) if KEYS.iter().any(|k| rest.starts_with(&format!("{}: ", k.name))) => format!("  {rest}\n"),
                _ => format!("{line}\n"),
            })
            .collect();
        let all = ConfigFile::parse("rune.yaml", &uncommented).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        assert_eq!(all.defaults.len(), KEYS.len(), "{uncommented}");
        assert_eq!(all.defaults["model"], "llama3.1:8b");
        assert_eq!(all.defaults["backend_warmup_timeout"], "90");
        assert_eq!(all.defaults["max_concurrent_jobs"], "4");
    }

    /// Every key in the template says which variable it feeds.
    #[test]
    fn template_names_every_variable() {
        let t = template();
        for key in KEYS {
            assert!(t.contains(&format!("  # {}: ", key.env)), "{}", key.env);
        }
    }

    const DOCS: &str = include_str!("../../../../docs/configuration.md");

    /// docs/configuration.md lists every key with its variable, and every YAML example in
    /// it is a valid file.
    #[test]
    fn docs_cover_every_key_and_their_examples_parse() {
        for key in KEYS {
            assert!(
                DOCS.contains(&format!("| `{}` | `{}` |", key.name, key.env)),
                "{} missing from the docs",
                key.name
            );
        }
        let blocks: Vec<&str> =
            DOCS.split("```yaml\n").skip(1).map(|rest| rest.split("```").next().unwrap_or_default()).collect();
        assert!(blocks.len() >= 3, "{blocks:?}");
        for block in blocks {
            ConfigFile::parse("docs/configuration.md", block).unwrap_or_else(|e| panic!("{e}\n{block}"));
        }
    }
}
