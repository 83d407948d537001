//! The UI's stylesheet and script, compiled into the binary (no CDN: the UI
//! works offline). Pages link them with a content hash in the query, so a
//! browser may keep them forever and still sees a new build at once.

use std::sync::OnceLock;

use axum::extract::RawQuery;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub const CSS: &str = include_str!("assets/app.css");
pub const JS: &str = include_str!("assets/app.js");

fn version_of(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex()[..12].to_string()
}

/// `/assets/app.css?v=<hash>`.
pub fn css_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| format!("/assets/app.css?v={}", version_of(CSS)))
}

/// `/assets/app.js?v=<hash>`.
pub fn js_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| format!("/assets/app.js?v={}", version_of(JS)))
}

fn asset(body: &'static str, content_type: &'static str, query: Option<String>) -> Response {
    // Cached for good only under the URL naming this exact content.
    let pinned = query.is_some_and(|q| q == format!("v={}", version_of(body)));
    let cache = if pinned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body,
    )
        .into_response()
}

pub async fn css(RawQuery(query): RawQuery) -> Response {
    asset(CSS, "text/css; charset=utf-8", query)
}

pub async fn js(RawQuery(query): RawQuery) -> Response {
    asset(JS, "text/javascript; charset=utf-8", query)
}
