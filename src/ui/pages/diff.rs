//! `/diff/{a}/{b}`: what changed from run A to run B (as `dag runs diff`):
//! the definition, params, and per task its status, input digests and
//! metric deltas (B − A). `/diff?a=&b=` (the DAG page's form) redirects
//! there.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde_json::Value;

use crate::ui::UiState;
use crate::ui::access::redirect;
use crate::ui::error::{PageError, blocking};
use crate::ui::form::Form;
use crate::ui::html::{Fixed, Html, Seg, html};
use crate::ui::layout::{
    Section, Viewer, page, short_digest, status_label, status_word, value_text,
};
use crate::views::{DiffError, RunDiff, run_diff};

pub async fn pick(RawQuery(query): RawQuery) -> Result<Response, PageError> {
    let form = Form::parse(query.as_deref().unwrap_or(""));
    let (Some(a), Some(b)) = (form.get("a"), form.get("b")) else {
        return Err(PageError::bad_request(
            "name two runs: `/diff?a=RUN_A&b=RUN_B`",
        ));
    };
    let mut location = Html::new();
    html!(location, "/diff/{}/{}", Seg(a), Seg(b));
    Ok(redirect(location.as_str()))
}

pub async fn show(
    State(ui): State<Arc<UiState>>,
    viewer: Viewer,
    Path((a, b)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let store = ui.store();
    let diff = blocking(move || {
        run_diff(&store, &a, &b).map_err(|error| match error {
            DiffError::NoRun(id) => PageError::not_found(format!("no run `{id}`")),
            DiffError::Store(e) => PageError::from(e),
        })
    })
    .await?;
    Ok(page(&viewer, Section::Dags, "Compare runs", &render(&diff)))
}

fn run_link(out: &mut Html, run_id: &str) {
    html!(out, "<a href=\"/runs/{}\">{}</a>", Seg(run_id), run_id);
}

pub fn render(diff: &RunDiff) -> Html {
    let mut out = Html::new();
    html!(out, "<h1>Compare runs</h1><p class=\"lead\">A ");
    run_link(&mut out, &diff.run_a);
    html!(out, " ({}) → B ", diff.dag_a);
    run_link(&mut out, &diff.run_b);
    html!(out, " ({}); deltas are B − A.</p>", diff.dag_b);
    if diff.is_empty() {
        html!(
            out,
            "<p class=\"notice\" id=\"no-differences\">No differences: same definition, params, statuses, inputs and metrics.</p>"
        );
        return out;
    }
    html!(out, "<h2>Definition</h2>");
    if diff.spec_changed {
        html!(
            out,
            "<p>Changed: <code title=\"{}\">{}</code> → <code title=\"{}\">{}</code></p>",
            diff.spec_hash_a,
            short_digest(&diff.spec_hash_a),
            diff.spec_hash_b,
            short_digest(&diff.spec_hash_b)
        );
    } else {
        html!(out, "<p class=\"muted\">Unchanged.</p>");
    }
    html!(out, "<h2>Params</h2>");
    if diff.params.is_empty() {
        html!(out, "<p class=\"muted\">Unchanged.</p>");
    } else {
        html!(
            out,
            "<table id=\"param-changes\"><thead><tr><th>param</th><th>A</th><th>B</th></tr></thead><tbody>"
        );
        let show = |v: &Option<Value>| v.as_ref().map_or("(unset)".to_string(), value_text);
        for change in &diff.params {
            html!(
                out,
                "<tr><th scope=\"row\">{}</th><td><code>{}</code></td><td><code>{}</code></td></tr>",
                change.name,
                show(&change.a),
                show(&change.b)
            );
        }
        html!(out, "</tbody></table>");
    }
    html!(out, "<h2>Tasks</h2>");
    if diff.tasks.is_empty() {
        html!(out, "<p class=\"muted\">No task changed.</p>");
    }
    for task in &diff.tasks {
        let word = |s: Option<dag_state::TaskStatus>| {
            s.map_or("absent".to_string(), |s| status_label(&status_word(&s)))
        };
        html!(
            out,
            "<h3 class=\"task-diff\"><code>{}</code></h3><table><tbody>",
            task.id
        );
        if task.status_a != task.status_b {
            html!(
                out,
                "<tr><th scope=\"row\">status</th><td>{}</td><td>→ {}</td><td></td></tr>",
                word(task.status_a),
                word(task.status_b)
            );
        }
        for input in &task.inputs {
            let digest =
                |d: &Option<String>| d.as_deref().map_or("(none)", short_digest).to_string();
            html!(
                out,
                "<tr><th scope=\"row\">input <code>{}</code></th><td class=\"mono\">{}</td><td class=\"mono\">→ {}</td><td></td></tr>",
                input.name,
                digest(&input.a),
                digest(&input.b)
            );
        }
        for metric in &task.metrics {
            html!(
                out,
                "<tr class=\"metric-change\"><th scope=\"row\">metric <code>{}</code></th><td class=\"num\">{}</td><td class=\"num\">→ {}</td><td class=\"num\">{}</td></tr>",
                metric.name,
                metric.a.map(|v| Fixed(v, 4)),
                metric.b.map(|v| Fixed(v, 4)),
                metric.delta.map(|d| format!("{d:+.4}"))
            );
        }
        html!(out, "</tbody></table>");
    }
    out
}
