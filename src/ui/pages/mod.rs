//! One module per page. Each handler reads what it shows through the
//! library's views (off the async workers), then renders it; rendering is a
//! plain function of the views, so it is tested without a daemon.

pub mod dag;
pub mod dags;
pub mod diff;
pub mod experiments;
pub mod logs;
pub mod model_version;
pub mod models;
pub mod monitoring;
pub mod run;
pub mod run_form;
pub mod run_tasks;

use std::path::PathBuf;
use std::sync::{Arc, PoisonError};

use axum::response::Response;

use super::UiState;
use super::error::PageError;
use super::html::{Html, html};
use super::layout::{Section, Viewer, page_with_status};
use crate::model::Dag;
use crate::views::DagGraph;

/// Graphs already planned, by spec hash and params; a handful of entries,
/// cleared when it fills (definitions change rarely).
#[derive(Default)]
pub struct GraphCache {
    graphs: std::sync::Mutex<std::collections::HashMap<(String, String), Arc<DagGraph>>>,
}

const GRAPHS_KEPT: usize = 32;

/// The task graph of `loaded` with `params` over its defaults, planned once
/// per definition and params. Blocking: call it off the async workers.
pub fn graph_of(
    ui: &UiState,
    loaded: &LoadedDag,
    params: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<Arc<DagGraph>, PageError> {
    let mut merged = loaded.dag.params.clone();
    merged.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
    let key = (
        loaded.spec_hash.clone(),
        serde_json::to_string(&merged).unwrap_or_default(),
    );
    let cache = &ui.graphs.graphs;
    if let Some(graph) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return Ok(Arc::clone(graph));
    }
    let plan = crate::plan::build_plan(&loaded.dag, &merged).map_err(|cycles| {
        PageError::bad_request(format!(
            "the DAG has a dependency cycle with these params: {cycles:?}"
        ))
    })?;
    let graph = Arc::new(DagGraph::new(&loaded.dag, &plan));
    let mut graphs = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if graphs.len() >= GRAPHS_KEPT {
        graphs.clear();
    }
    graphs.insert(key, Arc::clone(&graph));
    Ok(graph)
}

/// A DAG as the daemon has it loaded.
#[derive(Clone)]
pub struct LoadedDag {
    pub dag: Arc<Dag>,
    pub spec_hash: String,
    /// Diagnostics of the newest edit, when it does not load.
    pub error: Option<String>,
}

/// Every loaded DAG by name, and the files that never loaded.
pub fn loaded_dags(ui: &UiState) -> (Vec<LoadedDag>, Vec<(PathBuf, String)>) {
    let set = ui
        .daemon
        .dispatcher
        .dags
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    let dags = set
        .dags
        .values()
        .map(|loaded| LoadedDag {
            dag: Arc::clone(&loaded.dag),
            spec_hash: loaded.spec_hash.clone(),
            error: loaded.error.clone(),
        })
        .collect();
    (dags, set.unloaded())
}

/// The loaded DAG `name` (or file stem), or a 404.
pub fn find_dag(ui: &UiState, name: &str) -> Result<LoadedDag, PageError> {
    let set = ui
        .daemon
        .dispatcher
        .dags
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    set.find(name)
        .map(|loaded| LoadedDag {
            dag: Arc::clone(&loaded.dag),
            spec_hash: loaded.spec_hash.clone(),
            error: loaded.error.clone(),
        })
        .ok_or_else(|| {
            let help = crate::parse::did_you_mean(name, set.dags.keys().map(String::as_str))
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            PageError::not_found(format!("no DAG named `{name}` is loaded{help}"))
        })
}

pub async fn not_found(viewer: Viewer, uri: axum::http::Uri) -> Response {
    let mut body = Html::new();
    html!(
        body,
        "<h1>Not found</h1><div class=\"error-box\" role=\"alert\">Nothing lives at {}.</div><p><a href=\"/\">All DAGs</a></p>",
        uri.path()
    );
    page_with_status(
        axum::http::StatusCode::NOT_FOUND,
        &viewer,
        Section::None,
        "Not found",
        &body,
    )
}
