//! [`Server`]: binds the listener, loads the models, starts the alias
//! watchers and the prediction log, and serves until told to stop.
//! [`BackgroundServer`] runs one on a thread of its own for callers that are
//! not async, such as the deployment smoke test.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;

use axum::serve::ListenerExt;
use dag_operators::models::ModelRegistry;

use crate::serve::app::{AppState, Challenger};
use crate::serve::handlers::router;
use crate::serve::metrics::{Metrics, Role};
use crate::serve::prediction_log::PredictionLog;
use crate::serve::slot::ModelSlot;
use crate::serve::watcher::AliasWatcher;
use crate::serve::{LogConfig, ServeConfig, ServeError};

pub struct Server {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    /// One per watcher thread; dropping them stops the watchers.
    stops: Vec<Sender<()>>,
    watchers: Vec<JoinHandle<()>>,
}

impl Server {
    /// Checks `config`, binds the address and loads what the aliases point
    /// at. A missing or unverifiable model does not stop the server: it
    /// starts not ready and picks the model up once the alias points at a
    /// good one.
    pub async fn bind(config: ServeConfig) -> Result<Self, ServeError> {
        config.check()?;
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|source| ServeError::Bind {
                addr: config.addr,
                source,
            })?;
        let metrics = Arc::new(Metrics::default());
        let watcher = |alias: &str, role: Role, slot: &Arc<ModelSlot>| {
            let registry = ModelRegistry::open(&config.state_dir).map_err(ServeError::Registry)?;
            let mut watcher = AliasWatcher::new(
                registry,
                &config.model,
                alias,
                role,
                Arc::clone(slot),
                Arc::clone(&metrics),
            );
            watcher.poll();
            Ok::<_, ServeError>(watcher)
        };
        let champion = Arc::new(ModelSlot::default());
        let mut watchers = vec![watcher(&config.alias, Role::Champion, &champion)?];
        let challenger = match &config.challenger {
            Some(c) => {
                let slot = Arc::new(ModelSlot::default());
                watchers.push(watcher(&c.alias, Role::Challenger, &slot)?);
                Some(Challenger {
                    alias: c.alias.clone(),
                    slot,
                    share: if c.shadow { 0.0 } else { c.share },
                    shadow: c.shadow,
                })
            }
            None => None,
        };
        let log = if config.log.sample > 0.0 {
            let dir = LogConfig::dir(&config.state_dir);
            let log = PredictionLog::start(dir.clone(), &config.log)
                .map_err(|source| ServeError::LogDir { path: dir, source })?;
            Some(Arc::new(log))
        } else {
            None
        };
        let mut server = Self {
            listener,
            state: Arc::new(AppState {
                name: config.model.clone(),
                alias: config.alias.clone(),
                champion,
                challenger,
                metrics,
                log,
                token: config.token.clone().filter(|t| !t.is_empty()),
                invalid: config.invalid,
            }),
            stops: Vec::new(),
            watchers: Vec::new(),
        };
        for watcher in watchers {
            let (stop, stopped) = channel::<()>();
            let interval = config.poll_interval;
            let handle = std::thread::Builder::new()
                .name("alias-watcher".into())
                .spawn(move || watcher.run(interval, &stopped))
                .map_err(|source| ServeError::Thread {
                    what: "alias-watcher",
                    source,
                })?;
            server.stops.push(stop);
            server.watchers.push(handle);
        }
        Ok(server)
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener.local_addr().map_err(ServeError::Serve)
    }

    /// Whether a verified champion is loaded.
    pub fn is_ready(&self) -> bool {
        self.state.champion.get().is_some()
    }

    /// A view of what this server answers with, still valid after
    /// [`run`](Self::run) has taken the server.
    pub fn status(&self) -> Result<ServingStatus, ServeError> {
        Ok(ServingStatus {
            addr: self.local_addr()?,
            state: Arc::clone(&self.state),
        })
    }

    /// Serves until `shutdown` completes, then lets in-flight requests
    /// finish, stops the watchers and flushes the prediction log.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let listener = self.listener.tap_io(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {error}");
            }
        });
        let app = router(Arc::clone(&self.state));
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServeError::Serve);
        drop(self.stops);
        for watcher in self.watchers {
            let _ = watcher.join();
        }
        if let Some(log) = &self.state.log {
            log.close();
        }
        served
    }
}

/// What a running [`Server`] serves: its address, model, alias and the
/// version answering now, for a host process's status (`dag daemon status`).
#[derive(Clone)]
pub struct ServingStatus {
    addr: SocketAddr,
    state: Arc<AppState>,
}

impl ServingStatus {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `{addr, model, alias, ready, version, challenger}`; `version` is null
    /// until a verified model is loaded.
    pub fn describe(&self) -> serde_json::Value {
        let version = |slot: &ModelSlot| slot.get().map(|loaded| loaded.version.version);
        serde_json::json!({
            "addr": self.addr,
            "model": self.state.name,
            "alias": self.state.alias,
            "ready": self.state.champion.get().is_some(),
            "version": version(&self.state.champion),
            "challenger": self.state.challenger.as_ref().map(|c| serde_json::json!({
                "alias": c.alias,
                "version": version(&c.slot),
                "share": c.share,
                "shadow": c.shadow,
            })),
        })
    }
}

impl std::fmt::Debug for ServingStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingStatus")
            .field("addr", &self.addr)
            .field("model", &self.state.name)
            .field("alias", &self.state.alias)
            .finish_non_exhaustive()
    }
}

/// A [`Server`] on its own thread and runtime: bound when [`start`](Self::start)
/// returns, stopped (in-flight requests first) by [`stop`](Self::stop) or on drop.
pub struct BackgroundServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), ServeError>>>,
}

impl BackgroundServer {
    /// Binds `config.addr` (port 0 picks a free port) and starts serving.
    /// Like [`Server::bind`], a missing model does not stop it: `/ready`
    /// says when one is loaded.
    pub fn start(config: ServeConfig) -> Result<Self, ServeError> {
        let (bound, bound_rx) = channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("serve".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(ServeError::Runtime)?;
                runtime.block_on(async move {
                    let server = match Server::bind(config).await {
                        Ok(server) => server,
                        Err(error) => {
                            let _ = bound.send(Err(error));
                            return Ok(());
                        }
                    };
                    let _ = bound.send(server.local_addr());
                    server
                        .run(async {
                            let _ = stopped.await;
                        })
                        .await
                })
            })
            .map_err(|source| ServeError::Thread {
                what: "serve",
                source,
            })?;
        match bound_rx.recv() {
            Ok(Ok(addr)) => Ok(Self {
                addr,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Ok(Err(error)) => {
                drop(stop);
                let _ = thread.join();
                Err(error)
            }
            // The thread ended before binding: its own error says why.
            Err(_) => Err(join(thread).err().unwrap_or_else(|| {
                ServeError::Serve(std::io::Error::other("the server stopped before binding"))
            })),
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the
    /// server thread.
    pub fn stop(mut self) -> Result<(), ServeError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.thread.take().map_or(Ok(()), join)
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

fn join(thread: JoinHandle<Result<(), ServeError>>) -> Result<(), ServeError> {
    thread.join().unwrap_or_else(|_| {
        Err(ServeError::Serve(std::io::Error::other(
            "the server thread panicked",
        )))
    })
}
