//! The recorder: the one writer of the state store.
//!
//! The executor sends [`Write`]s without waiting; a dedicated thread drains
//! whatever has queued up, commits it as one batch (one flush: group commit),
//! and only then forwards the batch to observers such as the progress
//! display. So anything a user has been shown as finished is already durable
//! — a `kill -9` cannot take back a task the terminal reported done.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use dag_state::{StateError, Store, Write};
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

/// Most writes committed in one batch; bounds the latency of a big backlog.
const MAX_BATCH: usize = 8192;

/// How long a batch stays open for more writes after its first, unless
/// someone waits for it (a flush). Every commit is a sled transaction and
/// an fsync; a chain of quick tasks sends a few writes every 100 µs, which
/// this turns into one commit per millisecond instead of several per task.
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

enum Command {
    Write(Box<Write>),
    /// Reply once everything sent before is durable.
    Flush(oneshot::Sender<Result<(), String>>),
}

/// Receives each committed batch, in commit order.
pub type Observer = tokio_mpsc::UnboundedSender<Arc<Vec<Write>>>;

#[derive(Clone)]
pub struct RecorderHandle {
    sender: mpsc::Sender<Command>,
}

impl RecorderHandle {
    /// Queues a write; never blocks. Failures surface at the next [`flush`](Self::flush).
    pub fn write(&self, write: Write) {
        let _ = self.sender.send(Command::Write(Box::new(write)));
    }

    /// Waits until every write sent so far is durable.
    pub async fn flush(&self) -> Result<(), RecordError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Command::Flush(reply))
            .map_err(|_| RecordError::Stopped)?;
        answer
            .await
            .map_err(|_| RecordError::Stopped)?
            .map_err(RecordError::Commit)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the recorder stopped")]
    Stopped,
    #[error("recording run state failed: {0}")]
    Commit(String),
}

pub struct Recorder {
    handle: RecorderHandle,
    thread: Option<JoinHandle<Result<(), StateError>>>,
}

impl Recorder {
    pub fn spawn(store: Arc<Store>, observer: Option<Observer>) -> Self {
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("dag-recorder".into())
            .spawn(move || record_loop(&store, &receiver, observer.as_ref()))
            .ok();
        Self {
            handle: RecorderHandle { sender },
            thread,
        }
    }

    pub fn handle(&self) -> RecorderHandle {
        self.handle.clone()
    }

    /// Commits what is queued and stops the thread.
    pub fn finish(mut self) -> Result<(), RecordError> {
        let Some(thread) = self.thread.take() else {
            return Err(RecordError::Stopped);
        };
        drop(self.handle);
        match thread.join() {
            Ok(result) => result.map_err(|e| RecordError::Commit(error_chain(&e))),
            Err(_) => Err(RecordError::Stopped),
        }
    }
}

fn record_loop(
    store: &Store,
    receiver: &mpsc::Receiver<Command>,
    observer: Option<&Observer>,
) -> Result<(), StateError> {
    let mut failure: Option<String> = None;
    let mut first_error = None;
    while let Ok(first) = receiver.recv() {
        let mut writes = Vec::new();
        let mut replies = Vec::new();
        let mut next = Some(first);
        let close_at = std::time::Instant::now() + LINGER;
        while let Some(command) = next {
            match command {
                Command::Write(write) => writes.push(*write),
                Command::Flush(reply) => replies.push(reply),
            }
            next = if writes.len() >= MAX_BATCH {
                None
            } else if replies.is_empty() {
                let left = close_at.saturating_duration_since(std::time::Instant::now());
                receiver.recv_timeout(left).ok()
            } else {
                receiver.try_recv().ok()
            };
        }
        if !writes.is_empty() && failure.is_none() {
            match store.commit(&writes) {
                Ok(()) => {
                    if let Some(observer) = observer {
                        let _ = observer.send(Arc::new(writes));
                    }
                }
                Err(error) => {
                    tracing::error!(error = %error_chain(&error), "recording run state failed");
                    failure = Some(error_chain(&error));
                    first_error = Some(error);
                }
            }
        }
        for reply in replies {
            let _ = reply.send(failure.clone().map_or(Ok(()), Err));
        }
    }
    first_error.map_or(Ok(()), Err)
}

pub use dag_operators::error_chain;
