//! [`Store::check`] and [`Store::repair`]: what `dag doctor` asks of a
//! store that opens. Every record is decoded, and every index entry is
//! followed to the record it points at.
//!
//! What repair can do: drop records that no longer decode (they are
//! unreadable anyway; their keys are reported) and index entries that point
//! at nothing, and put back `active_runs` entries of queued or running
//! runs. What it cannot do: bring back what a damaged record held. A store
//! that does not open at all is beyond this module: it has to be moved
//! aside and started again (`dag doctor --rebuild`).

use serde::de::DeserializeOwned;

use crate::trees::TreeId;
use crate::{
    AttemptRecord, EventRecord, KnownDigest, QueuedRequest, RunRecord, RunStatus, StateError,
    Store, TaskRecord, codec, keys,
};

/// One problem [`Store::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The tree it is in.
    pub tree: &'static str,
    /// The key, readable (see `keys::describe`).
    pub key: String,
    /// What is wrong, in words.
    pub problem: String,
    /// Raw key, for repair.
    raw_key: Vec<u8>,
}

/// What [`Store::check`] saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Records and index entries read, by tree.
    pub entries: Vec<(&'static str, usize)>,
    pub damage: Vec<Damage>,
    /// Queued or running runs missing from `active_runs`.
    pub unindexed_active: Vec<String>,
}

impl CheckReport {
    pub fn is_healthy(&self) -> bool {
        self.damage.is_empty() && self.unindexed_active.is_empty()
    }
}

/// What [`Store::repair`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Entries removed: undecodable records and dangling index entries.
    pub removed: usize,
    /// Active runs put back into `active_runs`.
    pub reindexed: usize,
}

impl Store {
    /// Reads every record and index entry; changes nothing.
    pub fn check(&self) -> Result<CheckReport, StateError> {
        let mut report = CheckReport::default();
        let mut active = Vec::new();
        self.check_records::<RunRecord>(TreeId::Runs, &mut report, |run| {
            if matches!(run.status, RunStatus::Queued | RunStatus::Running) {
                active.push(run.run_id.clone());
            }
            None
        })?;
        self.check_records::<TaskRecord>(TreeId::Tasks, &mut report, |_| None)?;
        self.check_records::<AttemptRecord>(TreeId::Attempts, &mut report, |_| None)?;
        self.check_records::<EventRecord>(TreeId::Events, &mut report, |_| None)?;
        self.check_records::<KnownDigest>(TreeId::FileDigests, &mut report, |_| None)?;
        self.check_records::<QueuedRequest>(TreeId::QueuedRequests, &mut report, |request| {
            match self.run(&request.run_id) {
                Ok(Some(run)) if run.status == RunStatus::Queued => None,
                _ => Some("a queued request whose run is not queued".into()),
            }
        })?;
        for tree in [TreeId::RunOrder, TreeId::RunsByDag] {
            self.check_index(tree, &mut report, |_, value| {
                let run_id = std::str::from_utf8(value).ok()?;
                self.run(run_id)
                    .ok()
                    .flatten()
                    .is_none()
                    .then(|| format!("points at run `{run_id}`, which has no record"))
            })?;
        }
        for tree in [TreeId::ActiveRuns, TreeId::Interruptions, TreeId::RunSeq] {
            self.check_index(tree, &mut report, |key, _| {
                let run_id = std::str::from_utf8(key).ok()?;
                self.run(run_id)
                    .ok()
                    .flatten()
                    .is_none()
                    .then(|| format!("names run `{run_id}`, which has no record"))
            })?;
        }
        for tree in [
            TreeId::CacheKeys,
            TreeId::PathProducers,
            TreeId::DigestProducers,
            TreeId::DigestConsumers,
        ] {
            self.check_index(tree, &mut report, |key, value| {
                let run_id = std::str::from_utf8(value).ok()?;
                let task_id = key_task_id(key)?;
                self.task(run_id, task_id)
                    .ok()
                    .flatten()
                    .is_none()
                    .then(|| {
                        format!("points at task `{task_id}` of run `{run_id}`, which has no record")
                    })
            })?;
        }
        let indexed = self.trees.get(TreeId::ActiveRuns);
        for run_id in active {
            if !indexed.contains_key(run_id.as_bytes())? {
                report.unindexed_active.push(run_id);
            }
        }
        Ok(report)
    }

    /// Removes what [`check`](Self::check) found damaged and re-indexes
    /// active runs; flushes once.
    pub fn repair(&self, report: &CheckReport) -> Result<RepairReport, StateError> {
        let mut repaired = RepairReport::default();
        for damage in &report.damage {
            let Some(tree) = TreeId::ALL.iter().find(|t| t.name() == damage.tree) else {
                continue;
            };
            if self.trees.get(*tree).remove(&damage.raw_key)?.is_some() {
                repaired.removed += 1;
            }
        }
        for run_id in &report.unindexed_active {
            keys::check_part("run id", run_id)?;
            self.trees
                .get(TreeId::ActiveRuns)
                .insert(run_id.as_bytes(), &[][..])?;
            repaired.reindexed += 1;
        }
        self.db.flush()?;
        Ok(repaired)
    }

    fn check_records<T: DeserializeOwned>(
        &self,
        tree: TreeId,
        report: &mut CheckReport,
        mut judge: impl FnMut(&T) -> Option<String>,
    ) -> Result<(), StateError> {
        let mut count = 0;
        for entry in self.trees.get(tree).iter() {
            let (key, value) = entry?;
            count += 1;
            let problem = match codec::decode::<T>(tree.name(), &key, &value) {
                Ok(record) => judge(&record),
                Err(error) => Some(match error {
                    StateError::Corrupt { source, .. } => format!("does not decode: {source}"),
                    other => other.to_string(),
                }),
            };
            if let Some(problem) = problem {
                report.damage.push(damage(tree, &key, problem));
            }
        }
        report.entries.push((tree.name(), count));
        Ok(())
    }

    fn check_index(
        &self,
        tree: TreeId,
        report: &mut CheckReport,
        mut judge: impl FnMut(&[u8], &[u8]) -> Option<String>,
    ) -> Result<(), StateError> {
        let mut count = 0;
        for entry in self.trees.get(tree).iter() {
            let (key, value) = entry?;
            count += 1;
            if let Some(problem) = judge(&key, &value) {
                report.damage.push(damage(tree, &key, problem));
            }
        }
        report.entries.push((tree.name(), count));
        Ok(())
    }
}

fn damage(tree: TreeId, key: &[u8], problem: String) -> Damage {
    Damage {
        tree: tree.name(),
        key: keys::describe(key),
        problem,
        raw_key: key.to_vec(),
    }
}

/// The task id at the end of a `value \0 seq \0 task_id` index key.
fn key_task_id(key: &[u8]) -> Option<&str> {
    let at = key.iter().rposition(|byte| *byte == 0)?;
    std::str::from_utf8(&key[at + 1..]).ok()
}

#[cfg(test)]
mod tests {
    use crate::test_support::{TestResult, run, task, temp_store};
    use crate::trees::TreeId;
    use crate::{RunStatus, TaskStatus, Write};

    #[test]
    fn a_healthy_store_checks_clean_and_damage_is_found_and_repaired() -> TestResult {
        let (_dir, store) = temp_store()?;
        let mut made = task("r1", "fit", TaskStatus::Succeeded);
        made.outputs = vec![crate::test_support::artifact("model.json", "aa")];
        store.commit(vec![
            Write::Run(run("r1", "d", RunStatus::Succeeded)),
            Write::Task(made),
            Write::Run(run("r2", "d", RunStatus::Running)),
        ])?;
        let report = store.check()?;
        assert!(report.is_healthy(), "{report:?}");
        assert!(
            report.entries.contains(&("runs", 2)),
            "{:?}",
            report.entries
        );

        // A record that no longer decodes, an index entry pointing at a
        // task that is gone, and an active run missing from its index.
        store
            .trees
            .get(TreeId::Runs)
            .insert("r3", &br#"{"run_id": 3"#[..])?;
        store
            .trees
            .get(TreeId::Tasks)
            .remove(crate::keys::task_key("r1", "fit"))?;
        store.trees.get(TreeId::ActiveRuns).remove("r2")?;
        let report = store.check()?;
        let trees: Vec<&str> = report.damage.iter().map(|d| d.tree).collect();
        assert!(trees.contains(&"runs"), "{report:?}");
        assert!(
            trees.contains(&"path_producers") && trees.contains(&"digest_producers"),
            "{report:?}"
        );
        assert_eq!(report.unindexed_active, ["r2"]);
        let runs_damage = report
            .damage
            .iter()
            .find(|d| d.tree == "runs")
            .map(|d| d.problem.clone());
        assert!(
            runs_damage.is_some_and(|p| p.starts_with("does not decode")),
            "{report:?}"
        );

        let repaired = store.repair(&report)?;
        assert_eq!(repaired.reindexed, 1);
        assert!(repaired.removed >= 3, "{repaired:?}");
        assert!(store.check()?.is_healthy(), "{:?}", store.check()?);
        assert_eq!(store.active_runs()?.len(), 1);
        Ok(())
    }
}
