//! `/runs/{run_id}`: one run — why it ran, its params, its graph and task
//! states (followed live while it runs), a timeline of its attempts, each
//! task's status, reason, metrics, summary, outputs and logs, cancel and
//! resume buttons, and a link to what changed since the previous run.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use dag_state::{AttemptRecord, RunRecord, RunStatus, Store};

use super::{LoadedDag, find_dag, graph_of};
use crate::ui::UiState;
use crate::ui::error::{PageError, blocking};
use crate::ui::form::Form;
use crate::ui::html::{Html, Seg, html};
use crate::ui::layout::{Section, Viewer, duration, page, status_word, value_text};
use crate::ui::widgets::gantt::gantt;
use crate::ui::widgets::graph::{TaskLinks, task_graph};
use crate::views::live::{TaskState, states_of};
use crate::views::timeline::{Timeline, timeline_of};
use crate::views::{DagGraph, RunJson, run_json_of};

/// How far back to look for the run before this one.
const PREVIOUS_SEARCH: usize = 500;
/// How long a started run may take to be recorded before its page shows it
/// as waiting.
const RECORD_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// Task rows listed unless `?tasks=all`.
pub const TASK_ROWS: usize = 500;

pub struct RunPage {
    pub run: RunJson,
    pub attempts: Vec<AttemptRecord>,
    pub states: BTreeMap<String, TaskState>,
    pub timeline: Timeline,
    pub previous: Option<String>,
    /// The graph of the DAG as loaded now, when it is.
    pub graph: Option<Arc<DagGraph>>,
    /// Current defaults, to mark the params this run overrode.
    pub defaults: BTreeMap<String, serde_json::Value>,
    pub all_tasks: bool,
}

fn previous_run(store: &Store, run: &RunRecord) -> Result<Option<String>, PageError> {
    let runs = store.runs(Some(&run.dag), PREVIOUS_SEARCH)?;
    Ok(runs
        .iter()
        .position(|r| r.run_id == run.run_id)
        .and_then(|at| runs.get(at + 1))
        .map(|r| r.run_id.clone()))
}

pub async fn show(
    State(ui): State<Arc<UiState>>,
    viewer: Viewer,
    Path(run_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let all_tasks = Form::parse(query.as_deref().unwrap_or("")).get("tasks") == Some("all");
    let store = ui.store();
    let id = run_id.clone();
    // A run the dispatcher just started is recorded within milliseconds:
    // wait for that rather than show it as not started.
    let starting = ui
        .daemon
        .dispatcher
        .active()
        .iter()
        .any(|a| a.run_id == run_id);
    let found = blocking(move || {
        let deadline = std::time::Instant::now() + RECORD_WAIT;
        let record = loop {
            match store.run(&id)? {
                Some(record) => break record,
                None if starting && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                None => return Ok(None),
            }
        };
        let tasks = store.tasks(&id)?;
        let attempts = store.attempts(&id)?;
        let states = states_of(&attempts, &tasks);
        let timeline = timeline_of(&record, attempts.clone(), crate::execute::now_ms());
        let mut run = run_json_of(&record, tasks, None);
        run.expansions = crate::views::expansions_of(&store.events(&id)?);
        let previous = previous_run(&store, &record)?;
        Ok(Some((run, attempts, states, timeline, previous)))
    })
    .await?;
    let Some((mut run, attempts, states, timeline, previous)) = found else {
        return queued_or_missing(&ui, &viewer, &run_id);
    };
    let loaded: Option<LoadedDag> = find_dag(&ui, &run.dag).ok();
    let graph = match &loaded {
        Some(loaded) => {
            let (shared, of, params) = (Arc::clone(&ui), loaded.clone(), run.params.clone());
            blocking(move || Ok(graph_of(&shared, &of, &params).ok())).await?
        }
        None => None,
    };
    if let Some(graph) = &graph {
        let rank: std::collections::HashMap<String, usize> = graph
            .order()
            .into_iter()
            .enumerate()
            .map(|(i, id)| (id, i))
            .collect();
        run.tasks
            .sort_by_cached_key(|t| rank.get(&t.id).copied().unwrap_or(usize::MAX));
    }
    let view = RunPage {
        run,
        attempts,
        states,
        timeline,
        previous,
        graph,
        defaults: loaded.map(|l| l.dag.params.clone()).unwrap_or_default(),
        all_tasks,
    };
    Ok(page(
        &viewer,
        Section::Dags,
        &format!("Run {run_id}"),
        &render(&view, &viewer),
    ))
}

/// A run the dispatcher queued has no record yet: its page shows the DAG's
/// graph and reloads (with the script) once the run starts.
fn queued_or_missing(ui: &UiState, viewer: &Viewer, run_id: &str) -> Result<Response, PageError> {
    let dispatcher = &ui.daemon.dispatcher;
    let queued = dispatcher
        .queued()
        .into_iter()
        .chain(
            dispatcher
                .active()
                .into_iter()
                .map(|a| crate::daemon::dispatch::QueuedRun {
                    run_id: a.run_id,
                    dag: a.dag,
                    queued_at_ms: a.started_at_ms,
                    trigger: a.trigger,
                }),
        )
        .find(|q| q.run_id == run_id)
        .ok_or_else(|| PageError::not_found(format!("no run `{run_id}`")))?;
    let mut body = Html::new();
    html!(
        body,
        "<h1>Run {}</h1><p class=\"lead\">of <a href=\"/dags/{}\">{}</a></p><div data-live-run=\"{}\" data-reload-on-start>\
         <p>Status: <span class=\"badge\" data-run-status data-status=\"queued\">queued</span> <span class=\"live-note\" data-live-note></span></p>\
         <p>Trigger: {} — {}</p><form class=\"inline\" method=\"post\" action=\"/runs/{}/cancel\">{}<button class=\"danger\" type=\"submit\">Cancel</button></form>\
         <p class=\"muted\">Waiting for a free slot: this page shows the run when it starts.</p>",
        queued.run_id,
        Seg(&queued.dag),
        queued.dag,
        queued.run_id,
        queued.trigger.kind,
        queued.trigger.detail,
        Seg(&queued.run_id),
        viewer.csrf_field()
    );
    if let Ok(loaded) = find_dag(ui, &queued.dag)
        && let Ok(plan) = crate::plan::build_plan(&loaded.dag, &loaded.dag.params)
    {
        body.push(&task_graph(
            &DagGraph::new(&loaded.dag, &plan),
            &BTreeMap::new(),
            &TaskLinks { run_id: None },
            None,
            &|_| Html::new(),
        ));
    }
    html!(body, "</div>");
    Ok(page(viewer, Section::Dags, &format!("Run {run_id}"), &body))
}

pub fn render(view: &RunPage, viewer: &Viewer) -> Html {
    let run = &view.run;
    let live = run.finished_at.is_none();
    let mut out = Html::new();
    html!(
        out,
        "<h1>Run {}</h1><p class=\"lead\">of <a href=\"/dags/{}\">{}</a></p><div{}>",
        run.run_id,
        Seg(&run.dag),
        run.dag,
        live.then(|| {
            let mut attr = Html::new();
            html!(attr, " data-live-run=\"{}\"", run.run_id);
            attr
        })
    );
    facts(&mut out, view, viewer);
    params(&mut out, view);
    if let Some(graph) = &view.graph {
        html!(out, "<h2 id=\"graph\">Graph</h2>");
        out.push(&task_graph(
            graph,
            &view.states,
            &TaskLinks { run_id: None },
            None,
            &|_| Html::new(),
        ));
    }
    html!(
        out,
        "<section id=\"timeline\" data-refresh><h2>Timeline</h2>"
    );
    out.push(&gantt(&view.timeline));
    html!(out, "</section>");
    super::run_tasks::tasks_section(&mut out, view);
    html!(out, "</div>");
    out
}

fn facts(out: &mut Html, view: &RunPage, viewer: &Viewer) {
    let run = &view.run;
    let word = status_word(&run.status);
    html!(
        out,
        "<section id=\"facts\" data-refresh><dl class=\"facts\"><dt>status</dt><dd><span class=\"badge\" data-run-status data-status=\"{}\">{}</span> <span class=\"live-note\" data-live-note>{}</span></dd>\
         <dt>why it ran</dt><dd class=\"trigger\"><strong>{}</strong> — {}",
        word,
        crate::ui::layout::status_label(&word),
        run.finished_at.is_none().then_some("following live"),
        run.trigger.kind,
        run.trigger.detail
    );
    if let Some(parent) = parent_run(&run.trigger) {
        html!(
            out,
            " (<a href=\"/runs/{}\">run {}</a>)",
            Seg(parent),
            parent
        );
    }
    html!(out, "</dd>");
    if let Some(earlier) = &run.resumed_from {
        html!(
            out,
            "<dt>resumed from</dt><dd><a href=\"/runs/{}\">{}</a></dd>",
            Seg(earlier),
            earlier
        );
    }
    for expansion in &run.expansions {
        html!(
            out,
            "<dt>expanded</dt><dd><strong>{}</strong> over <code>{}</code>: {} instance{}</dd>",
            expansion.task,
            expansion.from,
            expansion.instances.len(),
            if expansion.instances.len() == 1 {
                ""
            } else {
                "s"
            }
        );
    }
    html!(out, "<dt>started</dt><dd>{}</dd>", run.started_at);
    if let Some(finished) = &run.finished_at {
        html!(
            out,
            "<dt>finished</dt><dd>{} ({})</dd>",
            finished,
            run.duration_ms.map(duration)
        );
    }
    html!(
        out,
        "<dt>definition</dt><dd><code title=\"{}\">{}</code></dd></dl><p>",
        run.spec_hash,
        crate::ui::layout::short_digest(&run.spec_hash)
    );
    if run.finished_at.is_none() || matches!(run.status, RunStatus::Running | RunStatus::Queued) {
        html!(
            out,
            "<form class=\"inline\" method=\"post\" action=\"/runs/{}/cancel\">{}<button class=\"danger\" type=\"submit\">Cancel run</button></form> ",
            Seg(&run.run_id),
            viewer.csrf_field()
        );
    }
    if matches!(
        run.status,
        RunStatus::Failed | RunStatus::Cancelled | RunStatus::Interrupted
    ) {
        html!(
            out,
            "<form class=\"inline\" method=\"post\" action=\"/runs/{}/resume\">{}<button class=\"primary\" type=\"submit\">Resume</button></form> ",
            Seg(&run.run_id),
            viewer.csrf_field()
        );
    }
    match &view.previous {
        Some(previous) => html!(
            out,
            "<a class=\"button\" href=\"/diff/{}/{}\">Compare with the previous run</a> ",
            Seg(previous),
            Seg(&run.run_id)
        ),
        None => html!(out, "<span class=\"muted\">first run of this DAG</span> "),
    }
    html!(out, "</p></section>");
}

/// The parent run named in a `dag` trigger's detail
/// (`<dag> run <run id> task <task>: <reason>`).
fn parent_run(trigger: &dag_state::Trigger) -> Option<&str> {
    if trigger.kind != "dag" {
        return None;
    }
    let mut words = trigger.detail.split_whitespace();
    words.find(|w| *w == "run")?;
    words.next()
}

fn params(out: &mut Html, view: &RunPage) {
    html!(out, "<h2>Params</h2>");
    if view.run.params.is_empty() {
        html!(out, "<p class=\"muted\">none</p>");
        return;
    }
    html!(
        out,
        "<table class=\"params\"><thead><tr><th>param</th><th>value</th><th></th></tr></thead><tbody>"
    );
    for (name, value) in &view.run.params {
        let changed = view.defaults.get(name).is_some_and(|d| d != value);
        html!(
            out,
            "<tr><th scope=\"row\">{}</th><td><code>{}</code></td><td class=\"muted\">{}</td></tr>",
            name,
            value_text(value),
            changed.then(|| {
                format!(
                    "default now {}",
                    view.defaults.get(name).map(value_text).unwrap_or_default()
                )
            })
        );
    }
    html!(out, "</tbody></table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "<script>x()</script>\"><img src=x onerror=y()>";

    fn hostile_run(finished: bool) -> RunPage {
        let task = crate::views::TaskJson {
            id: "t".into(),
            operator: "shell".into(),
            status: dag_state::TaskStatus::Failed,
            attempts: 1,
            duration_ms: Some(1200),
            reason: Some(HOSTILE.into()),
            metrics: BTreeMap::from([("acc".to_string(), 0.5)]),
            outputs: vec![dag_state::ArtifactRecord {
                name: "out".into(),
                path: HOSTILE.into(),
                digest: "ab".repeat(32),
                size: 3,
            }],
            summary: Some(HOSTILE.into()),
            placements: Vec::new(),
        };
        RunPage {
            run: RunJson {
                run_id: "r1".into(),
                dag: "d".into(),
                status: if finished {
                    RunStatus::Failed
                } else {
                    RunStatus::Running
                },
                trigger: dag_state::Trigger {
                    kind: "api".into(),
                    detail: HOSTILE.into(),
                },
                resumed_from: None,
                env: None,
                params: BTreeMap::from([("p".to_string(), serde_json::json!(HOSTILE))]),
                spec_hash: "f".repeat(64),
                started_at: "2026-01-01T00:00:00Z".into(),
                finished_at: finished.then(|| "2026-01-01T00:00:01Z".to_string()),
                duration_ms: finished.then_some(1000),
                tasks: vec![task],
                notifications: Vec::new(),
                expansions: vec![crate::views::ExpansionJson {
                    task: HOSTILE.into(),
                    from: HOSTILE.into(),
                    instances: vec!["a".into(), "b".into()],
                }],
            },
            attempts: Vec::new(),
            states: BTreeMap::new(),
            timeline: Timeline {
                span_ms: 0,
                bars: Vec::new(),
            },
            previous: Some("r0".into()),
            graph: None,
            defaults: BTreeMap::new(),
            all_tasks: false,
        }
    }

    #[test]
    fn trigger_params_reasons_summaries_and_outputs_are_escaped() {
        let viewer = Viewer {
            csrf: "c".into(),
            signed_in: false,
        };
        let html = render(&hostile_run(true), &viewer).into_string();
        assert!(
            !html.contains("<script>") && !html.contains("<img"),
            "{html}"
        );
        assert_eq!(
            html.matches("&lt;script&gt;x()&lt;/script&gt;").count(),
            7,
            "{html}"
        );
        assert!(html.contains("</code>: 2 instances</dd>"), "{html}");
        assert!(html.contains("href=\"/diff/r0/r1\""), "{html}");
        assert!(
            html.contains("action=\"/runs/r1/resume\""),
            "a failed run can be resumed"
        );
        assert!(
            !html.contains("/cancel\""),
            "a finished run cannot be cancelled"
        );
        assert!(
            !html.contains("data-live-run"),
            "a finished run is not followed"
        );
    }

    #[test]
    fn a_running_run_is_followed_and_can_be_cancelled() {
        let viewer = Viewer {
            csrf: "c".into(),
            signed_in: false,
        };
        let html = render(&hostile_run(false), &viewer).into_string();
        assert!(html.contains("data-live-run=\"r1\""), "{html}");
        assert!(html.contains("action=\"/runs/r1/cancel\""), "{html}");
        assert!(html.contains("name=\"csrf\" value=\"c\""), "{html}");
        assert!(!html.contains("/resume\""), "{html}");
    }

    #[test]
    fn a_dag_trigger_links_its_parent_run() {
        let trigger = dag_state::Trigger {
            kind: "dag".into(),
            detail: "monitoring run 20260101-000000-abcd task trigger: drift in Weight".into(),
        };
        assert_eq!(parent_run(&trigger), Some("20260101-000000-abcd"));
        let cli = dag_state::Trigger {
            kind: "cli".into(),
            detail: "dag run x".into(),
        };
        assert_eq!(parent_run(&cli), None);
    }
}
