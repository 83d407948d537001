//! What the UI changes, each a POST whose CSRF token the access layer has
//! already checked: start a run from the form, cancel or resume a run,
//! promote a version to an alias, roll an alias back. Runs go through the
//! daemon's dispatcher like the API's; aliases move through the registry
//! like `dag models promote|rollback`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use dag_operators::models::{Actor, ModelRegistry};
use dag_state::Trigger;

use super::UiState;
use super::access::redirect;
use super::error::{PageError, blocking};
use super::form::Form;
use super::html::{Html, Query, Seg, html};
use super::layout::{Section, Viewer, page_with_status};
use super::pages::{find_dag, run_form};
use crate::daemon::Fire;
use crate::daemon::dispatch::{Accepted, Cancelled, RunOptions, Submission, SubmitError};
use crate::execute::now_ms;
use crate::record::error_chain;

fn run_page(run_id: &str) -> Response {
    let mut location = Html::new();
    html!(location, "/runs/{}", Seg(run_id));
    redirect(location.as_str())
}

fn ui_fire(
    dag: &str,
    params: std::collections::BTreeMap<String, serde_json::Value>,
    detail: String,
) -> Fire {
    Fire {
        dag: dag.to_string(),
        trigger: Trigger {
            kind: "ui".into(),
            detail,
        },
        logical_date: None,
        params,
        due_ms: now_ms(),
    }
}

fn refused(error: &SubmitError) -> PageError {
    let status = match error {
        SubmitError::UnknownDag { .. } => StatusCode::NOT_FOUND,
        SubmitError::ShuttingDown | SubmitError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        SubmitError::Invalid(_) | SubmitError::InvalidFile(_) | SubmitError::Resume(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    PageError::new(status, error_chain(error))
}

pub async fn submit_run(
    State(ui): State<Arc<UiState>>,
    viewer: Viewer,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let loaded = find_dag(&ui, &name)?;
    let form = Form::parse_bytes(&body);
    let again = |problem: &str| {
        page_with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &viewer,
            Section::Dags,
            &format!("Run {name}"),
            &run_form::render(&loaded.dag, &viewer, &form, Some(problem)),
        )
    };
    let params = match run_form::overrides_from_form(&loaded.dag, &form) {
        Ok(params) => params,
        Err(problem) => return Ok(again(&problem)),
    };
    let submission = Submission {
        fire: ui_fire(&loaded.dag.name, params, "web UI: run form".into()),
        explicit: true,
        options: RunOptions {
            force: form.get("force").is_some(),
            ..RunOptions::default()
        },
    };
    match ui.daemon.dispatcher.submit(submission) {
        Ok(Accepted::Started { run_id, .. } | Accepted::Queued { run_id, .. }) => {
            Ok(run_page(&run_id))
        }
        Ok(Accepted::Skipped { reason }) => Ok(again(&format!("not started: {reason}"))),
        Err(error @ SubmitError::Invalid(_)) => Ok(again(&error_chain(&error))),
        Err(error) => Err(refused(&error)),
    }
}

pub async fn cancel(
    State(ui): State<Arc<UiState>>,
    Path(run_id): Path<String>,
) -> Result<Response, PageError> {
    match ui.daemon.dispatcher.cancel(&run_id) {
        Cancelled::Unknown => Err(PageError::not_found(format!(
            "no running or queued run `{run_id}`"
        ))),
        Cancelled::Finished { status } => Err(PageError::new(
            StatusCode::CONFLICT,
            format!(
                "run `{run_id}` already finished ({})",
                crate::ui::layout::status_word(&status)
            ),
        )),
        Cancelled::Cancelling | Cancelled::Dequeued => Ok(run_page(&run_id)),
    }
}

pub async fn resume(
    State(ui): State<Arc<UiState>>,
    Path(run_id): Path<String>,
) -> Result<Response, PageError> {
    let store = ui.store();
    let id = run_id.clone();
    let run = blocking(move || Ok(store.run(&id)?))
        .await?
        .ok_or_else(|| PageError::not_found(format!("no run `{run_id}`")))?;
    let submission = Submission {
        fire: ui_fire(
            &run.dag,
            std::collections::BTreeMap::new(),
            format!("web UI: resume run {run_id}"),
        ),
        explicit: true,
        options: RunOptions {
            resume: Some(run_id.clone()),
            ..RunOptions::default()
        },
    };
    match ui.daemon.dispatcher.submit(submission) {
        Ok(Accepted::Started { run_id, .. } | Accepted::Queued { run_id, .. }) => {
            Ok(run_page(&run_id))
        }
        Ok(Accepted::Skipped { reason }) => Err(PageError::new(
            StatusCode::CONFLICT,
            format!("not started: {reason}"),
        )),
        Err(error) => Err(refused(&error)),
    }
}

fn model_page(name: &str, alias: &str) -> Response {
    let mut location = Html::new();
    html!(
        location,
        "/models/{}?moved={}#aliases",
        Seg(name),
        Query(alias)
    );
    redirect(location.as_str())
}

/// A model name from a request, before it names a directory.
pub fn known_name(name: &str) -> Result<(), PageError> {
    if crate::views::model::is_model_name(name) {
        Ok(())
    } else {
        Err(PageError::not_found(format!("unknown model `{name}`")))
    }
}

fn registry_error(error: dag_operators::models::RegistryError) -> PageError {
    use dag_operators::models::RegistryError as E;
    let status = match &error {
        E::UnknownModel { .. } | E::UnknownVersion { .. } | E::UnknownReference { .. } => {
            StatusCode::NOT_FOUND
        }
        E::NoHistory { .. } => StatusCode::CONFLICT,
        E::InvalidName { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    PageError::new(status, error_chain(&error))
}

pub async fn promote(
    State(ui): State<Arc<UiState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    known_name(&name)?;
    let form = Form::parse_bytes(&body);
    let alias = form
        .get("alias")
        .filter(|a| !a.is_empty())
        .ok_or_else(|| PageError::bad_request("name the alias to move"))?
        .to_string();
    let version: u32 = form
        .get("version")
        .and_then(|v| v.trim_start_matches('v').parse().ok())
        .ok_or_else(|| PageError::bad_request("`version` must be a version number"))?;
    let state_dir = ui.daemon.state_dir.clone();
    let (model, moved) = (name.clone(), alias.clone());
    blocking(move || {
        let registry = ModelRegistry::open(&state_dir).map_err(registry_error)?;
        registry
            .set_alias_by(&model, &moved, version, &Actor::by_hand("web UI: promote"))
            .map_err(registry_error)
    })
    .await?;
    Ok(model_page(&name, &alias))
}

pub async fn rollback(
    State(ui): State<Arc<UiState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    known_name(&name)?;
    let form = Form::parse_bytes(&body);
    let alias = form
        .get("alias")
        .filter(|a| !a.is_empty())
        .ok_or_else(|| PageError::bad_request("name the alias to roll back"))?
        .to_string();
    let state_dir = ui.daemon.state_dir.clone();
    let (model, moved) = (name.clone(), alias.clone());
    blocking(move || {
        let registry = ModelRegistry::open(&state_dir).map_err(registry_error)?;
        registry
            .rollback_by(&model, &moved, &Actor::by_hand("web UI: roll back"))
            .map_err(registry_error)
    })
    .await?;
    Ok(model_page(&name, &alias))
}
