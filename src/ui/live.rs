//! Server-sent events: task states of a run or of a DAG's newest run, fed
//! by the recorder's broadcast of committed writes (each stream starts with
//! a snapshot read from the store, so nothing between page and stream is
//! lost), and a log that grows while its attempt runs (read from where the
//! page stopped). Streams end when their run or attempt does, or when the
//! daemon starts draining.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use dag_state::{AttemptStatus, Store};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::UiState;
use super::error::{PageError, blocking};
use super::form::Form;
use super::layout::status_word;
use super::pages::logs::{find_attempt, log_file, read_from};
use crate::views::live::{LiveChange, task_states};

/// How often a stream checks that the daemon is not draining, and a log
/// that it grew.
const POLL: Duration = Duration::from_millis(250);
/// The most of a log one event carries.
const CHUNK_BYTES: u64 = 64 * 1024;

/// Events from a task, as the body of an SSE response.
struct Events(mpsc::Receiver<Event>);

impl futures_core::Stream for Events {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|event| event.map(Ok))
    }
}

fn stream(events: mpsc::Receiver<Event>) -> Response {
    Sse::new(Events(events))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn event(name: &'static str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(data).unwrap_or_default())
}

/// The run's status and its tasks' states, as one `snapshot` event; and
/// whether the run has finished.
fn snapshot(store: &Store, run_id: &str) -> Result<Option<(Event, bool)>, PageError> {
    let Some(run) = store.run(run_id)? else {
        return Ok(None);
    };
    let finished = run.finished_at_ms.is_some();
    let data = json!({
        "run_id": run.run_id,
        "status": status_word(&run.status),
        "finished": finished,
        "tasks": task_states(store, run_id)?,
    });
    Ok(Some((event("snapshot", &data), finished)))
}

fn change_event(change: &LiveChange) -> Event {
    match change {
        LiveChange::Run { .. } => event("run", change),
        LiveChange::Task { .. } => event("task", change),
    }
}

/// `GET /runs/{id}/events`: `snapshot`, then `task` and `run` events, then
/// `end` when the run finishes.
pub async fn run_events(
    State(ui): State<Arc<UiState>>,
    Path(run_id): Path<String>,
) -> Result<Response, PageError> {
    // Subscribed before the snapshot is read: a write in between arrives
    // twice, never not at all.
    let mut batches = ui.daemon.events.subscribe();
    let store = ui.store();
    let id = run_id.clone();
    let first = blocking(move || snapshot(&store, &id)).await?;
    let pending = ui
        .daemon
        .dispatcher
        .queued()
        .iter()
        .any(|q| q.run_id == run_id)
        || ui
            .daemon
            .dispatcher
            .active()
            .iter()
            .any(|a| a.run_id == run_id);
    if first.is_none() && !pending {
        return Err(PageError::not_found(format!("no run `{run_id}`")));
    }
    let (sender, events) = mpsc::channel(256);
    tokio::spawn(async move {
        if let Some((snapshot, finished)) = first {
            if sender.send(snapshot).await.is_err() {
                return;
            }
            if finished {
                let _ = sender.send(event("end", &json!({}))).await;
                return;
            }
        }
        let mut tick = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                batch = batches.recv() => match batch {
                    Ok(batch) => {
                        for change in crate::views::live::live_changes(&batch) {
                            if change.run_id() != run_id {
                                continue;
                            }
                            if sender.send(change_event(&change)).await.is_err() {
                                return;
                            }
                            if matches!(change, LiveChange::Run { finished: true, .. }) {
                                let _ = sender.send(event("end", &json!({}))).await;
                                return;
                            }
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let store = ui.store();
                        let id = run_id.clone();
                        match blocking(move || snapshot(&store, &id)).await {
                            Ok(Some((snapshot, finished))) => {
                                if sender.send(snapshot).await.is_err() || finished {
                                    return;
                                }
                            }
                            Ok(None) => {}
                            Err(_) => return,
                        }
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    if sender.is_closed() || !ui.daemon.dispatcher.is_accepting() {
                        return;
                    }
                }
            }
        }
    });
    Ok(stream(events))
}

/// `GET /dags/{name}/events`: the newest run of the DAG (a `run` event and
/// its tasks' states), then every change to runs of the DAG.
pub async fn dag_events(
    State(ui): State<Arc<UiState>>,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let dag = super::pages::find_dag(&ui, &name)?.dag.name.clone();
    let mut batches = ui.daemon.events.subscribe();
    let store = ui.store();
    let latest_of = dag.clone();
    let initial = blocking(move || {
        let Some(run) = store.runs(Some(&latest_of), 1)?.into_iter().next() else {
            return Ok(Vec::new());
        };
        let mut changes = vec![LiveChange::Run {
            run_id: run.run_id.clone(),
            dag: run.dag.clone(),
            status: run.status,
            finished: run.finished_at_ms.is_some(),
        }];
        for (task_id, state) in task_states(&store, &run.run_id)? {
            changes.push(LiveChange::Task {
                run_id: run.run_id.clone(),
                task_id,
                state,
            });
        }
        Ok(changes)
    })
    .await?;
    let (sender, events) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut runs: BTreeSet<String> = BTreeSet::new();
        for change in &initial {
            runs.insert(change.run_id().to_string());
            if sender.send(change_event(change)).await.is_err() {
                return;
            }
        }
        let mut tick = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                batch = batches.recv() => match batch {
                    Ok(batch) => {
                        for change in crate::views::live::live_changes(&batch) {
                            if let LiveChange::Run { run_id, dag: of, .. } = &change
                                && *of == dag
                            {
                                runs.insert(run_id.clone());
                            }
                            if runs.contains(change.run_id())
                                && sender.send(change_event(&change)).await.is_err()
                            {
                                return;
                            }
                        }
                    }
                    // A follower that fell behind reloads the page's state.
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    if sender.is_closed() || !ui.daemon.dispatcher.is_accepting() {
                        return;
                    }
                }
            }
        }
    });
    Ok(stream(events))
}

/// `GET /runs/{id}/logs/{task}/stream?attempt=N&offset=M`: `chunk` events
/// (`{offset, text}`) as the log grows from `offset`, then `end`
/// (`{status}`) once the attempt has finished and everything is sent.
pub async fn log_stream(
    State(ui): State<Arc<UiState>>,
    Path((run_id, task)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = Form::parse(query.as_deref().unwrap_or(""));
    let number = |name: &str| {
        query
            .get(name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| PageError::bad_request(format!("`{name}` must be a number")))
            })
            .transpose()
    };
    let attempt = number("attempt")?
        .map(|n| u32::try_from(n).map_err(|_| PageError::bad_request("`attempt` is too large")))
        .transpose()?;
    let mut offset = number("offset")?.unwrap_or(0);
    let store = ui.store();
    let (id, name) = (run_id.clone(), task.clone());
    let (found, _) = blocking(move || find_attempt(&store, &id, &name, attempt)).await?;
    let number = found.attempt;
    let (sender, events) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        loop {
            tick.tick().await;
            if sender.is_closed() || !ui.daemon.dispatcher.is_accepting() {
                return;
            }
            let store = ui.store();
            let state_dir = ui.daemon.state_dir.clone();
            let (id, name) = (run_id.clone(), task.clone());
            let read = blocking(move || {
                // The status first: what is read after it includes all the
                // attempt wrote if it had finished.
                let (attempt, _) = find_attempt(&store, &id, &name, Some(number))?;
                let text = match log_file(&state_dir, &attempt)? {
                    Some(path) => Some(
                        read_from(&path, offset, CHUNK_BYTES)
                            .map_err(|e| PageError::internal(&e))?,
                    ),
                    None => None,
                };
                Ok((attempt.status, text))
            })
            .await;
            let Ok((status, text)) = read else {
                return;
            };
            let mut sent = false;
            if let Some((text, next)) = text
                && !text.is_empty()
            {
                sent = true;
                if sender
                    .send(event("chunk", &json!({ "offset": offset, "text": text })))
                    .await
                    .is_err()
                {
                    return;
                }
                offset = next;
            }
            if status != AttemptStatus::Running && !sent {
                let _ = sender
                    .send(event("end", &json!({ "status": status_word(&status) })))
                    .await;
                return;
            }
        }
    });
    Ok(stream(events))
}
