//! Command-line arguments. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A declarative workflow engine for the ML lifecycle.
#[derive(Debug, Parser)]
#[command(name = "dag", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: Global,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Where run state, logs and the model registry live.
    #[arg(long, env = "DAG_STATE_DIR", default_value = ".dag", global = true)]
    pub state_dir: PathBuf,
    /// Where DAG names are looked up.
    #[arg(long, env = "DAG_DAGS_DIR", default_value = "dags", global = true)]
    pub dags: PathBuf,
    /// More engine logging on stderr (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Format of engine logs on stderr.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
    /// Most bytes one task attempt's log keeps (`64MiB`, `500K`, a number of
    /// bytes): the start and the end of longer output, with a marker saying
    /// how much was dropped.
    #[arg(
        long,
        env = "DAG_TASK_LOG_LIMIT",
        default_value = "64MiB",
        value_parser = crate::model::parse_byte_size,
        global = true
    )]
    pub task_log_limit: u64,
    /// Layer `envs/NAME.yaml` over the DAGs' param defaults (development,
    /// staging, production settings); recorded with each run.
    #[arg(long, env = "DAG_ENV", global = true)]
    pub env: Option<String>,
    /// A state directory a daemon runs a client's command against: DAG
    /// files read for it must be inside this directory.
    #[arg(skip)]
    pub confined_to: Option<PathBuf>,
}

/// The file formats `dag models export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Onnx,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check DAG files and report every problem with file:line:col.
    Validate(ValidateArgs),
    /// Show the execution order and the parallel levels of a DAG.
    Plan(PlanArgs),
    /// Print the task graph as Mermaid or Graphviz dot.
    Graph(GraphArgs),
    /// Run a DAG.
    Run(RunArgs),
    /// List the DAGs in the DAG directory.
    List(JsonFlag),
    /// List runs, newest first, or show one.
    Runs(RunsArgs),
    /// Print a task attempt's log.
    Logs(LogsArgs),
    /// The model registry: versions, aliases, promotion and rollback.
    Models(ModelsArgs),
    /// Where an artifact or model came from, or what was made from it.
    Lineage(LineageArgs),
    /// List the operators DAG files can use; with a name, its params,
    /// inputs, outputs and values.
    Operators(OperatorsArgs),
    /// Print the JSON Schema of DAG files (point your editor at it).
    Schema,
    /// Serve predictions over HTTP from a registry alias, following its moves.
    Serve(ServeArgs),
    /// Delete run-cache entries that no recent run and no registered model references.
    Gc(GcArgs),
    /// Run the scheduler: cron schedules, file watches, and the API the CLI
    /// goes through while it runs.
    Daemon(DaemonArgs),
    /// Open the web UI on a state directory without a daemon running: runs
    /// start from the browser; schedules and file watches do not fire.
    Ui(UiArgs),
    /// Ask the running daemon to start a run of a DAG, and return at once.
    Trigger(TriggerArgs),
    /// Run a scheduled DAG for each logical date its schedule has in a
    /// range, skipping dates that already succeeded.
    Backfill(BackfillArgs),
    /// Cancel a running or queued run (through the daemon).
    Cancel(CancelArgs),
    /// Check the state store; repair it, or move it aside and start anew.
    Doctor(DoctorArgs),
    /// Run one task attempt from a context file the engine wrote: the
    /// entrypoint of a Ray job (see docs/ray.md). Not for direct use.
    #[command(hide = true)]
    TaskExec(TaskExecArgs),
}

#[derive(Debug, Args)]
pub struct TaskExecArgs {
    /// The attempt's `context.json`.
    pub context: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Remove unreadable records and index entries that point at nothing,
    /// and re-index active runs (what the removed records held is lost).
    #[arg(long, conflicts_with = "rebuild")]
    pub repair: bool,
    /// Move the store aside (nothing is deleted) and start a new, empty run
    /// history; the model registry, run cache and task logs stay.
    #[arg(long)]
    pub rebuild: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    #[command(subcommand)]
    pub command: Option<DaemonCommand>,
    /// Where the API listens. Other than loopback requires `DAG_API_TOKEN`.
    #[arg(long, default_value = "127.0.0.1:7311")]
    pub addr: std::net::SocketAddr,
    /// On SIGTERM or Ctrl-C, let running tasks finish for this long before
    /// cancelling them (e.g. `30s`, `2m`).
    #[arg(long, default_value = "30s", value_parser = crate::model::parse_duration)]
    pub grace: std::time::Duration,
    /// How often the DAG directory is checked for edits, besides watching it.
    #[arg(long, default_value = "10s", value_parser = crate::model::parse_duration)]
    pub reload_every: std::time::Duration,
    /// Quiet time after the last change to a watched file before its DAG runs.
    #[arg(long, default_value = "200ms", value_parser = crate::model::parse_duration)]
    pub debounce: std::time::Duration,
    /// Also serve predictions (as `dag serve` does) on this address, in the
    /// daemon's process: `--serve` alone listens on 127.0.0.1:8080. The
    /// serving options below apply. A non-loopback address requires
    /// `DAG_API_TOKEN`.
    #[arg(
        long,
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = "127.0.0.1:8080"
    )]
    pub serve: Option<std::net::SocketAddr>,
    #[command(flatten, next_help_heading = "Serving (with --serve)")]
    pub serving: ServingArgs,
}

#[derive(Debug, Args)]
pub struct UiArgs {
    /// Where the UI (and the API the CLI uses meanwhile) listens. Other
    /// than loopback requires `DAG_API_TOKEN` of at least 16 characters.
    #[arg(long, default_value = "127.0.0.1:7311")]
    pub addr: std::net::SocketAddr,
    /// On Ctrl-C, let running tasks finish for this long before cancelling them.
    #[arg(long, default_value = "30s", value_parser = crate::model::parse_duration)]
    pub grace: std::time::Duration,
}

#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Whether a daemon runs for this state directory; its DAGs, schedules,
    /// next fires, active and queued runs.
    Status(JsonFlag),
    /// Ask the running daemon to drain and exit (SIGTERM).
    Stop,
}

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// The name of a DAG the daemon has loaded.
    pub dag: String,
    /// Override a param: `--param key=value` (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Print the daemon's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// A DAG file, or the name of a DAG in the DAG directory; it needs a `schedule`.
    pub dag: String,
    /// First day (`2026-03-01`, in the schedule's timezone) or instant (RFC 3339).
    #[arg(long)]
    pub from: String,
    /// Last day (inclusive) or instant.
    #[arg(long)]
    pub to: String,
    /// Run dates that already have a successful run too.
    #[arg(long)]
    pub rerun: bool,
    /// List the dates and what would happen to each; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Override a param for every run: `--param key=value` (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Print a JSON list of the dates and their runs.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// A run id, or `latest` / `latest~N` (the newest run, N runs back).
    pub run_id: String,
    /// Print the daemon's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct OperatorsArgs {
    /// One operator (`ml.train`): every param with its type, default and meaning.
    pub name: Option<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Print the whole reference as Markdown (what `docs/operators.md` holds).
    #[arg(long, conflicts_with_all = ["name", "json"])]
    pub markdown: bool,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// DAG files or directories (default: the DAG directory).
    pub paths: Vec<PathBuf>,
    /// Print diagnostics as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// A DAG file, or the name of a DAG in the DAG directory.
    pub dag: String,
    /// Override a param: `--param key=value` (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Say which tasks a run would run or skip, and why, without running anything.
    #[arg(long)]
    pub why: bool,
    /// With `--why`: as if every task were forced.
    #[arg(long, requires = "why")]
    pub force: bool,
    /// With `--why`: as if this task were forced (repeatable).
    #[arg(long = "force-task", value_name = "TASK", requires = "why")]
    pub force_tasks: Vec<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// A DAG file, or the name of a DAG in the DAG directory.
    pub dag: String,
    #[arg(long, value_enum, default_value = "mermaid")]
    pub format: GraphFormat,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// A DAG file, or the name of a DAG in the DAG directory.
    pub dag: String,
    /// Override a param: `--param key=value` (repeatable). Values are typed
    /// as YAML would type them (`300` is a number, `true` a boolean).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Run only these tasks (repeatable); others count as done.
    #[arg(long = "only", value_name = "TASK")]
    pub only: Vec<String>,
    /// At most this many tasks at once (default: the DAG's `max_parallel`, else 8).
    #[arg(long)]
    pub max_parallel: Option<usize>,
    /// Run every task, even those whose results are up to date.
    #[arg(long)]
    pub force: bool,
    /// Run this task even if its result is up to date (repeatable).
    #[arg(long = "force-task", value_name = "TASK")]
    pub force_tasks: Vec<String>,
    /// Say which tasks would run or be skipped, and why; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Rerun the failed, cancelled, interrupted and unstarted tasks of this
    /// run (an id, or `latest` / `latest~N`) with its params, reusing what it finished.
    #[arg(long, value_name = "RUN_ID", conflicts_with_all = ["params", "only", "dry_run"])]
    pub resume: Option<String>,
    /// Print one JSON object describing the run on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: Option<RunsCommand>,
    /// Only runs of this DAG.
    #[arg(long)]
    pub dag: Option<String>,
    /// At most this many runs (1 or more).
    #[arg(long, default_value_t = 20, value_parser = parse_positive)]
    pub limit: usize,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Show one run: its tasks, attempts, metrics and why it ran.
    Show(ShowArgs),
    /// Compare two runs: definition, params, and per task status, input
    /// digests and metrics (deltas are B − A).
    Diff(DiffArgs),
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// A run id, or `latest` / `latest~N` (the newest run, N runs back).
    pub run_a: String,
    /// The run to compare it with (an id, `latest` or `latest~N`).
    pub run_b: String,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A run id, or `latest` / `latest~N` (the newest run, N runs back).
    pub run_id: String,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// A run id, or `latest` / `latest~N` (the newest run, N runs back).
    pub run_id: String,
    pub task: String,
    /// Which attempt (default: the last).
    #[arg(long)]
    pub attempt: Option<u32>,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Keep printing what the attempt writes until it ends (an attempt a
    /// running daemon runs; without a daemon no attempt can be running).
    #[arg(short, long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub command: ModelsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List registered versions with their aliases and metrics.
    List {
        /// Only this model.
        name: Option<String>,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show one version: `NAME`, `NAME@3` or `NAME@production`.
    Show {
        model: String,
        #[arg(long)]
        json: bool,
    },
    /// Point an alias at a version.
    #[command(disable_version_flag = true)]
    Promote {
        model: String,
        /// The version number (`3` or `v3`).
        version: String,
        /// The alias to move.
        #[arg(long, default_value = "production")]
        alias: String,
        #[arg(long)]
        json: bool,
    },
    /// Move an alias back to where it pointed before its last move; the
    /// aliases the same promotion moved there go back with it.
    Rollback {
        model: String,
        #[arg(long, default_value = "production")]
        alias: String,
        #[arg(long)]
        json: bool,
    },
    /// Write a version as a file another runtime can serve: `--format onnx`
    /// gives one graph with the feature transformer, taking the raw columns.
    Export {
        /// `NAME`, `NAME@3` or `NAME@production` (`NAME` alone is the latest version).
        model: String,
        #[arg(long, value_enum, default_value_t = ExportFormat::Onnx)]
        format: ExportFormat,
        /// Where to write the file.
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Every alias move: when, from which version to which, by which run or command.
    History {
        model: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LineageFormat {
    Text,
    Json,
    Mermaid,
}

#[derive(Debug, Args)]
pub struct LineageArgs {
    /// A file path, a digest, `MODEL@VERSION` (or `MODEL@alias`) or `RUN_ID:TASK`.
    pub target: String,
    /// Walk back to the raw inputs (the default).
    #[arg(long, conflicts_with = "downstream")]
    pub upstream: bool,
    /// Walk forward: every task that read it, what they wrote, and the
    /// model versions registered from any of it.
    #[arg(long)]
    pub downstream: bool,
    /// With `--downstream`: follow only the N newest runs that read each
    /// artifact (`all` follows every run); the rest are counted.
    #[arg(long, value_name = "N|all", default_value = "10", value_parser = parse_run_limit)]
    pub runs: RunLimit,
    #[arg(long, value_enum, default_value = "text")]
    pub format: LineageFormat,
    /// Print the graph as JSON on stdout (same as `--format json`).
    #[arg(long)]
    pub json: bool,
}

/// How many runs a downstream lineage walk follows per artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimit(pub Option<usize>);

/// A count of 1 or more.
fn parse_positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be 1 or more".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_run_limit(text: &str) -> Result<RunLimit, String> {
    if text == "all" {
        return Ok(RunLimit(None));
    }
    match text.parse::<usize>() {
        Ok(0) | Err(_) => Err(format!(
            "`{text}` is not a number of runs (1 or more) or `all`"
        )),
        Ok(n) => Ok(RunLimit(Some(n))),
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen. A non-loopback address requires `DAG_API_TOKEN`.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    #[command(flatten)]
    pub serving: ServingArgs,
}

/// What the prediction server serves, for `dag serve` and `dag daemon --serve`.
#[derive(Debug, Args)]
pub struct ServingArgs {
    /// The registered model to serve; may be left out when the registry
    /// holds one model only.
    #[arg(long)]
    pub model: Option<String>,
    /// The alias whose version answers requests; moving it swaps models live.
    #[arg(long, default_value = "production")]
    pub alias: String,
    /// An alias whose version takes a share of requests (A/B) or shadows them.
    #[arg(long, value_name = "ALIAS")]
    pub challenger_alias: Option<String>,
    /// Fraction of requests the challenger answers, chosen by a hash of the body.
    #[arg(
        long,
        default_value_t = 0.1,
        requires = "challenger_alias",
        conflicts_with = "shadow"
    )]
    pub challenger_share: f64,
    /// The challenger scores every request too, but only the champion answers.
    #[arg(long, requires = "challenger_alias")]
    pub shadow: bool,
    /// Fraction of predicted records appended to `<state_dir>/predictions/current.csv` (0 disables).
    #[arg(long, default_value_t = 1.0)]
    pub log_sample: f64,
    /// Rotate the prediction log once it reaches this many bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub log_max_bytes: u64,
    /// Rotated prediction logs to keep.
    #[arg(long, default_value_t = 5)]
    pub log_keep: usize,
    /// How often aliases are re-read, in milliseconds.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..))]
    pub poll_ms: u64,
    /// A record outside the training range or with an unknown category:
    /// `reject` answers 422 naming the field, `flag` scores it and says why
    /// in `flagged`. Either way it is logged, with its status and reason.
    #[arg(long, value_enum, default_value = "reject")]
    pub invalid_records: crate::serve::InvalidRecords,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Keep the cache entries of this many newest runs of each DAG.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub keep_runs: usize,
    /// Say what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}
