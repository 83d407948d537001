//! The frame every page shares (header, navigation, sign-out, the asset
//! links) and the small pieces pages repeat: status badges, times,
//! durations, the hidden CSRF field.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::UiState;
use super::html::{Html, html};
use super::security::{Access, CSRF_FIELD};

/// Which navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Dags,
    Models,
    Experiments,
    Monitoring,
    None,
}

/// What a page needs to know about who looks at it.
pub struct Viewer {
    /// For every form on the page.
    pub csrf: String,
    /// Show "sign out".
    pub signed_in: bool,
}

impl FromRequestParts<Arc<UiState>> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<UiState>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self {
            csrf: state.guard.csrf_token(&parts.headers),
            signed_in: state.guard.access(&parts.headers) == Access::SignedIn,
        })
    }
}

impl Viewer {
    /// The hidden field every state-changing form carries.
    pub fn csrf_field(&self) -> Html {
        let mut out = Html::new();
        html!(
            out,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            CSRF_FIELD,
            self.csrf
        );
        out
    }
}

const NAV: [(Section, &str, &str); 4] = [
    (Section::Dags, "/", "DAGs"),
    (Section::Models, "/models", "Models"),
    (Section::Experiments, "/experiments", "Experiments"),
    (Section::Monitoring, "/monitoring", "Monitoring"),
];

fn frame(section: Section, title: &str, body: &Html, sign_out: Option<&Viewer>) -> Html {
    let mut out = Html::with_capacity(body.as_str().len() + 2048);
    html!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · dag</title><link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"{}\"><script src=\"{}\" defer></script></head><body>\
         <a class=\"skip-link\" href=\"#main\">Skip to content</a>\
         <header class=\"top\"><a class=\"brand\" href=\"/\">dag</a><nav aria-label=\"Main\">",
        title,
        super::assets::css_url(),
        super::assets::js_url()
    );
    for (entry, href, label) in NAV {
        if entry == section {
            html!(
                out,
                "<a href=\"{}\" aria-current=\"page\">{}</a>",
                href,
                label
            );
        } else {
            html!(out, "<a href=\"{}\">{}</a>", href, label);
        }
    }
    html!(out, "</nav>");
    if let Some(viewer) = sign_out.filter(|v| v.signed_in) {
        html!(
            out,
            "<form class=\"inline\" method=\"post\" action=\"/logout\">{}<button type=\"submit\">Sign out</button></form>",
            viewer.csrf_field()
        );
    }
    html!(
        out,
        "</header><main id=\"main\">{}</main></body></html>",
        body
    );
    out
}

fn html_response(status: StatusCode, page: Html) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        page.into_string(),
    )
        .into_response()
}

/// A full page for `viewer`.
pub fn page(viewer: &Viewer, section: Section, title: &str, body: &Html) -> Response {
    html_response(StatusCode::OK, frame(section, title, body, Some(viewer)))
}

/// A page with a status other than 200 (a form shown again with its error).
pub fn page_with_status(
    status: StatusCode,
    viewer: &Viewer,
    section: Section,
    title: &str,
    body: &Html,
) -> Response {
    html_response(status, frame(section, title, body, Some(viewer)))
}

/// A page without a viewer: errors, sign-in.
pub fn bare_page(section: Section, title: &str, body: &Html) -> Response {
    html_response(StatusCode::OK, frame(section, title, body, None))
}

/// A status as its snake_case word (`up_to_date`).
pub fn status_word(status: &impl serde::Serialize) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// The word people read (`up to date`).
pub fn status_label(word: &str) -> String {
    word.replace('_', " ")
}

/// `<span class="badge" data-status="…">…</span>`.
pub fn badge(status: &impl serde::Serialize) -> Html {
    let word = status_word(status);
    let mut out = Html::new();
    html!(
        out,
        "<span class=\"badge\" data-status=\"{}\">{}</span>",
        word,
        status_label(&word)
    );
    out
}

/// UTC, to the second: `2026-11-26 09:07:42`.
pub fn time(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

pub fn duration(ms: i64) -> String {
    crate::execute::humanize_ms(ms)
}

/// A JSON value as a person reads it: strings without quotes.
pub fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A metric: integers without decimals, others to 4 places.
pub fn metric_text(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.4}")
    }
}

/// A digest shortened for display (the full one goes in a `title`).
pub fn short_digest(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}
