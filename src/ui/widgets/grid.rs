//! The history grid (Airflow's grid view): runs as columns, oldest on the
//! left, tasks as rows in plan order; each cell is the task's status in
//! that run, with its reason on hover and a link to the task in the run.
//! Above [`ROWS_MAX`] tasks the rows are the plan's levels instead, each
//! cell showing the worst status in the level.

use std::collections::BTreeMap;

use crate::ui::html::{Html, Seg, html};
use crate::ui::layout::{status_label, status_word, time};
use crate::views::history::RunHistory;
use crate::views::live::TaskState;

use super::glyph;

/// More tasks than this are shown one row per level.
pub const ROWS_MAX: usize = 200;

/// From bad to good: a level's cell shows the first of these present.
const SEVERITY: [&str; 10] = [
    "failed",
    "upstream_failed",
    "interrupted",
    "cancelled",
    "running",
    "pending",
    "skipped",
    "up_to_date",
    "succeeded",
    "queued",
];

/// `order`: task ids in plan order; `levels`: the plan's levels.
pub fn history_grid(history: &RunHistory, order: &[String], levels: &[Vec<String>]) -> Html {
    let mut out = Html::new();
    if history.runs.is_empty() {
        html!(out, "<p class=\"muted\">No runs yet.</p>");
        return out;
    }
    html!(
        out,
        "<div class=\"scroll\"><table class=\"grid\"><caption class=\"muted\">{} newest runs, oldest on the left; hover a cell for the reason</caption><thead><tr><th scope=\"col\">task</th>",
        history.runs.len()
    );
    for run in &history.runs {
        html!(
            out,
            "<th scope=\"col\" class=\"run\"><a href=\"/runs/{}\" title=\"{}\">{}</a></th>",
            Seg(&run.run_id),
            run.run_id,
            time(run.started_at_ms)
        );
    }
    html!(out, "</tr><tr><th scope=\"row\">run</th>");
    for run in &history.runs {
        let word = status_word(&run.status);
        html!(
            out,
            "<td class=\"cell\" data-status=\"{}\" title=\"run {}: {} ({})\"><a href=\"/runs/{}\">{}</a></td>",
            word,
            run.run_id,
            status_label(&word),
            run.trigger,
            Seg(&run.run_id),
            glyph(&word)
        );
    }
    html!(out, "</tr></thead><tbody>");
    if order.len() <= ROWS_MAX {
        let planned: std::collections::HashSet<&String> = order.iter().collect();
        let mut rows: Vec<&String> = order.iter().collect();
        rows.extend(history.cells.keys().filter(|id| !planned.contains(id)));
        for task in rows {
            task_row(&mut out, history, task);
        }
    } else {
        for (number, level) in levels.iter().enumerate() {
            level_row(&mut out, history, number, level);
        }
    }
    html!(out, "</tbody></table></div>");
    out
}

fn task_row(out: &mut Html, history: &RunHistory, task: &str) {
    html!(out, "<tr><th scope=\"row\" class=\"task\">{}</th>", task);
    let cells = history.cells.get(task);
    for (column, run) in history.runs.iter().enumerate() {
        match cells.and_then(|c| c.get(column)).and_then(Option::as_ref) {
            Some(TaskState { status, reason, .. }) => {
                let word = status_word(status);
                let title = match reason {
                    Some(reason) => format!("{task}: {} — {reason}", status_label(&word)),
                    None => format!("{task}: {}", status_label(&word)),
                };
                html!(
                    out,
                    "<td class=\"cell\" data-status=\"{}\" title=\"{}\"><a href=\"/runs/{}#task-{}\" aria-label=\"{}\">{}</a></td>",
                    word,
                    title,
                    Seg(&run.run_id),
                    Seg(task),
                    title,
                    glyph(&word)
                );
            }
            None => html!(out, "<td class=\"cell\" title=\"not in this run\"></td>"),
        }
    }
    html!(out, "</tr>");
}

fn level_row(out: &mut Html, history: &RunHistory, number: usize, level: &[String]) {
    html!(
        out,
        "<tr><th scope=\"row\" class=\"task\">level {} ({} tasks)</th>",
        number,
        level.len()
    );
    for (column, run) in history.runs.iter().enumerate() {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for task in level {
            if let Some(Some(state)) = history.cells.get(task).and_then(|c| c.get(column)) {
                *counts.entry(status_word(&state.status)).or_default() += 1;
            }
        }
        let Some(worst) = SEVERITY.iter().find(|w| counts.contains_key(**w)) else {
            html!(out, "<td class=\"cell\" title=\"not in this run\"></td>");
            continue;
        };
        let title: Vec<String> = counts
            .iter()
            .map(|(word, n)| format!("{n} {}", status_label(word)))
            .collect();
        html!(
            out,
            "<td class=\"cell\" data-status=\"{}\" title=\"level {}: {}\"><a href=\"/runs/{}\">{}</a></td>",
            *worst,
            number,
            title.join(", "),
            Seg(&run.run_id),
            glyph(worst)
        );
    }
    html!(out, "</tr>");
}
