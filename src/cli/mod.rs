//! The `dag` command line: parses arguments, calls the library, maps the
//! result to a documented exit code. Each subcommand lives in its own file.

mod args;
mod backfill_cmd;
pub(crate) mod console;
mod daemon_cmd;
mod doctor_cmd;
mod exit;
mod gc_cmd;
mod graph_cmd;
mod lineage_cmd;
mod models_cmd;
mod progress;
mod remote;
mod run_cmd;
mod runs_cmd;
mod runs_diff;
mod serve_cmd;
mod task_exec_cmd;
mod validate_cmd;
mod why;
pub(crate) mod workspace;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::control::CommandOutput;

pub use args::{Cli, Command, DaemonArgs, DaemonCommand, Global, ServingArgs, UiArgs};
pub use exit::{CliResult, Exit, Failure};
pub use serve_cmd::{failure as serve_failure, serve_config};
pub use workspace::environment;

/// Prepares the process for a command: the default SIGPIPE behaviour and
/// the engine log on stderr, per the global flags.
pub fn init(cli: &Cli) {
    restore_sigpipe();
    init_tracing(&cli.global, matches!(cli.command, Command::Daemon(_)));
}

/// Runs a parsed command line: through a running daemon when the command
/// needs the store the daemon holds, else here.
pub fn run(cli: Cli) -> CliResult {
    if let Some(result) = through_daemon(&cli) {
        return result;
    }
    match dispatch(&cli) {
        // A daemon started between the look for one and opening the store:
        // go through it after all.
        Err(failure) if failure.store_taken_by_daemon => {
            through_daemon(&cli).unwrap_or(Err(failure))
        }
        result => result,
    }
}

/// Prints a failure's message and turns the result into the exit code.
pub fn finish(result: CliResult) -> ExitCode {
    match result {
        Ok(exit) => exit.into(),
        Err(failure) => {
            if !failure.message.is_empty() {
                let (red, reset) = if color_enabled(&std::io::stderr()) {
                    ("\x1b[1;31m", "\x1b[0m")
                } else {
                    ("", "")
                };
                eprintln!("{red}error{reset}: {}", failure.message);
            }
            failure.exit.into()
        }
    }
}

/// Commands that need the state store go through a running daemon, which
/// holds it; `None` runs the command here.
fn through_daemon(cli: &Cli) -> Option<CliResult> {
    let needs_store = matches!(
        cli.command,
        Command::Run(_)
            | Command::Gc(_)
            | Command::Logs(_)
            | Command::Doctor(_)
            | Command::Backfill(_)
    ) || runs_in_daemon(&cli.command);
    if !needs_store {
        return None;
    }
    let daemon = daemon_cmd::running(&cli.global)?;
    tracing::debug!(addr = %daemon.info.addr, pid = daemon.info.pid, "going through the daemon");
    Some(match &cli.command {
        Command::Run(args) if !args.dry_run => {
            remote::same_env(&daemon, &cli.global).and_then(|()| remote::remote_run(&daemon, args))
        }
        Command::Gc(args) if !args.dry_run => remote::remote_gc(&daemon, args),
        Command::Logs(args) => remote::remote_logs(&daemon, args),
        Command::Backfill(args) => backfill_cmd::remote_backfill(&cli.global, &daemon, args),
        Command::Doctor(args) if args.repair || args.rebuild => Err(Failure::invalid(format!(
            "the daemon (pid {}) holds the store; stop it with `dag daemon stop`, then run `dag doctor` again",
            daemon.info.pid
        ))),
        _ => remote::remote_command(&daemon, &argv_for_daemon(&cli.command)),
    })
}

/// This command line for the daemon: a DAG named by a path is given as an
/// absolute path, since the daemon resolves paths from its own directory.
fn argv_for_daemon(command: &Command) -> Vec<String> {
    let dag = match command {
        Command::Run(args) => Some(&args.dag),
        Command::Plan(args) => Some(&args.dag),
        _ => None,
    };
    let absolute = dag.and_then(|dag| {
        let path = std::path::Path::new(dag);
        path.is_file()
            .then(|| std::fs::canonicalize(path).ok())
            .flatten()
            .map(|p| (dag.clone(), p.to_string_lossy().into_owned()))
    });
    let mut replaced = false;
    std::env::args()
        .skip(1)
        .map(|arg| match &absolute {
            Some((given, path)) if !replaced && arg == *given => {
                replaced = true;
                path.clone()
            }
            _ => arg,
        })
        .collect()
}

fn dispatch(cli: &Cli) -> CliResult {
    let global = &cli.global;
    match &cli.command {
        Command::Validate(args) => validate_cmd::validate(global, args),
        Command::Plan(args) => graph_cmd::plan(global, args),
        Command::Graph(args) => graph_cmd::graph(global, args),
        Command::Run(args) => run_cmd::run(global, args),
        Command::List(flag) => validate_cmd::list(global, flag.json),
        Command::Runs(args) => runs_cmd::runs(global, args),
        Command::Logs(args) => runs_cmd::logs(global, args),
        Command::Models(args) => models_cmd::models(global, args),
        Command::Lineage(args) => lineage_cmd::lineage(global, args),
        Command::Operators(args) => validate_cmd::operators(args),
        Command::Schema => validate_cmd::schema(),
        Command::Serve(args) => serve_cmd::serve(global, args),
        Command::Gc(args) => gc_cmd::gc(global, args),
        Command::Daemon(args) => match &args.command {
            Some(DaemonCommand::Status(flag)) => daemon_cmd::status(global, flag.json),
            Some(DaemonCommand::Stop) => daemon_cmd::stop(global),
            // Starting a daemon wires several front ends together: the
            // binary does that, not the CLI.
            None => Err(Failure::internal(
                "`dag daemon` is started by the `dag` binary, not by the CLI library",
            )),
        },
        Command::Ui(_) => Err(Failure::internal(
            "`dag ui` is started by the `dag` binary, not by the CLI library",
        )),
        Command::Trigger(args) => remote::trigger(global, args),
        Command::Backfill(args) => backfill_cmd::backfill(global, args),
        Command::Cancel(args) => remote::cancel(global, args),
        Command::Doctor(args) => doctor_cmd::doctor(global, args),
        Command::TaskExec(args) => task_exec_cmd::task_exec(args),
    }
}

/// Commands a running daemon executes for a client against its store, all
/// read-only: the readers, and `gc --dry-run`. (`dag run` is submitted;
/// `dag gc` and `dag logs` have their own API calls, the latter so that a
/// log is never held whole in memory; none is executed here.)
fn runs_in_daemon(command: &Command) -> bool {
    match command {
        Command::Runs(_) | Command::Lineage(_) => true,
        Command::Gc(args) => args.dry_run,
        Command::Doctor(args) => !args.repair && !args.rebuild,
        Command::Plan(args) => args.why,
        Command::Run(args) => args.dry_run,
        _ => false,
    }
}

/// Runs a client's read-only command line (`argv` without the program name)
/// in the daemon, against the daemon's store and directories: the CLI's
/// [`CommandHost`](crate::control::CommandHost). Commands that change
/// things or run for long (`run`, `daemon`, `serve`, ...) are refused:
/// those have their own API calls.
pub fn run_for_client(
    argv: &[String],
    state_dir: &std::path::Path,
    dags: &std::path::Path,
) -> CommandOutput {
    let refuse = |error: String| CommandOutput {
        exit: Exit::Invalid as u8,
        stdout: String::new(),
        error,
        stderr: String::new(),
    };
    let cli =
        match Cli::try_parse_from(std::iter::once("dag".to_string()).chain(argv.iter().cloned())) {
            Ok(cli) => cli,
            Err(error) => return refuse(error.to_string()),
        };
    if !runs_in_daemon(&cli.command) {
        return refuse(format!(
            "`dag {}` is not run through the daemon's command endpoint",
            argv.first().map_or("", String::as_str)
        ));
    }
    let mut cli = cli;
    cli.global.state_dir = state_dir.to_path_buf();
    cli.global.dags = dags.to_path_buf();
    // DAG files read for a client must be inside the daemon's project.
    cli.global.confined_to = std::env::current_dir().ok();
    let (result, stdout, stderr) = console::capture(|| dispatch(&cli));
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    let (exit, error) = match result {
        Ok(exit) => (exit, String::new()),
        Err(failure) => (failure.exit, failure.message),
    };
    CommandOutput {
        exit: exit as u8,
        stdout,
        error,
        stderr,
    }
}

fn init_tracing(global: &args::Global, daemon: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if global.quiet {
        "error"
    } else {
        match global.verbose {
            // A daemon says when runs start and end, so a failed nightly
            // run shows in its log without `-v`.
            0 if daemon => "warn,dag::runs=info",
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match global.log_format {
        args::LogFormat::Json => builder.json().try_init(),
        args::LogFormat::Text => builder
            .with_ansi(color_enabled(&std::io::stderr()))
            .try_init(),
    };
}

/// Colour only on a terminal, and never with `NO_COLOR` set.
pub fn color_enabled(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Rust ignores SIGPIPE, so `dag runs | head` would panic on the closed pipe;
/// Unix tools die quietly instead. Everything a run reports is already
/// durable, so dying on a closed stdout loses nothing.
fn restore_sigpipe() {
    // SAFETY: called first thing in `main`, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
