//! [`run`]: the daemon's life, as a sequence of named steps. Start-up takes
//! the store, starts the runtime (engine, DAGs, run queue), listens, serves
//! predictions if asked, publishes `daemon.json`, starts the triggers and
//! takes up what a crash left (runs to resume, accepted runs to start). Shutdown (SIGTERM or Ctrl-C) stops the
//! triggers, drains the runs, stops the servers and closes the store.
//!
//! The daemon's HTTP front ends (its API, the web UI) are not known here:
//! the caller passes [`FrontEnds`], which builds their routes from the
//! running daemon's [`DaemonContext`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dag_state::Store;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::dags::{DagSet, Reload};
use super::dispatch::Dispatcher;
use super::events::RunEvents;
use super::info::{self, DaemonInfo};
use super::reload::{daemon_parse_limits, reload_off_loop};
use super::triggers::TriggerSet;
use super::{Fire, recovery, watch};
use crate::execute::{Engine, now_ms};
use crate::record::{Recorder, error_chain};
use crate::serve::{ServeConfig, ServeError, Server, ServingStatus};

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
    /// Most bytes one task attempt's log keeps.
    pub log_limit: u64,
    /// Fire cron schedules and file watches, and take up what a crash
    /// left; off, runs start only on request (`dag ui`).
    pub triggers: bool,
    /// Layered over every DAG's param defaults (`--env`).
    pub env: Option<crate::workspace::Environment>,
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
    #[error(transparent)]
    WeakToken(crate::auth::WeakToken),
    #[error(transparent)]
    Store(crate::workspace::OpenError),
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

/// What the daemon's front ends see of it while it runs.
pub struct DaemonContext {
    pub dispatcher: Arc<Dispatcher>,
    pub info: DaemonInfo,
    pub token: Option<String>,
    pub state_dir: PathBuf,
    pub dags_dir: PathBuf,
    /// The prediction server running in the daemon's process, if any.
    pub serving: Option<ServingStatus>,
    /// Every batch the recorder commits, for live followers.
    pub events: RunEvents,
    /// Whether cron schedules and file watches fire.
    pub triggers: bool,
}

/// Builds the routes of the daemon's HTTP front ends, served on its address.
pub type FrontEnds = Box<dyn FnOnce(Arc<DaemonContext>) -> axum::Router + Send>;

pub async fn run(config: DaemonConfig, front_ends: FrontEnds) -> Result<(), DaemonError> {
    refuse_bad_config(&config)?;
    let starting = say_starting(&config)?;
    let store = take_store(&config)?;
    let runtime = Runtime::start(&config, store);
    let listener = listen(config.addr).await?;
    let predictions = start_prediction_server(&config).await?;
    let context = publish_daemon_file(&config, &runtime, &listener, predictions.as_ref())?;
    drop(starting);
    let stop = stop_on_signal()?;
    let mut triggers = config
        .triggers
        .then(|| TriggerSet::start(&runtime.dispatcher, config.workdir.clone(), config.debounce));
    if config.triggers {
        recovery::take_up_after_crash(&runtime.dispatcher);
    }
    let servers = HttpServers::start(listener, front_ends(context), predictions);
    follow_dag_directory(&config, &runtime, &mut triggers, &stop).await;

    if let Some(triggers) = triggers {
        triggers.stop().await;
    }
    runtime.dispatcher.drain(config.grace).await;
    // The last runs' hooks, bounded like `dag run`'s.
    runtime
        .dispatcher
        .engine
        .notifications
        .wait_idle(Duration::from_secs(20))
        .await;
    servers.stop().await;
    runtime.close().await?;
    info::remove_own(&config.state_dir);
    tracing::info!("daemon stopped");
    Ok(())
}

/// Refuses to start a second daemon on one state directory, a public
/// address without a token, or an invalid serving configuration.
fn refuse_bad_config(config: &DaemonConfig) -> Result<(), DaemonError> {
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
    if let Some(token) = &config.token {
        crate::auth::check_token(token).map_err(DaemonError::WeakToken)?;
    }
    if let Some(serve) = &config.serve {
        serve.check().map_err(DaemonError::Serve)?;
    }
    Ok(())
}

/// Tells CLI commands that a daemon is starting, so that they wait for it
/// instead of finding the store held and giving up.
fn say_starting(config: &DaemonConfig) -> Result<info::Starting, DaemonError> {
    info::mark_starting(&config.state_dir).map_err(|source| DaemonError::InfoFile {
        path: config
            .state_dir
            .join(info::STARTING_FILE)
            .display()
            .to_string(),
        source,
    })
}

/// Opens the store (the daemon holds it from now on, and shares it with
/// the commands it runs for clients).
fn take_store(config: &DaemonConfig) -> Result<Arc<Store>, DaemonError> {
    std::fs::create_dir_all(&config.state_dir).map_err(|source| DaemonError::InfoFile {
        path: config.state_dir.display().to_string(),
        source,
    })?;
    let (store, _) =
        crate::workspace::open_exclusive(&config.state_dir).map_err(DaemonError::Store)?;
    let store = Arc::new(store);
    crate::workspace::share_daemon_store(Arc::clone(&store));
    Ok(store)
}

/// The engine, the recorder and the run queue, with every DAG loaded.
struct Runtime {
    dispatcher: Arc<Dispatcher>,
    registry: Arc<dag_operators::Registry>,
    recorder: Recorder,
    events: RunEvents,
}

impl Runtime {
    fn start(config: &DaemonConfig, store: Arc<Store>) -> Self {
        let slot = Arc::new(crate::ops::SubmitSlot::default());
        let registry = Arc::new(crate::ops::registry_with(
            Arc::clone(&slot) as Arc<dyn crate::ops::Submit>
        ));
        let events = RunEvents::default();
        let recorder = Recorder::spawn(Arc::clone(&store), Some(events.observer()));
        let engine = Engine {
            registry: Arc::clone(&registry),
            store,
            recorder: recorder.handle(),
            workdir: config.workdir.clone(),
            state_dir: config.state_dir.clone(),
            log_limit: config.log_limit,
            notifications: Default::default(),
        };
        let mut dags = DagSet::with_limits(daemon_parse_limits()).with_env(config.env.clone());
        log_reload(&dags.reload(&config.dags_dir, &registry));
        let dispatcher = Dispatcher::new(engine, dags);
        slot.set(Arc::new(Arc::downgrade(&dispatcher)));
        Self {
            dispatcher,
            registry,
            recorder,
            events,
        }
    }

    /// Writes everything recorded to disk and stops the recorder.
    async fn close(self) -> Result<(), DaemonError> {
        let Self {
            dispatcher,
            recorder,
            ..
        } = self;
        let flushed = dispatcher.engine.recorder.flush().await;
        drop(dispatcher);
        let finished = tokio::task::spawn_blocking(move || recorder.finish())
            .await
            .map_err(|e| DaemonError::Runtime(e.to_string()))?;
        flushed.map_err(|e| DaemonError::Runtime(error_chain(&e)))?;
        finished.map_err(|e| DaemonError::Runtime(error_chain(&e)))
    }
}

async fn listen(addr: SocketAddr) -> Result<tokio::net::TcpListener, DaemonError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Bind { addr, source })
}

/// Binds the prediction server (`--serve`), if asked for.
async fn start_prediction_server(
    config: &DaemonConfig,
) -> Result<Option<(Server, ServingStatus)>, DaemonError> {
    let Some(serve) = config.serve.clone() else {
        return Ok(None);
    };
    let server = Server::bind(serve).await.map_err(DaemonError::Serve)?;
    let status = server.status().map_err(DaemonError::Serve)?;
    if !server.is_ready() {
        tracing::warn!(
            "no verified model for the served alias yet; `/ready` answers 503 until it points at one"
        );
    }
    Ok(Some((server, status)))
}

/// Writes `daemon.json`, from which the CLI finds this daemon, once every
/// address it names listens.
fn publish_daemon_file(
    config: &DaemonConfig,
    runtime: &Runtime,
    listener: &tokio::net::TcpListener,
    predictions: Option<&(Server, ServingStatus)>,
) -> Result<Arc<DaemonContext>, DaemonError> {
    let addr = listener.local_addr().map_err(|source| DaemonError::Bind {
        addr: config.addr,
        source,
    })?;
    let daemon_info = DaemonInfo {
        pid: std::process::id(),
        addr,
        serve_addr: predictions.map(|(_, status)| status.addr()),
        token_required: config.token.is_some(),
        started_at_ms: now_ms(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        workdir: config.workdir.clone(),
    };
    // Notifications link to the run's page in the web UI on this address.
    runtime
        .dispatcher
        .engine
        .notifications
        .set_link_base(format!("http://{addr}"));
    info::write(&config.state_dir, &daemon_info).map_err(|source| DaemonError::InfoFile {
        path: info::path(&config.state_dir).display().to_string(),
        source,
    })?;
    Ok(Arc::new(DaemonContext {
        dispatcher: Arc::clone(&runtime.dispatcher),
        info: daemon_info,
        token: config.token.clone(),
        state_dir: config.state_dir.clone(),
        dags_dir: config.dags_dir.clone(),
        serving: predictions.map(|(_, status)| status.clone()),
        events: runtime.events.clone(),
        triggers: config.triggers,
    }))
}

/// A token cancelled by SIGTERM or SIGINT. Registered before anything runs:
/// a signal arriving earlier would kill the process without draining.
fn stop_on_signal() -> Result<CancellationToken, DaemonError> {
    let stop = CancellationToken::new();
    for kind in [SignalKind::interrupt(), SignalKind::terminate()] {
        let mut stream = signal(kind).map_err(|e| DaemonError::Runtime(e.to_string()))?;
        let stop = stop.clone();
        tokio::spawn(async move {
            if stream.recv().await.is_some() {
                // Said at the default verbosity, with the runs' starts and ends.
                tracing::info!(target: "dag::runs", "signal received: draining");
                stop.cancel();
            }
        });
    }
    Ok(stop)
}

/// The front ends on the daemon's address and the prediction server; both
/// answer until the drain is over.
struct HttpServers {
    stop: CancellationToken,
    api: JoinHandle<std::io::Result<()>>,
    predictions: Option<JoinHandle<Result<(), ServeError>>>,
}

impl HttpServers {
    fn start(
        listener: tokio::net::TcpListener,
        routes: axum::Router,
        predictions: Option<(Server, ServingStatus)>,
    ) -> Self {
        let stop = CancellationToken::new();
        let predictions = predictions.map(|(server, status)| {
            tracing::info!(addr = %status.addr(), "serving predictions");
            let stop = stop.clone();
            tokio::spawn(server.run(async move { stop.cancelled().await }))
        });
        let addr = listener.local_addr().ok();
        let api = {
            let stop = stop.clone();
            tokio::spawn(async move {
                axum::serve(listener, routes)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await
            })
        };
        tracing::info!(addr = ?addr, "daemon listening");
        Self {
            stop,
            api,
            predictions,
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        match self.api.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("API server ended with an error: {e}"),
            Err(e) => tracing::warn!("API server task failed: {e}"),
        }
        if let Some(predictions) = self.predictions {
            match predictions.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!("prediction server ended with an error: {}", error_chain(&e))
                }
                Err(e) => tracing::warn!("prediction server task failed: {e}"),
            }
        }
    }
}

/// Until `stop`: reloads the DAG directory when it changes (watched,
/// confirmed by content hash; the interval is the fallback where watching
/// fails) and keeps the triggers in step with it.
async fn follow_dag_directory(
    config: &DaemonConfig,
    runtime: &Runtime,
    triggers: &mut Option<TriggerSet>,
    stop: &CancellationToken,
) {
    let (edits_tx, mut edits) = mpsc::unbounded_channel::<Fire>();
    let watching = match watch::spawn(
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
            _ = async { edits.recv().await }, if watching.is_some() => {
                reload.reset_immediately();
            }
            _ = reload.tick() => {
                let report =
                    reload_off_loop(&runtime.dispatcher, &config.dags_dir, &runtime.registry).await;
                if !report.is_empty() {
                    log_reload(&report);
                    if let Some(triggers) = triggers {
                        triggers.sync();
                    }
                }
            }
        }
    }
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
