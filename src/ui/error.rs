//! [`PageError`]: a request the UI cannot answer with its page — an unknown
//! run, DAG or model (404), a malformed request (400), a refused action
//! (409, 422) or a failure reading the store (500) — shown as an HTML page
//! with the reason, escaped like everything else.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::html::{Html, html};
use super::layout::{Section, bare_page};

#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::record::error_chain(error),
        )
    }
}

impl From<dag_state::StateError> for PageError {
    fn from(error: dag_state::StateError) -> Self {
        Self::internal(&error)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut body = Html::new();
        let title = self.status.canonical_reason().unwrap_or("Error");
        html!(
            body,
            "<h1>{}</h1><div class=\"error-box\" role=\"alert\">{}</div><p><a href=\"/\">All DAGs</a></p>",
            title,
            self.message
        );
        (self.status, bare_page(Section::None, title, &body)).into_response()
    }
}

/// Runs blocking work (store and file reads) off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PageError> + Send + 'static,
) -> Result<T, PageError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| PageError::internal(&e))?
}
