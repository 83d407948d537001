//! Open-time repair. sled admits one process per store, so whatever is
//! still `running` when the store opens was left by a process that died
//! (killed, crashed, power lost): such runs become `interrupted`, with their
//! running tasks and attempts, and get a `run_interrupted` event.
//!
//! Only runs in the `active_runs` index are examined, so opening costs
//! O(active runs), not O(history). Queued runs are left queued: they never
//! started, and whoever owns the queue decides what to do with them.
//! Each run repaired is also remembered as an unhandled interruption (see
//! `queue`), so the decision about it survives other processes opening the
//! store first.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::{AttemptStatus, EventRecord, RunStatus, StateError, Store, TaskStatus, Write};

/// Marks every run left `running` as `interrupted`; returns their ids.
pub(crate) fn interrupt_dead_runs(store: &Store) -> Result<Vec<String>, StateError> {
    let now = now_ms();
    let mut writes = Vec::new();
    let mut interrupted = Vec::new();
    for mut run in store.active_runs()? {
        if run.status != RunStatus::Running {
            continue;
        }
        for mut task in store.tasks(&run.run_id)? {
            if task.status == TaskStatus::Running {
                task.status = TaskStatus::Interrupted;
                task.finished_at_ms.get_or_insert(now);
                writes.push(Write::Task(task));
            }
        }
        for mut attempt in store.attempts(&run.run_id)? {
            if attempt.status == AttemptStatus::Running {
                attempt.status = AttemptStatus::Interrupted;
                attempt.finished_at_ms.get_or_insert(now);
                writes.push(Write::Attempt(attempt));
            }
        }
        writes.push(Write::Event(EventRecord {
            run_id: run.run_id.clone(),
            seq: 0,
            at_ms: now,
            kind: "run_interrupted".into(),
            task_id: None,
            detail: json!({ "reason": "the process recording this run stopped before it finished" }),
        }));
        run.status = RunStatus::Interrupted;
        run.finished_at_ms.get_or_insert(now);
        interrupted.push(run.run_id.clone());
        writes.push(Write::Run(run));
    }
    if !writes.is_empty() {
        store.commit_with(&writes, |plan| {
            interrupted
                .iter()
                .try_for_each(|run_id| plan.add_interruption(run_id))
        })?;
    }
    Ok(interrupted)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use crate::test_support::{TestResult, attempt, event, run, task};
    use crate::{AttemptStatus, RunStatus, Store, TaskStatus, Write};

    #[test]
    fn running_run_left_behind_is_interrupted_on_open() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state");
        {
            let (store, _) = Store::open(&path)?;
            store.commit(vec![
                Write::Run(run("r1", "d", RunStatus::Running)),
                Write::Task(task("r1", "done", TaskStatus::Succeeded)),
                Write::Task(task("r1", "busy", TaskStatus::Running)),
                Write::Task(task("r1", "later", TaskStatus::Pending)),
                Write::Attempt(attempt("r1", "done", 1, AttemptStatus::Succeeded)),
                Write::Attempt(attempt("r1", "busy", 1, AttemptStatus::Failed)),
                Write::Attempt(attempt("r1", "busy", 2, AttemptStatus::Running)),
                Write::Event(event("r1", "run_started")),
            ])?;
        }
        let (store, report) = Store::open(&path)?;
        assert_eq!(report.interrupted_runs, ["r1"]);

        let run = store.run("r1")?.ok_or("run r1 is missing")?;
        assert_eq!(run.status, RunStatus::Interrupted);
        assert!(run.finished_at_ms.is_some());

        let tasks: Vec<_> = store
            .tasks("r1")?
            .into_iter()
            .map(|task| (task.task_id, task.status))
            .collect();
        let expected = [
            ("busy", TaskStatus::Interrupted),
            ("done", TaskStatus::Succeeded),
            ("later", TaskStatus::Pending),
        ];
        assert_eq!(tasks, expected.map(|(id, status)| (id.to_owned(), status)));

        let attempts: Vec<_> = store
            .attempts("r1")?
            .into_iter()
            .map(|attempt| attempt.status)
            .collect();
        // busy #1, busy #2, done #1
        let expected = [
            AttemptStatus::Failed,
            AttemptStatus::Interrupted,
            AttemptStatus::Succeeded,
        ];
        assert_eq!(attempts, expected);

        let events: Vec<_> = store
            .events("r1")?
            .into_iter()
            .map(|event| (event.seq, event.kind))
            .collect();
        assert_eq!(
            events,
            [
                (1, "run_started".to_owned()),
                (2, "run_interrupted".to_owned())
            ]
        );
        assert!(store.active_runs()?.is_empty());
        Ok(())
    }

    #[test]
    fn finished_and_queued_runs_are_untouched_by_repair() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state");
        let finished = run("done", "d", RunStatus::Succeeded);
        let queued = run("waiting", "d", RunStatus::Queued);
        let finished_task = task("done", "fit", TaskStatus::Succeeded);
        {
            let (store, _) = Store::open(&path)?;
            store.commit(vec![
                Write::Run(finished.clone()),
                Write::Run(queued.clone()),
                Write::Task(finished_task.clone()),
                Write::Event(event("done", "run_finished")),
            ])?;
        }
        let (store, report) = Store::open(&path)?;
        assert!(report.interrupted_runs.is_empty());
        assert_eq!(store.run("done")?, Some(finished));
        assert_eq!(store.run("waiting")?, Some(queued));
        assert_eq!(store.tasks("done")?, [finished_task]);
        assert_eq!(store.events("done")?.len(), 1);
        Ok(())
    }

    #[test]
    fn repair_happens_once() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state");
        {
            let (store, _) = Store::open(&path)?;
            store.commit(vec![Write::Run(run("r1", "d", RunStatus::Running))])?;
        }
        let (_, first) = Store::open(&path)?;
        assert_eq!(first.interrupted_runs, ["r1"]);
        let (store, second) = Store::open(&path)?;
        assert!(second.interrupted_runs.is_empty());
        assert_eq!(store.events("r1")?.len(), 1);
        Ok(())
    }
}
