//! The axum routes: `/predict`, `/predict/batch`, `/health`, `/ready`,
//! `/model`, `/metrics`, and the middleware that authenticates and measures
//! every request. Handlers turn HTTP into calls on the model slots and back;
//! they never panic on what a client sends.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dag_operators::ml::{FieldError, Prediction};
use serde_json::{Map, Value, json};

use crate::serve::answer::{model_json, prediction_json};
use crate::serve::config::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_SINGLE_BYTES};
use crate::serve::metrics::{Metrics, Role, Route};
use crate::serve::prediction_log::{LogEntry, PredictionLog};
use crate::serve::routing::choose;
use crate::serve::slot::{LoadedModel, ModelSlot};
use crate::serve::validate::check_record;

/// The challenger side of an A/B pair.
pub struct Challenger {
    pub alias: String,
    pub slot: Arc<ModelSlot>,
    pub share: f64,
    pub shadow: bool,
}

pub struct AppState {
    pub name: String,
    pub alias: String,
    pub champion: Arc<ModelSlot>,
    pub challenger: Option<Challenger>,
    pub metrics: Arc<Metrics>,
    pub log: Option<Arc<PredictionLog>>,
    pub token: Option<String>,
}

type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route(
            "/predict",
            post(predict).layer(DefaultBodyLimit::max(MAX_SINGLE_BYTES)),
        )
        .route(
            "/predict/batch",
            post(predict_batch).layer(DefaultBodyLimit::max(MAX_BATCH_BYTES)),
        )
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/model", get(model))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(from_fn_with_state(Arc::clone(&state), authorize))
        .layer(from_fn_with_state(Arc::clone(&state), observe))
        .with_state(state)
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
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
struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
    index: Option<usize>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
            index: None,
        }
    }

    fn field(error: FieldError, index: Option<usize>) -> Self {
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

fn read_body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, format!("request body is larger than {limit} bytes"))
        } else {
            ApiError::new(status, format!("cannot read the request body: {rejection}"))
        }
    })
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("request body is not valid JSON: {e}"),
        )
    })
}

/// What scored a request.
struct Scored {
    model: Arc<LoadedModel>,
    predictions: Vec<Prediction>,
}

impl AppState {
    fn champion(&self) -> Result<Arc<LoadedModel>, ApiError> {
        self.champion.get().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "no verified model for `{}@{}` is loaded yet; `GET /ready` says when one is",
                    self.name, self.alias
                ),
            )
        })
    }

    /// Validates and scores `records` with the model that answers `body`,
    /// shadows the challenger, counts and logs.
    fn score(
        &self,
        body: &[u8],
        records: &[Map<String, Value>],
        batch: bool,
    ) -> Result<Scored, ApiError> {
        let champion = self.champion()?;
        let challenger = self
            .challenger
            .as_ref()
            .and_then(|c| c.slot.get().map(|model| (c, model)));
        let (role, model) = match &challenger {
            Some((c, model)) if !c.shadow && choose(body, c.share) == Role::Challenger => {
                (Role::Challenger, Arc::clone(model))
            }
            _ => (Role::Champion, champion),
        };
        let index = |i| batch.then_some(i);
        for (i, record) in records.iter().enumerate() {
            check_record(&model.model, record).map_err(|e| ApiError::field(e, index(i)))?;
        }
        let predictions = model.model.predict(records).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("model v{} failed to score: {e}", model.version.version),
            )
        })?;
        let version = model.version.version;
        self.metrics
            .answered(role, version, predictions.iter().map(|p| p.class.as_str()));
        if let Some((c, shadow)) = challenger.filter(|(c, _)| c.shadow) {
            self.shadow(c, &shadow, records, &predictions);
        }
        self.log(&model, records, &predictions);
        Ok(Scored { model, predictions })
    }

    fn shadow(
        &self,
        challenger: &Challenger,
        model: &LoadedModel,
        records: &[Map<String, Value>],
        answered: &[Prediction],
    ) {
        if records
            .iter()
            .any(|r| check_record(&model.model, r).is_err())
        {
            return;
        }
        match model.model.predict(records) {
            Ok(shadowed) => {
                let agreed = shadowed
                    .iter()
                    .zip(answered)
                    .filter(|(a, b)| a.class == b.class)
                    .count();
                self.metrics.answered(
                    Role::Challenger,
                    model.version.version,
                    shadowed.iter().map(|p| p.class.as_str()),
                );
                self.metrics.shadow(shadowed.len() as u64, agreed as u64);
            }
            Err(error) => tracing::warn!(
                alias = %challenger.alias,
                "shadow model v{} failed to score: {error}",
                model.version.version
            ),
        }
    }

    fn log(&self, model: &LoadedModel, records: &[Map<String, Value>], predictions: &[Prediction]) {
        let Some(log) = &self.log else { return };
        let mut columns: Option<Arc<[String]>> = None;
        for (record, prediction) in records.iter().zip(predictions) {
            if !log.sample() {
                continue;
            }
            let columns = columns.get_or_insert_with(|| {
                model
                    .model
                    .schema()
                    .iter()
                    .map(|f| f.name.clone())
                    .collect()
            });
            let entry = LogEntry::new(
                Arc::clone(columns),
                record,
                &prediction.class,
                model.version.version,
            );
            if !log.push(entry) {
                self.metrics.log_dropped();
            }
        }
    }
}

fn answer(scored: &Scored) -> Map<String, Value> {
    let classes = scored.model.model.classes();
    let mut out = prediction_json(classes, &scored.predictions[0]);
    out.insert("model".into(), model_json(&scored.model));
    out
}

async fn predict(State(state): State<Shared>, body: Result<Bytes, BytesRejection>) -> Response {
    let result = (|| {
        let body = read_body(body, MAX_SINGLE_BYTES)?;
        let Value::Object(record) = parse_json(&body)? else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "request body must be a JSON object with the model's input fields; `GET /model` lists them",
            ));
        };
        let scored = state.score(&body, std::slice::from_ref(&record), false)?;
        Ok(answer(&scored))
    })();
    match result {
        Ok(out) => json_response(StatusCode::OK, &Value::Object(out)),
        Err(error) => error.into_response(),
    }
}

async fn predict_batch(
    State(state): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match read_body(body, MAX_BATCH_BYTES) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let scored = tokio::task::spawn_blocking(move || {
        let Value::Array(items) = parse_json(&body)? else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "request body must be a JSON array of records",
            ));
        };
        if items.len() > MAX_BATCH_RECORDS {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "batch has {} records, at most {MAX_BATCH_RECORDS} are accepted; split it",
                    items.len()
                ),
            ));
        }
        let mut records = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            match item {
                Value::Object(record) => records.push(record),
                _ => {
                    let mut error = ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("record {index}: expected a JSON object"),
                    );
                    error.index = Some(index);
                    return Err(error);
                }
            }
        }
        if records.is_empty() {
            return Ok(None);
        }
        state.score(&body, &records, true).map(Some)
    })
    .await;
    let scored = match scored {
        Ok(Ok(scored)) => scored,
        Ok(Err(error)) => return error.into_response(),
        Err(join) => {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("scoring stopped: {join}"),
            )
            .into_response();
        }
    };
    let body = match scored {
        None => json!({"predictions": [], "model": null}),
        Some(scored) => {
            let classes = scored.model.model.classes();
            let predictions: Vec<Value> = scored
                .predictions
                .iter()
                .map(|p| Value::Object(prediction_json(classes, p)))
                .collect();
            json!({"predictions": predictions, "model": model_json(&scored.model)})
        }
    };
    json_response(StatusCode::OK, &body)
}

async fn health() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

async fn ready(State(state): State<Shared>) -> Response {
    match state.champion() {
        Ok(model) => json_response(
            StatusCode::OK,
            &json!({"ready": true, "model": model_json(&model)}),
        ),
        Err(error) => json_response(
            error.status,
            &json!({"ready": false, "error": error.message}),
        ),
    }
}

fn describe(model: &LoadedModel) -> Value {
    let mut out = serde_json::to_value(&model.version).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut out {
        map.insert("kind".into(), json!(model.model.kind()));
        map.insert("classes".into(), json!(model.model.classes()));
        map.insert(
            "schema".into(),
            serde_json::to_value(model.model.schema()).unwrap_or(Value::Null),
        );
    }
    out
}

async fn model(State(state): State<Shared>) -> Response {
    let champion = match state.champion() {
        Ok(model) => model,
        Err(error) => return error.into_response(),
    };
    let mut out = describe(&champion);
    if let Value::Object(map) = &mut out {
        let challenger = state.challenger.as_ref().map(|c| {
            json!({
                "alias": c.alias,
                "share": if c.shadow { 0.0 } else { c.share },
                "shadow": c.shadow,
                "model": c.slot.get().map(|m| describe(&m)),
            })
        });
        map.insert("challenger".into(), challenger.unwrap_or(Value::Null));
    }
    json_response(StatusCode::OK, &out)
}

async fn metrics(State(state): State<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found(request: Request) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no route `{}`; try `/predict`, `/predict/batch`, `/health`, `/ready`, `/model` or `/metrics`",
            request.uri().path()
        ),
    )
    .into_response()
}

/// Compares without stopping at the first difference.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authorize(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !presented.is_some_and(|p| same_secret(p.as_bytes(), token.as_bytes())) {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong `Authorization: Bearer <token>` header",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    next.run(request).await
}

async fn observe(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = Route::of_path(request.uri().path());
    let response = next.run(request).await;
    state
        .metrics
        .request(route, response.status().as_u16(), started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }
}
