//! [`TriggerSet`]: the running cron and file-watch triggers of every loaded
//! DAG, kept in step with the DAG directory, and the feeder that turns
//! their fires into submissions.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::clock::{SystemClock, WallClock};
use super::dispatch::{Dispatcher, RunOptions, Submission};
use super::{Fire, cron, watch};
use crate::model::Dag;
use crate::record::error_chain;

/// One DAG's running triggers; dropping it stops them.
struct DagTriggers {
    spec_hash: String,
    cron: Option<CancellationToken>,
    _watch: Option<watch::WatchHandle>,
}

impl Drop for DagTriggers {
    fn drop(&mut self) {
        if let Some(cancel) = &self.cron {
            cancel.cancel();
        }
    }
}

/// Every DAG's triggers, feeding one channel into the dispatcher.
pub struct TriggerSet {
    dispatcher: Arc<Dispatcher>,
    workdir: std::path::PathBuf,
    debounce: std::time::Duration,
    fires: mpsc::UnboundedSender<Fire>,
    feeder: JoinHandle<()>,
    running: BTreeMap<String, DagTriggers>,
}

impl TriggerSet {
    /// Starts the feeder, then the triggers of every loaded DAG.
    pub fn start(
        dispatcher: &Arc<Dispatcher>,
        workdir: std::path::PathBuf,
        debounce: std::time::Duration,
    ) -> Self {
        let (fires, receiver) = mpsc::unbounded_channel::<Fire>();
        let feeder = tokio::spawn(feed(Arc::clone(dispatcher), receiver));
        let mut set = Self {
            dispatcher: Arc::clone(dispatcher),
            workdir,
            debounce,
            fires,
            feeder,
            running: BTreeMap::new(),
        };
        set.sync();
        set
    }

    /// Starts, restarts and stops triggers so they match the loaded DAGs.
    pub fn sync(&mut self) {
        let loaded: Vec<(String, Arc<Dag>, String)> = {
            let dags = self
                .dispatcher
                .dags
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            dags.dags
                .iter()
                .map(|(name, l)| (name.clone(), Arc::clone(&l.dag), l.spec_hash.clone()))
                .collect()
        };
        self.running.retain(|name, t| {
            loaded
                .iter()
                .any(|(n, _, h)| n == name && *h == t.spec_hash)
        });
        for (name, dag, spec_hash) in loaded {
            if self.running.contains_key(&name) {
                continue;
            }
            let triggers = DagTriggers {
                spec_hash,
                cron: self.start_cron(&name, &dag),
                _watch: self.start_watch(&name, &dag),
            };
            self.running.insert(name, triggers);
        }
    }

    fn start_cron(&self, name: &str, dag: &Dag) -> Option<CancellationToken> {
        let schedule = dag.schedule.clone()?;
        let cancel = CancellationToken::new();
        let last = last_cron_fire(&self.dispatcher, name);
        let clock: Arc<dyn WallClock> = Arc::new(SystemClock);
        tracing::info!(dag = %name, schedule = %schedule.expression, "cron trigger started");
        tokio::spawn(cron::run(
            name.to_string(),
            schedule,
            last,
            clock,
            self.fires.clone(),
            cancel.clone(),
        ));
        Some(cancel)
    }

    fn start_watch(&self, name: &str, dag: &Dag) -> Option<watch::WatchHandle> {
        if dag.watch.is_empty() {
            return None;
        }
        match watch::spawn(
            name.to_string(),
            self.workdir.clone(),
            dag.watch.clone(),
            self.debounce,
            self.fires.clone(),
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
    }

    /// Stops every trigger and waits until the fires they already sent
    /// have been submitted.
    pub async fn stop(self) {
        let Self {
            running,
            fires,
            feeder,
            ..
        } = self;
        drop(running);
        drop(fires);
        let _ = feeder.await;
    }
}

/// Submits every fire the triggers send, until they all stop.
async fn feed(dispatcher: Arc<Dispatcher>, mut fires: mpsc::UnboundedReceiver<Fire>) {
    while let Some(fire) = fires.recv().await {
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
}

/// The logical date of the newest cron-triggered run of `dag`, for catch-up.
fn last_cron_fire(dispatcher: &Dispatcher, dag: &str) -> Option<DateTime<Utc>> {
    let runs = dispatcher.engine.store.runs(Some(dag), 500).ok()?;
    runs.iter()
        .filter(|r| r.trigger.kind == "cron")
        .find_map(|r| DateTime::parse_from_rfc3339(&r.logical_date).ok())
        .map(|t| t.with_timezone(&Utc))
}
