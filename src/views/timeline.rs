//! A run's attempts on a time axis (a Gantt chart): when each attempt of
//! each task started and ended, relative to the run's start.

use dag_state::{AttemptRecord, AttemptStatus, RunRecord, StateError, Store};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// From the run's start to its end (or to now, while it runs).
    pub span_ms: i64,
    /// In start order.
    pub bars: Vec<TimelineBar>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineBar {
    pub task_id: String,
    pub attempt: u32,
    /// Milliseconds after the run started.
    pub start_ms: i64,
    pub end_ms: i64,
    /// Still running: `end_ms` is now.
    pub open: bool,
    pub status: AttemptStatus,
    pub error: Option<String>,
}

/// The attempts of `run`; open attempts end at `now_ms`.
pub fn timeline(store: &Store, run: &RunRecord, now_ms: i64) -> Result<Timeline, StateError> {
    Ok(timeline_of(run, store.attempts(&run.run_id)?, now_ms))
}

/// [`timeline`] from the run's attempts, already read.
pub fn timeline_of(run: &RunRecord, attempts: Vec<AttemptRecord>, now_ms: i64) -> Timeline {
    let origin = run.started_at_ms;
    let run_end = run.finished_at_ms.unwrap_or(now_ms).max(origin);
    let mut bars: Vec<TimelineBar> = attempts
        .into_iter()
        .map(|attempt| {
            let start = (attempt.started_at_ms - origin).max(0);
            let end = (attempt.finished_at_ms.unwrap_or(run_end) - origin).max(start);
            TimelineBar {
                task_id: attempt.task_id,
                attempt: attempt.attempt,
                start_ms: start,
                end_ms: end,
                open: attempt.finished_at_ms.is_none(),
                status: attempt.status,
                error: attempt.error,
            }
        })
        .collect();
    bars.sort_by(|a, b| {
        (a.start_ms, &a.task_id, a.attempt).cmp(&(b.start_ms, &b.task_id, b.attempt))
    });
    let span_ms = bars
        .iter()
        .map(|b| b.end_ms)
        .max()
        .unwrap_or(0)
        .max(run_end - origin);
    Timeline { span_ms, bars }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::test_support::{TestStore, record_run};
    use dag_state::Write;

    #[test]
    fn bars_are_relative_to_the_run_and_open_ones_end_now() -> Result<(), Box<dyn std::error::Error>>
    {
        let store = TestStore::new()?;
        let mut run = record_run(&store, "r", "d", &[])?;
        run.finished_at_ms = None;
        let at = |task: &str, start: i64, end: Option<i64>| AttemptRecord {
            run_id: "r".into(),
            task_id: task.into(),
            attempt: 1,
            status: if end.is_some() {
                AttemptStatus::Succeeded
            } else {
                AttemptStatus::Running
            },
            started_at_ms: run.started_at_ms + start,
            finished_at_ms: end.map(|e| run.started_at_ms + e),
            exit_code: None,
            error: None,
            log_path: None,
            metrics: Default::default(),
            placement: None,
        };
        store.commit(vec![
            Write::Attempt(at("late", 300, None)),
            Write::Attempt(at("early", 10, Some(200))),
        ])?;
        let timeline = timeline(&store, &run, run.started_at_ms + 1000)?;
        let bars: Vec<(&str, i64, i64, bool)> = timeline
            .bars
            .iter()
            .map(|b| (b.task_id.as_str(), b.start_ms, b.end_ms, b.open))
            .collect();
        assert_eq!(bars, [("early", 10, 200, false), ("late", 300, 1000, true)]);
        assert_eq!(timeline.span_ms, 1000);
        Ok(())
    }
}
