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

    /// Whether `dir` holds a store with data (its log file exists and is
    /// not empty), without opening it.
    pub fn exists(dir: &Path) -> bool {
        open::holds_data(dir)
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
    pub fn commit(&self, writes: impl AsRef<[Write]>) -> Result<(), StateError> {
        let writes = writes.as_ref();
        if writes.is_empty() {
            return Ok(());
        }
        self.commit_with(writes, |_| Ok(()))
    }

    /// [`commit`](Self::commit), letting this crate add entries of its own
    /// to the same transaction.
    pub(crate) fn commit_with(
        &self,
        writes: &[Write],
        extra: impl FnOnce(&mut CommitPlan<'_>) -> Result<(), StateError>,
    ) -> Result<(), StateError> {
        // The lock guards no data, only ordering, so a poisoned lock is safe
        // to take over.
        let _guard = self
            .commit_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut plan = CommitPlan::new(&self.trees);
        for (write, superseded) in writes.iter().zip(superseded(writes)) {
            if !superseded {
                plan.add(write)?;
            }
        }
        extra(&mut plan)?;
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

/// Which writes a later write in the same group replaces: a record written
/// twice in one commit (an attempt that started and finished between two
/// commits) is encoded and stored once, as its last version. Events are
/// appended, never replaced.
fn superseded(writes: &[Write]) -> Vec<bool> {
    #[derive(PartialEq, Eq, Hash)]
    enum Key<'a> {
        Run(&'a str),
        Task(&'a str, &'a str),
        Attempt(&'a str, &'a str, u32),
    }
    let mut seen = std::collections::HashSet::with_capacity(writes.len());
    let mut superseded = vec![false; writes.len()];
    for (index, write) in writes.iter().enumerate().rev() {
        let key = match write {
            Write::Run(run) => Key::Run(&run.run_id),
            Write::Task(task) => Key::Task(&task.run_id, &task.task_id),
            Write::Attempt(attempt) => {
                Key::Attempt(&attempt.run_id, &attempt.task_id, attempt.attempt)
            }
            Write::Event(_) | Write::Queued(_) => continue,
        };
        superseded[index] = !seen.insert(key);
    }
    superseded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TestResult, attempt, event, run, task, temp_store};
    use crate::{AttemptStatus, RunStatus, TaskStatus};

    #[test]
    fn run_round_trips() -> TestResult {
        let (_dir, store) = temp_store()?;
        let mut record = run("20240501-120000-ab12", "train", RunStatus::Running);
        record.resumed_from = Some("20240430-120000-cd34".into());
        store.commit(vec![Write::Run(record.clone())])?;
        assert_eq!(store.run(&record.run_id)?, Some(record));
        assert_eq!(store.run("missing")?, None);
        Ok(())
    }

    #[test]
    fn task_round_trips_with_artifacts_and_values() -> TestResult {
        let (_dir, store) = temp_store()?;
        let mut record = task("r1", "clean", TaskStatus::Succeeded);
        record.cache_key = Some("k1".into());
        record.inputs = vec![crate::test_support::artifact("data/raw.csv", "aa")];
        record.outputs = vec![crate::test_support::artifact("data/clean.csv", "bb")];
        store.commit(vec![Write::Task(record.clone())])?;
        assert_eq!(store.tasks("r1")?, vec![record.clone()]);
        assert_eq!(store.task("r1", "clean")?, Some(record));
        Ok(())
    }

    #[test]
    fn attempt_round_trips() -> TestResult {
        let (_dir, store) = temp_store()?;
        let mut record = attempt("r1", "train", 2, AttemptStatus::Failed);
        record.exit_code = Some(3);
        record.error = Some("exit status 3".into());
        store.commit(vec![Write::Attempt(record.clone())])?;
        assert_eq!(store.attempts("r1")?, vec![record]);
        Ok(())
    }

    #[test]
    fn event_round_trips_with_its_assigned_seq() -> TestResult {
        let (_dir, store) = temp_store()?;
        let mut record = event("r1", "task_skipped");
        record.task_id = Some("clean".into());
        record.detail = serde_json::json!({ "reason": "up to date" });
        store.commit(vec![Write::Event(record.clone())])?;
        record.seq = 1;
        assert_eq!(store.events("r1")?, vec![record]);
        Ok(())
    }

    #[test]
    fn rewriting_a_record_replaces_it() -> TestResult {
        let (_dir, store) = temp_store()?;
        store.commit(vec![Write::Task(task("r1", "t", TaskStatus::Running))])?;
        store.commit(vec![Write::Task(task("r1", "t", TaskStatus::Failed))])?;
        let tasks = store.tasks("r1")?;
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].status, TaskStatus::Failed);
        Ok(())
    }

    #[test]
    fn a_record_written_twice_in_one_commit_keeps_its_last_version() -> TestResult {
        let (_dir, store) = temp_store()?;
        store.commit(vec![
            Write::Run(run("r1", "d", RunStatus::Running)),
            Write::Attempt(attempt("r1", "t", 1, AttemptStatus::Running)),
            Write::Event(event("r1", "attempt_started")),
            Write::Task(task("r1", "t", TaskStatus::Running)),
            Write::Attempt(attempt("r1", "t", 1, AttemptStatus::Succeeded)),
            Write::Event(event("r1", "attempt_finished")),
            Write::Task(task("r1", "t", TaskStatus::Succeeded)),
            Write::Run(run("r1", "d", RunStatus::Succeeded)),
        ])?;
        let attempts = store.attempts("r1")?;
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].status, AttemptStatus::Succeeded);
        assert_eq!(store.tasks("r1")?[0].status, TaskStatus::Succeeded);
        assert_eq!(
            store.run("r1")?.map(|r| r.status),
            Some(RunStatus::Succeeded)
        );
        assert!(store.active_runs()?.is_empty(), "the run finished");
        // Events are appended, both of them, in order.
        let kinds: Vec<_> = store.events("r1")?.into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["attempt_started", "attempt_finished"]);
        assert_eq!(store.runs(None, 10)?.len(), 1);
        Ok(())
    }

    #[test]
    fn runs_are_listed_newest_created_first() -> TestResult {
        let (_dir, store) = temp_store()?;
        // Ids deliberately not in creation order: creation order wins.
        for id in ["c", "a", "b"] {
            store.commit(vec![Write::Run(run(id, "train", RunStatus::Queued))])?;
        }
        // Updating an old run does not make it newer.
        store.commit(vec![Write::Run(run("c", "train", RunStatus::Succeeded))])?;
        let ids: Vec<_> = store
            .runs(None, 10)?
            .into_iter()
            .map(|run| run.run_id)
            .collect();
        assert_eq!(ids, ["b", "a", "c"]);
        Ok(())
    }

    #[test]
    fn runs_filter_by_dag_and_respect_the_limit() -> TestResult {
        let (_dir, store) = temp_store()?;
        let mut writes = Vec::new();
        for index in 0..10 {
            let dag = if index % 2 == 0 { "train" } else { "monitor" };
            writes.push(Write::Run(run(
                &format!("r{index}"),
                dag,
                RunStatus::Succeeded,
            )));
        }
        // A dag whose name extends another's must not leak into its listing.
        writes.push(Write::Run(run("r10", "train-extra", RunStatus::Succeeded)));
        store.commit(writes)?;
        let ids: Vec<_> = store
            .runs(Some("train"), 3)?
            .into_iter()
            .map(|run| run.run_id)
            .collect();
        assert_eq!(ids, ["r8", "r6", "r4"]);
        assert_eq!(store.runs(Some("monitor"), 100)?.len(), 5);
        assert_eq!(store.runs(None, 4)?.len(), 4);
        assert!(store.runs(None, 0)?.is_empty());
        assert!(store.runs(Some("nope"), 10)?.is_empty());
        Ok(())
    }

    #[test]
    fn run_moved_to_another_dag_is_listed_only_under_the_new_one() -> TestResult {
        let (_dir, store) = temp_store()?;
        store.commit(vec![Write::Run(run("r1", "old", RunStatus::Queued))])?;
        store.commit(vec![Write::Run(run("r1", "new", RunStatus::Queued))])?;
        assert!(store.runs(Some("old"), 10)?.is_empty());
        assert_eq!(store.runs(Some("new"), 10)?.len(), 1);
        Ok(())
    }

    #[test]
    fn tasks_come_in_task_id_order_and_only_for_their_run() -> TestResult {
        let (_dir, store) = temp_store()?;
        store.commit(vec![
            Write::Task(task("r1", "train", TaskStatus::Pending)),
            Write::Task(task("r1", "clean", TaskStatus::Pending)),
            Write::Task(task("r10", "other", TaskStatus::Pending)),
            Write::Task(task("r1", "evaluate", TaskStatus::Pending)),
        ])?;
        let ids: Vec<_> = store
            .tasks("r1")?
            .into_iter()
            .map(|task| task.task_id)
            .collect();
        assert_eq!(ids, ["clean", "evaluate", "train"]);
        Ok(())
    }

    #[test]
    fn attempts_come_by_task_then_attempt_number() -> TestResult {
        let (_dir, store) = temp_store()?;
        let mut writes = Vec::new();
        for number in [10, 2, 9, 1] {
            writes.push(Write::Attempt(attempt(
                "r1",
                "train",
                number,
                AttemptStatus::Failed,
            )));
        }
        writes.push(Write::Attempt(attempt(
            "r1",
            "clean",
            1,
            AttemptStatus::Succeeded,
        )));
        store.commit(writes)?;
        let order: Vec<_> = store
            .attempts("r1")?
            .into_iter()
            .map(|attempt| (attempt.task_id, attempt.attempt))
            .collect();
        let expected = [
            ("clean", 1),
            ("train", 1),
            ("train", 2),
            ("train", 9),
            ("train", 10),
        ];
        assert_eq!(
            order,
            expected.map(|(task, number)| (task.to_owned(), number))
        );
        Ok(())
    }

    #[test]
    fn event_seqs_increase_per_run_across_commits_and_reopens() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state");
        {
            let (store, _) = Store::open(&path)?;
            let writes = (0..300).map(|index| Write::Event(event("r1", &format!("e{index}"))));
            store.commit(writes.collect::<Vec<_>>())?;
            store.commit(vec![Write::Event(event("r2", "first"))])?;
        }
        let (store, _) = Store::open(&path)?;
        store.commit(vec![Write::Event(event("r1", "after_reopen"))])?;
        let events = store.events("r1")?;
        let seqs: Vec<_> = events.iter().map(|event| event.seq).collect();
        assert_eq!(seqs, (1..=301).collect::<Vec<_>>());
        assert_eq!(
            events.last().map(|event| event.kind.as_str()),
            Some("after_reopen")
        );
        assert_eq!(store.events("r2")?.first().map(|event| event.seq), Some(1));
        Ok(())
    }

    #[test]
    fn reopened_store_keeps_every_record() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state");
        let writes = vec![
            Write::Run(run("r1", "train", RunStatus::Succeeded)),
            Write::Task(task("r1", "fit", TaskStatus::Succeeded)),
            Write::Attempt(attempt("r1", "fit", 1, AttemptStatus::Succeeded)),
            Write::Event(event("r1", "run_finished")),
        ];
        {
            let (store, _) = Store::open(&path)?;
            store.commit(writes)?;
        }
        let (store, report) = Store::open(&path)?;
        assert!(report.interrupted_runs.is_empty());
        assert_eq!(
            store.run("r1")?.map(|run| run.status),
            Some(RunStatus::Succeeded)
        );
        assert_eq!(store.tasks("r1")?.len(), 1);
        assert_eq!(store.attempts("r1")?.len(), 1);
        assert_eq!(store.events("r1")?.len(), 1);
        assert_eq!(store.runs(Some("train"), 10)?.len(), 1);
        Ok(())
    }

    #[test]
    fn run_creation_order_continues_after_reopen() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state");
        {
            let (store, _) = Store::open(&path)?;
            store.commit(vec![Write::Run(run("z", "train", RunStatus::Succeeded))])?;
        }
        let (store, _) = Store::open(&path)?;
        store.commit(vec![Write::Run(run("a", "train", RunStatus::Succeeded))])?;
        let ids: Vec<_> = store
            .runs(None, 10)?
            .into_iter()
            .map(|run| run.run_id)
            .collect();
        assert_eq!(ids, ["a", "z"]);
        Ok(())
    }

    #[test]
    fn active_runs_follow_the_run_status() -> TestResult {
        let (_dir, store) = temp_store()?;
        store.commit(vec![
            Write::Run(run("queued", "d", RunStatus::Queued)),
            Write::Run(run("running", "d", RunStatus::Running)),
            Write::Run(run("done", "d", RunStatus::Running)),
        ])?;
        store.commit(vec![Write::Run(run("done", "d", RunStatus::Succeeded))])?;
        let ids: Vec<_> = store
            .active_runs()?
            .into_iter()
            .map(|run| run.run_id)
            .collect();
        assert_eq!(ids, ["queued", "running"]);
        Ok(())
    }

    #[test]
    fn commit_with_an_invalid_id_writes_nothing() -> TestResult {
        let (_dir, store) = temp_store()?;
        let result = store.commit(vec![
            Write::Run(run("good", "d", RunStatus::Running)),
            Write::Task(task("good", "bad\0id", TaskStatus::Running)),
        ]);
        assert!(matches!(
            result,
            Err(StateError::InvalidKeyPart {
                kind: "task id",
                ..
            })
        ));
        assert_eq!(store.run("good")?, None);
        assert!(store.runs(None, 10)?.is_empty());
        Ok(())
    }

    #[test]
    fn corrupt_record_is_reported_with_its_tree_and_key() -> TestResult {
        let (_dir, store) = temp_store()?;
        store
            .trees
            .get(TreeId::Runs)
            .insert("r1", &b"{\"run_id\": 3"[..])?;
        match store.run("r1") {
            Err(StateError::Corrupt { what, .. }) => assert_eq!(what, "tree `runs`, key `r1`"),
            other => panic!("expected a corrupt record error, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn empty_commit_is_a_no_op() -> TestResult {
        let (_dir, store) = temp_store()?;
        store.commit(Vec::new())?;
        assert!(store.runs(None, 10)?.is_empty());
        Ok(())
    }
}
