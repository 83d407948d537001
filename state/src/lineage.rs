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
