//! [`RunEvents`]: every batch the recorder commits, broadcast to whoever
//! follows runs live (the web UI's server-sent events). A follower that
//! falls behind is told how many batches it missed and reads the store
//! again; the recorder never waits for followers.

use std::sync::Arc;

use dag_state::Write;
use tokio::sync::{broadcast, mpsc};

use crate::record::Observer;

/// Batches kept for a slow follower before it lags.
const CAPACITY: usize = 1024;

/// Committed batches, in commit order.
#[derive(Clone)]
pub struct RunEvents {
    sender: broadcast::Sender<Arc<Vec<Write>>>,
}

impl Default for RunEvents {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl RunEvents {
    /// An observer for [`Recorder::spawn`](crate::record::Recorder::spawn)
    /// whose batches this broadcasts; forwarding stops with the recorder.
    /// Must be called inside a tokio runtime.
    pub fn observer(&self) -> Observer {
        let (observer, mut batches) = mpsc::unbounded_channel::<Arc<Vec<Write>>>();
        let sender = self.sender.clone();
        tokio::spawn(async move {
            while let Some(batch) = batches.recv().await {
                // No follower is not an error.
                let _ = sender.send(batch);
            }
        });
        observer
    }

    /// Batches committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Vec<Write>>> {
        self.sender.subscribe()
    }

    /// Sends a batch to followers, as the recorder's observer does.
    pub fn publish(&self, batch: Arc<Vec<Write>>) {
        let _ = self.sender.send(batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn committed_batches_reach_every_follower_in_order() {
        let events = RunEvents::default();
        let observer = events.observer();
        let mut first = events.subscribe();
        let mut second = events.subscribe();
        for n in 0..3 {
            let run = dag_state::Write::Event(dag_state::EventRecord {
                run_id: format!("r{n}"),
                seq: 0,
                at_ms: 0,
                kind: "run_started".into(),
                task_id: None,
                detail: serde_json::Value::Null,
            });
            assert!(observer.send(Arc::new(vec![run])).is_ok());
        }
        for follower in [&mut first, &mut second] {
            for n in 0..3 {
                let batch = follower.recv().await;
                let id = batch.ok().and_then(|b| match b.first() {
                    Some(dag_state::Write::Event(e)) => Some(e.run_id.clone()),
                    _ => None,
                });
                assert_eq!(id, Some(format!("r{n}")));
            }
        }
    }
}
