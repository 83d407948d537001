//! The axum routes: `/predict`, `/predict/batch`, `/health`, `/ready`,
//! `/model`, `/metrics`, and the middleware that authenticates and measures
//! every request. Handlers turn HTTP into calls on [`AppState`] and back;
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
use serde_json::{Value, json};

use crate::serve::answer::{AnswerWriter, model_json};
use crate::serve::app::AppState;
use crate::serve::config::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_SINGLE_BYTES};
use crate::serve::metrics::Route;
use crate::serve::records::Shape;
use crate::serve::response::{ApiError, json_bytes, json_response};
use crate::serve::slot::LoadedModel;

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

async fn predict(State(state): State<Shared>, body: Result<Bytes, BytesRejection>) -> Response {
    let answer = read_body(body, MAX_SINGLE_BYTES).and_then(|body| {
        let scored = state.score(&body, Shape::One)?;
        // A single record always makes one row.
        let part = scored
            .as_ref()
            .and_then(|s| Some((s, s.parts.first()?)))
            .ok_or_else(|| state.not_ready())?;
        let flag = part.1.records.flags.first().map(|f| f.reason.as_str());
        Ok(AnswerWriter::new(&part.0.model).single_flagged(&part.1.probabilities, flag))
    });
    match answer {
        Ok(body) => json_bytes(StatusCode::OK, body),
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
    let answer = tokio::task::spawn_blocking(move || {
        let shape = Shape::Many {
            max: MAX_BATCH_RECORDS,
        };
        Ok::<_, ApiError>(match state.score(&body, shape)? {
            None => {
                serde_json::to_vec(&json!({"predictions": [], "model": null})).unwrap_or_default()
            }
            Some(scored) => AnswerWriter::new(&scored.model)
                .batch(scored.parts.iter().map(|part| part.answer.as_slice())),
        })
    })
    .await;
    match answer {
        Ok(Ok(body)) => json_bytes(StatusCode::OK, body),
        Ok(Err(error)) => error.into_response(),
        Err(join) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("scoring stopped: {join}"),
        )
        .into_response(),
    }
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

async fn authorize(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token
        && !crate::auth::bearer_matches(request.headers(), token)
    {
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
