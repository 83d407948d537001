//! [`find_reuse`]: whether an earlier result can stand for a task with a
//! given cache key — as it is on disk, or after restoring outputs from the
//! run cache — shared by the executor and by `explain`, so predictions and
//! runs decide alike.
//!
//! Every earlier success with the key counts, not only the newest: after
//! input A, then B, then A again, the result of the A run is found even
//! though B overwrote its outputs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use dag_state::{ArtifactRecord, StateError, Store, TaskRecord};

use crate::cache::{DigestMemo, Restore, RunCache};

/// How many earlier successes with one key are examined, newest first.
pub(crate) const CANDIDATES: usize = 16;

/// An output of an earlier result that is not on disk as it was recorded.
#[derive(Debug, Clone)]
pub(crate) struct Damage {
    pub artifact: ArtifactRecord,
    pub missing: bool,
}

impl Damage {
    /// `output `out` at `data/x.txt` is missing since run R`.
    pub(crate) fn describe(&self, run_id: &str) -> String {
        let what = if self.missing {
            "is missing"
        } else {
            "changed"
        };
        format!(
            "output `{}` at `{}` {what} since run {run_id}",
            self.artifact.name, self.artifact.path
        )
    }
}

#[derive(Debug)]
pub(crate) enum Reuse {
    /// Its outputs are on disk with the recorded digests.
    Intact(TaskRecord),
    /// Some outputs are not, and the run cache holds every one of them.
    Restorable {
        record: TaskRecord,
        damaged: Vec<Damage>,
    },
    /// Some outputs are not, and the run cache cannot bring them all back
    /// (the newest such result).
    Lost {
        record: TaskRecord,
        damaged: Vec<Damage>,
    },
}

impl Reuse {
    /// The restores that bring a restorable result's outputs back.
    pub(crate) fn restores(damaged: &[Damage], workdir: &Path) -> Vec<Restore> {
        damaged
            .iter()
            .map(|damage| Restore {
                digest: damage.artifact.digest.clone(),
                destination: workdir.join(&damage.artifact.path),
            })
            .collect()
    }
}

/// The earlier result a task with `key` can stand on: any intact one, else
/// the newest restorable one, else the newest lost one; `None` when no task
/// with this key ever succeeded.
pub(crate) fn find_reuse(
    store: &Store,
    key: &str,
    workdir: &Path,
    memo: &DigestMemo<'_>,
    cache: &RunCache,
) -> Result<Option<Reuse>, StateError> {
    let candidates = store.successes_with_key(key, CANDIDATES)?;
    Ok(judge(candidates, workdir, memo, cache))
}

/// [`find_reuse`] over earlier successes already read, newest first: the
/// store lookup is cheap and can run anywhere, the file checks block.
pub(crate) fn judge(
    candidates: Vec<TaskRecord>,
    workdir: &Path,
    memo: &DigestMemo<'_>,
    cache: &RunCache,
) -> Option<Reuse> {
    let mut on_disk: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut restorable = None;
    let mut lost = None;
    for record in candidates {
        let outputs: Vec<(String, String)> = record
            .outputs
            .iter()
            .map(|a| (a.path.clone(), a.digest.clone()))
            .collect();
        if !seen.insert(outputs) {
            continue;
        }
        let damaged: Vec<Damage> = record
            .outputs
            .iter()
            .filter_map(|artifact| {
                let found = on_disk.entry(artifact.path.clone()).or_insert_with(|| {
                    memo.hash(&workdir.join(&artifact.path))
                        .ok()
                        .map(|(digest, _)| digest)
                });
                match found {
                    Some(digest) if *digest == artifact.digest => None,
                    found => Some(Damage {
                        artifact: artifact.clone(),
                        missing: found.is_none(),
                    }),
                }
            })
            .collect();
        if damaged.is_empty() {
            return Some(Reuse::Intact(record));
        }
        let cached = damaged.iter().all(|d| cache.contains(&d.artifact.digest));
        if cached && restorable.is_none() {
            restorable = Some(Reuse::Restorable { record, damaged });
        } else if !cached && lost.is_none() {
            lost = Some(Reuse::Lost { record, damaged });
        }
    }
    restorable.or(lost)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use dag_state::{TaskStatus, Write};

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn digest(bytes: &[u8]) -> String {
        blake3::hash(bytes).to_hex().to_string()
    }

    fn success(run_id: &str, output: &[u8]) -> Write {
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
            cache_key: Some("k".into()),
            fingerprint: None,
            summary: None,
            definition: None,
            inputs: Vec::new(),
            outputs: vec![ArtifactRecord {
                name: "out".into(),
                path: "out.txt".into(),
                digest: digest(output),
                size: output.len() as u64,
            }],
        })
    }

    #[test]
    fn an_older_result_whose_outputs_are_on_disk_beats_a_newer_restorable_one() -> TestResult {
        let dir = tempfile::tempdir()?;
        let (store, _) = dag_state::Store::open(&dir.path().join("db"))?;
        let cache = RunCache::beside(&store);
        let memo = DigestMemo::new(&store);
        store.commit(vec![success("r1", b"one")])?;
        store.commit(vec![success("r2", b"two")])?;
        let out = dir.path().join("out.txt");

        std::fs::write(&out, b"one")?;
        match find_reuse(&store, "k", dir.path(), &memo, &cache)? {
            Some(Reuse::Intact(record)) => assert_eq!(record.run_id, "r1"),
            other => return Err(format!("expected r1 intact, got {other:?}").into()),
        }

        std::fs::write(&out, b"three")?;
        match find_reuse(&store, "k", dir.path(), &memo, &cache)? {
            Some(Reuse::Lost { record, damaged }) => {
                assert_eq!(record.run_id, "r2");
                assert_eq!(
                    damaged[0].describe("r2"),
                    "output `out` at `out.txt` changed since run r2"
                );
            }
            other => return Err(format!("expected r2 lost, got {other:?}").into()),
        }

        let one = dir.path().join("one");
        std::fs::write(&one, b"one")?;
        cache.insert(&one, &digest(b"one"))?;
        std::fs::remove_file(&out)?;
        match find_reuse(&store, "k", dir.path(), &memo, &cache)? {
            Some(Reuse::Restorable { record, damaged }) => {
                assert_eq!(record.run_id, "r1");
                assert!(damaged[0].missing);
            }
            other => return Err(format!("expected r1 restorable, got {other:?}").into()),
        }
        assert!(find_reuse(&store, "other", dir.path(), &memo, &cache)?.is_none());
        Ok(())
    }
}
