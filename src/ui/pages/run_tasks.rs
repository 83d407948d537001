//! The task table of a run page: per task its status (updated live), why it
//! ended so, attempts with their logs, duration, metrics, the operator's
//! summary and its outputs with their digests.

use std::collections::BTreeMap;

use dag_state::AttemptRecord;

use super::run::{RunPage, TASK_ROWS};
use crate::ui::html::{Html, Seg, html};
use crate::ui::layout::{duration, metric_text, short_digest, status_label, status_word};
use crate::views::TaskJson;

pub fn tasks_section(out: &mut Html, view: &RunPage) {
    let run = &view.run;
    let mut attempts: BTreeMap<&str, Vec<&AttemptRecord>> = BTreeMap::new();
    for attempt in &view.attempts {
        attempts.entry(&attempt.task_id).or_default().push(attempt);
    }
    // Tasks that have only started have attempts but no record yet.
    let recorded: std::collections::HashSet<&str> =
        run.tasks.iter().map(|t| t.id.as_str()).collect();
    let started: Vec<&str> = attempts
        .keys()
        .copied()
        .filter(|id| !recorded.contains(id))
        .collect();
    let total = run.tasks.len() + started.len();
    let shown = if view.all_tasks { total } else { TASK_ROWS };
    html!(
        out,
        "<section id=\"tasks\" data-refresh><h2>Tasks</h2><div class=\"scroll\"><table class=\"tasks\"><thead><tr>\
         <th scope=\"col\">task</th><th scope=\"col\">status</th><th scope=\"col\">attempts and logs</th>\
         <th scope=\"col\" class=\"num\">time</th><th scope=\"col\">metrics</th><th scope=\"col\">outputs</th></tr></thead><tbody>"
    );
    for id in started.iter().take(shown) {
        let none: &[&AttemptRecord] = &[];
        let state = view.states.get(*id).map(|s| status_word(&s.status));
        row(
            out,
            &run.run_id,
            &TaskJson {
                id: (*id).to_string(),
                operator: String::new(),
                status: view
                    .states
                    .get(*id)
                    .map_or(dag_state::TaskStatus::Running, |s| s.status),
                attempts: 0,
                duration_ms: None,
                reason: None,
                metrics: BTreeMap::new(),
                outputs: Vec::new(),
                summary: None,
                placements: Vec::new(),
            },
            attempts.get(id).map_or(none, Vec::as_slice),
            state.as_deref(),
        );
    }
    for task in run.tasks.iter().take(shown.saturating_sub(started.len())) {
        let none: &[&AttemptRecord] = &[];
        row(
            out,
            &run.run_id,
            task,
            attempts.get(task.id.as_str()).map_or(none, Vec::as_slice),
            None,
        );
    }
    html!(out, "</tbody></table></div>");
    if shown < total {
        html!(
            out,
            "<p>{} of {} tasks listed. <a href=\"/runs/{}?tasks=all#tasks\">List all</a></p>",
            shown,
            total,
            Seg(&run.run_id)
        );
    }
    html!(out, "</section>");
}

fn row(
    out: &mut Html,
    run_id: &str,
    task: &TaskJson,
    attempts: &[&AttemptRecord],
    live: Option<&str>,
) {
    let word = live.map_or_else(|| status_word(&task.status), String::from);
    html!(
        out,
        "<tr id=\"task-{}\"><th scope=\"row\"><code>{}</code><br><span class=\"muted\">{}</span></th>\
         <td><span class=\"badge\" data-task=\"{}\" data-status=\"{}\"><span data-role=\"state\">{}</span></span>",
        task.id,
        task.id,
        task.operator,
        task.id,
        word,
        status_label(&word)
    );
    if let Some(reason) = &task.reason {
        html!(out, "<div class=\"reason\">{}</div>", reason);
    }
    if let Some(summary) = &task.summary {
        html!(out, "<div class=\"summary muted\">{}</div>", summary);
    }
    html!(out, "</td><td>");
    for attempt in attempts {
        html!(
            out,
            "<a href=\"/runs/{}/logs/{}?attempt={}\">log of attempt {}</a> <span class=\"muted\">{}</span>",
            Seg(run_id),
            Seg(&task.id),
            attempt.attempt,
            attempt.attempt,
            status_label(&status_word(&attempt.status))
        );
        if let Some(error) = &attempt.error {
            html!(out, "<div class=\"muted\">{}</div>", error);
        }
        html!(out, "<br>");
    }
    html!(
        out,
        "</td><td class=\"num\">{}</td><td>",
        task.duration_ms.map(duration)
    );
    for (name, value) in &task.metrics {
        html!(
            out,
            "<code>{}</code>&nbsp;{}<br>",
            name,
            metric_text(*value)
        );
    }
    html!(out, "</td><td>");
    for output in &task.outputs {
        html!(
            out,
            "<code>{}</code> {} <span class=\"mono muted\" title=\"blake3 {}\">{}</span> <span class=\"muted\">{} B</span><br>",
            output.name,
            output.path,
            output.digest,
            short_digest(&output.digest),
            output.size
        );
    }
    html!(out, "</td></tr>");
}
