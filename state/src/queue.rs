//! Runs accepted but not started, and interruptions nobody has handled.
//!
//! A queue owner (the daemon) answers "accepted" only after
//! [`Store::enqueue_run`] returned: the run's `queued` record and the
//! request to start it from are then on disk, so after a crash the run is
//! still there to start or to end with a reason — never a run id that
//! answers "no such run". Writing the run's record in any other status
//! (started, cancelled) removes its request in the same transaction.
//!
//! Open-time repair marks runs a dead process left `running` as
//! `interrupted` and remembers each in `interruptions`, so that whoever
//! decides about them (the daemon resuming runs of DAGs with
//! `resume_interrupted`) still finds them when another process opened the
//! store first. Writing a run resumed from one, or
//! [`Store::acknowledge_interruptions`], forgets it.

use serde_json::{Value, json};

use crate::trees::TreeId;
use crate::{
    EventRecord, QueuedRequest, RunRecord, RunStatus, StateError, Store, Write, codec, keys,
};

impl Store {
    /// Records `run` (which must be `queued`) and the `request` to start
    /// it from; durable when this returns.
    pub fn enqueue_run(&self, run: RunRecord, request: Value) -> Result<(), StateError> {
        if run.status != RunStatus::Queued {
            return Err(StateError::NotQueued {
                run_id: run.run_id,
                status: format!("{:?}", run.status).to_lowercase(),
            });
        }
        let queued = QueuedRequest {
            run_id: run.run_id.clone(),
            queued_at_ms: run.started_at_ms,
            request,
        };
        self.commit(vec![Write::Run(run), Write::Queued(queued)])
    }

    /// Queued runs that have not started, in the order they were created,
    /// with their requests.
    pub fn queued_runs(&self) -> Result<Vec<(RunRecord, QueuedRequest)>, StateError> {
        let tree = TreeId::QueuedRequests;
        let mut found = Vec::new();
        for entry in self.trees.get(tree).iter() {
            let (key, value) = entry?;
            let request: QueuedRequest = codec::decode(tree.name(), &key, &value)?;
            let Some(run) = self.run(&request.run_id)? else {
                continue;
            };
            if run.status != RunStatus::Queued {
                continue;
            }
            let seq = self.run_creation_seq(&run.run_id)?;
            found.push((seq, run, request));
        }
        found.sort_by_key(|(seq, _, _)| *seq);
        Ok(found
            .into_iter()
            .map(|(_, run, request)| (run, request))
            .collect())
    }

    /// Ends a queued run that will never start: `cancelled`, with a
    /// `run_dropped` event saying `reason`. False if the run is not queued.
    pub fn drop_queued_run(
        &self,
        run_id: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<bool, StateError> {
        let Some(mut run) = self.run(run_id)? else {
            return Ok(false);
        };
        if run.status != RunStatus::Queued {
            return Ok(false);
        }
        run.status = RunStatus::Cancelled;
        run.finished_at_ms = Some(now_ms);
        self.commit(vec![
            Write::Run(run),
            Write::Event(EventRecord {
                run_id: run_id.to_owned(),
                seq: 0,
                at_ms: now_ms,
                kind: "run_dropped".into(),
                task_id: None,
                detail: json!({ "reason": reason }),
            }),
        ])?;
        Ok(true)
    }

    /// Runs repair marked `interrupted` that nobody has resumed or
    /// acknowledged, oldest first.
    pub fn unhandled_interruptions(&self) -> Result<Vec<RunRecord>, StateError> {
        let tree = TreeId::Interruptions;
        let mut found = Vec::new();
        for entry in self.trees.get(tree).iter() {
            let (key, _) = entry?;
            let run_id = codec::decode_text(tree.name(), &key, &key)?;
            if let Some(run) = self.run(run_id)? {
                found.push((self.run_creation_seq(run_id)?, run));
            }
        }
        found.sort_by_key(|(seq, _)| *seq);
        Ok(found.into_iter().map(|(_, run)| run).collect())
    }

    /// Forgets these interruptions: someone decided about them.
    pub fn acknowledge_interruptions(&self, run_ids: &[String]) -> Result<(), StateError> {
        if run_ids.is_empty() {
            return Ok(());
        }
        let tree = self.trees.get(TreeId::Interruptions);
        let mut batch = sled::Batch::default();
        for run_id in run_ids {
            keys::check_part("run id", run_id)?;
            batch.remove(run_id.as_bytes());
        }
        tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    fn run_creation_seq(&self, run_id: &str) -> Result<u64, StateError> {
        Ok(self
            .trees
            .get(TreeId::RunSeq)
            .get(run_id.as_bytes())?
            .and_then(|bytes| keys::trailing_seq(&bytes))
            .unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{TestResult, run};
    use crate::{RunStatus, Store, Write};
    use serde_json::json;

    #[test]
    fn queued_runs_survive_a_reopen_in_order_and_leave_the_queue_when_they_start() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state");
        {
            let (store, _) = Store::open(&path)?;
            for id in ["q2", "q1", "q3"] {
                store.enqueue_run(run(id, "d", RunStatus::Queued), json!({ "id": id }))?;
            }
        }
        let (store, report) = Store::open(&path)?;
        assert!(
            report.interrupted_runs.is_empty(),
            "queued runs are not repaired"
        );
        let queued: Vec<_> = store
            .queued_runs()?
            .into_iter()
            .map(|(run, request)| (run.run_id, request.request))
            .collect();
        assert_eq!(
            queued,
            vec![
                ("q2".to_string(), json!({"id": "q2"})),
                ("q1".to_string(), json!({"id": "q1"})),
                ("q3".to_string(), json!({"id": "q3"})),
            ]
        );
        store.commit(vec![Write::Run(run("q1", "d", RunStatus::Running))])?;
        assert!(store.drop_queued_run("q3", "shutting down", 5)?);
        assert!(!store.drop_queued_run("q1", "not queued any more", 5)?);
        let left: Vec<_> = store
            .queued_runs()?
            .into_iter()
            .map(|(r, _)| r.run_id)
            .collect();
        assert_eq!(left, ["q2"]);
        let dropped = store.run("q3")?.ok_or("q3 is gone")?;
        assert_eq!(dropped.status, RunStatus::Cancelled);
        let events = store.events("q3")?;
        assert_eq!(events.last().map(|e| e.kind.as_str()), Some("run_dropped"));
        assert_eq!(
            events.last().map(|e| e.detail["reason"].clone()),
            Some(json!("shutting down"))
        );
        Ok(())
    }

    #[test]
    fn only_queued_records_are_accepted_into_the_queue() -> TestResult {
        let (_dir, store) = crate::test_support::temp_store()?;
        let result = store.enqueue_run(run("r", "d", RunStatus::Running), json!(null));
        assert!(
            matches!(result, Err(crate::StateError::NotQueued { .. })),
            "{result:?}"
        );
        assert!(store.run("r")?.is_none());
        Ok(())
    }

    #[test]
    fn an_interruption_stays_for_the_next_opener_until_resumed_or_acknowledged() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state");
        {
            let (store, _) = Store::open(&path)?;
            store.commit(vec![
                Write::Run(run("a", "d", RunStatus::Running)),
                Write::Run(run("b", "d", RunStatus::Running)),
            ])?;
        }
        // The first opener (say `dag runs`) repairs...
        {
            let (_, report) = Store::open(&path)?;
            assert_eq!(report.interrupted_runs, ["a", "b"]);
        }
        // ... and the next one (the daemon) still learns about both.
        let (store, report) = Store::open(&path)?;
        assert!(report.interrupted_runs.is_empty());
        let ids = |store: &Store| -> Result<Vec<String>, crate::StateError> {
            Ok(store
                .unhandled_interruptions()?
                .into_iter()
                .map(|r| r.run_id)
                .collect())
        };
        assert_eq!(ids(&store)?, ["a", "b"]);
        let mut resumed = run("c", "d", RunStatus::Running);
        resumed.resumed_from = Some("a".into());
        store.commit(vec![Write::Run(resumed)])?;
        assert_eq!(ids(&store)?, ["b"]);
        store.acknowledge_interruptions(&["b".to_string()])?;
        assert!(ids(&store)?.is_empty());
        Ok(())
    }
}
