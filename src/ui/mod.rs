//! The web UI: server-rendered pages on the daemon's address, beside its
//! API, a front end of the daemon's runtime like the CLI and the API. It
//! shows what the library's [`views`](crate::views) show and acts through
//! the daemon's dispatcher and the model registry; it never imports
//! another front end.
//!
//! | path | page |
//! |---|---|
//! | `/` | DAGs: schedule, next fire, watches, last runs, run button |
//! | `/dags/{name}` | graph by plan levels (live), history grid, source |
//! | `/dags/{name}/run` | the run form, from the DAG's typed params |
//! | `/runs/{id}` | trigger, params, timeline, tasks, cancel/resume |
//! | `/runs/{id}/logs/{task}` | an attempt's log, followed live |
//! | `/diff/{a}/{b}` | what changed between two runs |
//! | `/models`, `/models/{name}` | versions, aliases, gates, moves, promote/rollback |
//! | `/models/{name}/versions/{v}` | one version and its lineage graph |
//! | `/experiments/{dag}` | runs side by side: params, metrics, a chart |
//! | `/monitoring` | drift reports, their trend, the retraining they caused |
//!
//! Live updates are server-sent events (`/runs/{id}/events`,
//! `/dags/{name}/events`, `.../logs/{task}/stream`) fed by the recorder's
//! broadcast; pages work without JavaScript. Text is escaped by
//! construction ([`html`]); access rules are in [`security`].

mod access;
mod actions;
mod assets;
mod error;
mod form;
mod html;
mod layout;
mod live;
mod pages;
mod security;
mod widgets;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::daemon::server::DaemonContext;

pub use security::{Guard, MIN_TOKEN_CHARS};

/// What the UI's handlers share.
pub struct UiState {
    pub daemon: Arc<DaemonContext>,
    pub guard: Guard,
    /// Task graphs by definition and params: planning a 10,000-task DAG
    /// takes longer than drawing its page.
    graphs: pages::GraphCache,
}

impl UiState {
    pub fn new(daemon: Arc<DaemonContext>, guard: Guard) -> Self {
        Self {
            daemon,
            guard,
            graphs: pages::GraphCache::default(),
        }
    }

    pub fn store(&self) -> Arc<dag_state::Store> {
        Arc::clone(&self.daemon.dispatcher.engine.store)
    }
}

/// The UI's routes, and a page for any path no route has.
pub fn router(state: UiState) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route("/", get(pages::dags::list))
        .route("/dags/{name}", get(pages::dag::show))
        .route(
            "/dags/{name}/run",
            get(pages::run_form::show).post(actions::submit_run),
        )
        .route("/dags/{name}/events", get(live::dag_events))
        .route("/runs/{id}", get(pages::run::show))
        .route("/runs/{id}/events", get(live::run_events))
        .route("/runs/{id}/cancel", post(actions::cancel))
        .route("/runs/{id}/resume", post(actions::resume))
        .route("/runs/{id}/logs/{task}", get(pages::logs::show))
        .route("/runs/{id}/logs/{task}/stream", get(live::log_stream))
        .route("/diff", get(pages::diff::pick))
        .route("/diff/{a}/{b}", get(pages::diff::show))
        .route("/models", get(pages::models::list))
        .route("/models/{name}", get(pages::models::show))
        .route(
            "/models/{name}/versions/{version}",
            get(pages::model_version::show),
        )
        .route(
            "/models/{name}/promote",
            get(pages::models::confirm_promote).post(actions::promote),
        )
        .route(
            "/models/{name}/rollback",
            get(pages::models::confirm_rollback).post(actions::rollback),
        )
        .route("/experiments", get(pages::experiments::index))
        .route("/experiments/{dag}", get(pages::experiments::show))
        .route("/monitoring", get(pages::monitoring::show))
        .route("/login", get(access::login_page).post(access::login))
        .route("/logout", post(access::logout))
        .route("/assets/app.css", get(assets::css))
        .route("/assets/app.js", get(assets::js))
        .fallback(pages::not_found)
        .layer(from_fn_with_state(Arc::clone(&state), access::protect))
        .with_state(state)
}
