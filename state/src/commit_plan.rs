//! [`CommitPlan`]: turns a group of [`Write`]s into one sled batch per tree,
//! then applies all batches in a single multi-tree transaction.
//!
//! Planning only reads (the current run creation seq, the last event seq of
//! a run); the store serialises commits, so what planning reads cannot change
//! before the batches are applied. Index entries are upserts keyed so that
//! rewriting a record rewrites the same entries; an entry left behind by a
//! record that changed (a task whose outputs changed) is filtered out by the
//! readers, which always check the record it points at.

use std::collections::HashMap;

use sled::Transactional;

use crate::keys;
use crate::trees::{TREE_COUNT, TreeId, Trees};
use crate::{
    AttemptRecord, EventRecord, QueuedRequest, RunRecord, RunStatus, StateError, TaskRecord,
    TaskStatus, Write, codec,
};

pub(crate) struct CommitPlan<'a> {
    trees: &'a Trees,
    batches: [sled::Batch; TREE_COUNT],
    touched: [bool; TREE_COUNT],
    /// Creation seqs of the runs this commit touched (read or assigned).
    run_seqs: HashMap<String, u64>,
    /// The next creation seq to assign, once read.
    next_run_seq: Option<u64>,
    /// The next event seq of each run this commit appends to.
    next_event_seqs: HashMap<String, u64>,
}

impl<'a> CommitPlan<'a> {
    pub(crate) fn new(trees: &'a Trees) -> Self {
        Self {
            trees,
            batches: std::array::from_fn(|_| sled::Batch::default()),
            touched: [false; TREE_COUNT],
            run_seqs: HashMap::new(),
            next_run_seq: None,
            next_event_seqs: HashMap::new(),
        }
    }

    pub(crate) fn add(&mut self, write: &Write) -> Result<(), StateError> {
        match write {
            Write::Run(run) => self.add_run(run),
            Write::Task(task) => self.add_task(task),
            Write::Attempt(attempt) => self.add_attempt(attempt),
            Write::Event(event) => self.add_event(event.clone()),
            Write::Queued(request) => self.add_queued(request),
        }
    }

    /// Remembers that repair interrupted `run_id`, until a run resumed from
    /// it is written or the interruption is acknowledged.
    pub(crate) fn add_interruption(&mut self, run_id: &str) -> Result<(), StateError> {
        keys::check_part("run id", run_id)?;
        self.put(TreeId::Interruptions, run_id.as_bytes(), &[][..]);
        Ok(())
    }

    pub(crate) fn remove_interruption(&mut self, run_id: &str) {
        self.delete(TreeId::Interruptions, run_id.as_bytes());
    }

    fn add_queued(&mut self, request: &QueuedRequest) -> Result<(), StateError> {
        keys::check_part("run id", &request.run_id)?;
        self.put_record(
            TreeId::QueuedRequests,
            request.run_id.as_bytes().to_vec(),
            request,
        )
    }

    /// Applies every batch atomically. A multi-tree transaction rather than
    /// one independent batch per tree: a crash between two tree batches
    /// would leave, say, a run `succeeded` but still in `active_runs`, or a
    /// task without its lineage entries. Commits are serialised by the store,
    /// so the transaction never retries on conflict.
    pub(crate) fn apply(self) -> Result<(), StateError> {
        let (trees, batches): (Vec<&sled::Tree>, Vec<sled::Batch>) = self
            .trees
            .all()
            .iter()
            .zip(self.batches)
            .zip(self.touched)
            .filter(|(_, touched)| *touched)
            .map(|(pair, _)| pair)
            .unzip();
        if trees.is_empty() {
            return Ok(());
        }
        trees
            .as_slice()
            .transaction(|views| {
                for (view, batch) in views.iter().zip(&batches) {
                    view.apply_batch(batch)?;
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|error| match error {
                sled::transaction::TransactionError::Storage(error) => StateError::from(error),
                // The closure never aborts.
                sled::transaction::TransactionError::Abort(()) => {
                    StateError::from(sled::Error::ReportableBug("state commit aborted".into()))
                }
            })
    }

    fn put(&mut self, tree: TreeId, key: impl Into<sled::IVec>, value: impl Into<sled::IVec>) {
        self.batches[tree as usize].insert(key, value);
        self.touched[tree as usize] = true;
    }

    fn delete(&mut self, tree: TreeId, key: impl Into<sled::IVec>) {
        self.batches[tree as usize].remove(key);
        self.touched[tree as usize] = true;
    }

    fn put_record<T: serde::Serialize>(
        &mut self,
        tree: TreeId,
        key: Vec<u8>,
        record: &T,
    ) -> Result<(), StateError> {
        let value = codec::encode(tree.name(), &key, record)?;
        self.put(tree, key, value);
        Ok(())
    }

    fn add_run(&mut self, run: &RunRecord) -> Result<(), StateError> {
        keys::check_part("run id", &run.run_id)?;
        keys::check_part("dag name", &run.dag)?;
        let seq = self.run_seq(&run.run_id)?;
        self.put_record(TreeId::Runs, run.run_id.as_bytes().to_vec(), run)?;
        self.put(
            TreeId::RunsByDag,
            keys::dag_key(&run.dag, seq),
            run.run_id.as_bytes(),
        );
        let active_key = run.run_id.as_bytes();
        if matches!(run.status, RunStatus::Queued | RunStatus::Running) {
            self.put(TreeId::ActiveRuns, active_key, &[][..]);
        } else {
            self.delete(TreeId::ActiveRuns, active_key);
        }
        // A run that left the queue (started, or dropped) needs no request.
        if run.status != RunStatus::Queued {
            self.delete(TreeId::QueuedRequests, active_key);
        }
        // Resuming an interrupted run handles its interruption.
        if let Some(earlier) = &run.resumed_from {
            self.remove_interruption(earlier);
        }
        Ok(())
    }

    fn add_task(&mut self, task: &TaskRecord) -> Result<(), StateError> {
        keys::check_part("run id", &task.run_id)?;
        keys::check_part("task id", &task.task_id)?;
        let seq = self.run_seq(&task.run_id)?;
        self.put_record(
            TreeId::Tasks,
            keys::task_key(&task.run_id, &task.task_id),
            task,
        )?;
        let run_id = task.run_id.as_bytes();
        if let (TaskStatus::Succeeded, Some(cache_key)) = (task.status, &task.cache_key) {
            keys::check_part("cache key", cache_key)?;
            self.put(
                TreeId::CacheKeys,
                keys::task_ref_key(cache_key, seq, &task.task_id),
                run_id,
            );
        }
        for output in &task.outputs {
            keys::check_part("artifact path", &output.path)?;
            keys::check_part("artifact digest", &output.digest)?;
            self.put(
                TreeId::PathProducers,
                keys::task_ref_key(&output.path, seq, &task.task_id),
                run_id,
            );
            self.put(
                TreeId::DigestProducers,
                keys::task_ref_key(&output.digest, seq, &task.task_id),
                run_id,
            );
        }
        for input in &task.inputs {
            keys::check_part("artifact digest", &input.digest)?;
            self.put(
                TreeId::DigestConsumers,
                keys::task_ref_key(&input.digest, seq, &task.task_id),
                run_id,
            );
        }
        Ok(())
    }

    fn add_attempt(&mut self, attempt: &AttemptRecord) -> Result<(), StateError> {
        keys::check_part("run id", &attempt.run_id)?;
        keys::check_part("task id", &attempt.task_id)?;
        let key = keys::attempt_key(&attempt.run_id, &attempt.task_id, attempt.attempt);
        self.put_record(TreeId::Attempts, key, attempt)
    }

    fn add_event(&mut self, mut event: EventRecord) -> Result<(), StateError> {
        keys::check_part("run id", &event.run_id)?;
        event.seq = self.next_event_seq(&event.run_id)?;
        self.put_record(
            TreeId::Events,
            keys::event_key(&event.run_id, event.seq),
            &event,
        )
    }

    /// The creation seq of `run_id`, assigning the next one (and recording it
    /// in `run_seq` and `run_order`) the first time the run is written.
    fn run_seq(&mut self, run_id: &str) -> Result<u64, StateError> {
        if let Some(seq) = self.run_seqs.get(run_id) {
            return Ok(*seq);
        }
        let tree = self.trees.get(TreeId::RunSeq);
        let seq = match tree.get(run_id.as_bytes())? {
            Some(bytes) => keys::trailing_seq(&bytes)
                .filter(|_| bytes.len() == 8)
                .ok_or_else(|| StateError::CorruptKey {
                    what: format!(
                        "{} is not a u64",
                        codec::location(TreeId::RunSeq.name(), run_id.as_bytes())
                    ),
                })?,
            None => {
                let seq = match self.next_run_seq {
                    Some(seq) => seq,
                    None => self.last_run_seq()?.map_or(1, |last| last + 1),
                };
                self.next_run_seq = Some(seq + 1);
                self.put(TreeId::RunSeq, run_id.as_bytes(), &keys::seq_bytes(seq)[..]);
                self.put(
                    TreeId::RunOrder,
                    &keys::seq_bytes(seq)[..],
                    run_id.as_bytes(),
                );
                seq
            }
        };
        self.run_seqs.insert(run_id.to_owned(), seq);
        Ok(seq)
    }

    fn last_run_seq(&self) -> Result<Option<u64>, StateError> {
        let Some((key, _)) = self.trees.get(TreeId::RunOrder).last()? else {
            return Ok(None);
        };
        match keys::trailing_seq(&key).filter(|_| key.len() == 8) {
            Some(seq) => Ok(Some(seq)),
            None => Err(StateError::CorruptKey {
                what: codec::location(TreeId::RunOrder.name(), &key),
            }),
        }
    }

    /// Event seqs start at 1 and continue from the run's last stored event,
    /// so the counter is as durable as the events themselves.
    fn next_event_seq(&mut self, run_id: &str) -> Result<u64, StateError> {
        let seq = match self.next_event_seqs.get(run_id) {
            Some(seq) => *seq,
            None => {
                let last = self
                    .trees
                    .get(TreeId::Events)
                    .scan_prefix(keys::prefix(run_id))
                    .next_back();
                match last.transpose()? {
                    Some((key, _)) => {
                        keys::trailing_seq(&key).map(|seq| seq + 1).ok_or_else(|| {
                            StateError::CorruptKey {
                                what: codec::location(TreeId::Events.name(), &key),
                            }
                        })?
                    }
                    None => 1,
                }
            }
        };
        self.next_event_seqs.insert(run_id.to_owned(), seq + 1);
        Ok(seq)
    }
}
