//! Open-time repair. sled admits one process per store, so whatever is
//! still `running` when the store opens was left by a process that died
//! (killed, crashed, power lost): such runs become `interrupted`, with their
//! running tasks and attempts, and get a `run_interrupted` event.
//!
//! Only runs in the `active_runs` index are examined, so opening costs
//! O(active runs), not O(history). Queued runs are left queued: they never
//! started, and whoever owns the queue decides what to do with them.

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
        store.commit(writes)?;
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
