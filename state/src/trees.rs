//! The sled trees of the store and what each one maps (see `README.md` for
//! the full on-disk format). Records live in `runs`, `tasks`, `attempts` and
//! `events`; every other tree is an index that [`crate::Store::commit`]
//! maintains in the same transaction as the records it points at, except
//! `file_digests`, a cache of file digests written directly (see
//! `file_digests.rs`). The format version sits in sled's default tree, read
//! before any tree is opened.

/// Names every tree; the discriminant indexes [`Trees::all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TreeId {
    /// `run_id` → `RunRecord`.
    Runs,
    /// `run_id` → creation seq (u64 BE), assigned on first write of the run.
    RunSeq,
    /// creation seq (u64 BE) → `run_id`.
    RunOrder,
    /// `dag \0 seq` → `run_id`.
    RunsByDag,
    /// `run_id` → empty, for runs `queued` or `running`.
    ActiveRuns,
    /// `run_id \0 task_id` → `TaskRecord`.
    Tasks,
    /// `run_id \0 task_id \0 attempt(u32 BE)` → `AttemptRecord`.
    Attempts,
    /// `run_id \0 seq(u64 BE)` → `EventRecord`.
    Events,
    /// `cache_key \0 run_seq \0 task_id` → `run_id`, for succeeded tasks.
    CacheKeys,
    /// `path \0 run_seq \0 task_id` → `run_id`, from task outputs.
    PathProducers,
    /// `digest \0 run_seq \0 task_id` → `run_id`, from task outputs.
    DigestProducers,
    /// `digest \0 run_seq \0 task_id` → `run_id`, from task inputs.
    DigestConsumers,
    /// absolute file path → `KnownDigest`: a file's digest and the
    /// metadata it had when hashed. A cache, written outside `commit`.
    FileDigests,
    /// `run_id` → `QueuedRequest`, for runs accepted but not started;
    /// removed when the run's record leaves `queued`.
    QueuedRequests,
    /// `run_id` → empty, for runs open-time repair marked `interrupted`
    /// that nobody has resumed or acknowledged yet.
    Interruptions,
}

pub(crate) const TREE_COUNT: usize = 15;

impl TreeId {
    pub(crate) const ALL: [TreeId; TREE_COUNT] = [
        TreeId::Runs,
        TreeId::RunSeq,
        TreeId::RunOrder,
        TreeId::RunsByDag,
        TreeId::ActiveRuns,
        TreeId::Tasks,
        TreeId::Attempts,
        TreeId::Events,
        TreeId::CacheKeys,
        TreeId::PathProducers,
        TreeId::DigestProducers,
        TreeId::DigestConsumers,
        TreeId::FileDigests,
        TreeId::QueuedRequests,
        TreeId::Interruptions,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            TreeId::Runs => "runs",
            TreeId::RunSeq => "run_seq",
            TreeId::RunOrder => "run_order",
            TreeId::RunsByDag => "runs_by_dag",
            TreeId::ActiveRuns => "active_runs",
            TreeId::Tasks => "tasks",
            TreeId::Attempts => "attempts",
            TreeId::Events => "events",
            TreeId::CacheKeys => "cache_keys",
            TreeId::PathProducers => "path_producers",
            TreeId::DigestProducers => "digest_producers",
            TreeId::DigestConsumers => "digest_consumers",
            TreeId::FileDigests => "file_digests",
            TreeId::QueuedRequests => "queued_requests",
            TreeId::Interruptions => "interruptions",
        }
    }
}

/// Open handles to every tree, indexed by [`TreeId`].
pub(crate) struct Trees {
    trees: Vec<sled::Tree>,
}

impl Trees {
    pub(crate) fn open(db: &sled::Db) -> sled::Result<Self> {
        let trees = TreeId::ALL
            .iter()
            .map(|id| db.open_tree(id.name()))
            .collect::<sled::Result<Vec<_>>>()?;
        Ok(Self { trees })
    }

    pub(crate) fn get(&self, id: TreeId) -> &sled::Tree {
        // `open` fills one tree per `TreeId::ALL` entry, in order.
        &self.trees[id as usize]
    }

    pub(crate) fn all(&self) -> &[sled::Tree] {
        &self.trees
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tree_id_sits_at_its_own_index() {
        for (index, id) in TreeId::ALL.iter().enumerate() {
            assert_eq!(*id as usize, index, "{}", id.name());
        }
    }

    #[test]
    fn tree_names_are_distinct() {
        let mut names: Vec<_> = TreeId::ALL.iter().map(|id| id.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TREE_COUNT);
    }
}
