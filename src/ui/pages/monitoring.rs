//! `/monitoring`: for every task of a loaded DAG that checks drift, the
//! newest report (per-feature Jensen–Shannon divergence and PSI as bars
//! against their thresholds), the trend of the largest divergence over the
//! recent checks, and each check with the retraining runs it started.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::loaded_dags;
use crate::cache::RunCache;
use crate::ui::UiState;
use crate::ui::error::{PageError, blocking};
use crate::ui::html::{Fixed, Html, Seg, html};
use crate::ui::layout::{Section, Viewer, badge, page, status_label, status_word, time};
use crate::ui::widgets::charts::{bars, lines};
use crate::views::drift::{DriftCheck, drift_checks, drift_tasks};

/// Checks shown per drift task.
const CHECKS: usize = 20;

pub struct Monitor {
    pub dag: String,
    pub task: String,
    /// Newest first.
    pub checks: Vec<DriftCheck>,
}

pub async fn show(State(ui): State<Arc<UiState>>, viewer: Viewer) -> Result<Response, PageError> {
    let (dags, _) = loaded_dags(&ui);
    let wanted: Vec<(String, String)> = dags
        .iter()
        .flat_map(|loaded| {
            drift_tasks(&loaded.dag)
                .into_iter()
                .map(|task| (loaded.dag.name.clone(), task))
        })
        .collect();
    let store = ui.store();
    let monitors = blocking(move || {
        let cache = RunCache::beside(&store);
        wanted
            .into_iter()
            .map(|(dag, task)| {
                let checks = drift_checks(&store, &cache, &dag, &task, CHECKS)?;
                Ok(Monitor { dag, task, checks })
            })
            .collect::<Result<Vec<_>, PageError>>()
    })
    .await?;
    Ok(page(
        &viewer,
        Section::Monitoring,
        "Monitoring",
        &render(&monitors),
    ))
}

pub fn render(monitors: &[Monitor]) -> Html {
    let mut out = Html::new();
    html!(out, "<h1>Monitoring</h1>");
    if monitors.is_empty() {
        html!(
            out,
            "<p class=\"muted\">No loaded DAG has a <code>monitor.drift</code> task.</p>"
        );
    }
    for monitor in monitors {
        monitor_section(&mut out, monitor);
    }
    out
}

fn monitor_section(out: &mut Html, monitor: &Monitor) {
    html!(
        out,
        "<section class=\"monitor\"><h2><a href=\"/dags/{}\">{}</a> · <code>{}</code></h2>",
        Seg(&monitor.dag),
        monitor.dag,
        monitor.task
    );
    let Some(latest) = monitor.checks.first() else {
        html!(out, "<p class=\"muted\">No checks yet.</p></section>");
        return;
    };
    html!(
        out,
        "<p>Newest check: <a href=\"/runs/{}#task-{}\">{}</a> ({}) — ",
        Seg(&latest.run_id),
        Seg(&monitor.task),
        latest.run_id,
        time(latest.started_at_ms)
    );
    match latest.drift_detected {
        Some(true) => html!(
            out,
            "<span class=\"badge\" data-status=\"failed\">drift</span> in {}",
            latest.drifted_features.join(", ")
        ),
        Some(false) => html!(
            out,
            "<span class=\"badge\" data-status=\"succeeded\">no drift</span>"
        ),
        None => html!(out, "{}", badge(&latest.status)),
    }
    html!(out, "</p>");
    match &latest.report {
        Some(report) => {
            let mut features: Vec<(&String, &crate::views::drift::FeatureDrift)> =
                report.features.iter().collect();
            features.sort_by(|a, b| b.1.js.total_cmp(&a.1.js));
            let js: Vec<(String, f64)> =
                features.iter().map(|(n, f)| ((*n).clone(), f.js)).collect();
            let psi: Vec<(String, f64)> = features
                .iter()
                .map(|(n, f)| ((*n).clone(), f.psi))
                .collect();
            html!(
                out,
                "<p class=\"muted\">{} reference rows ({}) against {} current rows ({}).</p><div class=\"cols\">",
                report.reference_rows,
                report.reference_name(),
                report.current_rows,
                report.current
            );
            out.push(&bars(
                "Jensen–Shannon divergence",
                "bar-js",
                &js,
                report.js_threshold,
            ));
            out.push(&bars("PSI", "bar-psi", &psi, report.psi_threshold));
            html!(out, "</div>");
        }
        None => html!(
            out,
            "<p class=\"muted\">The report of this check is no longer in the run cache (<code>dag gc</code> removes old entries); its largest divergences are below.</p>"
        ),
    }
    trend(out, monitor);
    checks_table(out, monitor);
    html!(out, "</section>");
}

fn trend(out: &mut Html, monitor: &Monitor) {
    let oldest_first: Vec<&DriftCheck> = monitor.checks.iter().rev().collect();
    if oldest_first.len() < 2 {
        return;
    }
    let labels: Vec<String> = oldest_first.iter().map(|c| time(c.started_at_ms)).collect();
    let thresholds = monitor
        .checks
        .iter()
        .find_map(|c| c.report.as_ref())
        .map(|r| vec![r.js_threshold])
        .unwrap_or_default();
    html!(
        out,
        "<h3>Trend over the last {} checks</h3>",
        oldest_first.len()
    );
    out.push(&lines(
        "largest JS divergence per check (dashed: JS threshold)",
        &labels,
        &[(
            "max JS".to_string(),
            oldest_first.iter().map(|c| c.max_js).collect(),
        )],
        &thresholds,
    ));
    out.push(&lines(
        "largest PSI per check",
        &labels,
        &[(
            "max PSI".to_string(),
            oldest_first.iter().map(|c| c.max_psi).collect(),
        )],
        &[],
    ));
}

fn checks_table(out: &mut Html, monitor: &Monitor) {
    html!(
        out,
        "<table class=\"checks\"><thead><tr><th>check</th><th>result</th><th class=\"num\">max JS</th><th class=\"num\">max PSI</th><th>drifted</th><th>retraining it started</th></tr></thead><tbody>"
    );
    for check in &monitor.checks {
        html!(
            out,
            "<tr><td><a href=\"/runs/{}\">{}</a><br><span class=\"muted\">{}</span></td><td>",
            Seg(&check.run_id),
            check.run_id,
            time(check.started_at_ms)
        );
        match check.drift_detected {
            Some(true) => html!(
                out,
                "<span class=\"badge\" data-status=\"failed\">drift</span>"
            ),
            Some(false) => html!(
                out,
                "<span class=\"badge\" data-status=\"succeeded\">no drift</span>"
            ),
            None => html!(out, "{} {}", badge(&check.status), check.reason),
        }
        html!(
            out,
            "</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>",
            check.max_js.map(|v| Fixed(v, 4)),
            check.max_psi.map(|v| Fixed(v, 4)),
            check.drifted_features.join(", ")
        );
        if check.caused.is_empty() {
            html!(out, "<span class=\"muted\">none</span>");
        }
        for caused in &check.caused {
            match &caused.run_id {
                Some(run_id) => html!(
                    out,
                    "<a class=\"caused\" href=\"/runs/{}\">{} {}</a> {} <span class=\"muted\">by <code>{}</code></span><br>",
                    Seg(run_id),
                    caused.dag.as_deref().unwrap_or("(queued)"),
                    run_id,
                    caused.status.map(|s| status_label(&status_word(&s))),
                    caused.task_id
                ),
                None => html!(
                    out,
                    "{} <span class=\"muted\">by <code>{}</code> (a foreground <code>dag run</code> runs it next, without recording its id here)</span><br>",
                    caused.state,
                    caused.task_id
                ),
            }
        }
        html!(out, "</td></tr>");
    }
    html!(out, "</tbody></table>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::drift::{CausedRun, DriftReport, FeatureDrift};

    fn check(run_id: &str, js: f64, report: Option<DriftReport>) -> DriftCheck {
        DriftCheck {
            run_id: run_id.into(),
            started_at_ms: 0,
            status: dag_state::TaskStatus::Succeeded,
            reason: None,
            drift_detected: Some(js > 0.1),
            max_js: Some(js),
            max_psi: Some(js * 10.0),
            drifted_features: vec!["<b>weight</b>".into()],
            report,
            caused: vec![CausedRun {
                task_id: "retrain".into(),
                run_id: Some(format!("{run_id}-retrain")),
                state: Some("started".into()),
                dag: Some("retraining".into()),
                status: Some(dag_state::RunStatus::Succeeded),
            }],
        }
    }

    #[test]
    fn features_are_bars_against_thresholds_and_drift_links_its_retraining() {
        let report = DriftReport {
            reference: "a.csv".into(),
            current: "b.csv".into(),
            reference_rows: 10,
            current_rows: 10,
            js_threshold: 0.1,
            psi_threshold: 0.2,
            drift_detected: true,
            features: [
                (
                    "<b>weight</b>".to_string(),
                    FeatureDrift {
                        js: 0.4,
                        psi: 2.0,
                        drifted: true,
                    },
                ),
                (
                    "height".to_string(),
                    FeatureDrift {
                        js: 0.01,
                        psi: 0.02,
                        drifted: false,
                    },
                ),
            ]
            .into_iter()
            .collect(),
        };
        let monitors = [Monitor {
            dag: "monitoring".into(),
            task: "detect".into(),
            checks: vec![check("new", 0.4, Some(report)), check("old", 0.05, None)],
        }];
        let html = render(&monitors).into_string();
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;b&gt;weight&lt;/b&gt;"), "{html}");
        // One bar per feature in each chart; the drifted one marked over.
        assert_eq!(html.matches("class=\"bar-js").count(), 2, "{html}");
        assert_eq!(html.matches("class=\"bar-js over\"").count(), 1, "{html}");
        assert_eq!(html.matches("class=\"bar-psi over\"").count(), 1, "{html}");
        assert_eq!(html.matches("class=\"threshold\"").count(), 3, "{html}");
        assert!(html.contains("href=\"/runs/new-retrain\""), "{html}");
        assert!(html.contains("Trend over the last 2 checks"), "{html}");
    }
}
