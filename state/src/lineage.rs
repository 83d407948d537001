//! Index-backed queries over task records of every run: the run cache
//! (`cache_keys`) and lineage (`path_producers`, `digest_producers`,
//! `digest_consumers`). Each walks one index prefix newest run first and
//! checks the task record it lands on, so an entry left behind by a record
//! that later changed is never returned.

use crate::trees::TreeId;
use crate::{ArtifactRecord, StateError, Store, TaskRecord, TaskStatus, codec, keys};

impl Store {
    /// The most recent succeeded task record with this cache key, if any.
    pub fn last_success_with_key(&self, cache_key: &str) -> Result<Option<TaskRecord>, StateError> {
        let found = self.referencing_tasks(TreeId::CacheKeys, cache_key, Some(1), |task| {
            task.status == TaskStatus::Succeeded && task.cache_key.as_deref() == Some(cache_key)
        })?;
        Ok(found.into_iter().next())
    }

    /// Succeeded task records with this cache key, newest run first, at most
    /// `limit`: every earlier result a task with that key could restore.
    pub fn successes_with_key(
        &self,
        cache_key: &str,
        limit: usize,
    ) -> Result<Vec<TaskRecord>, StateError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.referencing_tasks(TreeId::CacheKeys, cache_key, Some(limit), |task| {
            task.status == TaskStatus::Succeeded && task.cache_key.as_deref() == Some(cache_key)
        })
    }

    /// Task records (any run) that produced an artifact at `path`, newest first.
    pub fn producers_of_path(&self, path: &str) -> Result<Vec<TaskRecord>, StateError> {
        self.referencing_tasks(TreeId::PathProducers, path, None, |task| {
            has_artifact(&task.outputs, |artifact| artifact.path == path)
        })
    }

    /// Task records (any run) that produced an artifact with `digest`, newest first.
    pub fn producers_of_digest(&self, digest: &str) -> Result<Vec<TaskRecord>, StateError> {
        self.referencing_tasks(TreeId::DigestProducers, digest, None, |task| {
            has_artifact(&task.outputs, |artifact| artifact.digest == digest)
        })
    }

    /// The newest task record (any run) that produced an artifact with `digest`.
    pub fn latest_producer_of_digest(
        &self,
        digest: &str,
    ) -> Result<Option<TaskRecord>, StateError> {
        let found = self.referencing_tasks(TreeId::DigestProducers, digest, Some(1), |task| {
            has_artifact(&task.outputs, |artifact| artifact.digest == digest)
        })?;
        Ok(found.into_iter().next())
    }

    /// The newest task record (any run) that produced an artifact at `path`.
    pub fn latest_producer_of_path(&self, path: &str) -> Result<Option<TaskRecord>, StateError> {
        let found = self.referencing_tasks(TreeId::PathProducers, path, Some(1), |task| {
            has_artifact(&task.outputs, |artifact| artifact.path == path)
        })?;
        Ok(found.into_iter().next())
    }

    /// Task records (any run) that consumed an artifact with `digest`, newest first.
    pub fn consumers_of_digest(&self, digest: &str) -> Result<Vec<TaskRecord>, StateError> {
        self.referencing_tasks(TreeId::DigestConsumers, digest, None, |task| {
            has_artifact(&task.inputs, |artifact| artifact.digest == digest)
        })
    }

    /// Walks the `value \0 run_seq \0 task_id → run_id` entries of `index`
    /// newest first, keeping tasks that still satisfy `still_applies`.
    fn referencing_tasks(
        &self,
        index: TreeId,
        value: &str,
        limit: Option<usize>,
        still_applies: impl Fn(&TaskRecord) -> bool,
    ) -> Result<Vec<TaskRecord>, StateError> {
        let prefix = keys::prefix(value);
        let mut tasks = Vec::new();
        for entry in self.trees.get(index).scan_prefix(&prefix).rev() {
            let (key, run_id) = entry?;
            let run_id = codec::decode_text(index.name(), &key, &run_id)?;
            let task_id = keys::task_ref_task_id(&key, prefix.len()).ok_or_else(|| {
                StateError::CorruptKey {
                    what: codec::location(index.name(), &key),
                }
            })?;
            let Some(task) = self.task(run_id, task_id)? else {
                continue;
            };
            if !still_applies(&task) {
                continue;
            }
            tasks.push(task);
            if limit.is_some_and(|limit| tasks.len() >= limit) {
                break;
            }
        }
        Ok(tasks)
    }
}

fn has_artifact(artifacts: &[ArtifactRecord], matches: impl Fn(&ArtifactRecord) -> bool) -> bool {
    artifacts.iter().any(matches)
}

#[cfg(test)]
mod tests {
    use crate::test_support::{TestResult, artifact, run, task, temp_store};
    use crate::{RunStatus, TaskRecord, TaskStatus, Write};

    fn ids(tasks: Vec<TaskRecord>) -> Vec<(String, String)> {
        tasks
            .into_iter()
            .map(|task| (task.run_id, task.task_id))
            .collect()
    }

    fn pair(run_id: &str, task_id: &str) -> (String, String) {
        (run_id.to_owned(), task_id.to_owned())
    }

    fn cached(run_id: &str, task_id: &str, status: TaskStatus, key: &str) -> Write {
        let mut record = task(run_id, task_id, status);
        record.cache_key = Some(key.into());
        Write::Task(record)
    }

    #[test]
    fn last_success_with_key_returns_the_newest_succeeded_task() -> TestResult {
        let (_dir, store) = temp_store()?;
        store.commit(vec![
            Write::Run(run("r1", "d", RunStatus::Succeeded)),
            cached("r1", "fit", TaskStatus::Succeeded, "k"),
        ])?;
        store.commit(vec![
            Write::Run(run("r2", "d", RunStatus::Succeeded)),
            cached("r2", "fit", TaskStatus::Succeeded, "k"),
        ])?;
        store.commit(vec![
            Write::Run(run("r3", "d", RunStatus::Failed)),
            cached("r3", "fit", TaskStatus::Failed, "k"),
        ])?;
        let found = store.last_success_with_key("k")?;
        assert_eq!(found.map(|task| task.run_id), Some("r2".to_owned()));
        assert!(store.last_success_with_key("other")?.is_none());
        Ok(())
    }

    #[test]
    fn task_that_stops_being_a_success_no_longer_serves_its_cache_key() -> TestResult {
        let (_dir, store) = temp_store()?;
        store.commit(vec![cached("r1", "fit", TaskStatus::Succeeded, "k")])?;
        store.commit(vec![cached("r2", "fit", TaskStatus::Succeeded, "k")])?;
        store.commit(vec![cached("r2", "fit", TaskStatus::Failed, "k")])?;
        let found = store.last_success_with_key("k")?;
        assert_eq!(found.map(|task| task.run_id), Some("r1".to_owned()));
        Ok(())
    }

    #[test]
    fn successes_with_key_reach_past_the_newest_run() -> TestResult {
        let (_dir, store) = temp_store()?;
        for (run_id, key) in [("r1", "a"), ("r2", "b"), ("r3", "a"), ("r4", "a")] {
            let status = if run_id == "r4" {
                TaskStatus::Failed
            } else {
                TaskStatus::Succeeded
            };
            store.commit(vec![
                Write::Run(run(run_id, "d", RunStatus::Succeeded)),
                cached(run_id, "fit", status, key),
            ])?;
        }
        assert_eq!(
            ids(store.successes_with_key("a", 10)?),
            [pair("r3", "fit"), pair("r1", "fit")]
        );
        assert_eq!(ids(store.successes_with_key("a", 1)?), [pair("r3", "fit")]);
        assert!(store.successes_with_key("a", 0)?.is_empty());
        assert_eq!(ids(store.successes_with_key("b", 10)?), [pair("r2", "fit")]);
        Ok(())
    }

    #[test]
    fn producers_of_path_are_newest_run_first() -> TestResult {
        let (_dir, store) = temp_store()?;
        for run_id in ["r1", "r2"] {
            let mut record = task(run_id, "clean", TaskStatus::Succeeded);
            record.outputs = vec![artifact("data/clean.csv", &format!("digest-{run_id}"))];
            store.commit(vec![
                Write::Run(run(run_id, "d", RunStatus::Succeeded)),
                Write::Task(record),
            ])?;
        }
        let mut unrelated = task("r2", "split", TaskStatus::Succeeded);
        unrelated.outputs = vec![artifact("data/clean.csv.bak", "x")];
        store.commit(vec![Write::Task(unrelated)])?;
        assert_eq!(
            ids(store.producers_of_path("data/clean.csv")?),
            [pair("r2", "clean"), pair("r1", "clean")]
        );
        assert_eq!(
            ids(store.producers_of_digest("digest-r1")?),
            [pair("r1", "clean")]
        );
        assert!(store.producers_of_path("data/none.csv")?.is_empty());
        let latest = store.latest_producer_of_path("data/clean.csv")?;
        assert_eq!(latest.map(|t| t.run_id), Some("r2".to_owned()));
        let latest = store.latest_producer_of_digest("digest-r1")?;
        assert_eq!(latest.map(|t| t.run_id), Some("r1".to_owned()));
        assert!(store.latest_producer_of_digest("none")?.is_none());
        Ok(())
    }

    #[test]
    fn consumers_of_digest_come_from_task_inputs_only() -> TestResult {
        let (_dir, store) = temp_store()?;
        let mut producer = task("r1", "clean", TaskStatus::Succeeded);
        producer.outputs = vec![artifact("data/clean.csv", "d1")];
        let mut first = task("r1", "train", TaskStatus::Succeeded);
        first.inputs = vec![artifact("data/clean.csv", "d1")];
        let mut second = task("r2", "evaluate", TaskStatus::Running);
        second.inputs = vec![
            artifact("data/clean.csv", "d1"),
            artifact("model.bin", "m1"),
        ];
        store.commit(vec![Write::Task(producer), Write::Task(first)])?;
        store.commit(vec![Write::Task(second)])?;
        assert_eq!(
            ids(store.consumers_of_digest("d1")?),
            [pair("r2", "evaluate"), pair("r1", "train")]
        );
        assert_eq!(
            ids(store.consumers_of_digest("m1")?),
            [pair("r2", "evaluate")]
        );
        Ok(())
    }

    #[test]
    fn rewritten_outputs_drop_the_old_path_from_lineage() -> TestResult {
        let (_dir, store) = temp_store()?;
        let mut record = task("r1", "clean", TaskStatus::Succeeded);
        record.outputs = vec![artifact("old.csv", "d1")];
        store.commit(vec![Write::Task(record.clone())])?;
        record.outputs = vec![artifact("new.csv", "d2")];
        store.commit(vec![Write::Task(record)])?;
        assert!(store.producers_of_path("old.csv")?.is_empty());
        assert!(store.producers_of_digest("d1")?.is_empty());
        assert_eq!(
            ids(store.producers_of_path("new.csv")?),
            [pair("r1", "clean")]
        );
        Ok(())
    }
}
