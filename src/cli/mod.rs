//! The `dag` command line: parses arguments, calls the library, maps the
//! result to a documented exit code. Each subcommand lives in its own file.

mod args;
pub(crate) mod console;
mod daemon_cmd;
mod exit;
mod gc_cmd;
mod graph_cmd;
mod lineage_cmd;
mod models_cmd;
mod output;
mod progress;
mod run_cmd;
mod runs_cmd;
mod runs_diff;
mod serve_cmd;
mod validate_cmd;
mod why;
pub(crate) mod workspace;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, Command};
pub use exit::{CliResult, Exit, Failure};
pub use output::{RunJson, RunListJson, TaskJson, run_json};

/// Entry point of the `dag` binary.
pub fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
    init_tracing(&cli.global);
    let result = match through_daemon(&cli) {
        Some(result) => result,
        None => dispatch(cli),
    };
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
    let needs_store = matches!(cli.command, Command::Run(_)) || runs_in_daemon(&cli.command);
    if !needs_store {
        return None;
    }
    let daemon = daemon_cmd::running(&cli.global)?;
    tracing::debug!(addr = %daemon.addr, pid = daemon.pid, "going through the daemon");
    Some(match &cli.command {
        Command::Run(args) if !args.dry_run => daemon_cmd::remote_run(&daemon, args),
        _ => {
            let argv: Vec<String> = std::env::args().skip(1).collect();
            daemon_cmd::remote_command(&daemon, &argv)
        }
    })
}

fn dispatch(cli: Cli) -> CliResult {
    let global = &cli.global;
    match cli.command {
        Command::Validate(args) => validate_cmd::validate(global, &args),
        Command::Plan(args) => graph_cmd::plan(global, &args),
        Command::Graph(args) => graph_cmd::graph(global, &args),
        Command::Run(args) => run_cmd::run(global, &args),
        Command::List(flag) => validate_cmd::list(global, flag.json),
        Command::Runs(args) => runs_cmd::runs(global, &args),
        Command::Logs(args) => runs_cmd::logs(global, &args),
        Command::Models(args) => models_cmd::models(global, &args),
        Command::Lineage(args) => lineage_cmd::lineage(global, &args),
        Command::Operators(flag) => validate_cmd::operators(flag.json),
        Command::Schema => validate_cmd::schema(),
        Command::Serve(args) => serve_cmd::serve(global, &args),
        Command::Gc(args) => gc_cmd::gc(global, &args),
        Command::Daemon(args) => daemon_cmd::daemon(global, &args),
        Command::Trigger(args) => daemon_cmd::trigger(global, &args),
        Command::Cancel(args) => daemon_cmd::cancel(global, &args),
    }
}

/// Commands a running daemon executes for a client against its store: the
/// readers, and `gc`. (`dag run` itself is submitted, not executed here.)
fn runs_in_daemon(command: &Command) -> bool {
    match command {
        Command::Runs(_) | Command::Logs(_) | Command::Lineage(_) | Command::Gc(_) => true,
        Command::Plan(args) => args.why,
        Command::Run(args) => args.dry_run,
        _ => false,
    }
}

/// What a read-only command printed and how it ended, when a daemon runs
/// it for a client.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct CommandOutput {
    pub exit: u8,
    pub stdout: String,
    /// The error message, when it failed.
    pub error: String,
}

/// Runs a client's read-only command line (`argv` without the program name)
/// in the daemon, against the daemon's store and directories. Commands that
/// change things or run for long (`run`, `daemon`, `serve`, ...) are refused:
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
    let (result, stdout) = console::capture(|| dispatch(cli));
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    match result {
        Ok(exit) => CommandOutput {
            exit: exit as u8,
            stdout,
            error: String::new(),
        },
        Err(failure) => CommandOutput {
            exit: failure.exit as u8,
            stdout,
            error: failure.message,
        },
    }
}

fn init_tracing(global: &args::Global) {
    use tracing_subscriber::EnvFilter;
    let default = if global.quiet {
        "error"
    } else {
        match global.verbose {
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
