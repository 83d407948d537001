//! `dag daemon` and `dag ui`: the daemon's runtime with its front ends —
//! the API (which runs the CLI's read-only commands for clients) and the
//! web UI — on the daemon's address. `dag ui` is the same runtime with its
//! schedules and file watches off, for a state directory no daemon serves.

use std::sync::Arc;
use std::time::Duration;

use crate::api::{ApiState, router};
use crate::cli::{self, CliResult, DaemonArgs, Exit, Failure, Global, UiArgs};
use crate::control::CommandHost;
use crate::daemon::info;
use crate::daemon::server::{DaemonConfig, DaemonContext, DaemonError, FrontEnds};
use crate::record::error_chain;
use crate::ui::{self, Guard, UiState};

fn workdir() -> Result<std::path::PathBuf, Failure> {
    std::env::current_dir()
        .map_err(|e| Failure::internal(format!("cannot read the current directory: {e}")))
}

pub fn start(global: &Global, args: &DaemonArgs) -> CliResult {
    let config = DaemonConfig {
        state_dir: global.state_dir.clone(),
        dags_dir: global.dags.clone(),
        workdir: workdir()?,
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
        triggers: true,
        env: cli::environment(global)?,
    };
    launch(global, config, false)
}

/// `dag ui`: points at the daemon that already serves the state directory,
/// or runs one without schedules and watches.
pub fn start_ui(global: &Global, args: &UiArgs) -> CliResult {
    if let Some(running) = info::running(&global.state_dir) {
        println!(
            "a daemon (pid {}) serves `{}`; its web UI is at http://{}/",
            running.pid,
            global.state_dir.display(),
            running.addr
        );
        return Ok(Exit::Success);
    }
    let token = crate::auth::token_from_env().map_err(|e| Failure::invalid(e.to_string()))?;
    let config = DaemonConfig {
        state_dir: global.state_dir.clone(),
        dags_dir: global.dags.clone(),
        workdir: workdir()?,
        addr: args.addr,
        token,
        grace: args.grace,
        reload_every: Duration::from_secs(10),
        debounce: Duration::from_millis(200),
        log_limit: global.task_log_limit,
        serve: None,
        triggers: false,
        env: cli::environment(global)?,
    };
    launch(global, config, true)
}

fn launch(global: &Global, config: DaemonConfig, announce: bool) -> CliResult {
    let guard = Guard::new(config.token.clone())
        .map_err(|e| Failure::internal(format!("cannot draw the web UI's session keys: {e}")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the runtime: {e}")))?;
    let result = runtime.block_on(crate::daemon::server::run(
        config,
        front_ends(guard, announce),
    ));
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

/// The daemon's HTTP front ends on its address: the API (`/api/*`,
/// `/health`, `/metrics`), with the CLI answering `POST /api/cli`, and the
/// web UI (every other path).
fn front_ends(guard: Guard, announce: bool) -> FrontEnds {
    Box::new(move |daemon: Arc<DaemonContext>| {
        if announce {
            println!("web UI at http://{}/ (Ctrl-C stops it)", daemon.info.addr);
        }
        let commands: CommandHost = Arc::new(cli::run_for_client);
        let api = router(Arc::new(ApiState {
            daemon: Arc::clone(&daemon),
            commands,
        }));
        api.merge(ui::router(UiState::new(daemon, guard)))
    })
}
