//! `/dags/{name}`: one DAG — its graph by plan levels with the latest run's
//! task states (followed live while it runs), the history grid of recent
//! runs, and its source with the diagnostics of an edit that does not load.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use dag_state::RunRecord;

use super::{LoadedDag, find_dag, graph_of};
use crate::ui::UiState;
use crate::ui::error::{PageError, blocking};
use crate::ui::form::Form;
use crate::ui::html::{Html, Seg, html};
use crate::ui::layout::{Section, Viewer, page, time};
use crate::ui::widgets::graph::{TaskLinks, task_graph};
use crate::ui::widgets::grid::history_grid;
use crate::views::history::{RunHistory, run_history};
use crate::views::live::{TaskState, task_states};
use crate::views::{DagGraph, DagStatusJson};

/// Runs in the history grid.
pub const HISTORY_RUNS: usize = 25;

pub struct DagPage {
    pub loaded: LoadedDag,
    pub status: DagStatusJson,
    pub graph: Arc<DagGraph>,
    pub latest: Option<RunRecord>,
    pub states: BTreeMap<String, TaskState>,
    pub history: RunHistory,
    /// The main file as it is on disk now, when its newest edit does not load.
    pub current_text: Option<String>,
    pub only_level: Option<usize>,
}

pub async fn show(
    State(ui): State<Arc<UiState>>,
    viewer: Viewer,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let loaded = find_dag(&ui, &name)?;
    let only_level = Form::parse(query.as_deref().unwrap_or(""))
        .get("level")
        .and_then(|l| l.parse().ok());
    let status = DagStatusJson::new(
        &loaded.dag,
        &loaded.spec_hash,
        loaded.error.as_deref(),
        chrono::Utc::now(),
    );
    let store = ui.store();
    let dag = Arc::clone(&loaded.dag);
    let broken = loaded.error.is_some();
    let (shared, of) = (Arc::clone(&ui), loaded.clone());
    let (graph, latest, states, history, current_text) = blocking(move || {
        let graph = graph_of(&shared, &of, &BTreeMap::new())?;
        let latest = store.runs(Some(&dag.name), 1)?.into_iter().next();
        let history = run_history(&store, &dag.name, HISTORY_RUNS)?;
        // The grid's last column is the latest run, unless one started in
        // between: then its states are read on their own.
        let states = match &latest {
            Some(run) if history.runs.last().map(|h| &h.run_id) == Some(&run.run_id) => history
                .cells
                .iter()
                .filter_map(|(id, column)| Some((id.clone(), column.last()?.clone()?)))
                .collect(),
            Some(run) => task_states(&store, &run.run_id)?,
            None => BTreeMap::new(),
        };
        // The path is the daemon's own record of where the DAG came from.
        let current_text = broken
            .then(|| std::fs::read_to_string(&dag.path).ok())
            .flatten();
        Ok((graph, latest, states, history, current_text))
    })
    .await?;
    let view = DagPage {
        loaded,
        status,
        graph,
        latest,
        states,
        history,
        current_text,
        only_level,
    };
    Ok(page(&viewer, Section::Dags, &name, &render(&view)))
}

pub fn render(view: &DagPage) -> Html {
    let dag = &view.loaded.dag;
    let name = &dag.name;
    let mut out = Html::new();
    html!(
        out,
        "<h1>{}</h1><p class=\"lead description\">{}</p><p><a class=\"button primary\" href=\"/dags/{}/run\">Run…</a> \
         <a class=\"button\" href=\"/experiments/{}\">Compare runs</a></p><dl class=\"facts\"><dt>file</dt><dd><code>{}</code></dd><dt>schedule</dt><dd>",
        name,
        dag.description,
        Seg(name),
        Seg(name),
        dag.path.display().to_string()
    );
    match &view.status.schedule {
        Some(schedule) => html!(
            out,
            "<code>{}</code> {} — next fire {}",
            schedule,
            view.status.timezone,
            view.status.next_fire.as_deref().unwrap_or("none")
        ),
        None => html!(out, "on request"),
    }
    html!(out, "</dd><dt>watches</dt><dd>");
    if dag.watch.is_empty() {
        html!(out, "none");
    }
    for glob in &dag.watch {
        html!(out, "<code>{}</code> ", glob);
    }
    html!(out, "</dd></dl>");
    if let Some(error) = &view.loaded.error {
        html!(
            out,
            "<div class=\"error-box\" role=\"alert\"><strong>The newest edit does not load; the previous version keeps running.</strong>\n{}</div>",
            error
        );
    }
    graph_section(&mut out, view);
    html!(out, "<h2 id=\"history\">History</h2>");
    let order = view.graph.order();
    let levels: Vec<Vec<String>> = view
        .graph
        .levels
        .iter()
        .map(|l| l.iter().map(|n| n.id.clone()).collect())
        .collect();
    out.push(&history_grid(&view.history, &order, &levels));
    if view.history.runs.len() >= 2 {
        compare_form(&mut out, &view.history);
    }
    source_section(&mut out, view);
    out
}

fn graph_section(out: &mut Html, view: &DagPage) {
    let name = &view.loaded.dag.name;
    let run_id = view
        .latest
        .as_ref()
        .map(|r| r.run_id.as_str())
        .unwrap_or("");
    html!(
        out,
        "<h2 id=\"graph\">Graph</h2><section data-live-dag=\"{}\" data-run=\"{}\"><p>",
        name,
        run_id
    );
    match &view.latest {
        Some(run) => html!(
            out,
            "Task states of the latest run <a data-run-link href=\"/runs/{}\">{}</a> ({}): <span class=\"badge\" data-run-status data-status=\"{}\">{}</span> <span class=\"live-note\" data-live-note></span>",
            Seg(&run.run_id),
            run.run_id,
            time(run.started_at_ms),
            crate::ui::layout::status_word(&run.status),
            crate::ui::layout::status_label(&crate::ui::layout::status_word(&run.status))
        ),
        None => html!(
            out,
            "No run yet: <a data-run-link href=\"#\"></a> <span class=\"badge\" data-run-status data-status=\"pending\">pending</span>"
        ),
    }
    html!(out, "</p>");
    let level_href = |level: usize| {
        let mut href = Html::new();
        html!(href, "/dags/{}?level={}#graph", Seg(name), level);
        href
    };
    out.push(&task_graph(
        &view.graph,
        &view.states,
        &TaskLinks {
            run_id: view.latest.as_ref().map(|r| r.run_id.as_str()),
        },
        view.only_level,
        &level_href,
    ));
    html!(out, "</section>");
}

fn compare_form(out: &mut Html, history: &RunHistory) {
    html!(
        out,
        "<form method=\"get\" action=\"/diff\" class=\"notice\"><strong>Compare two runs</strong> \
         <label for=\"diff-a\">A</label><select id=\"diff-a\" name=\"a\">"
    );
    let newest_first: Vec<_> = history.runs.iter().rev().collect();
    for (index, run) in newest_first.iter().enumerate() {
        let selected = if index == 1 {
            Some(Html::from_static(" selected"))
        } else {
            None
        };
        html!(
            out,
            "<option value=\"{}\"{}>{} ({})</option>",
            run.run_id,
            selected,
            run.run_id,
            crate::ui::layout::status_word(&run.status)
        );
    }
    html!(
        out,
        "</select><label for=\"diff-b\">B</label><select id=\"diff-b\" name=\"b\">"
    );
    for run in &newest_first {
        html!(
            out,
            "<option value=\"{}\">{} ({})</option>",
            run.run_id,
            run.run_id,
            crate::ui::layout::status_word(&run.status)
        );
    }
    html!(
        out,
        "</select> <button type=\"submit\">Compare</button></form>"
    );
}

/// Most bytes of one source file shown on the page: a 10,000-task file is
/// about 700 KiB, more than a page should carry.
pub const SOURCE_SHOWN_BYTES: usize = 64 * 1024;

/// The part of `text` shown (whole lines, at most [`SOURCE_SHOWN_BYTES`])
/// and how many lines are left out.
fn shown(text: &str) -> (&str, usize) {
    if text.len() <= SOURCE_SHOWN_BYTES {
        return (text, 0);
    }
    let mut cut = SOURCE_SHOWN_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let cut = text[..cut].rfind('\n').map_or(cut, |n| n + 1);
    (&text[..cut], text[cut..].lines().count())
}

fn source_text(out: &mut Html, path: &str, text: &str) {
    let (head, left) = shown(text);
    html!(out, "<pre class=\"source\">{}</pre>", head);
    if left > 0 {
        html!(
            out,
            "<p class=\"muted\">{} more lines not shown; the whole file is <code>{}</code>.</p>",
            left,
            path
        );
    }
}

fn source_section(out: &mut Html, view: &DagPage) {
    let dag = &view.loaded.dag;
    html!(out, "<h2 id=\"source\">Source</h2>");
    if let Some(text) = &view.current_text {
        html!(out, "<p>The file as it is now (it does not load):</p>");
        source_text(out, &dag.path.display().to_string(), text);
        html!(out, "<details><summary>The version that runs</summary>");
    }
    for (index, source) in dag.sources.iter().enumerate() {
        let path = source.path.display().to_string();
        if index == 0 {
            html!(out, "<p class=\"muted\"><code>{}</code></p>", path);
            source_text(out, &path, &source.text);
        } else {
            html!(
                out,
                "<details><summary>included <code>{}</code></summary>",
                path
            );
            source_text(out, &path, &source.text);
            html!(out, "</details>");
        }
    }
    if view.current_text.is_some() {
        html!(out, "</details>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::test_support::dag;

    #[test]
    fn a_long_source_is_cut_at_a_line_and_says_how_much_is_left() {
        let text: String = (0..20_000).map(|n| format!("line {n}\n")).collect();
        let (head, left) = shown(&text);
        assert!(head.len() <= SOURCE_SHOWN_BYTES && head.ends_with('\n'));
        assert_eq!(head.lines().count() + left, 20_000);
        assert!(left > 0);
        assert_eq!(shown("a\nb\n"), ("a\nb\n", 0));
    }

    fn page_for(text: &str, error: Option<&str>) -> Result<String, String> {
        let dag = Arc::new(dag(text)?);
        let plan = crate::plan::build_plan(&dag, &dag.params).map_err(|c| format!("{c:?}"))?;
        let view = DagPage {
            status: DagStatusJson::new(&dag, "h", error, chrono::Utc::now()),
            graph: Arc::new(DagGraph::new(&dag, &plan)),
            loaded: LoadedDag {
                dag,
                spec_hash: "h".into(),
                error: error.map(String::from),
            },
            latest: None,
            states: BTreeMap::new(),
            history: RunHistory {
                runs: Vec::new(),
                cells: BTreeMap::new(),
            },
            current_text: error.map(|_| "name: x\ntasks: [".to_string()),
            only_level: None,
        };
        Ok(render(&view).into_string())
    }

    #[test]
    fn the_graph_draws_each_task_and_names_artifacts_on_edges() -> Result<(), String> {
        let html = page_for(
            "name: g\ntasks:\n  make:\n    operator: noop\n    outputs: { table: out/t.csv }\n  use:\n    operator: noop\n    inputs: { rows: out/t.csv }\n",
            None,
        )?;
        assert!(
            html.contains("data-task=\"make\" data-status=\"pending\""),
            "{html}"
        );
        assert!(html.contains("data-task=\"use\""), "{html}");
        assert!(html.contains(">rows</text>"), "{html}");
        assert!(html.contains("data-live-dag=\"g\""), "{html}");
        assert!(html.contains("No runs yet"), "{html}");
        Ok(())
    }

    #[test]
    fn a_broken_edit_shows_its_diagnostics_and_the_file_as_it_is() -> Result<(), String> {
        let html = page_for(
            "name: g\ntasks:\n  t:\n    operator: noop\n",
            Some("error[dag::yaml_syntax]: <unclosed>"),
        )?;
        assert!(html.contains("does not load"), "{html}");
        assert!(
            html.contains("error[dag::yaml_syntax]: &lt;unclosed&gt;"),
            "{html}"
        );
        assert!(html.contains("tasks: ["), "{html}");
        Ok(())
    }

    #[test]
    fn a_large_dag_is_shown_by_collapsed_levels() -> Result<(), String> {
        let mut text = String::from("name: big\ntasks:\n");
        for level in 0..20 {
            for task in 0..10 {
                text.push_str(&format!("  t{level}_{task}:\n    operator: noop\n"));
                if level > 0 {
                    text.push_str(&format!("    needs: [t{}_{task}]\n", level - 1));
                }
            }
        }
        let html = page_for(&text, None)?;
        assert!(!html.contains("<svg class=\"graph\" viewBox"), "drawn");
        assert_eq!(html.matches("<details class=\"level\"").count(), 20);
        assert!(html.contains("200 tasks in 20 levels"));
        assert!(html.contains("data-level-counts=\"19\">10 pending"));
        Ok(())
    }
}
