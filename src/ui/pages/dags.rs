//! `/`: every DAG the daemon has loaded — description, schedule and next
//! fire, watches, the last run's status and a strip of recent runs, and a
//! run button — then files that do not load, and the runs going on now.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use dag_state::RunRecord;

use super::{LoadedDag, loaded_dags};
use crate::daemon::dispatch::{ActiveRun, QueuedRun};
use crate::ui::UiState;
use crate::ui::error::{PageError, blocking};
use crate::ui::html::{Html, Seg, html};
use crate::ui::layout::{Section, Viewer, badge, page, time};
use crate::ui::widgets::{StripRun, strip};
use crate::views::DagStatusJson;

/// Runs in each DAG's strip.
const STRIP_RUNS: usize = 14;

pub struct DagRow {
    pub status: DagStatusJson,
    pub description: Option<String>,
    pub tasks: usize,
    /// Newest first.
    pub recent: Vec<RunRecord>,
}

/// Everything `/` shows.
pub struct DagList {
    pub rows: Vec<DagRow>,
    pub unloaded: Vec<(PathBuf, String)>,
    pub active: Vec<ActiveRun>,
    pub queued: Vec<QueuedRun>,
    pub triggers: bool,
    pub dags_dir: PathBuf,
}

pub async fn list(State(ui): State<Arc<UiState>>, viewer: Viewer) -> Result<Response, PageError> {
    let (dags, unloaded) = loaded_dags(&ui);
    let store = ui.store();
    let now = chrono::Utc::now();
    let rows = blocking(move || {
        dags.into_iter()
            .map(
                |LoadedDag {
                     dag,
                     spec_hash,
                     error,
                 }| {
                    Ok(DagRow {
                        recent: store.runs(Some(&dag.name), STRIP_RUNS)?,
                        status: DagStatusJson::new(&dag, &spec_hash, error.as_deref(), now),
                        description: dag.description.clone(),
                        tasks: dag.tasks.len(),
                    })
                },
            )
            .collect::<Result<Vec<_>, PageError>>()
    })
    .await?;
    let list = DagList {
        rows,
        unloaded,
        active: ui.daemon.dispatcher.active(),
        queued: ui.daemon.dispatcher.queued(),
        triggers: ui.daemon.triggers,
        dags_dir: ui.daemon.dags_dir.clone(),
    };
    Ok(page(&viewer, Section::Dags, "DAGs", &render(&list)))
}

pub fn render(list: &DagList) -> Html {
    let mut out = Html::new();
    html!(
        out,
        "<h1>DAGs</h1><p class=\"lead\">{} DAGs loaded from <code>{}</code>.</p>",
        list.rows.len(),
        list.dags_dir.display().to_string()
    );
    if !list.triggers {
        html!(
            out,
            "<p class=\"notice\">Schedules and file watches are not firing: this is <code>dag ui</code>. Runs start from the run buttons; <code>dag daemon</code> also runs the schedules.</p>"
        );
    }
    html!(
        out,
        "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">DAG</th><th scope=\"col\">description</th>\
         <th scope=\"col\">schedule</th><th scope=\"col\">watches</th><th scope=\"col\">last run</th>\
         <th scope=\"col\">recent runs</th><th scope=\"col\"><span class=\"muted\">run</span></th></tr></thead><tbody>"
    );
    for row in &list.rows {
        dag_row(&mut out, row);
    }
    html!(out, "</tbody></table></div>");
    if !list.unloaded.is_empty() {
        html!(out, "<h2>Files that do not load</h2>");
        for (path, diagnostics) in &list.unloaded {
            html!(
                out,
                "<h3><code>{}</code></h3><pre class=\"error-box\">{}</pre>",
                path.display().to_string(),
                diagnostics
            );
        }
    }
    html!(out, "<h2>Running and queued</h2>");
    if list.active.is_empty() && list.queued.is_empty() {
        html!(out, "<p class=\"muted\">Nothing is running.</p>");
    } else {
        html!(
            out,
            "<table><thead><tr><th>run</th><th>DAG</th><th>state</th><th>trigger</th><th>since</th></tr></thead><tbody>"
        );
        for run in &list.active {
            html!(
                out,
                "<tr><td><a href=\"/runs/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}: {}</td><td>{}</td></tr>",
                Seg(&run.run_id),
                run.run_id,
                run.dag,
                badge(&dag_state::RunStatus::Running),
                run.trigger.kind,
                run.trigger.detail,
                time(run.started_at_ms)
            );
        }
        for run in &list.queued {
            html!(
                out,
                "<tr><td><a href=\"/runs/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}: {}</td><td>{}</td></tr>",
                Seg(&run.run_id),
                run.run_id,
                run.dag,
                badge(&dag_state::RunStatus::Queued),
                run.trigger.kind,
                run.trigger.detail,
                time(run.queued_at_ms)
            );
        }
        html!(out, "</tbody></table>");
    }
    out
}

fn dag_row(out: &mut Html, row: &DagRow) {
    let name = &row.status.name;
    html!(
        out,
        "<tr data-dag=\"{}\"><th scope=\"row\"><a href=\"/dags/{}\">{}</a> <span class=\"muted\">{} tasks</span>",
        name,
        Seg(name),
        name,
        row.tasks
    );
    if row.status.error.is_some() {
        html!(
            out,
            " <span class=\"badge\" data-status=\"failed\" title=\"the newest edit does not load; the previous version runs\">edit does not load</span>"
        );
    }
    html!(
        out,
        "</th><td class=\"description\">{}</td><td>",
        row.description
    );
    match &row.status.schedule {
        Some(schedule) => {
            html!(out, "<code>{}</code>", schedule);
            if let Some(zone) = &row.status.timezone {
                html!(out, " <span class=\"muted\">{}</span>", zone);
            }
            if let Some(next) = &row.status.next_fire {
                html!(out, "<br><span class=\"muted\">next {}</span>", next);
            }
        }
        None => html!(out, "<span class=\"muted\">on request</span>"),
    }
    html!(out, "</td><td>");
    for glob in &row.status.watch {
        html!(out, "<code>{}</code><br>", glob);
    }
    html!(out, "</td><td>");
    match row.recent.first() {
        Some(last) => html!(
            out,
            "<a href=\"/runs/{}\">{}</a><br><span class=\"muted\">{}</span>",
            Seg(&last.run_id),
            badge(&last.status),
            time(last.started_at_ms)
        ),
        None => html!(out, "<span class=\"muted\">never ran</span>"),
    }
    let runs: Vec<StripRun<'_>> = row
        .recent
        .iter()
        .rev()
        .map(|run| StripRun {
            run_id: &run.run_id,
            status: run.status,
            started_at_ms: run.started_at_ms,
        })
        .collect();
    html!(
        out,
        "</td><td>{}</td><td><a class=\"button primary\" href=\"/dags/{}/run\">Run…</a></td></tr>",
        strip(&runs),
        Seg(name)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const HOSTILE: &str = "<script>window.pwned=1</script>\"><img src=x onerror=alert(1)>";

    #[test]
    fn descriptions_schedules_and_names_are_escaped() -> Result<(), String> {
        let dag = crate::views::test_support::dag(&format!(
            "name: evil\ndescription: '{}'\nschedule: '0 3 * * *'\ntasks:\n  t:\n    operator: noop\n",
            HOSTILE.replace('\'', "''")
        ))?;
        let now = chrono::Utc::now();
        let list = DagList {
            rows: vec![DagRow {
                status: DagStatusJson::new(&dag, "h", Some(HOSTILE), now),
                description: dag.description.clone(),
                tasks: 1,
                recent: Vec::new(),
            }],
            unloaded: vec![(PathBuf::from("dags/<b>.yaml"), HOSTILE.to_string())],
            active: Vec::new(),
            queued: Vec::new(),
            triggers: true,
            dags_dir: PathBuf::from("dags"),
        };
        let html = render(&list).into_string();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;window.pwned=1&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("<code>0 3 * * *</code>"), "{html}");
        assert!(html.contains("next "), "{html}");
        assert!(html.contains("href=\"/dags/evil/run\""), "{html}");
        assert!(html.contains("never ran"), "{html}");
        Ok(())
    }
}
