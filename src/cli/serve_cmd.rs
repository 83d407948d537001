//! `dag serve`: builds a [`ServeConfig`] from flags and the environment,
//! runs the server until Ctrl-C or SIGTERM, and maps failures to exit codes.

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use super::args::{Global, ServeArgs, ServingArgs};
use super::{CliResult, Exit, Failure};
use crate::record::error_chain;
use crate::serve::{ChallengerConfig, LogConfig, ServeConfig, ServeError, Server};

/// The prediction server's configuration from the serving flags, shared by
/// `dag serve` and `dag daemon --serve`. A weak `DAG_API_TOKEN` is refused.
pub fn serve_config(
    global: &Global,
    addr: std::net::SocketAddr,
    args: &ServingArgs,
) -> Result<ServeConfig, Failure> {
    let token = crate::auth::token_from_env().map_err(|e| Failure::invalid(e.to_string()))?;
    Ok(ServeConfig {
        state_dir: global.state_dir.clone(),
        model: match &args.model {
            Some(model) => model.clone(),
            None => only_model(&global.state_dir)?,
        },
        alias: args.alias.clone(),
        addr,
        challenger: args
            .challenger_alias
            .as_ref()
            .map(|alias| ChallengerConfig {
                alias: alias.clone(),
                share: args.challenger_share,
                shadow: args.shadow,
            }),
        log: LogConfig {
            sample: args.log_sample,
            max_bytes: args.log_max_bytes,
            keep: args.log_keep,
        },
        token,
        poll_interval: Duration::from_millis(args.poll_ms),
        invalid: args.invalid_records,
    })
}

/// The one model in the registry, for `--model` left out; with none or
/// several, an error that says which to name.
fn only_model(state_dir: &std::path::Path) -> Result<String, Failure> {
    let names: Vec<String> = if state_dir.join("models").is_dir() {
        let registry = dag_operators::models::ModelRegistry::open(state_dir)
            .map_err(|e| Failure::internal(error_chain(&e)))?;
        let mut names: Vec<String> = registry
            .list(None)
            .map_err(|e| Failure::internal(error_chain(&e)))?
            .into_iter()
            .map(|v| v.name)
            .collect();
        names.dedup();
        names
    } else {
        Vec::new()
    };
    match names.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(Failure::invalid(format!(
            "no model is registered under {} yet; name the one to serve with `--model NAME` \
             (it is served as soon as its alias points at a version)",
            state_dir.display()
        ))),
        several => Err(Failure::invalid(format!(
            "{} models are registered ({}); name the one to serve with `--model NAME`",
            several.len(),
            several.join(", ")
        ))),
    }
}

pub fn serve(global: &Global, args: &ServeArgs) -> CliResult {
    let config = serve_config(global, args.addr, &args.serving)?;
    let (model, alias) = (config.model.clone(), config.alias.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let server = Server::bind(config).await.map_err(failure)?;
        let addr = server.local_addr().map_err(failure)?;
        if !server.is_ready() {
            tracing::warn!(
                "no verified model for `{}@{}` yet; `/ready` answers 503 until the alias points at one",
                model,
                alias
            );
        }
        println!("listening on http://{addr}");
        let mut signals = [SignalKind::interrupt(), SignalKind::terminate()]
            .map(signal)
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Failure::internal(format!("cannot install signal handlers: {e}")))?;
        let shutdown = async move {
            let [interrupt, terminate] = signals.as_mut_slice() else {
                return;
            };
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        };
        server.run(shutdown).await.map_err(failure)?;
        Ok(Exit::Success)
    })
}

pub fn failure(error: ServeError) -> Failure {
    if error.is_usage() {
        Failure::invalid(error_chain(&error))
    } else {
        Failure::internal(error_chain(&error))
    }
}
