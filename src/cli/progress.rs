//! Live progress of a run. It shows only what the recorder has committed, so
//! a task shown as finished is already durable.
//!
//! On a terminal: a line per finished task plus a redrawn status line with
//! running tasks, elapsed time and operator progress. Elsewhere: plain lines.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dag_state::{AttemptStatus, TaskStatus, Write};
use tokio::sync::mpsc::UnboundedReceiver;

/// Operator-reported progress by task: (done, total, unit).
pub type ProgressMap = Arc<Mutex<BTreeMap<String, (u64, u64, String)>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Redrawn status line (a terminal).
    Live,
    /// One line per event.
    Plain,
    /// Nothing (`--json` with no terminal on stderr).
    Silent,
}

pub struct Progress {
    pub mode: Mode,
    pub total: usize,
    pub color: bool,
    /// Write to stderr instead of stdout (`--json` keeps stdout for JSON).
    pub to_stderr: bool,
    pub reports: ProgressMap,
}

impl Progress {
    pub async fn run(mut self, mut batches: UnboundedReceiver<Arc<Vec<Write>>>) {
        let mut running: BTreeMap<String, (Instant, u32)> = BTreeMap::new();
        let mut finished = 0usize;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                batch = batches.recv() => {
                    let Some(batch) = batch else { break };
                    // One write per committed batch, not one per line.
                    let mut lines = String::new();
                    for write in batch.iter() {
                        match write {
                            Write::Attempt(attempt) if attempt.status == AttemptStatus::Running => {
                                running.insert(attempt.task_id.clone(), (Instant::now(), attempt.attempt));
                                if attempt.attempt > 1 {
                                    lines.push_str(&format!("  retry    {} (attempt {})\n", attempt.task_id, attempt.attempt));
                                }
                            }
                            // A task mapped over an upstream list became its
                            // instances: they count instead of it (an empty
                            // list leaves it, recorded as skipped).
                            Write::Event(event) if event.kind == "task_expanded" => {
                                let instances = event.detail["instances"].as_array().map_or(0, Vec::len);
                                self.total = (self.total + instances).saturating_sub(usize::from(instances > 0));
                            }
                            Write::Task(task) => {
                                running.remove(&task.task_id);
                                finished += 1;
                                if self.mode != Mode::Silent {
                                    lines.push_str(&self.task_line(task, finished));
                                    lines.push('\n');
                                }
                            }
                            _ => {}
                        }
                    }
                    if self.mode != Mode::Silent && !lines.is_empty() {
                        self.lines(&lines);
                    }
                    self.status(&running, finished);
                }
                _ = tick.tick() => self.status(&running, finished),
            }
        }
        self.clear_status();
    }

    fn task_line(&self, task: &dag_state::TaskRecord, finished: usize) -> String {
        task_line(
            &TaskLine {
                id: &task.task_id,
                status: task.status,
                duration_ms: task
                    .started_at_ms
                    .zip(task.finished_at_ms)
                    .map(|(s, f)| f - s),
                reason: task.reason.as_deref(),
            },
            finished,
            self.total,
            self.color,
        )
    }

    /// Writes whole lines (each ending in a newline) at once.
    fn lines(&self, text: &str) {
        self.clear_status();
        if self.to_stderr {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        } else {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    }

    fn status(&self, running: &BTreeMap<String, (Instant, u32)>, finished: usize) {
        if self.mode != Mode::Live || running.is_empty() {
            return;
        }
        let reports = self.reports.lock().map(|r| r.clone()).unwrap_or_default();
        let parts: Vec<String> = running
            .iter()
            .take(4)
            .map(|(task, (since, _))| {
                let progress = reports
                    .get(task)
                    .map(|(done, total, unit)| format!(" {done}/{total} {unit}"))
                    .unwrap_or_default();
                format!("{task} {:.1}s{progress}", since.elapsed().as_secs_f64())
            })
            .collect();
        let more = running.len().saturating_sub(4);
        let more = if more > 0 {
            format!(" +{more} more")
        } else {
            String::new()
        };
        let text = format!(
            "\r\x1b[2K[{finished}/{}] running: {}{more}",
            self.total,
            parts.join(", ")
        );
        self.raw(&text);
    }

    fn clear_status(&self) {
        if self.mode == Mode::Live {
            self.raw("\r\x1b[2K");
        }
    }

    fn raw(&self, text: &str) {
        if self.to_stderr {
            let _ = write!(std::io::stderr(), "{text}");
            let _ = std::io::stderr().flush();
        } else {
            let _ = write!(std::io::stdout(), "{text}");
            let _ = std::io::stdout().flush();
        }
    }
}

pub fn format_ms(ms: i64) -> String {
    crate::execute::humanize_ms(ms)
}

/// What one line of progress shows about a finished task.
pub struct TaskLine<'a> {
    pub id: &'a str,
    pub status: TaskStatus,
    pub duration_ms: Option<i64>,
    pub reason: Option<&'a str>,
}

/// `[ 3/12] ok        task                      1.2s  reason`.
pub fn task_line(task: &TaskLine<'_>, finished: usize, total: usize, color: bool) -> String {
    let (word, style) = match task.status {
        TaskStatus::Succeeded => ("ok", "\x1b[32m"),
        TaskStatus::UpToDate => ("fresh", "\x1b[36m"),
        TaskStatus::Failed => ("FAILED", "\x1b[1;31m"),
        TaskStatus::UpstreamFailed => ("upstream", "\x1b[33m"),
        TaskStatus::Skipped => ("skipped", "\x1b[33m"),
        TaskStatus::Cancelled | TaskStatus::Interrupted => ("cancelled", "\x1b[33m"),
        TaskStatus::Pending | TaskStatus::Running => ("running", ""),
    };
    let (style, reset) = if color { (style, "\x1b[0m") } else { ("", "") };
    let elapsed = task.duration_ms.map(format_ms).unwrap_or_default();
    let reason = task.reason.map(|r| format!("  {r}")).unwrap_or_default();
    let width = total.to_string().len();
    format!(
        "[{finished:>width$}/{total}] {style}{word:<9}{reset} {:<24} {elapsed:>7}{reason}",
        task.id
    )
}
