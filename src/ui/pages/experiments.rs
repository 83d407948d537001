//! `/experiments/{dag}`: runs of a DAG side by side, as an experiment
//! tracker compares them — pick runs, see their params and every metric
//! their tasks recorded (differing rows first), and one metric over the
//! picked runs as a chart. `/experiments` lists the DAGs to pick from.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use dag_state::RunRecord;

use super::{find_dag, loaded_dags};
use crate::ui::UiState;
use crate::ui::error::{PageError, blocking};
use crate::ui::form::Form;
use crate::ui::html::{Html, Seg, html};
use crate::ui::layout::{Section, Viewer, badge, metric_text, page, time, value_text};
use crate::ui::widgets::charts::lines;
use crate::views::experiments::{Experiment, experiment};

/// Runs offered to pick from.
const OFFERED: usize = 30;
/// Runs picked when none are asked for.
const DEFAULT_PICK: usize = 5;

pub async fn index(State(ui): State<Arc<UiState>>, viewer: Viewer) -> Response {
    let (dags, _) = loaded_dags(&ui);
    let mut body = Html::new();
    html!(
        body,
        "<h1>Experiments</h1><p class=\"lead\">Pick a DAG to compare its runs' params and metrics.</p><ul>"
    );
    for loaded in &dags {
        html!(
            body,
            "<li><a href=\"/experiments/{}\">{}</a> <span class=\"muted\">{}</span></li>",
            Seg(&loaded.dag.name),
            loaded.dag.name,
            loaded.dag.description
        );
    }
    html!(body, "</ul>");
    page(&viewer, Section::Experiments, "Experiments", &body)
}

pub struct ExperimentPage {
    pub dag: String,
    pub offered: Vec<RunRecord>,
    pub picked: Vec<String>,
    pub experiment: Experiment,
    pub metric: Option<String>,
}

pub async fn show(
    State(ui): State<Arc<UiState>>,
    viewer: Viewer,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let dag = find_dag(&ui, &name)?.dag.name.clone();
    let form = Form::parse(query.as_deref().unwrap_or(""));
    let asked: Vec<String> = form.all("run").into_iter().map(String::from).collect();
    let metric = form
        .get("metric")
        .filter(|m| !m.is_empty())
        .map(String::from);
    let store = ui.store();
    let of = dag.clone();
    let (offered, picked, experiment) = blocking(move || {
        let offered = store.runs(Some(&of), OFFERED)?;
        let mut picked = if asked.is_empty() {
            offered
                .iter()
                .take(DEFAULT_PICK)
                .map(|r| r.run_id.clone())
                .collect()
        } else {
            asked
        };
        let mut experiment = experiment(&store, &picked)?;
        // Oldest first, so a chart reads left to right in time.
        experiment.runs.sort_by_key(|r| r.started_at_ms);
        picked = experiment.runs.iter().map(|r| r.run_id.clone()).collect();
        Ok((offered, picked, experiment))
    })
    .await?;
    let metric = metric.or_else(|| experiment.metric_names.first().cloned());
    let view = ExperimentPage {
        dag,
        offered,
        picked,
        experiment,
        metric,
    };
    Ok(page(
        &viewer,
        Section::Experiments,
        &format!("Experiments: {name}"),
        &render(&view),
    ))
}

pub fn render(view: &ExperimentPage) -> Html {
    let experiment = &view.experiment;
    let mut out = Html::new();
    html!(
        out,
        "<h1>Experiments: <a href=\"/dags/{}\">{}</a></h1><form method=\"get\" action=\"/experiments/{}\" id=\"pick\">\
         <details{}><summary>Pick runs ({} picked of the newest {})</summary><div class=\"chips\">",
        Seg(&view.dag),
        view.dag,
        Seg(&view.dag),
        view.picked.is_empty().then(|| Html::from_static(" open")),
        view.picked.len(),
        view.offered.len()
    );
    for run in &view.offered {
        let checked = view
            .picked
            .contains(&run.run_id)
            .then(|| Html::from_static(" checked"));
        html!(
            out,
            "<label class=\"chip\"><input type=\"checkbox\" name=\"run\" value=\"{}\"{}> {} {}</label>",
            run.run_id,
            checked,
            run.run_id,
            badge(&run.status)
        );
    }
    html!(
        out,
        "</div></details><label for=\"metric\">Metric to chart</label><select id=\"metric\" name=\"metric\">"
    );
    for name in &experiment.metric_names {
        let selected =
            (view.metric.as_deref() == Some(name.as_str())).then(|| Html::from_static(" selected"));
        html!(out, "<option{}>{}</option>", selected, name);
    }
    html!(
        out,
        "</select> <button type=\"submit\">Show</button></form>"
    );
    for missing in &experiment.missing {
        html!(out, "<p class=\"error-box\">No run `{}`.</p>", missing);
    }
    if experiment.runs.is_empty() {
        html!(out, "<p class=\"muted\">No runs picked.</p>");
        return out;
    }
    if let Some(metric) = &view.metric {
        let labels: Vec<String> = experiment
            .runs
            .iter()
            .map(|r| time(r.started_at_ms))
            .collect();
        html!(out, "<h2>{} over runs</h2>", metric);
        out.push(&lines(
            metric,
            &labels,
            &[(metric.clone(), experiment.series(metric))],
            &[],
        ));
    }
    table(&mut out, experiment);
    out
}

fn table(out: &mut Html, experiment: &Experiment) {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    for name in &experiment.param_names {
        let values = experiment
            .runs
            .iter()
            .map(|r| r.params.get(name).map(value_text).unwrap_or_default())
            .collect();
        rows.push((format!("param {name}"), values));
    }
    for name in &experiment.metric_names {
        let values = experiment
            .runs
            .iter()
            .map(|r| {
                r.metrics
                    .get(name)
                    .map(|v| metric_text(*v))
                    .unwrap_or_default()
            })
            .collect();
        rows.push((name.clone(), values));
    }
    let (differing, same): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .partition(|(_, values)| values.windows(2).any(|pair| pair[0] != pair[1]));
    html!(
        out,
        "<h2>Params and metrics</h2><div class=\"scroll\"><table id=\"comparison\"><thead><tr><th scope=\"col\"></th>"
    );
    for run in &experiment.runs {
        html!(
            out,
            "<th scope=\"col\"><a href=\"/runs/{}\">{}</a><br>{}</th>",
            Seg(&run.run_id),
            run.run_id,
            badge(&run.status)
        );
    }
    html!(out, "</tr></thead><tbody>");
    let body_rows = |out: &mut Html, rows: &[(String, Vec<String>)]| {
        for (name, values) in rows {
            html!(out, "<tr><th scope=\"row\"><code>{}</code></th>", name);
            for value in values {
                html!(out, "<td class=\"num\">{}</td>", value);
            }
            html!(out, "</tr>");
        }
    };
    body_rows(out, &differing);
    html!(out, "</tbody></table></div>");
    if !same.is_empty() {
        html!(
            out,
            "<details><summary>{} rows with the same value in every run</summary><table><tbody>",
            same.len()
        );
        body_rows(out, &same);
        html!(out, "</tbody></table></details>");
    }
}
