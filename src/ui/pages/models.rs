//! `/models` and `/models/{name}`: the registry — each version with its
//! metrics, aliases and the gate verdict that let it in; each alias with
//! its target and where a rollback would take it; the history of alias
//! moves; promotion and rollback, each confirmed on a page of its own
//! before the POST that moves the alias.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use dag_operators::models::{AliasEvent, ModelRegistry, MoveKind};

use crate::ui::UiState;
use crate::ui::actions::known_name;
use crate::ui::error::{PageError, blocking};
use crate::ui::form::Form;
use crate::ui::html::{Html, Seg, html};
use crate::ui::layout::{
    Section, Viewer, metric_text, page, short_digest, status_label, status_word,
};
use crate::views::model::{
    ModelSummary, ModelView, ModelViewError, VersionView, model_summaries, model_view,
};

/// Aliases offered for promotion besides the ones that exist.
const USUAL_ALIASES: [&str; 3] = ["production", "champion", "challenger"];

fn view_error(error: ModelViewError) -> PageError {
    match error {
        ModelViewError::Registry(e @ dag_operators::models::RegistryError::UnknownModel { .. }) => {
            PageError::not_found(e.to_string())
        }
        ModelViewError::Registry(e) => PageError::internal(&e),
        ModelViewError::Store(e) => PageError::from(e),
    }
}

async fn load(ui: &UiState, name: &str) -> Result<ModelView, PageError> {
    known_name(name)?;
    let store = ui.store();
    let state_dir = ui.daemon.state_dir.clone();
    let name = name.to_string();
    blocking(move || {
        let registry = ModelRegistry::open(&state_dir).map_err(|e| PageError::internal(&e))?;
        model_view(&registry, &store, &name).map_err(view_error)
    })
    .await
}

pub async fn list(State(ui): State<Arc<UiState>>, viewer: Viewer) -> Result<Response, PageError> {
    let state_dir = ui.daemon.state_dir.clone();
    let models = blocking(move || {
        let registry = ModelRegistry::open(&state_dir).map_err(|e| PageError::internal(&e))?;
        model_summaries(&registry).map_err(|e| PageError::internal(&e))
    })
    .await?;
    Ok(page(
        &viewer,
        Section::Models,
        "Models",
        &render_list(&models),
    ))
}

pub fn render_list(models: &[ModelSummary]) -> Html {
    let mut out = Html::new();
    html!(out, "<h1>Models</h1>");
    if models.is_empty() {
        html!(
            out,
            "<p class=\"muted\">No models registered yet. A <code>models.register</code> task registers one.</p>"
        );
        return out;
    }
    html!(
        out,
        "<table><thead><tr><th>model</th><th class=\"num\">versions</th><th>aliases</th></tr></thead><tbody>"
    );
    for model in models {
        html!(
            out,
            "<tr><th scope=\"row\"><a href=\"/models/{}\">{}</a></th><td class=\"num\">{}</td><td>",
            Seg(&model.name),
            model.name,
            model.versions
        );
        for (alias, version) in &model.aliases {
            html!(out, "<code>{}</code>&nbsp;→&nbsp;v{} ", alias, *version);
        }
        html!(out, "</td></tr>");
    }
    html!(out, "</tbody></table>");
    out
}

pub async fn show(
    State(ui): State<Arc<UiState>>,
    viewer: Viewer,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let model = load(&ui, &name).await?;
    let moved = Form::parse(query.as_deref().unwrap_or(""))
        .get("moved")
        .map(String::from);
    Ok(page(
        &viewer,
        Section::Models,
        &name,
        &render(&model, moved.as_deref()),
    ))
}

pub fn render(model: &ModelView, moved: Option<&str>) -> Html {
    let mut out = Html::new();
    html!(out, "<h1>Model {}</h1>", model.name);
    if let Some(alias) = moved.and_then(|m| model.aliases.iter().find(|a| a.alias == m))
        && let Some(last) = alias.moves.last()
    {
        html!(
            out,
            "<p class=\"notice\" role=\"status\" id=\"moved\">Moved <code>{}</code>: {} → v{} ({}).</p>",
            alias.alias,
            last.from.map_or("(none)".to_string(), |v| format!("v{v}")),
            last.to,
            how(last)
        );
    }
    aliases(&mut out, model);
    versions(&mut out, model);
    moves(&mut out, model);
    out
}

fn aliases(out: &mut Html, model: &ModelView) {
    html!(out, "<h2 id=\"aliases\">Aliases</h2>");
    if model.aliases.is_empty() {
        html!(out, "<p class=\"muted\">No aliases yet.</p>");
        return;
    }
    html!(
        out,
        "<table><thead><tr><th>alias</th><th>version</th><th>rollback to</th><th></th></tr></thead><tbody>"
    );
    for alias in &model.aliases {
        html!(
            out,
            "<tr data-alias=\"{}\"><th scope=\"row\"><code>{}</code></th><td class=\"alias-version\"><a href=\"/models/{}/versions/{}\">v{}</a></td><td>",
            alias.alias,
            alias.alias,
            Seg(&model.name),
            alias.version,
            alias.version
        );
        match alias.rollback_to {
            Some(to) => html!(
                out,
                "v{}</td><td><a class=\"button\" href=\"/models/{}/rollback?alias={}\">Roll back to v{}…</a>",
                to,
                Seg(&model.name),
                Seg(&alias.alias),
                to
            ),
            None => html!(out, "<span class=\"muted\">nothing earlier</span></td><td>"),
        }
        html!(out, "</td></tr>");
    }
    html!(out, "</tbody></table>");
}

fn gate_cell(out: &mut Html, version: &VersionView) {
    if version.gates.is_empty() {
        html!(out, "<span class=\"muted\">no gate in its run</span>");
    }
    for gate in &version.gates {
        let (status, word) = match gate.passed {
            Some(true) => ("succeeded", "passed"),
            Some(false) => ("failed", "rejected"),
            None => ("pending", "no verdict"),
        };
        html!(
            out,
            "<span class=\"badge\" data-status=\"{}\">{}</span> <code>{}</code> <span class=\"muted\">({})</span><div class=\"muted\">{}</div>",
            status,
            word,
            gate.task_id,
            status_label(&status_word(&gate.status)),
            gate.summary
        );
    }
}

fn versions(out: &mut Html, model: &ModelView) {
    let mut aliases: Vec<&str> = model.aliases.iter().map(|a| a.alias.as_str()).collect();
    for usual in USUAL_ALIASES {
        if !aliases.contains(&usual) {
            aliases.push(usual);
        }
    }
    html!(
        out,
        "<h2 id=\"versions\">Versions</h2><div class=\"scroll\"><table><thead><tr><th>version</th><th>metrics</th>\
         <th>aliases</th><th>gate</th><th>trained by</th><th>promote</th></tr></thead><tbody>"
    );
    for version in &model.versions {
        let v = &version.version;
        html!(
            out,
            "<tr data-version=\"{}\"><th scope=\"row\"><a href=\"/models/{}/versions/{}\">v{}</a><br><span class=\"muted\">{}</span><br>\
             <span class=\"mono muted\" title=\"blake3 {}\">{}</span></th><td>",
            v.version,
            Seg(&model.name),
            v.version,
            v.version,
            v.created_at,
            v.digest,
            short_digest(&v.digest)
        );
        for (name, value) in &v.metrics {
            html!(
                out,
                "<code>{}</code>&nbsp;{}<br>",
                name,
                metric_text(*value)
            );
        }
        html!(out, "</td><td>");
        for alias in &v.aliases {
            html!(out, "<code>{}</code> ", alias);
        }
        html!(out, "</td><td>");
        gate_cell(out, version);
        html!(out, "</td><td>");
        if let (Some(run), Some(task)) = (&v.run_id, &v.task_id) {
            html!(
                out,
                "<a href=\"/runs/{}#task-{}\">{}</a><br><code>{}</code>",
                Seg(run),
                Seg(task),
                run,
                task
            );
        }
        html!(
            out,
            "</td><td><form method=\"get\" action=\"/models/{}/promote\"><input type=\"hidden\" name=\"version\" value=\"{}\">\
             <label class=\"muted\" for=\"alias-{}\">alias</label><select id=\"alias-{}\" name=\"alias\">",
            Seg(&model.name),
            v.version,
            v.version,
            v.version
        );
        for alias in &aliases {
            html!(out, "<option>{}</option>", *alias);
        }
        html!(
            out,
            "</select> <button type=\"submit\">Promote v{}…</button></form></td></tr>",
            v.version
        );
    }
    html!(out, "</tbody></table></div>");
}

/// How an alias moved and who moved it: `rollback by \`dag models rollback\``.
fn how(event: &AliasEvent) -> String {
    let kind = match event.kind {
        MoveKind::Set => "set",
        MoveKind::Rollback => "rollback",
    };
    match &event.note {
        Some(note) => format!("{kind} by {}, {note}", event.by),
        None => format!("{kind} by {}", event.by),
    }
}

fn moves(out: &mut Html, model: &ModelView) {
    html!(out, "<h2 id=\"moves\">Alias history</h2>");
    let mut all: Vec<(&str, &AliasEvent)> = model
        .aliases
        .iter()
        .flat_map(|a| a.moves.iter().map(move |m| (a.alias.as_str(), m)))
        .collect();
    if all.is_empty() {
        html!(out, "<p class=\"muted\">No recorded moves.</p>");
        return;
    }
    all.sort_by_key(|(_, event)| std::cmp::Reverse(event.seq));
    html!(
        out,
        "<table id=\"alias-moves\"><thead><tr><th>when (UTC)</th><th>alias</th><th>move</th><th>how</th></tr></thead><tbody>"
    );
    for (alias, event) in all {
        html!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td>{} → v{}</td><td>{}</td></tr>",
            event.at,
            alias,
            event.from.map_or("(none)".to_string(), |v| format!("v{v}")),
            event.to,
            how(event)
        );
    }
    html!(out, "</tbody></table>");
}

pub async fn confirm_promote(
    State(ui): State<Arc<UiState>>,
    viewer: Viewer,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let form = Form::parse(query.as_deref().unwrap_or(""));
    let alias = form.get("alias").unwrap_or("production").to_string();
    let version: u32 = form
        .get("version")
        .and_then(|v| v.trim_start_matches('v').parse().ok())
        .ok_or_else(|| PageError::bad_request("`version` must be a version number"))?;
    let model = load(&ui, &name).await?;
    let target = model
        .versions
        .iter()
        .find(|v| v.version.version == version)
        .ok_or_else(|| PageError::not_found(format!("model `{name}` has no version {version}")))?;
    let current = model
        .aliases
        .iter()
        .find(|a| a.alias == alias)
        .map(|a| a.version);
    let mut body = Html::new();
    html!(
        body,
        "<h1>Promote {} v{}?</h1><p class=\"lead\">Move alias <code>{}</code> of <code>{}</code> from {} to <strong>v{}</strong>. \
         Whatever serves <code>{}@{}</code> switches to it.</p><table><thead><tr><th>metric</th><th class=\"num\">now</th><th class=\"num\">v{}</th></tr></thead><tbody>",
        name,
        version,
        alias,
        name,
        current.map_or("(none)".to_string(), |v| format!("v{v}")),
        version,
        name,
        alias,
        version
    );
    let now = current.and_then(|c| model.versions.iter().find(|v| v.version.version == c));
    for (metric, value) in &target.version.metrics {
        html!(
            body,
            "<tr><th scope=\"row\"><code>{}</code></th><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            metric,
            now.and_then(|n| n.version.metrics.get(metric))
                .map(|v| metric_text(*v)),
            metric_text(*value)
        );
    }
    html!(
        body,
        "</tbody></table><form method=\"post\" action=\"/models/{}/promote\">{}<input type=\"hidden\" name=\"version\" value=\"{}\">\
         <input type=\"hidden\" name=\"alias\" value=\"{}\"><p><button class=\"primary\" type=\"submit\" id=\"confirm\">Yes, move {} to v{}</button> \
         <a href=\"/models/{}\">Cancel</a></p></form>",
        Seg(&name),
        viewer.csrf_field(),
        version,
        alias,
        alias,
        version,
        Seg(&name)
    );
    Ok(page(&viewer, Section::Models, "Confirm promotion", &body))
}

pub async fn confirm_rollback(
    State(ui): State<Arc<UiState>>,
    viewer: Viewer,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let form = Form::parse(query.as_deref().unwrap_or(""));
    let alias = form.get("alias").unwrap_or("production").to_string();
    let model = load(&ui, &name).await?;
    let state = model
        .aliases
        .iter()
        .find(|a| a.alias == alias)
        .ok_or_else(|| PageError::not_found(format!("model `{name}` has no alias `{alias}`")))?;
    let Some(to) = state.rollback_to else {
        return Err(PageError::new(
            axum::http::StatusCode::CONFLICT,
            format!("alias `{alias}` of model `{name}` has no earlier version to roll back to"),
        ));
    };
    let mut body = Html::new();
    html!(
        body,
        "<h1>Roll back {}?</h1><p class=\"lead\">Move alias <code>{}</code> of <code>{}</code> back from v{} to <strong>v{}</strong>, where it pointed before its last move.</p>\
         <form method=\"post\" action=\"/models/{}/rollback\">{}<input type=\"hidden\" name=\"alias\" value=\"{}\">\
         <p><button class=\"primary\" type=\"submit\" id=\"confirm\">Yes, roll {} back to v{}</button> <a href=\"/models/{}\">Cancel</a></p></form>",
        alias,
        alias,
        name,
        state.version,
        to,
        Seg(&name),
        viewer.csrf_field(),
        alias,
        alias,
        to,
        Seg(&name)
    );
    Ok(page(&viewer, Section::Models, "Confirm rollback", &body))
}
