//! The `dag` binary's composition root: the one module that knows every
//! front end. It parses the command line, hands ordinary commands to the
//! CLI, and starts the daemon (or `dag ui`) with its HTTP front ends — the
//! API and the web UI — wired to its runtime. Front ends never import
//! each other; this is where they meet.

mod daemon;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{self, Cli, Command};

/// Entry point of the `dag` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init(&cli);
    let result = match &cli.command {
        Command::Daemon(args) if args.command.is_none() => daemon::start(&cli.global, args),
        Command::Ui(args) => daemon::start_ui(&cli.global, args),
        _ => cli::run(cli),
    };
    cli::finish(result)
}

#[cfg(test)]
mod layers_tests;
