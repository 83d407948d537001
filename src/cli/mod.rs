//! The `dag` command line: parses arguments, calls the library, maps the
//! result to a documented exit code. Each subcommand lives in its own file.

mod args;
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
mod workspace;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, Command};
pub use exit::{CliResult, Exit, Failure};
pub use output::{RunJson, TaskJson, run_json};

/// Entry point of the `dag` binary.
pub fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
    init_tracing(&cli.global);
    let result = dispatch(cli);
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
