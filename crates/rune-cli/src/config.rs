//! Configuration files on disk: finds `./rune.yaml` and `$RUNE_HOME/config.yaml`, parses
//! and merges them with [`rune_core::config`], and exports the result as environment
//! variables before the command line is parsed for real, so clap's `env = "…"` yields
//! flag > environment > project file > global file > default without any other code.
//!
//! `main` parses the command line once *before* any file is read, so `--help`,
//! `--version` and usage errors never depend on a file; that first parse also names the
//! profile (`--profile`/`RUNE_PROFILE`, read by clap itself, so `--` and quoting behave)
//! and the command. `rune init` reads no file: it may be replacing a broken one. For every
//! other command the files are loaded, each value is exported only where the variable is
//! not already in the environment (set-but-empty counts as set, as it does for clap), and
//! the command line is parsed again.
//!
//! This module must not read a file for `--help`/`--version`, overwrite a variable the
//! environment sets, or print a secret. The pure rules (schema, merge, secrets) live in
//! `rune_core::config`; this is only the I/O around them.

use crate::cli::{Cli, Command};
use crate::exit::{self, coded};
use anyhow::Result;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory};
use rune_core::config::{key_for_env, ConfigFile, Layers, Origin, Setting, KEYS};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Project file names, in the order looked for, in the current directory.
pub const PROJECT_FILES: [&str; 2] = ["rune.yaml", "rune.yml"];
/// Global file names, in the order looked for, in `$RUNE_HOME` (default `~/.rune`).
pub const GLOBAL_FILES: [&str; 2] = ["config.yaml", "config.yml"];

/// Which file a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `$RUNE_HOME/config.yaml`: the user's settings for every project.
    Global,
    /// `./rune.yaml`: this project's settings.
    Project,
}

/// One place a configuration file was looked for.
#[derive(Debug, Clone)]
pub struct Searched {
    /// Global or project.
    pub scope: Scope,
    /// The file read, or the `.yaml` name looked for when none exists.
    pub path: PathBuf,
    /// Whether it exists (and was read).
    pub found: bool,
}

impl Searched {
    fn describe(&self) -> String {
        if self.found {
            self.path.display().to_string()
        } else {
            format!("{} (not found, nor .yml)", self.path.display())
        }
    }
}

/// What configuration did for this run, for `rune config`.
#[derive(Debug, Default)]
pub struct Report {
    /// The profile in effect.
    pub profile: Option<String>,
    /// The profile was given as `--profile` (otherwise `RUNE_PROFILE`).
    pub profile_from_flag: bool,
    /// Every profile the files define.
    pub profiles: Vec<String>,
    /// Where files were looked for, lowest precedence first.
    pub searched: Vec<Searched>,
    /// Variables of configurable keys that the environment set before any file was read.
    pub preset: BTreeSet<&'static str>,
    /// Key name → what the files give it (exported unless the variable was preset).
    pub files: BTreeMap<&'static str, Setting>,
    /// Variable → raw value, for configurable keys given as a flag on this command line.
    pub flags: BTreeMap<&'static str, String>,
}

/// Loads the files for the command `first` was parsed into, exports their settings and
/// parses the command line again. `rune init` is returned untouched.
///
/// # Errors
///
/// Exit code 2 for a file that cannot be read, is not valid, holds a secret, or when the
/// profile asked for does not exist.
pub fn apply(first: Cli) -> Result<(Cli, Report)> {
    if matches!(first.command, Command::Init { .. }) {
        return Ok((first, Report::default()));
    }
    let cwd = std::env::current_dir().map_err(|e| {
        coded(exit::BAD_INPUT, format!("cannot read the current directory (where rune.yaml is looked for): {e}"))
    })?;
    let home = global_dir(first.global.rune_home.as_deref(), std::env::var_os("HOME"));
    let (layers, searched) = load(home.as_deref(), &cwd)?;
    let profile = first.global.profile.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let resolved = layers.resolve(profile).map_err(|e| coded(exit::BAD_INPUT, e.to_string()))?;
    check_with_clap(&layers, &resolved.settings, profile)?;

    let preset: BTreeSet<&'static str> =
        KEYS.iter().filter(|k| std::env::var_os(k.env).is_some()).map(|k| k.env).collect();
    for key in KEYS {
        if let (Some(setting), false) = (resolved.settings.get(key.name), preset.contains(key.env)) {
            // Safe to mutate the environment: no other thread exists yet (the async
            // runtime is built after this), and nothing has read these variables.
            std::env::set_var(key.env, &setting.value);
        }
    }
    let (cli, matches) = Cli::parse_with_matches();
    let report = Report {
        profile: resolved.profile.clone(),
        profile_from_flag: matches.value_source("profile") == Some(ValueSource::CommandLine),
        profiles: layers.profiles().into_iter().map(str::to_owned).collect(),
        searched,
        preset,
        files: resolved.settings,
        flags: flags_given(&matches),
    };
    Ok((cli, report))
}

/// `$RUNE_HOME` (flag or variable), else `~/.rune`; `None` when neither is known.
fn global_dir(rune_home: Option<&Path>, home: Option<std::ffi::OsString>) -> Option<PathBuf> {
    match rune_home.filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => Some(dir.to_owned()),
        None => home.filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".rune")),
    }
}

/// Reads and parses the global file in `global_dir` and the project file in `cwd`.
fn load(global_dir: Option<&Path>, cwd: &Path) -> Result<(Layers, Vec<Searched>)> {
    let mut searched = Vec::new();
    let mut layers = Layers::default();
    let places = [(Scope::Global, global_dir, GLOBAL_FILES), (Scope::Project, Some(cwd), PROJECT_FILES)];
    for (scope, dir, names) in places {
        let Some(dir) = dir else { continue };
        let found = find(dir, names)?;
        searched.push(Searched {
            scope,
            path: found.clone().unwrap_or_else(|| dir.join(names[0])),
            found: found.is_some(),
        });
        let Some(path) = found else { continue };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| coded(exit::BAD_INPUT, format!("cannot read {}: {e}", path.display())))?;
        let file =
            ConfigFile::parse(&path.display().to_string(), &text).map_err(|e| coded(exit::BAD_INPUT, e.to_string()))?;
        match scope {
            Scope::Global => layers.global = Some(file),
            Scope::Project => layers.project = Some(file),
        }
    }
    layers.searched = searched.iter().map(Searched::describe).collect();
    Ok((layers, searched))
}

/// The one file of `names` in `dir`; both existing is an error rather than a silent pick.
fn find(dir: &Path, names: [&str; 2]) -> Result<Option<PathBuf>> {
    let present: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).filter(|p| p.is_file()).collect();
    match present.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        [a, b, ..] => Err(coded(
            exit::BAD_INPUT,
            format!("both {} and {} exist; keep one of them (RUNE will not guess)", a.display(), b.display()),
        )),
    }
}

/// Every argument of the command tree, with its command's name path
/// (`rune run-benchmark`); global arguments once, at the top.
pub fn visit_args(f: &mut dyn FnMut(&str, &clap::Arg)) {
    fn walk(cmd: &clap::Command, path: &str, top: bool, f: &mut dyn FnMut(&str, &clap::Arg)) {
        for arg in cmd.get_arguments().filter(|a| top || !a.is_global_set()) {
            f(path, arg);
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), false, f);
        }
    }
    let mut cmd = Cli::command();
    cmd.build();
    walk(&cmd, "rune", true, f);
}

/// Runs each file value through the value parser of every argument reading its variable,
/// so a value clap would reject is reported with its file and key, not as a bad flag.
fn check_with_clap(layers: &Layers, settings: &BTreeMap<&'static str, Setting>, profile: Option<&str>) -> Result<()> {
    let mut problems = Vec::new();
    visit_args(&mut |_, arg| {
        let Some(key) = arg.get_env().and_then(|e| e.to_str()).and_then(key_for_env) else { return };
        let Some(setting) = settings.get(key.name) else { return };
        if let Err(reason) = clap_accepts(arg, &setting.value) {
            let file = match setting.origin {
                Origin::GlobalDefaults | Origin::GlobalProfile => layers.global.as_ref(),
                Origin::ProjectDefaults | Origin::ProjectProfile => layers.project.as_ref(),
            };
            let section = match (setting.origin.is_profile(), profile) {
                (true, Some(p)) => format!("profiles.{p}"),
                _ => "defaults".to_owned(),
            };
            let line = format!("{}: {section}.{}: {reason}", file.map(|f| f.name.as_str()).unwrap_or("?"), key.name);
            if !problems.contains(&line) {
                problems.push(line);
            }
        }
    });
    if problems.is_empty() {
        Ok(())
    } else {
        Err(coded(exit::BAD_INPUT, problems.join("\n")))
    }
}

/// Whether `arg`'s value parser accepts `value` (as it would from the environment). Clap
/// keeps `ValueParser::parse_ref` private, so the parser is run on a one-argument probe
/// command; the message is clap's first line without the probe's name.
pub fn clap_accepts(arg: &clap::Arg, value: &str) -> std::result::Result<(), String> {
    let probe = clap::Arg::new("value")
        .long("value")
        .action(clap::ArgAction::Set)
        .allow_hyphen_values(true)
        .value_parser(arg.get_value_parser().clone());
    let cmd = clap::Command::new("probe").no_binary_name(true).arg(probe);
    match cmd.try_get_matches_from([format!("--value={value}")]) {
        Ok(_) => Ok(()),
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
            Err(first.replace(" for '--value <value>'", ""))
        }
    }
}

/// Variable → raw value for every configurable key given as a flag on the command line.
fn flags_given(matches: &ArgMatches) -> BTreeMap<&'static str, String> {
    fn walk(cmd: &clap::Command, m: &ArgMatches, out: &mut BTreeMap<&'static str, String>) {
        for arg in cmd.get_arguments() {
            let Some(key) = arg.get_env().and_then(|e| e.to_str()).and_then(key_for_env) else { continue };
            if m.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine) {
                let raw = m.get_raw(arg.get_id().as_str()).and_then(|mut v| v.next());
                out.insert(key.env, raw.map(|v| v.to_string_lossy().into_owned()).unwrap_or_default());
            }
        }
        if let Some((name, sub_matches)) = m.subcommand() {
            if let Some(sub) = cmd.find_subcommand(name) {
                walk(sub, sub_matches, out);
            }
        }
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = BTreeMap::new();
    walk(&cmd, matches, &mut out);
    out
}

/// Defaults of the server's variables that no clap argument declares, taken from
/// `rune_api::ServerConfig` itself so they cannot drift.
pub fn server_defaults() -> BTreeMap<&'static str, String> {
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
    let Ok(c) = rune_api::ServerConfig::from_env(addr, false, |_| None) else { return BTreeMap::new() };
    let secs = |d: std::time::Duration| d.as_secs_f64().to_string();
    BTreeMap::from([
        ("RUNE_MAX_CONCURRENT_JOBS", c.max_concurrent_jobs.to_string()),
        ("RUNE_JOB_TIMEOUT_SECONDS", secs(c.job_timeout)),
        ("RUNE_JOB_LEASE_SECONDS", secs(c.lease)),
        ("RUNE_JOB_MAX_ATTEMPTS", c.max_attempts.to_string()),
        ("RUNE_RATE_LIMIT_RPS", c.rate_limit_rps.to_string()),
        ("RUNE_RATE_LIMIT_BURST", c.rate_limit_burst.to_string()),
        ("RUNE_AUTH_FAILURES_PER_MINUTE", c.auth_failures_per_minute.to_string()),
        ("RUNE_REQUEST_TIMEOUT_SECONDS", secs(c.request_timeout)),
        ("RUNE_SHUTDOWN_GRACE_SECONDS", secs(c.shutdown_grace)),
        ("RUNE_SCHEDULER", c.scheduler.to_string()),
        ("RUNE_SCHEDULER_TICK_SECONDS", secs(c.scheduler_tick)),
    ])
}

/// The built-in default of `key` when one value applies everywhere: the default of every
/// clap argument reading its variable (if they agree), else the server's.
pub fn declared_default(key: &rune_core::config::Key) -> Option<String> {
    let per_command = clap_defaults(key);
    let mut values: Vec<&String> = per_command.iter().map(|(_, v)| v).collect();
    values.sort();
    values.dedup();
    match values.as_slice() {
        [one] => Some((*one).clone()),
        [] => server_defaults().remove(key.env),
        _ => None,
    }
}

/// `(command, default)` for every clap argument reading `key`'s variable that has one.
pub fn clap_defaults(key: &rune_core::config::Key) -> Vec<(String, String)> {
    let mut out = Vec::new();
    visit_args(&mut |path, arg| {
        if arg.get_env().and_then(|e| e.to_str()) == Some(key.env) {
            let values: Vec<String> =
                arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
            if !values.is_empty() {
                out.push((path.to_owned(), values.join(",")));
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rune_core::config::Kind;

    /// Every key feeds something: a clap argument reads its variable, or the server does.
    /// The server's variables are the ones `rune_api::ServerConfig::from_env` reads.
    #[test]
    fn every_key_is_read_by_someone() {
        let mut by_clap = BTreeSet::new();
        visit_args(&mut |_, arg| {
            if let Some(env) = arg.get_env().and_then(|e| e.to_str()) {
                by_clap.insert(env.to_owned());
            }
        });
        let server = server_defaults();
        for key in KEYS {
            assert!(
                by_clap.contains(key.env)
                    || server.contains_key(key.env)
                    || ["RUNE_LOG", "RUNE_ESTOP_TENANTS"].contains(&key.env),
                "{} ({}) is read by nothing",
                key.name,
                key.env
            );
        }
    }

    /// What the files export (examples, and `true`/`false` for booleans) passes the value
    /// parser of every clap argument reading the variable, so a valid file never turns into
    /// a flag error.
    #[test]
    fn exported_values_pass_clap() {
        visit_args(&mut |path, arg| {
            let Some(key) = arg.get_env().and_then(|e| e.to_str()).and_then(key_for_env) else { return };
            let mut values = vec![key.example.to_owned()];
            if key.kind == Kind::Bool {
                values = vec!["true".into(), "false".into()];
            }
            for v in values {
                let parsed = clap_accepts(arg, &v);
                assert!(parsed.is_ok(), "{path} --{}: {v}: {parsed:?}", arg.get_id());
            }
            // ... and the probe really runs the argument's parser.
            if key.kind == Kind::Bool {
                assert!(clap_accepts(arg, "maybe").is_err(), "{path} --{}", arg.get_id());
            }
        });
    }

    /// Clap never *requires* an argument a file could supply: the first parse happens
    /// before files are read, so such an argument would fail there.
    #[test]
    fn no_required_argument_reads_a_configured_variable() {
        visit_args(&mut |path, arg| {
            let configured = arg.get_env().and_then(|e| e.to_str()).and_then(key_for_env).is_some();
            assert!(!(configured && arg.is_required_set()), "{path} --{} is required", arg.get_id());
        });
    }

    /// The numeric bounds of the server's keys are the server's own: both ends accepted,
    /// just outside refused.
    #[test]
    fn server_bounds_match_the_server() {
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
        let accepts = |env: &str, v: String| {
            rune_api::ServerConfig::from_env(addr, false, |k| (k == env).then(|| v.clone())).is_ok()
        };
        for key in KEYS {
            let (min, max, step) = match key.kind {
                Kind::Integer { min, max } => (min as f64, max as f64, 1.0),
                Kind::Number { min, max } => (min, max, min.abs().max(1.0) * 1e-3),
                _ => continue,
            };
            if !server_defaults().contains_key(key.env) {
                continue;
            }
            assert!(accepts(key.env, min.to_string()) && accepts(key.env, max.to_string()), "{}", key.env);
            assert!(!accepts(key.env, (min - step).to_string()), "{} below {min}", key.env);
            assert!(!accepts(key.env, (max + step.max(1.0)).to_string()), "{} above {max}", key.env);
        }
    }

    /// Files are found in their directories; both spellings at once is an error; the
    /// global directory is RUNE_HOME, else ~/.rune.
    #[test]
    fn finding_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(find(dir.path(), PROJECT_FILES).expect("none"), None);
        std::fs::write(dir.path().join("rune.yml"), "").expect("write");
        assert_eq!(find(dir.path(), PROJECT_FILES).expect("one"), Some(dir.path().join("rune.yml")));
        std::fs::write(dir.path().join("rune.yaml"), "").expect("write");
        let err = find(dir.path(), PROJECT_FILES).unwrap_err().to_string();
        assert!(err.contains("rune.yaml") && err.contains("rune.yml"), "{err}");

        assert_eq!(global_dir(Some(Path::new("/r")), Some("/h".into())), Some(PathBuf::from("/r")));
        assert_eq!(global_dir(Some(Path::new("")), Some("/h".into())), Some(PathBuf::from("/h/.rune")));
        assert_eq!(global_dir(None, None), None);
    }
}
