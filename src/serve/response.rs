//! JSON responses, and [`ApiError`]: a refused request as the client sees
//! it, `{"error", "field"?, "index"?}` with the status that fits.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dag_operators::ml::FieldError;
use serde_json::{Map, Value, json};

use crate::serve::records::ReadError;

pub fn json_response(status: StatusCode, value: &Value) -> Response {
    json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
}

/// A response whose JSON body is already serialised.
pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A refused request: `{"error", "field"?, "index"?}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<String>,
    pub index: Option<usize>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
            index: None,
        }
    }

    pub fn field(error: FieldError, index: Option<usize>) -> Self {
        let message = match index {
            Some(index) => format!("record {index}: {error}"),
            None => error.to_string(),
        };
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message,
            field: Some(error.field),
            index,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("error".into(), json!(self.message));
        if let Some(field) = self.field {
            body.insert("field".into(), json!(field));
        }
        if let Some(index) = self.index {
            body.insert("index".into(), json!(index));
        }
        json_response(self.status, &Value::Object(body))
    }
}

impl From<ReadError> for ApiError {
    fn from(error: ReadError) -> Self {
        let status = match &error {
            ReadError::Syntax(_) | ReadError::NotAnObject | ReadError::NotAnArray => {
                StatusCode::BAD_REQUEST
            }
            ReadError::TooMany { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ReadError::NotARecord { .. } | ReadError::Field { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ReadError::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match error {
            ReadError::Field { index, error } => Self::field(error, index),
            ReadError::NotARecord { index } => {
                let mut refused = Self::new(status, error.to_string());
                refused.index = Some(index);
                refused
            }
            other => Self::new(status, other.to_string()),
        }
    }
}
