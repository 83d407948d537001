//! `/models/{name}/versions/{version}`: one registered version — its
//! metrics, params, training-data digests — and its lineage back to the raw
//! files it came from, drawn as a graph.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use dag_operators::models::{ModelRegistry, ModelVersion, RegistryError};

use crate::lineage::{LineageGraph, NodeKind, Start, upstream};
use crate::ui::UiState;
use crate::ui::actions::known_name;
use crate::ui::error::{PageError, blocking};
use crate::ui::html::{Html, Seg, html};
use crate::ui::layout::{Section, Viewer, metric_text, page};
use crate::ui::widgets::lineage::lineage_graph;
use crate::views::model_link;

pub async fn show(
    State(ui): State<Arc<UiState>>,
    viewer: Viewer,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, PageError> {
    known_name(&name)?;
    let number: u32 = version
        .trim_start_matches('v')
        .parse()
        .map_err(|_| PageError::bad_request(format!("`{version}` is not a version number")))?;
    let store = ui.store();
    let state_dir = ui.daemon.state_dir.clone();
    let (version, graph) = blocking(move || {
        let registry = ModelRegistry::open(&state_dir).map_err(|e| PageError::internal(&e))?;
        let version = registry.get(&name, number).map_err(|error| match error {
            RegistryError::UnknownModel { .. } | RegistryError::UnknownVersion { .. } => {
                PageError::not_found(error.to_string())
            }
            other => PageError::internal(&other),
        })?;
        let graph = upstream(&store, &Start::Model(model_link(&version)))?;
        Ok((version, graph))
    })
    .await?;
    let title = format!("{}@v{}", version.name, version.version);
    Ok(page(
        &viewer,
        Section::Models,
        &title,
        &render(&version, &graph),
    ))
}

pub fn render(version: &ModelVersion, graph: &LineageGraph) -> Html {
    let mut out = Html::new();
    html!(
        out,
        "<h1><a href=\"/models/{}\">{}</a> v{}</h1><dl class=\"facts\"><dt>digest</dt><dd class=\"mono\">{}</dd><dt>registered</dt><dd>{}</dd><dt>aliases</dt><dd>",
        Seg(&version.name),
        version.name,
        version.version,
        version.digest,
        version.created_at
    );
    for alias in &version.aliases {
        html!(out, "<code>{}</code> ", alias);
    }
    html!(out, "</dd>");
    if let (Some(run), Some(task)) = (&version.run_id, &version.task_id) {
        html!(
            out,
            "<dt>registered by</dt><dd><a href=\"/runs/{}#task-{}\">run {}</a>, task <code>{}</code></dd>",
            Seg(run),
            Seg(task),
            run,
            task
        );
    }
    html!(out, "</dl><h2 id=\"lineage\">Lineage</h2>");
    let produced: std::collections::HashSet<&str> =
        graph.edges.iter().map(|e| e.to.as_str()).collect();
    let raw: Vec<&crate::lineage::Node> = graph
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Artifact && !produced.contains(n.id.as_str()))
        .collect();
    html!(
        out,
        "<p class=\"lead\">From the raw files (left) to this version (right): {} nodes, {} edges. Raw data:</p><ul class=\"raw-data\">",
        graph.nodes.len(),
        graph.edges.len()
    );
    for node in raw {
        html!(
            out,
            "<li><code>{}</code> <span class=\"mono muted\">blake3 {}</span></li>",
            node.path.as_deref().unwrap_or("(unnamed)"),
            node.digest
        );
    }
    html!(
        out,
        "</ul><div class=\"scroll\">{}</div>",
        lineage_graph(graph)
    );
    html!(out, "<h2>Metrics</h2><table class=\"kv\"><tbody>");
    for (name, value) in &version.metrics {
        html!(
            out,
            "<tr><th scope=\"row\"><code>{}</code></th><td class=\"num\">{}</td></tr>",
            name,
            metric_text(*value)
        );
    }
    html!(
        out,
        "</tbody></table><h2>Training data</h2><table class=\"kv\"><tbody>"
    );
    for (input, digest) in &version.data_digests {
        html!(
            out,
            "<tr><th scope=\"row\"><code>{}</code></th><td class=\"mono\">{}</td></tr>",
            input,
            digest
        );
    }
    html!(
        out,
        "</tbody></table><h2>Params</h2><details><summary>the model's params</summary><pre class=\"source\">{}</pre></details>",
        serde_json::to_string_pretty(&version.params).unwrap_or_default()
    );
    out
}
