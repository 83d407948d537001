//! [`plan_gc`]: which run-cache entries are still wanted; [`GcPlan::apply`]
//! removes the rest (`dag gc`).
//!
//! An entry is kept when its digest is an input or output of a task in
//! - one of the newest `keep_runs` runs of each DAG, or
//! - a run that registered a model version still in the registry,
//!
//! or is a registered version's model file or training-data digest.
//! Temporary files left by a process that died always go, and so do
//! remembered digests of files that no longer exist. Planning only reads: if
//! the store or the registry cannot be read, nothing is removed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dag_operators::models::{ModelRegistry, RegistryError};
use dag_state::{StateError, Store};

use super::run_cache::{CacheEntry, CacheError, RunCache};

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("cannot read the run history")]
    State(#[from] StateError),
    #[error("cannot read the model registry")]
    Registry(#[from] RegistryError),
    #[error("cannot list the run cache")]
    Cache(#[from] CacheError),
}

/// What a collection would do.
#[derive(Debug, Clone)]
pub struct GcPlan {
    /// Runs whose artifacts are kept (the newest per DAG, and model runs).
    pub runs_kept: usize,
    /// Registered model versions whose artifacts are kept.
    pub model_versions: usize,
    pub keep: Vec<CacheEntry>,
    pub remove: Vec<CacheEntry>,
    /// Remembered digests of files that are gone.
    pub stale_digests: Vec<PathBuf>,
}

/// What a collection did.
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    pub removed: Vec<CacheEntry>,
    /// Entries that could not be removed, with why.
    pub failed: Vec<(CacheEntry, String)>,
    pub forgotten_digests: usize,
}

impl GcReport {
    pub fn freed_bytes(&self) -> u64 {
        self.removed.iter().map(|entry| entry.size).sum()
    }
}

impl GcPlan {
    pub fn bytes_to_free(&self) -> u64 {
        self.remove.iter().map(|entry| entry.size).sum()
    }

    pub fn bytes_kept(&self) -> u64 {
        self.keep.iter().map(|entry| entry.size).sum()
    }

    /// Removes what the plan says; keeps going past entries that cannot be
    /// removed and reports them.
    pub fn apply(&self, store: &Store, cache: &RunCache) -> GcReport {
        let mut report = GcReport::default();
        for entry in &self.remove {
            match cache.remove(entry) {
                Ok(()) => report.removed.push(entry.clone()),
                Err(error) => report
                    .failed
                    .push((entry.clone(), crate::record::error_chain(&error))),
            }
        }
        for path in &self.stale_digests {
            if store.forget_digest(path).unwrap_or(false) {
                report.forgotten_digests += 1;
            }
        }
        report
    }
}

/// Plans a collection of `cache`, keeping what the newest `keep_runs` runs
/// of each DAG and the model registry under `state_dir` reference.
pub fn plan_gc(
    store: &Store,
    cache: &RunCache,
    state_dir: &Path,
    keep_runs: usize,
) -> Result<GcPlan, GcError> {
    let mut kept_runs = BTreeSet::new();
    let mut per_dag: BTreeMap<String, usize> = BTreeMap::new();
    for run in store.runs(None, usize::MAX)? {
        let count = per_dag.entry(run.dag.clone()).or_default();
        if *count < keep_runs {
            *count += 1;
            kept_runs.insert(run.run_id);
        }
    }
    let mut referenced = BTreeSet::new();
    let mut model_versions = 0;
    if state_dir.join("models").is_dir() {
        for version in ModelRegistry::open(state_dir)?.list(None)? {
            model_versions += 1;
            referenced.insert(version.digest);
            referenced.extend(version.data_digests.into_values());
            kept_runs.extend(version.run_id);
        }
    }
    for run_id in &kept_runs {
        for task in store.tasks(run_id)? {
            let artifacts = task.inputs.into_iter().chain(task.outputs);
            referenced.extend(artifacts.map(|artifact| artifact.digest));
        }
    }
    let (keep, remove) = cache.entries()?.into_iter().partition(|entry| {
        entry
            .digest
            .as_ref()
            .is_some_and(|digest| referenced.contains(digest))
    });
    let stale_digests = store
        .known_digest_paths()?
        .into_iter()
        .filter(|path| matches!(path.try_exists(), Ok(false)))
        .collect();
    Ok(GcPlan {
        runs_kept: kept_runs.len(),
        model_versions,
        keep,
        remove,
        stale_digests,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use dag_state::{ArtifactRecord, RunRecord, RunStatus, TaskRecord, TaskStatus, Trigger, Write};

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn run(run_id: &str, dag: &str) -> Write {
        Write::Run(RunRecord {
            run_id: run_id.into(),
            dag: dag.into(),
            spec_hash: String::new(),
            spec_path: None,
            params: BTreeMap::new(),
            trigger: Trigger {
                kind: "cli".into(),
                detail: String::new(),
            },
            status: RunStatus::Succeeded,
            logical_date: String::new(),
            started_at_ms: 0,
            finished_at_ms: Some(1),
            resumed_from: None,
            env: None,
        })
    }

    fn task(run_id: &str, output_digest: &str) -> Write {
        Write::Task(TaskRecord {
            run_id: run_id.into(),
            task_id: "make".into(),
            operator: "shell".into(),
            status: TaskStatus::Succeeded,
            attempts: 1,
            reason: None,
            started_at_ms: Some(0),
            finished_at_ms: Some(1),
            metrics: BTreeMap::new(),
            values: BTreeMap::new(),
            cache_key: Some(format!("key-{run_id}")),
            fingerprint: None,
            summary: None,
            definition: None,
            inputs: Vec::new(),
            outputs: vec![ArtifactRecord {
                name: "out".into(),
                path: "out.txt".into(),
                digest: output_digest.into(),
                size: 1,
            }],
        })
    }

    #[test]
    fn entries_of_the_newest_runs_of_each_dag_are_kept() -> TestResult {
        let dir = tempfile::tempdir()?;
        let (store, _) = Store::open(&dir.path().join("db"))?;
        let cache = RunCache::beside(&store);
        let mut digests = Vec::new();
        for (index, (run_id, dag)) in [("a1", "a"), ("b1", "b"), ("a2", "a"), ("a3", "a")]
            .into_iter()
            .enumerate()
        {
            let source = dir.path().join(format!("{run_id}.txt"));
            std::fs::write(&source, format!("output {index}"))?;
            let digest = blake3::hash(format!("output {index}").as_bytes())
                .to_hex()
                .to_string();
            cache.insert(&source, &digest)?;
            store.commit(vec![run(run_id, dag), task(run_id, &digest)])?;
            digests.push(digest);
        }
        let plan = plan_gc(&store, &cache, dir.path(), 2)?;
        let removed: Vec<_> = plan
            .remove
            .iter()
            .filter_map(|e| e.digest.clone())
            .collect();
        // `a1` is the third-newest run of `a`; `b1` is the newest of `b`.
        assert_eq!(removed, [digests[0].clone()]);
        assert_eq!(plan.keep.len(), 3);
        assert_eq!(plan.runs_kept, 3);
        assert_eq!(plan.bytes_to_free(), 8);

        let report = plan.apply(&store, &cache);
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!(report.freed_bytes(), 8);
        assert!(!cache.contains(&digests[0]));
        assert!(cache.contains(&digests[1]));

        let none_kept = plan_gc(&store, &cache, dir.path(), 0)?;
        assert_eq!(none_kept.remove.len(), 3);
        Ok(())
    }
}
