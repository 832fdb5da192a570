//! Command dispatch and the configuration every command shares (where the database is).

mod airgap;
pub(crate) mod bench_llm;
mod config;
mod db;
mod estop;
mod health;
mod image;
mod jobs;
pub(crate) mod operator;
mod remote;
mod run;
mod schedules;
mod serve;
mod sim;
mod ui;

use crate::cli::{Cli, Command, GlobalArgs};
use anyhow::{Context, Result};
use std::path::PathBuf;

/// Runs the parsed command; returns the exit code on success paths. `config` is what the
/// configuration files did (shown by `rune config`).
pub async fn run(cli: Cli, config: &crate::config::Report) -> Result<u8> {
    let env = Environment::from_args(&cli.global)?;
    match cli.command {
        Command::Db(cmd) => db::run(&env, cmd).await,
        Command::Serve(args) => serve::run(&env, args).await,
        Command::Ui(args) => ui::run(&cli.global, args).await,
        Command::RunBenchmark(args) => run::benchmark(&env, &cli.global, args).await,
        Command::RunAgenticAgent(args) => run::agentic(&env, &cli.global, args).await,
        Command::RunLlmInstance(args) => run::llm_instance(args).await,
        Command::OllamaListModels(args) => run::list_models(args).await,
        Command::VastaiListModels => run::vastai_models(),
        Command::Info => run::info(),
        Command::Suites(cmd) => run::suites(cmd),
        Command::SimLlm(args) => sim::run(args).await,
        Command::BenchLlm(args) => bench_llm::run(&env, &cli.global, args).await,
        Command::Compare(args) => bench_llm::compare_cmd(&env, &cli.global, args).await,
        Command::Jobs(cmd) => jobs::run(&env, &cli.global, cmd).await,
        Command::Schedules(cmd) => schedules::run(&cli.global, cmd).await,
        Command::Estop(args) => estop::run(&cli.global, args).await,
        Command::HealthCheck(args) => health::run(&cli.global, args, config).await,
        Command::Init { force } => config::init(force),
        Command::Config { output } => config::show(config, &cli.global, &env, output),
        Command::Image(cmd) => image::run(cmd),
        Command::Airgap(cmd) => airgap::run(cmd),
        Command::Operator(cmd) => operator::run(cmd).await,
    }
}

/// Resolved locations: RUNE's home, the database URL and the backup directory.
#[derive(Debug, Clone)]
pub struct Environment {
    /// `$RUNE_HOME` or `~/.rune`.
    pub home: PathBuf,
    /// The database URL (flag, env, or the default under `home`).
    pub database_url: String,
    /// Explicit backup directory, if configured.
    pub backup_dir: Option<PathBuf>,
}

impl Environment {
    fn from_args(args: &GlobalArgs) -> Result<Self> {
        let home = match &args.rune_home {
            Some(h) => h.clone(),
            None => std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".rune"))
                .context("neither RUNE_HOME nor HOME is set; set RUNE_HOME to a writable directory")?,
        };
        let database_url = args
            .database_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| format!("sqlite://{}", home.join("jobs.db").display()));
        Ok(Self { home, database_url, backup_dir: args.backup_dir.clone() })
    }

    /// Store options for this environment.
    pub fn open_options(&self, url: &rune_store::DatabaseUrl) -> rune_store::OpenOptions {
        let backup_dir = self.backup_dir.clone().or_else(|| match url {
            rune_store::DatabaseUrl::Postgres { .. } => Some(self.home.join("backups")),
            rune_store::DatabaseUrl::Sqlite { .. } => None,
        });
        rune_store::OpenOptions { backup_dir, ..Default::default() }
    }
}
