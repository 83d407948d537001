//! [`run`]: the daemon's life — take the store, load the DAGs, listen (and,
//! with `--serve`, serve predictions on a second address), start the
//! triggers, and on SIGTERM or Ctrl-C drain and exit cleanly.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use dag_state::Store;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::api::{ApiState, router};
use super::clock::{SystemClock, WallClock};
use super::dags::{DagSet, Reload};
use super::dispatch::{Dispatcher, RunOptions, Submission};
use super::info::{self, DaemonInfo};
use super::{Fire, cron, watch};
use crate::execute::{Engine, now_ms};
use crate::model::Dag;
use crate::record::{Recorder, error_chain};
use crate::serve::{ServeConfig, ServeError, Server};

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub state_dir: PathBuf,
    pub dags_dir: PathBuf,
    /// The project root relative paths resolve against.
    pub workdir: PathBuf,
    pub addr: SocketAddr,
    pub token: Option<String>,
    /// How long running tasks may go on after SIGTERM before they are
    /// cancelled.
    pub grace: Duration,
    /// How often the DAG directory is checked for edits.
    pub reload_every: Duration,
    /// Quiet time after the last file event before a watch trigger fires.
    pub debounce: Duration,
    /// A prediction server to run in the daemon's process (`--serve`).
    pub serve: Option<ServeConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("a daemon (pid {pid}) already serves `{state_dir}` at http://{addr}")]
    AlreadyRunning {
        pid: u32,
        addr: SocketAddr,
        state_dir: String,
    },
    #[error(
        "binding to {0} (not loopback) requires a token: set {token_var}",
        token_var = info::TOKEN_VAR
    )]
    TokenRequired(SocketAddr),
    #[error("cannot open the state store")]
    Store(#[source] dag_state::StateError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write `{path}`")]
    InfoFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the prediction server")]
    Serve(#[source] ServeError),
    #[error("{0}")]
    Runtime(String),
}

/// One DAG's running triggers; dropping it stops them.
struct Triggers {
    spec_hash: String,
    cron: Option<CancellationToken>,
    _watch: Option<watch::WatchHandle>,
}

impl Drop for Triggers {
    fn drop(&mut self) {
        if let Some(cancel) = &self.cron {
            cancel.cancel();
        }
    }
}

pub async fn run(config: DaemonConfig) -> Result<(), DaemonError> {
    if let Some(running) = info::running(&config.state_dir) {
        return Err(DaemonError::AlreadyRunning {
            pid: running.pid,
            addr: running.addr,
            state_dir: config.state_dir.display().to_string(),
        });
    }
    if !config.addr.ip().is_loopback() && config.token.as_deref().is_none_or(str::is_empty) {
        return Err(DaemonError::TokenRequired(config.addr));
    }
    if let Some(serve) = &config.serve {
        serve.check().map_err(DaemonError::Serve)?;
    }
    std::fs::create_dir_all(&config.state_dir).map_err(|source| DaemonError::InfoFile {
        path: config.state_dir.display().to_string(),
        source,
    })?;
    let (store, report) = Store::open(&config.state_dir.join("db")).map_err(DaemonError::Store)?;
    for run_id in &report.interrupted_runs {
        tracing::warn!(
            run_id,
            "run was left running by a process that died; marked interrupted"
        );
    }
    let store = Arc::new(store);
    crate::cli::workspace::share_daemon_store(Arc::clone(&store));

    let slot = Arc::new(crate::ops::SubmitSlot::default());
    let registry = Arc::new(crate::ops::registry_with(
        Arc::clone(&slot) as Arc<dyn crate::ops::Submit>
    ));
    let recorder = Recorder::spawn(Arc::clone(&store), None);
    let engine = Engine {
        registry: Arc::clone(&registry),
        store: Arc::clone(&store),
        recorder: recorder.handle(),
        workdir: config.workdir.clone(),
        state_dir: config.state_dir.clone(),
    };
    let mut dags = DagSet::default();
    log_reload(&dags.reload(&config.dags_dir, &registry));
    let dispatcher = Dispatcher::new(engine, dags);
    slot.set(Arc::new(Arc::downgrade(&dispatcher)));

    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| DaemonError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| DaemonError::Bind {
        addr: config.addr,
        source,
    })?;
    let predictions = match config.serve.clone() {
        Some(serve) => {
            let server = Server::bind(serve).await.map_err(DaemonError::Serve)?;
            let status = server.status().map_err(DaemonError::Serve)?;
            if !server.is_ready() {
                tracing::warn!(
                    "no verified model for the served alias yet; `/ready` answers 503 until it points at one"
                );
            }
            Some((server, status))
        }
        None => None,
    };
    let daemon_info = DaemonInfo {
        pid: std::process::id(),
        addr,
        serve_addr: predictions.as_ref().map(|(_, status)| status.addr()),
        token_required: config.token.is_some(),
        started_at_ms: now_ms(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        workdir: config.workdir.clone(),
    };
    info::write(&config.state_dir, &daemon_info).map_err(|source| DaemonError::InfoFile {
        path: info::path(&config.state_dir).display().to_string(),
        source,
    })?;

    // Registered before anything runs: a signal arriving earlier would kill
    // the process without draining.
    let stop = CancellationToken::new();
    for kind in [SignalKind::interrupt(), SignalKind::terminate()] {
        let mut stream = signal(kind).map_err(|e| DaemonError::Runtime(e.to_string()))?;
        let stop = stop.clone();
        tokio::spawn(async move {
            if stream.recv().await.is_some() {
                tracing::info!("signal received: draining");
                stop.cancel();
            }
        });
    }

    let (fires_tx, mut fires_rx) = mpsc::unbounded_channel::<Fire>();
    let feeder = {
        let dispatcher = Arc::clone(&dispatcher);
        tokio::spawn(async move {
            while let Some(fire) = fires_rx.recv().await {
                let dag = fire.dag.clone();
                let submission = Submission {
                    fire,
                    explicit: false,
                    options: RunOptions::default(),
                };
                if let Err(error) = dispatcher.submit(submission) {
                    tracing::warn!(dag, "trigger not accepted: {}", error_chain(&error));
                }
            }
        })
    };

    let mut triggers: BTreeMap<String, Triggers> = BTreeMap::new();
    sync_triggers(&dispatcher, &config, &fires_tx, &mut triggers);
    resume_interrupted(&dispatcher, &report.interrupted_runs);

    let state = Arc::new(ApiState {
        dispatcher: Arc::clone(&dispatcher),
        info: daemon_info,
        token: config.token.clone(),
        state_dir: config.state_dir.clone(),
        dags_dir: config.dags_dir.clone(),
        serving: predictions.as_ref().map(|(_, status)| status.clone()),
    });
    let server_stop = CancellationToken::new();
    // The prediction server answers until the drain is over, like the API.
    let prediction_server = predictions.map(|(server, status)| {
        tracing::info!(addr = %status.addr(), "serving predictions");
        let stop = server_stop.clone();
        tokio::spawn(server.run(async move { stop.cancelled().await }))
    });
    let server = {
        let server_stop = server_stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, router(state))
                .with_graceful_shutdown(async move { server_stop.cancelled().await })
                .await
        })
    };
    tracing::info!(%addr, dags = dispatcher.dags.read().map(|d| d.dags.len()).unwrap_or(0), "daemon listening");

    // Edits to the DAG directory reload at once (watched, confirmed by
    // content hash); the interval is the fallback where watching fails.
    let (edits_tx, mut edits) = mpsc::unbounded_channel::<Fire>();
    let _dags_watch = match watch::spawn(
        "dags".into(),
        config.dags_dir.clone(),
        vec!["*.yaml".into(), "*.yml".into()],
        Duration::from_millis(50),
        edits_tx,
    ) {
        Ok(handle) => Some(handle),
        Err(error) => {
            tracing::warn!(
                "cannot watch `{}`; checking it every {:?}: {}",
                config.dags_dir.display(),
                config.reload_every,
                error_chain(&error)
            );
            None
        }
    };
    let mut reload = tokio::time::interval(config.reload_every);
    reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = async { edits.recv().await }, if _dags_watch.is_some() => {
                reload.reset_immediately();
            }
            _ = reload.tick() => {
                let report = {
                    let mut dags = dispatcher.dags.write().unwrap_or_else(PoisonError::into_inner);
                    dags.reload(&config.dags_dir, &registry)
                };
                if !report.is_empty() {
                    log_reload(&report);
                    sync_triggers(&dispatcher, &config, &fires_tx, &mut triggers);
                }
            }
        }
    }

    // Drain: no new triggers, no new runs; running ones get the grace
    // period, then are cancelled; everything is recorded before exit.
    triggers.clear();
    dispatcher.drain(config.grace).await;
    drop(fires_tx);
    let _ = feeder.await;
    server_stop.cancel();
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("API server ended with an error: {e}"),
        Err(e) => tracing::warn!("API server task failed: {e}"),
    }
    if let Some(prediction_server) = prediction_server {
        match prediction_server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!("prediction server ended with an error: {}", error_chain(&e))
            }
            Err(e) => tracing::warn!("prediction server task failed: {e}"),
        }
    }
    let store_flush = dispatcher.engine.recorder.flush().await;
    drop(dispatcher);
    let finished = tokio::task::spawn_blocking(move || recorder.finish())
        .await
        .map_err(|e| DaemonError::Runtime(e.to_string()))?;
    info::remove_own(&config.state_dir);
    store_flush.map_err(|e| DaemonError::Runtime(error_chain(&e)))?;
    finished.map_err(|e| DaemonError::Runtime(error_chain(&e)))?;
    tracing::info!("daemon stopped");
    Ok(())
}

fn log_reload(report: &Reload) {
    for name in &report.added {
        tracing::info!(dag = %name, "DAG loaded");
    }
    for name in &report.changed {
        tracing::info!(dag = %name, "DAG reloaded");
    }
    for name in &report.removed {
        tracing::info!(dag = %name, "DAG removed");
    }
    for (path, diagnostics) in &report.failed {
        tracing::error!(
            file = %path.display(),
            "DAG file does not load; the last valid version (if any) stays in use\n{diagnostics}"
        );
    }
}

/// Starts, restarts and stops triggers so they match the loaded DAGs.
fn sync_triggers(
    dispatcher: &Arc<Dispatcher>,
    config: &DaemonConfig,
    fires: &mpsc::UnboundedSender<Fire>,
    triggers: &mut BTreeMap<String, Triggers>,
) {
    let loaded: Vec<(String, Arc<Dag>, String)> = {
        let dags = dispatcher
            .dags
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        dags.dags
            .iter()
            .map(|(name, l)| (name.clone(), Arc::clone(&l.dag), l.spec_hash.clone()))
            .collect()
    };
    triggers.retain(|name, t| {
        loaded
            .iter()
            .any(|(n, _, h)| n == name && *h == t.spec_hash)
    });
    for (name, dag, spec_hash) in loaded {
        if triggers.contains_key(&name) {
            continue;
        }
        let cron = dag.schedule.clone().map(|schedule| {
            let cancel = CancellationToken::new();
            let last = last_cron_fire(dispatcher, &name);
            let clock: Arc<dyn WallClock> = Arc::new(SystemClock);
            tracing::info!(dag = %name, schedule = %schedule.expression, "cron trigger started");
            tokio::spawn(cron::run(
                name.clone(),
                schedule,
                last,
                clock,
                fires.clone(),
                cancel.clone(),
            ));
            cancel
        });
        let watch = if dag.watch.is_empty() {
            None
        } else {
            match watch::spawn(
                name.clone(),
                config.workdir.clone(),
                dag.watch.clone(),
                config.debounce,
                fires.clone(),
            ) {
                Ok(handle) => {
                    tracing::info!(dag = %name, globs = ?dag.watch, "file watch started");
                    Some(handle)
                }
                Err(error) => {
                    tracing::error!(dag = %name, "cannot watch files: {}", error_chain(&error));
                    None
                }
            }
        };
        triggers.insert(
            name,
            Triggers {
                spec_hash,
                cron,
                _watch: watch,
            },
        );
    }
}

/// Resumes the runs a crash interrupted, for DAGs with
/// `resume_interrupted: true`; the others stay interrupted for a person to
/// look at (`dag run --resume`).
fn resume_interrupted(dispatcher: &Arc<Dispatcher>, interrupted: &[String]) {
    for run_id in interrupted {
        let Ok(Some(run)) = dispatcher.engine.store.run(run_id) else {
            continue;
        };
        let Some(dag) = dispatcher.dag(&run.dag) else {
            continue;
        };
        if !dag.resume_interrupted {
            continue;
        }
        let submission = Submission {
            fire: Fire {
                dag: run.dag.clone(),
                trigger: dag_state::Trigger {
                    kind: "resume".into(),
                    detail: format!(
                        "daemon restart: resuming run {run_id}, interrupted by a crash"
                    ),
                },
                logical_date: Some(run.logical_date.clone()),
                params: BTreeMap::new(),
                due_ms: now_ms(),
            },
            explicit: true,
            options: RunOptions {
                resume: Some(run_id.clone()),
                ..RunOptions::default()
            },
        };
        match dispatcher.submit(submission) {
            Ok(accepted) => tracing::info!(
                dag = %run.dag, interrupted = %run_id, run_id = accepted.run_id().unwrap_or("-"),
                "resuming a run the crash interrupted"
            ),
            Err(error) => tracing::warn!(
                dag = %run.dag, run_id, "cannot resume: {}", error_chain(&error)
            ),
        }
    }
}

/// The logical date of the newest cron-triggered run of `dag`, for catch-up.
fn last_cron_fire(dispatcher: &Dispatcher, dag: &str) -> Option<DateTime<Utc>> {
    let runs = dispatcher.engine.store.runs(Some(dag), 500).ok()?;
    runs.iter()
        .filter(|r| r.trigger.kind == "cron")
        .find_map(|r| DateTime::parse_from_rfc3339(&r.logical_date).ok())
        .map(|t| t.with_timezone(&Utc))
}
