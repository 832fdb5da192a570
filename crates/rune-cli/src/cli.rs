//! The command line, as clap types. Only parsing and validation of flag shapes here; no
//! I/O (so `--help` always works).

use crate::output::OutputFormat;
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use rune_core::records::ConcurrencyPolicy;
use rune_core::{JobId, JobKind, JobStatus, Timestamp};
use std::path::PathBuf;

/// RUNE: benchmark AI models, inference endpoints and agents on reliability use cases.
#[derive(Debug, Parser)]
#[command(name = "rune", version, about = "RUNE: benchmark AI models, inference endpoints and agents on reliability use cases.", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses `std::env::args`, with a `--version` that also names the schema version
    /// this binary knows (what `rune db rollback --to` needs after a downgrade).
    pub fn parse_with_version() -> Self {
        Self::parse_with_matches().0
    }

    /// [`Cli::parse_with_version`], also returning clap's matches (which say whether each
    /// value came from a flag, the environment or a default). Exits on `--help`,
    /// `--version` and usage errors.
    pub fn parse_with_matches() -> (Self, clap::ArgMatches) {
        use clap::{CommandFactory, FromArgMatches};
        let version =
            format!("{} (schema version {})", env!("CARGO_PKG_VERSION"), rune_store::migrations::latest_version());
        // `--version` also says which commit and when (build.rs; SOURCE_DATE_EPOCH-aware).
        let long_version = format!("{version}\n{}", build_info());
        let matches = Self::command().version(version).long_version(long_version).get_matches();
        let cli = Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        (cli, matches)
    }
}

/// The git commit and build date stamped by build.rs, as the lines `--version` prints.
pub fn build_info() -> String {
    let epoch: u64 = env!("RUNE_BUILD_EPOCH").parse().unwrap_or(0);
    format!("commit: {}\nbuilt: {}", env!("RUNE_GIT_COMMIT"), rune_package::rfc3339(epoch))
}

/// Flags every command accepts.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Job database: sqlite:///path/jobs.db or postgres://user@host:5432/db.
    /// Default: sqlite://$RUNE_HOME/jobs.db.
    #[arg(long, global = true, env = "RUNE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// RUNE's home directory (default ~/.rune).
    #[arg(long, global = true, env = "RUNE_HOME")]
    pub rune_home: Option<PathBuf>,
    /// Where automatic pre-migration backups go (default: backups/ beside an SQLite
    /// database, $RUNE_HOME/backups for PostgreSQL).
    #[arg(long, global = true, env = "RUNE_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Log as JSON lines on stderr.
    #[arg(long, global = true, env = "RUNE_LOG_JSON")]
    pub log_json: bool,
    /// Where `jobs` commands run: `local` reads the job database directly, `http` talks
    /// to a RUNE API server (`rune serve`). `schedules` and `estop` need `http`.
    #[arg(long, global = true, env = "RUNE_BACKEND", value_enum, default_value_t)]
    pub backend: BackendKind,
    /// Base URL of the RUNE API (with --backend http).
    #[arg(long, global = true, env = "RUNE_API_BASE_URL", default_value = DEFAULT_API_BASE_URL)]
    pub api_base_url: String,
    /// API token, sent as `Authorization: Bearer` (with --backend http). Never printed.
    #[arg(long, global = true, env = "RUNE_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Tenant, sent as `X-Tenant-ID` (with --backend http); the token must belong to it.
    #[arg(long, global = true, env = "RUNE_API_TENANT", default_value = "default")]
    pub api_tenant: String,
    /// Skip TLS certificate verification of the API (self-signed test servers only).
    #[arg(long, global = true, env = "RUNE_INSECURE", value_parser = clap::builder::BoolishValueParser::new())]
    pub insecure: bool,
    /// Configuration profile from ./rune.yaml or $RUNE_HOME/config.yaml (see `rune config`).
    #[arg(long, global = true, env = "RUNE_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
}

/// The API base URL when none is configured (the original's default).
pub const DEFAULT_API_BASE_URL: &str = "http://localhost:8080";

/// `--backend`: where job commands run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum BackendKind {
    /// The job database on this machine (`--database-url` / `$RUNE_HOME/jobs.db`).
    #[default]
    Local,
    /// A RUNE API server (`--api-base-url`).
    Http,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server (with the job workers and the scheduler) on the job database.
    Serve(ServeArgs),
    /// Serve the web UI alone, talking to a RUNE API at --api-base-url (`rune serve`
    /// already embeds it at `/`).
    Ui(UiArgs),
    /// Benchmark an agent and model on a suite (or one question): score, latency, tokens,
    /// cost. Exit 0 pass, 1 error, 3 below --threshold.
    RunBenchmark(RunBenchmarkArgs),
    /// Ask one agent one question against an existing model server.
    RunAgenticAgent(RunAgenticArgs),
    /// Check an existing model server (Vast.ai provisioning is not in this build).
    RunLlmInstance(BackendArgs),
    /// Models an Ollama (or OpenAI-compatible) server has and is running.
    OllamaListModels(BackendArgs),
    /// Models RUNE can place on a rented Vast.ai GPU.
    VastaiListModels,
    /// Version, schema version, agents, built-in suites.
    Info,
    /// List, show and validate benchmark suites.
    #[command(subcommand)]
    Suites(SuitesCommand),
    /// Run a SIMULATED OpenAI- and Ollama-compatible LLM server (exact TTFT/ITL,
    /// scripted answers, injected faults) for tests, calibration and demos.
    SimLlm(rune_sim::SimArgs),
    /// Inference load test (job kind `llm-load`): TTFT, ITL, TPOT, E2E, throughput and
    /// goodput at a fixed concurrency, a target rate or a sweep; `import` converts
    /// GuideLLM/vLLM results. Exit 0 done, 1 nothing succeeded, 2 bad input.
    BenchLlm(crate::commands::bench_llm::BenchLlmArgs),
    /// Compare two llm-load results (job ids or JSON files) metric by metric. Exit 0 no
    /// regression, 3 a metric regressed beyond its tolerance.
    Compare(crate::commands::bench_llm::CompareArgs),
    /// Inspect, migrate, roll back, back up, verify and restore the job database.
    #[command(subcommand)]
    Db(DbCommand),
    /// List, inspect, cancel and watch jobs (in the local database, or through the API
    /// with --backend http).
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Manage cron schedules of the API server (needs --backend http).
    #[command(subcommand)]
    Schedules(SchedulesCommand),
    /// Engage, release or inspect the emergency stop: through the API (--backend http) or,
    /// with --kubernetes, the operator's `rune-estop` ConfigMap.
    Estop(EstopArgs),
    /// Check a RUNE installation after a deploy, upgrade or rollback: pods, restarts,
    /// rollouts, /healthz and /readyz, schema version, job history against a backup
    /// manifest, schedules resumed, operator ready and leading. Exit 0 all passed, 1 a
    /// check failed, 2 the cluster or API could not be reached (or bad input).
    HealthCheck(HealthCheckArgs),
    /// Write a commented ./rune.yaml template (refuses to overwrite one without --force).
    Init {
        /// Overwrite an existing ./rune.yaml.
        #[arg(long)]
        force: bool,
    },
    /// Show the active profile, the configuration files read, and each setting's value,
    /// source (flag, env, project file, global file, default) and variable. Secrets are
    /// shown only as set or not set.
    Config {
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Build OCI images of `rune` (multi-arch, non-root, reproducible) without a
    /// container daemon.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Build, sign and verify the reproducible air-gapped bundle (images, charts, CRDs,
    /// scripts, SBOM). Exit 3 when verification fails.
    #[command(subcommand)]
    Airgap(AirgapCommand),
    /// The Kubernetes operator for RuneBenchmark (bench.rune.ai/v1alpha1): `run` it, or
    /// print its CRD and RBAC generated from its code.
    #[command(subcommand)]
    Operator(crate::commands::operator::OperatorCommand),
}

/// Where the model is served.
#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// Base URL of the model server (e.g. http://localhost:11434).
    #[arg(long, env = "RUNE_BACKEND_URL")]
    pub backend_url: Option<String>,
    /// Protocol of the model server.
    #[arg(long, env = "RUNE_BACKEND_TYPE", default_value = "ollama", value_parser = ["ollama", "openai"])]
    pub backend_type: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: crate::output::ReportFormat,
}

/// `rune run-benchmark`.
#[derive(Debug, Clone, Args)]
pub struct RunBenchmarkArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Model name as the backend knows it.
    #[arg(long, short = 'm', env = "RUNE_MODEL", default_value = "llama3.1:8b")]
    pub model: String,
    /// Suite: a built-in name (`rune info` lists them) or a suite YAML file. Without it,
    /// the single --question is asked.
    #[arg(long, env = "RUNE_SUITE")]
    pub suite: Option<String>,
    /// Question asked when no suite is given.
    #[arg(long, short = 'q', env = "RUNE_QUESTION", default_value = "What is unhealthy in this Kubernetes cluster?")]
    pub question: String,
    /// Agent: llm, holmes, k8sgpt, stdio, http.
    #[arg(long, env = "RUNE_AGENT", default_value = "llm")]
    pub agent: String,
    /// Runs of each case.
    #[arg(long, default_value_t = 1)]
    pub repetitions: u64,
    /// Pass mark for the mean score (0..1): below it, exit code 3.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Load the model before measuring (Ollama).
    #[arg(long = "no-backend-warmup", env = "RUNE_NO_BACKEND_WARMUP", action = clap::ArgAction::SetFalse)]
    pub backend_warmup: bool,
    /// Seconds allowed for the warm-up.
    #[arg(long, env = "RUNE_BACKEND_WARMUP_TIMEOUT", default_value_t = 90)]
    pub backend_warmup_timeout: u64,
    /// Kubeconfig for agents that inspect a live cluster.
    #[arg(long, env = "RUNE_KUBECONFIG")]
    pub kubeconfig: Option<String>,
    /// Idempotency key (with --backend http: a retried submit returns the same job).
    #[arg(long, env = "RUNE_IDEMPOTENCY_KEY")]
    pub idempotency_key: Option<String>,
    /// Also grade answers with this model (same backend) against each case's rubric: an
    /// LLM judge. Rubric-only cases are unscored without it.
    #[arg(long, env = "RUNE_JUDGE_MODEL")]
    pub judge_model: Option<String>,
    /// Rent the model server on Vast.ai (needs VAST_API_KEY); it is torn down afterwards.
    #[arg(long, env = "RUNE_VASTAI")]
    pub vastai: bool,
    /// Vast.ai template to start.
    #[arg(long, env = "RUNE_VASTAI_TEMPLATE", default_value = rune_core::contracts::DEFAULT_TEMPLATE_HASH)]
    pub vastai_template: String,
    /// Lowest price accepted, $/hour.
    #[arg(long, env = "RUNE_VASTAI_MIN_DPH", default_value_t = 2.3)]
    pub vastai_min_dph: f64,
    /// Highest price accepted, $/hour.
    #[arg(long, env = "RUNE_VASTAI_MAX_DPH", default_value_t = 3.0)]
    pub vastai_max_dph: f64,
    /// Minimum host reliability, 0..1.
    #[arg(long, env = "RUNE_VASTAI_RELIABILITY", default_value_t = 0.99)]
    pub vastai_reliability: f64,
    /// Keep the rented instance after the run (default: destroy it).
    #[arg(long = "keep-vastai-instance")]
    pub keep_vastai_instance: bool,
    /// Accept the pre-flight spend check without asking (in CI, required to rent).
    #[arg(long, short = 'y', env = "RUNE_YES")]
    pub yes: bool,
}

/// `rune run-agentic-agent`.
#[derive(Debug, Clone, Args)]
pub struct RunAgenticArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// The question.
    #[arg(long, short = 'q', env = "RUNE_QUESTION", default_value = "What is unhealthy in this Kubernetes cluster?")]
    pub question: String,
    /// Model name.
    #[arg(long, short = 'm', env = "RUNE_MODEL", default_value = "llama3.1:8b")]
    pub model: String,
    /// Agent: llm, holmes, k8sgpt, stdio, http.
    #[arg(long, env = "RUNE_AGENT", default_value = "holmes")]
    pub agent: String,
    /// Load the model before asking (Ollama).
    #[arg(long = "no-backend-warmup", env = "RUNE_NO_BACKEND_WARMUP", action = clap::ArgAction::SetFalse)]
    pub backend_warmup: bool,
    /// Seconds allowed for the warm-up.
    #[arg(long, env = "RUNE_BACKEND_WARMUP_TIMEOUT", default_value_t = 90)]
    pub backend_warmup_timeout: u64,
    /// Kubeconfig for the agent.
    #[arg(long, env = "RUNE_KUBECONFIG")]
    pub kubeconfig: Option<String>,
}

/// `rune suites …`.
#[derive(Debug, Subcommand)]
pub enum SuitesCommand {
    /// Built-in suites with their case counts.
    List {
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// One suite's cases (a built-in name or a YAML file).
    Show {
        /// Built-in name or path.
        suite: String,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Check a suite file: every problem is listed with its path (exit 2 if any).
    Validate {
        /// Suite YAML file (or a built-in name).
        suite: String,
    },
}

/// `rune serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (use 0.0.0.0 in containers).
    #[arg(long, env = "RUNE_API_HOST", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Port to listen on.
    #[arg(long, env = "RUNE_API_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Serve without authentication on a non-loopback address (only when something in
    /// front of RUNE authenticates).
    #[arg(long, env = "RUNE_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
    /// Do not serve the web UI at `/` (API only).
    #[arg(long, env = "RUNE_NO_UI")]
    pub no_ui: bool,
    /// Mark the UI's session cookie `Secure` (the server is reached over HTTPS).
    #[arg(long, env = "RUNE_UI_SECURE_COOKIES")]
    pub secure_cookies: bool,
}

/// `rune ui`: the web UI as its own server (the `rune-ui` chart).
#[derive(Debug, Args)]
pub struct UiArgs {
    /// Address to listen on (use 0.0.0.0 in containers).
    #[arg(long, env = "RUNE_UI_HOST", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Port to listen on.
    #[arg(long, env = "RUNE_UI_PORT", default_value_t = 8081)]
    pub port: u16,
    /// Mark the session cookie `Secure` (browsers reach the UI over HTTPS).
    #[arg(long, env = "RUNE_UI_SECURE_COOKIES")]
    pub secure_cookies: bool,
}

/// `rune db …`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Schema version, pending migrations and row counts.
    Status {
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Apply pending migrations (an automatic, verified backup is taken first).
    Migrate {
        /// Stop at this schema version (default: the newest this binary knows).
        #[arg(long)]
        to: Option<i64>,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Roll the schema back to version N using the down SQL stored in the database
    /// (works for versions newer than this binary). Takes a backup first.
    Rollback {
        /// Target schema version.
        #[arg(long)]
        to: i64,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Online, consistent backup plus PATH.manifest.json.
    Backup {
        /// Backup file (default: $RUNE_HOME/backups/jobs-<time>.db, or .jsonl for PostgreSQL).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check integrity; with --against, prove every job in a manifest is present and
    /// unchanged (exit 3 listing what is missing or changed).
    Verify {
        /// Manifest written by `rune db backup` (PATH.manifest.json).
        #[arg(long)]
        against: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Verify a backup, then atomically replace the database with it (refuses while a
    /// server or CLI has the database open; keeps the replaced file aside).
    Restore {
        /// Backup file written by `rune db backup`.
        path: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Write an engine-neutral archive (JSON Lines) of every table.
    Export {
        /// Archive file.
        #[arg(long)]
        output: PathBuf,
    },
    /// Load an archive written by `rune db export` (rows already present are skipped).
    Import {
        /// Archive file.
        file: PathBuf,
    },
    /// Test aid (hidden): creates COUNT jobs one at a time, printing each id only after
    /// its commit, so crash tests know exactly which jobs were acknowledged.
    #[command(hide = true)]
    WriteTestJobs {
        /// Jobs to create.
        #[arg(long, default_value_t = 1000)]
        count: u64,
    },
    /// Copy everything from an SQLite database into PostgreSQL (re-runnable).
    MigrateToPostgres {
        /// Source (default: the configured database).
        #[arg(long)]
        source: Option<String>,
        /// Target PostgreSQL URL.
        #[arg(long)]
        target: String,
        /// Only count what would be copied.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
}

/// `rune jobs …`.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Jobs, newest first (50 unless --limit or --all).
    List(JobsListArgs),
    /// One job: status, times, request, result or error.
    Get {
        /// Job id.
        id: JobId,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Cancel a queued or running job (a finished job is left as it is and its status
    /// is reported).
    Cancel {
        /// Job id.
        id: JobId,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Follow a job's events until it finishes; exit 0 if it succeeded, 1 if it failed
    /// or was cancelled.
    Watch {
        /// Job id.
        id: JobId,
        /// `json`: one JSON object per line (the last has `"event": "end"`).
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
}

/// `rune jobs list` (raw flags; see `commands::jobs::ListRequest`).
#[derive(Debug, Args)]
pub struct JobsListArgs {
    /// Only this kind (benchmark, agentic-agent, llm-instance, cost-estimate, llm-load, suite).
    #[arg(long)]
    pub kind: Option<JobKind>,
    /// Only this status (queued, running, succeeded, failed, cancelled).
    #[arg(long)]
    pub status: Option<JobStatus>,
    /// Created at or after (RFC 3339, a date, or epoch seconds).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<Timestamp>,
    /// Created before (RFC 3339, a date, or epoch seconds).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<Timestamp>,
    /// Show at most N jobs (default 50).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "all")]
    pub limit: Option<u32>,
    /// Show every matching job (follows pages to the end).
    #[arg(long)]
    pub all: bool,
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse(s).map_err(|e| e.to_string())
}

/// `rune schedules …`.
#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// Every schedule of the tenant.
    List {
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Create a schedule that submits a job of KIND with REQUEST on each cron fire.
    Create(ScheduleCreateArgs),
    /// One schedule.
    Get {
        /// Schedule id.
        #[arg(value_parser = parse_schedule_id)]
        id: String,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Stop a schedule from firing (jobs it started keep running).
    Suspend {
        /// Schedule id.
        #[arg(value_parser = parse_schedule_id)]
        id: String,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Let a suspended schedule fire again (from now on; missed fires are not caught up).
    Resume {
        /// Schedule id.
        #[arg(value_parser = parse_schedule_id)]
        id: String,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Delete a schedule (jobs it started are kept).
    Delete {
        /// Schedule id.
        #[arg(value_parser = parse_schedule_id)]
        id: String,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
}

/// `rune schedules create` (raw flags).
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("body").required(true).args(["request", "request_file"])))]
pub struct ScheduleCreateArgs {
    /// Unique name within the tenant.
    #[arg(long)]
    pub name: String,
    /// Cron expression: 5 fields (minute hour day-of-month month day-of-week), a macro
    /// such as @hourly, optionally prefixed by TZ=Zone.
    #[arg(long, value_parser = parse_cron)]
    pub cron: String,
    /// Kind of job submitted on each fire.
    #[arg(long)]
    pub kind: JobKind,
    /// The job request as JSON (validated like a submission of KIND).
    #[arg(long)]
    pub request: Option<String>,
    /// File holding the job request as JSON (`-` reads standard input).
    #[arg(long)]
    pub request_file: Option<PathBuf>,
    /// Create it suspended.
    #[arg(long)]
    pub suspended: bool,
    /// What to do when a fire comes while the previous run still runs.
    #[arg(long, value_parser = parse_policy, default_value = "Forbid")]
    pub concurrency_policy: ConcurrencyPolicy,
    /// Skip a fire that could not start within this many seconds of its time.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub starting_deadline_seconds: Option<u64>,
    /// Succeeded runs kept in the schedule's history (server default 3).
    #[arg(long)]
    pub successful_runs_history_limit: Option<u32>,
    /// Failed runs kept in the schedule's history (server default 1).
    #[arg(long)]
    pub failed_runs_history_limit: Option<u32>,
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

fn parse_cron(s: &str) -> Result<String, String> {
    rune_core::cron::CronSchedule::parse(s).map(|_| s.trim().to_owned()).map_err(|e| e.to_string())
}

fn parse_policy(s: &str) -> Result<ConcurrencyPolicy, String> {
    [ConcurrencyPolicy::Forbid, ConcurrencyPolicy::Allow, ConcurrencyPolicy::Replace]
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| format!("unknown concurrency policy `{s}`; expected Forbid, Allow or Replace"))
}

/// Schedule ids are generated by the server (UUIDs); anything else cannot name one and
/// must not be pasted into a URL path.
fn parse_schedule_id(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!("`{s}` is not a schedule id (ids look like 0b9c…-…; `rune schedules list` shows them)"))
    }
}

/// `rune estop …`.
#[derive(Debug, Args)]
pub struct EstopArgs {
    /// Act on the Kubernetes ConfigMap the RUNE operator watches (kubeconfig or
    /// in-cluster), instead of the API server.
    #[arg(long, global = true)]
    pub kubernetes: bool,
    /// Namespace of the E-Stop ConfigMap (the operator's namespace).
    #[arg(long, global = true, requires = "kubernetes", default_value = "rune-system")]
    pub namespace: String,
    /// Name of the E-Stop ConfigMap (the operator chart's `estop.configMapName`).
    #[arg(long, global = true, requires = "kubernetes", default_value = "rune-estop")]
    pub configmap: String,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, global = true, requires = "kubernetes")]
    pub kubeconfig: Option<PathBuf>,
    #[command(subcommand)]
    pub command: EstopCommand,
}

/// `rune estop trigger|release|status`.
#[derive(Debug, Subcommand)]
pub enum EstopCommand {
    /// Engage: refuse new jobs, cancel queued and running ones, suspend every schedule.
    Trigger {
        /// Why (shown in status, logs and the UI banner).
        #[arg(long)]
        reason: Option<String>,
        /// Who (default: the tenant).
        #[arg(long)]
        actor: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Release: accept jobs again and resume the schedules the E-Stop suspended.
    Release {
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Whether the E-Stop is engaged, by whom, why, and what it stopped.
    Status {
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
}

/// `rune image …`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Write an OCI image layout (directory, or an oci-archive tar when --output ends in
    /// .tar) holding the static `rune` binary per platform, run as user 65532.
    Build(ImageBuildArgs),
}

/// What goes into an image (shared by `image build` and `airgap bundle`).
#[derive(Debug, Clone, Args)]
pub struct ImageSourceArgs {
    /// Platforms of the multi-arch index (default: those given with --binary).
    #[arg(long, value_name = "LIST")]
    pub platform: Option<String>,
    /// Static binary for a platform, as PLATFORM=PATH (repeat per platform), e.g.
    /// linux/amd64=target/static/x86_64-unknown-linux-musl/release/rune.
    #[arg(long = "binary", value_name = "PLATFORM=PATH", required = true)]
    pub binaries: Vec<String>,
    /// Image repository (kept as the path when loading into a registry).
    #[arg(long, default_value = "ghcr.io/rune-bench/rune")]
    pub repository: String,
    /// Git commit for the org.opencontainers.image.revision label (default: this build's).
    #[arg(long)]
    pub revision: Option<String>,
    /// Unix seconds used for every timestamp (default: this build's date).
    #[arg(long, env = "SOURCE_DATE_EPOCH")]
    pub source_date_epoch: Option<u64>,
}

/// `rune image build`.
#[derive(Debug, Args)]
pub struct ImageBuildArgs {
    /// Output: a directory (OCI layout) or FILE.tar (oci-archive).
    #[arg(long)]
    pub output: PathBuf,
    /// Image tag (default: this binary's version).
    #[arg(long)]
    pub tag: Option<String>,
    #[command(flatten)]
    pub source: ImageSourceArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rune airgap …`.
#[derive(Debug, Subcommand)]
pub enum AirgapCommand {
    /// Write rune-bundle-VERSION.tar.gz: byte-for-byte reproducible from the same inputs.
    Bundle(Box<AirgapBundleArgs>),
    /// Create an ed25519 key pair for signing bundles (PREFIX.key mode 0600, PREFIX.pub).
    Keygen {
        /// Path prefix of the two files.
        #[arg(long, default_value = "rune-bundle")]
        output: PathBuf,
    },
    /// Check a bundle: checksums of every file, nothing unlisted, and the signature when
    /// --public-key is given (then required). Exit 0 valid, 3 verification failed.
    Verify {
        /// The bundle (.tar.gz).
        #[arg(long)]
        bundle: PathBuf,
        /// Public key (PEM) from `rune airgap keygen`.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `rune airgap bundle`.
#[derive(Debug, Args)]
pub struct AirgapBundleArgs {
    /// Release version: the image tag and the bundle's name (default: this binary's).
    #[arg(long)]
    pub version: Option<String>,
    /// Output file (default: rune-bundle-VERSION.tar.gz).
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub source: ImageSourceArgs,
    /// Directory of Helm charts (each subdirectory with a Chart.yaml is packaged).
    #[arg(long, default_value = "deploy/helm")]
    pub charts_dir: PathBuf,
    /// Directory of CRD YAML files (default: deploy/helm/rune-operator/crds, if present).
    #[arg(long)]
    pub crds_dir: Option<PathBuf>,
    /// Directory of the airgap scripts.
    #[arg(long, default_value = "deploy/airgap")]
    pub scripts_dir: PathBuf,
    /// Cargo.lock the SBOM is made from.
    #[arg(long, default_value = "Cargo.lock")]
    pub cargo_lock: PathBuf,
    /// Sign SHA256SUMS with this ed25519 private key (from `rune airgap keygen`).
    #[arg(long)]
    pub sign_key: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rune health-check` (raw flags; see `commands::health`).
#[derive(Debug, Args)]
pub struct HealthCheckArgs {
    /// Namespace of the `rune` release (API pods): turns on the Kubernetes checks.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Namespace of the operator (default rune-system when --namespace is given; a
    /// missing operator then is a SKIP, while a named namespace without it is a FAIL).
    #[arg(long)]
    pub operator_namespace: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Name of the API Service, for /healthz and /readyz through the Kubernetes service
    /// proxy when --api-base-url is not given.
    #[arg(long, default_value = "rune-api")]
    pub api_service: String,
    /// A backup manifest (PATH.manifest.json from `rune db backup`): every job in it must
    /// still be present and unchanged (needs --api-base-url).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Limit for each call to the cluster or the API: 10s, 500ms, 2m or seconds.
    #[arg(long, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// `10s`, `500ms`, `2m` or plain seconds; from 1 ms to 1 hour.
pub fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration (expected 10s, 500ms, 2m or seconds)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (expected ms, s or m)")),
    };
    if !(0.001..=3600.0).contains(&secs) {
        return Err(format!("`{s}` is out of range (1ms to 60m)"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The clap definition is internally consistent.
    #[test]
    fn cli_debug_assert() {
        Cli::command().debug_assert();
    }

    /// Rollback needs a target; a non-numeric one is a usage error naming the flag.
    #[test]
    fn rollback_requires_numeric_target() {
        assert!(Cli::try_parse_from(["rune", "db", "rollback"]).is_err());
        let err = Cli::try_parse_from(["rune", "db", "rollback", "--to", "two"]).unwrap_err().to_string();
        assert!(err.contains("--to"), "{err}");
        assert!(Cli::try_parse_from(["rune", "db", "rollback", "--to", "1", "--yes"]).is_ok());
    }

    fn parse(args: &[&str]) -> Result<Cli, String> {
        Cli::try_parse_from(args).map_err(|e| e.to_string())
    }

    /// Global API flags parse after the subcommand too; a bad backend names the choices.
    #[test]
    fn global_backend_flags() {
        let cli = parse(&["rune", "jobs", "list", "--backend", "http", "--api-tenant", "alpha"]).unwrap();
        assert_eq!(cli.global.backend, BackendKind::Http);
        assert_eq!(cli.global.api_tenant, "alpha");
        let err = parse(&["rune", "--backend", "grpc", "jobs", "list"]).unwrap_err();
        assert!(err.contains("--backend") && err.contains("local") && err.contains("http"), "{err}");
    }

    /// --since/--until take RFC 3339, dates or epoch seconds and refuse anything else.
    #[test]
    fn list_time_filters() {
        let cli = parse(&["rune", "jobs", "list", "--since", "2026-01-02", "--until", "2026-01-02T10:00:00Z"]).unwrap();
        let Command::Jobs(JobsCommand::List(a)) = cli.command else { panic!("not jobs list") };
        assert_eq!(a.since, Some(Timestamp::parse("2026-01-02T00:00:00Z").unwrap()));
        for bad in ["yesterday", "2026-13-01", "10:00", ""] {
            let err = parse(&["rune", "jobs", "list", "--since", bad]).unwrap_err();
            assert!(err.contains("--since"), "{bad}: {err}");
        }
    }

    /// --limit is at least 1 and excludes --all; kind and status are checked.
    #[test]
    fn list_limit_kind_status() {
        assert!(parse(&["rune", "jobs", "list", "--limit", "0"]).is_err());
        assert!(parse(&["rune", "jobs", "list", "--limit", "-3"]).is_err());
        let err = parse(&["rune", "jobs", "list", "--limit", "5", "--all"]).unwrap_err();
        assert!(err.contains("--all") || err.contains("--limit"), "{err}");
        let err = parse(&["rune", "jobs", "list", "--kind", "bench"]).unwrap_err();
        assert!(err.contains("cost-estimate"), "{err}");
        let err = parse(&["rune", "jobs", "list", "--status", "done"]).unwrap_err();
        assert!(err.contains("succeeded"), "{err}");
        assert!(parse(&["rune", "jobs", "list", "--kind", "cost-estimate", "--status", "failed", "--all"]).is_ok());
    }

    /// Job ids that could not exist (or would escape the URL path) are usage errors.
    #[test]
    fn job_and_schedule_ids() {
        assert!(parse(&["rune", "jobs", "get", "../estop"]).is_err());
        assert!(parse(&["rune", "jobs", "cancel", "a b"]).is_err());
        assert!(parse(&["rune", "jobs", "watch", "0b9c1d2e-aaaa-4bbb-8ccc-0123456789ab"]).is_ok());
        assert!(parse(&["rune", "schedules", "delete", ".."]).is_err());
        assert!(parse(&["rune", "schedules", "get", "x/y"]).is_err());
        assert!(parse(&["rune", "schedules", "suspend", "0b9c1d2e-aaaa-4bbb-8ccc-0123456789ab"]).is_ok());
    }

    /// create needs exactly one request source, a cron that can fire and a known policy.
    #[test]
    fn schedule_create_flags() {
        let base = ["rune", "schedules", "create", "--name", "n", "--kind", "cost-estimate"];
        let with = |extra: &[&str]| parse(&[&base[..], extra].concat());
        assert!(with(&["--cron", "*/5 * * * *"]).is_err(), "a request is required");
        assert!(with(&["--cron", "*/5 * * * *", "--request", "{}", "--request-file", "f.json"]).is_err());
        let ok = with(&["--cron", " */5 * * * * ", "--request", "{}", "--concurrency-policy", "replace"]).unwrap();
        let Command::Schedules(SchedulesCommand::Create(a)) = ok.command else { panic!("not create") };
        assert_eq!(a.cron, "*/5 * * * *");
        assert_eq!(a.concurrency_policy, ConcurrencyPolicy::Replace);
        for bad_cron in ["* * * *", "61 * * * *", "0 0 30 2 *", "@fortnightly"] {
            let err = with(&["--cron", bad_cron, "--request", "{}"]).unwrap_err();
            assert!(err.contains("--cron"), "{bad_cron}: {err}");
        }
        let err = with(&["--cron", "@hourly", "--request", "{}", "--concurrency-policy", "Sometimes"]).unwrap_err();
        assert!(err.contains("Forbid, Allow or Replace"), "{err}");
        assert!(with(&["--cron", "@hourly", "--request", "{}", "--starting-deadline-seconds", "0"]).is_err());
    }

    /// Timeouts take ms/s/m or seconds and refuse zero, negatives and unknown units.
    #[test]
    fn health_check_timeout() {
        assert_eq!(parse_timeout("10s"), Ok(std::time::Duration::from_secs(10)));
        assert_eq!(parse_timeout("500ms"), Ok(std::time::Duration::from_millis(500)));
        assert_eq!(parse_timeout("2m"), Ok(std::time::Duration::from_secs(120)));
        assert_eq!(parse_timeout("3"), Ok(std::time::Duration::from_secs(3)));
        for bad in ["", "0", "-1s", "10h", "ten", "61m", "1.2.3s"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
        let cli = parse(&["rune", "health-check", "--namespace", "rune", "--output", "json"]).unwrap();
        let Command::HealthCheck(a) = cli.command else { panic!("not health-check") };
        assert_eq!(a.namespace.as_deref(), Some("rune"));
        assert!(parse(&["rune", "health-check", "--output", "yaml"]).is_err());
    }

    /// E-Stop ConfigMap flags only make sense with --kubernetes.
    #[test]
    fn estop_configmap_flags_need_kubernetes() {
        assert!(parse(&["rune", "estop", "status", "--namespace", "x"]).is_err());
        let cli =
            parse(&["rune", "estop", "trigger", "--kubernetes", "--namespace", "ops", "--configmap", "stop"]).unwrap();
        let Command::Estop(a) = cli.command else { panic!("not estop") };
        assert_eq!((a.namespace.as_str(), a.configmap.as_str()), ("ops", "stop"));
    }

    /// --kubernetes is accepted before or after the estop subcommand.
    #[test]
    fn estop_kubernetes_flag() {
        let cli = parse(&["rune", "estop", "status", "--kubernetes"]).unwrap();
        let Command::Estop(a) = cli.command else { panic!("not estop") };
        assert!(a.kubernetes);
        assert!(parse(&["rune", "estop", "--kubernetes", "trigger", "--reason", "x"]).is_ok());
    }
}
