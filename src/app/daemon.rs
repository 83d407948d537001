//! `dag daemon`: the daemon's runtime with its front ends — the API (which
//! runs the CLI's read-only commands for clients) on the daemon's address.

use std::sync::Arc;
use std::time::Duration;

use crate::api::{ApiState, router};
use crate::cli::{self, CliResult, DaemonArgs, Exit, Failure, Global};
use crate::control::CommandHost;
use crate::daemon::server::{DaemonConfig, DaemonContext, DaemonError, FrontEnds};
use crate::record::error_chain;

pub fn start(global: &Global, args: &DaemonArgs) -> CliResult {
    let workdir = std::env::current_dir()
        .map_err(|e| Failure::internal(format!("cannot read the current directory: {e}")))?;
    let config = DaemonConfig {
        state_dir: global.state_dir.clone(),
        dags_dir: global.dags.clone(),
        workdir,
        addr: args.addr,
        token: crate::auth::token_from_env().map_err(|e| Failure::invalid(e.to_string()))?,
        grace: args.grace,
        reload_every: args.reload_every,
        debounce: args.debounce,
        log_limit: global.task_log_limit,
        serve: args
            .serve
            .map(|addr| cli::serve_config(global, addr, &args.serving))
            .transpose()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the runtime: {e}")))?;
    let result = runtime.block_on(crate::daemon::server::run(config, front_ends()));
    runtime.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(()) => Ok(Exit::Success),
        Err(
            error @ (DaemonError::AlreadyRunning { .. }
            | DaemonError::TokenRequired(_)
            | DaemonError::WeakToken(_)),
        ) => Err(Failure::invalid(error_chain(&error))),
        Err(DaemonError::Serve(error)) => Err(cli::serve_failure(error)),
        Err(DaemonError::Store(crate::workspace::OpenError::Locked { .. })) => {
            Err(Failure::invalid(format!(
                "the state store in `{}` is in use by another process (a `dag run`, or a daemon starting up)",
                global.state_dir.display()
            )))
        }
        Err(error) => Err(Failure::internal(error_chain(&error))),
    }
}

/// The daemon's HTTP front ends: its API, with the CLI answering
/// `POST /api/cli`.
fn front_ends() -> FrontEnds {
    Box::new(|daemon: Arc<DaemonContext>| {
        let commands: CommandHost = Arc::new(cli::run_for_client);
        router(Arc::new(ApiState { daemon, commands }))
    })
}
