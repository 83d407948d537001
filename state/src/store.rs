//! [`Store`]: the typed API over the sled database — opening (with repair),
//! the group commit, and reads of records. Index-backed lineage and cache
//! queries live in `lineage`; key layouts in `keys`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::de::DeserializeOwned;

use crate::commit_plan::CommitPlan;
use crate::keys;
use crate::trees::{TreeId, Trees};
use crate::{
    AttemptRecord, EventRecord, RunRecord, StateError, TaskRecord, Write, codec, open, recovery,
};

/// Bumped on any incompatible change of the on-disk layout.
pub const FORMAT_VERSION: u32 = 1;

/// What [`Store::open`] repaired: runs a dead process left `running`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    pub interrupted_runs: Vec<String>,
}

pub struct Store {
    pub(crate) db: sled::Db,
    pub(crate) trees: Trees,
    path: PathBuf,
    /// Serialises commits: planning reads counters (run creation seq, event
    /// seq) that must not change before the plan is applied.
    commit_lock: Mutex<()>,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`. Fails with
    /// [`StateError::Locked`] if another process holds it, and with
    /// [`StateError::FormatVersion`] on a layout this build cannot read.
    /// Any run, task or attempt still `running` was left by a dead process
    /// (sled admits one process at a time) and is marked `interrupted`.
    pub fn open(dir: &Path) -> Result<(Self, OpenReport), StateError> {
        let db = open::open_db(dir)?;
        let trees = Trees::open(&db)?;
        let store = Self {
            db,
            trees,
            path: dir.to_path_buf(),
            commit_lock: Mutex::new(()),
        };
        let interrupted_runs = recovery::interrupt_dead_runs(&store)?;
        Ok((store, OpenReport { interrupted_runs }))
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies `writes` and flushes once; durable when this returns.
    /// Events get their `seq` assigned here.
    ///
    /// All writes of one call are atomic: after a crash either all of them
    /// or none are visible.
    pub fn commit(&self, writes: Vec<Write>) -> Result<(), StateError> {
        if writes.is_empty() {
            return Ok(());
        }
        // The lock guards no data, only ordering, so a poisoned lock is safe
        // to take over.
        let _guard = self
            .commit_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut plan = CommitPlan::new(&self.trees);
        for write in writes {
            plan.add(write)?;
        }
        plan.apply()?;
        self.db.flush()?;
        Ok(())
    }

    pub fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StateError> {
        self.record(TreeId::Runs, run_id.as_bytes())
    }

    /// Runs newest first (by creation order), optionally of one DAG, at most `limit`.
    pub fn runs(&self, dag: Option<&str>, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        let mut runs = Vec::new();
        if limit == 0 {
            return Ok(runs);
        }
        let entries = match dag {
            Some(dag) => self
                .trees
                .get(TreeId::RunsByDag)
                .scan_prefix(keys::prefix(dag)),
            None => self.trees.get(TreeId::RunOrder).iter(),
        };
        let index = dag.map_or(TreeId::RunOrder, |_| TreeId::RunsByDag);
        for entry in entries.rev() {
            let (key, value) = entry?;
            let run_id = codec::decode_text(index.name(), &key, &value)?;
            // A run referenced before its record was written has no record
            // yet; a run whose DAG changed leaves its old entry behind.
            let Some(run) = self.run(run_id)? else {
                continue;
            };
            if dag.is_some_and(|dag| run.dag != dag) {
                continue;
            }
            runs.push(run);
            if runs.len() == limit {
                break;
            }
        }
        Ok(runs)
    }

    /// Runs that are `queued` or `running`, from the active-run index.
    pub fn active_runs(&self) -> Result<Vec<RunRecord>, StateError> {
        let mut runs = Vec::new();
        for entry in self.trees.get(TreeId::ActiveRuns).iter() {
            let (key, _) = entry?;
            let run_id = codec::decode_text(TreeId::ActiveRuns.name(), &key, &key)?;
            if let Some(run) = self.run(run_id)? {
                runs.push(run);
            }
        }
        Ok(runs)
    }

    /// The tasks of a run, in task-id order.
    pub fn tasks(&self, run_id: &str) -> Result<Vec<TaskRecord>, StateError> {
        self.records_of_run(TreeId::Tasks, run_id)
    }

    /// One task of a run.
    pub fn task(&self, run_id: &str, task_id: &str) -> Result<Option<TaskRecord>, StateError> {
        self.record(TreeId::Tasks, &keys::task_key(run_id, task_id))
    }

    /// The attempts of a run, by task id then attempt number.
    pub fn attempts(&self, run_id: &str) -> Result<Vec<AttemptRecord>, StateError> {
        self.records_of_run(TreeId::Attempts, run_id)
    }

    /// The event log of a run in `seq` order.
    pub fn events(&self, run_id: &str) -> Result<Vec<EventRecord>, StateError> {
        self.records_of_run(TreeId::Events, run_id)
    }

    pub(crate) fn record<T: DeserializeOwned>(
        &self,
        tree: TreeId,
        key: &[u8],
    ) -> Result<Option<T>, StateError> {
        match self.trees.get(tree).get(key)? {
            Some(bytes) => codec::decode(tree.name(), key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn records_of_run<T: DeserializeOwned>(
        &self,
        tree: TreeId,
        run_id: &str,
    ) -> Result<Vec<T>, StateError> {
        self.trees
            .get(tree)
            .scan_prefix(keys::prefix(run_id))
            .map(|entry| {
                let (key, value) = entry?;
                codec::decode(tree.name(), &key, &value)
            })
            .collect()
    }
}
