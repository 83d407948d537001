//! The daemon's HTTP API (loopback by default), a front end of the daemon's
//! runtime beside the CLI and the web UI. Every CLI command reaches the
//! store through it while a daemon runs.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /health` | liveness |
//! | `GET /api/status` | pid, uptime, DAGs with schedules and next fires, files that do not load, active and queued runs |
//! | `POST /api/runs` | submit `{dag, params?, options?}` → 202 `{state, run_id}` |
//! | `GET /api/runs?dag=&limit=` | runs, newest first (`dag runs --json`) |
//! | `GET /api/runs/{id}` | one run (`dag runs show --json`), or its place in the queue |
//! | `POST /api/runs/{id}/cancel` | cancel a running or queued run |
//! | `GET /api/runs/{id}/logs/{task}?attempt=N&offset=&limit=&tail=` | a piece of a task attempt's log (at most 1 MiB; headers `x-dag-log-next`, `x-dag-log-running`) |
//! | `POST /api/cli` | `{args}`: a read-only `dag` command line, run here (`gc` only with `--dry-run`) |
//! | `POST /api/gc` | `{keep_runs, dry_run?}`: `dag gc`, answered as `dag gc --json` |
//! | `GET /metrics` | Prometheus text |
//!
//! Errors are `{"error": "..."}` with 400 (malformed), 401 (token), 404
//! (unknown DAG, run, task or route), 409 (already finished), 413 (body over
//! 1 MiB), 422 (a request that cannot run: unknown param or task), 503
//! (shutting down).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::control::CommandHost;
use crate::daemon::dispatch::{Cancelled, RunOptions, Submission, SubmitError, api_fire};
use crate::daemon::server::DaemonContext;
use crate::record::error_chain;
use crate::views::{DagStatusJson, RunListJson, run_json};
use crate::workspace::{LOG_CHUNK, LogError, find_attempt_log, read_chunk, tail_offset};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct ApiState {
    pub daemon: Arc<DaemonContext>,
    /// Runs `POST /api/cli` command lines.
    pub commands: CommandHost,
}

type Shared = Arc<ApiState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .route("/api/runs", post(submit).get(list_runs))
        .route("/api/runs/{id}", get(show_run))
        .route("/api/runs/{id}/cancel", post(cancel))
        .route("/api/runs/{id}/logs/{task}", get(logs))
        .route("/api/cli", post(cli))
        .route("/api/gc", post(gc))
        // Everything else under `/api/` is the API's 404; other paths are
        // the web UI's, which the binary serves on the same address.
        .route(
            "/api/{*rest}",
            any(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") }),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(from_fn_with_state(Arc::clone(&state), authorize))
        .with_state(state)
}

fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
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

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    json_response(status, &json!({ "error": message.into() }))
}

async fn authorize(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.daemon.token
        && !crate::auth::bearer_matches(request.headers(), token)
    {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong `Authorization: Bearer <token>` header",
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    next.run(request).await
}

fn query(raw: Option<String>) -> BTreeMap<String, String> {
    raw.unwrap_or_default()
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (!k.is_empty()).then(|| (decode(k), decode(v)))
        })
        .collect()
}

/// Percent-decoding of a query component (`+` is a space).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match text
                    .get(i + 1..i + 3)
                    .map(|hex| u8::from_str_radix(hex, 16))
                {
                    Some(Ok(byte)) => {
                        out.push(byte);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn metrics(State(state): State<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.daemon.dispatcher.metrics.render(),
    )
        .into_response()
}

async fn status(State(state): State<Shared>) -> Response {
    let dispatcher = &state.daemon.dispatcher;
    let now = chrono::Utc::now();
    let (dags, load_errors, env): (Vec<DagStatusJson>, Vec<Value>, Option<String>) = {
        let set = dispatcher
            .dags
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let env = set.env_name().map(String::from);
        let load_errors = set
            .load_errors()
            .map(|(file, error)| json!({ "file": file, "error": error }))
            .collect();
        let dags = set
            .dags
            .values()
            .map(|loaded| {
                DagStatusJson::new(&loaded.dag, &loaded.spec_hash, loaded.error.as_deref(), now)
            })
            .collect();
        (dags, load_errors, env)
    };
    json_response(
        StatusCode::OK,
        &json!({
            "pid": state.daemon.info.pid,
            "addr": state.daemon.info.addr,
            "version": state.daemon.info.version,
            "started_at": crate::execute::rfc3339(state.daemon.info.started_at_ms),
            "uptime_ms": crate::execute::now_ms() - state.daemon.info.started_at_ms,
            "accepting": dispatcher.is_accepting(),
            "workdir": state.daemon.info.workdir,
            "state_dir": state.daemon.state_dir,
            "dags_dir": state.daemon.dags_dir,
            "env": env,
            "dags": dags,
            "load_errors": load_errors,
            "serving": state.daemon.serving.as_ref().map(crate::serve::ServingStatus::describe),
            "active": dispatcher.active(),
            "queued": dispatcher.queued(),
        }),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    dag: String,
    #[serde(default)]
    params: BTreeMap<String, Value>,
    #[serde(default)]
    options: RunOptions,
    /// Shown as the trigger's detail (e.g. the command line that asked).
    #[serde(default)]
    detail: Option<String>,
    /// A backfill run: recorded with trigger `backfill` for this date.
    #[serde(default)]
    backfill: Option<BackfillBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackfillBody {
    logical_date: String,
}

async fn submit(State(state): State<Shared>, body: Bytes) -> Response {
    let body: SubmitBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed request: {e}")),
    };
    if let Some(dag) = state.daemon.dispatcher.dag(&body.dag)
        && let Err(e) = crate::workspace::check_param_types(&dag.params, &body.params)
    {
        return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string());
    }
    let detail = body
        .detail
        .unwrap_or_else(|| format!("POST /api/runs {}", body.dag));
    let mut fire = api_fire(&body.dag, body.params, detail);
    if let Some(backfill) = body.backfill {
        if chrono::DateTime::parse_from_rfc3339(&backfill.logical_date).is_err() {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "`backfill.logical_date` must be an RFC 3339 time",
            );
        }
        fire.trigger.kind = "backfill".into();
        fire.logical_date = Some(backfill.logical_date);
    }
    let submission = Submission {
        fire,
        explicit: true,
        options: body.options,
    };
    // Accepting writes the run to the store and flushes: not on the loop.
    let dispatcher = Arc::clone(&state.daemon.dispatcher);
    let submitted = match tokio::task::spawn_blocking(move || dispatcher.submit(submission)).await {
        Ok(submitted) => submitted,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    match submitted {
        Ok(accepted) => json_response(StatusCode::ACCEPTED, &accepted),
        Err(e @ SubmitError::UnknownDag { .. })
        | Err(e @ SubmitError::Resume(crate::execute::ResumeError::NoRun(_))) => {
            error(StatusCode::NOT_FOUND, e.to_string())
        }
        Err(e @ SubmitError::Resume(_)) => error(StatusCode::UNPROCESSABLE_ENTITY, error_chain(&e)),
        Err(e @ SubmitError::InvalidFile(_)) => {
            error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        Err(e @ SubmitError::Invalid(_)) => {
            error(StatusCode::UNPROCESSABLE_ENTITY, error_chain(&e))
        }
        Err(e @ SubmitError::ShuttingDown) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e @ SubmitError::Store(_)) => error(StatusCode::SERVICE_UNAVAILABLE, error_chain(&e)),
    }
}

async fn list_runs(State(state): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let query = query(raw);
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 20,
        Some(Ok(n)) => n.min(10_000),
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "`limit` must be a number"),
    };
    let store = Arc::clone(&state.daemon.dispatcher.engine.store);
    let dag = query.get("dag").cloned();
    match tokio::task::spawn_blocking(move || store.runs(dag.as_deref(), limit)).await {
        Ok(Ok(runs)) => {
            let rows: Vec<RunListJson> = runs.iter().map(RunListJson::from).collect();
            json_response(StatusCode::OK, &rows)
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, error_chain(&e)),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn show_run(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    if let Some(queued) = state
        .daemon
        .dispatcher
        .queued()
        .into_iter()
        .find(|q| q.run_id == id)
    {
        return json_response(
            StatusCode::OK,
            &json!({ "run_id": queued.run_id, "dag": queued.dag, "status": "queued", "trigger": queued.trigger, "tasks": [] }),
        );
    }
    let store = Arc::clone(&state.daemon.dispatcher.engine.store);
    let found = tokio::task::spawn_blocking(move || {
        let run = store.run(&id).map_err(|e| error_chain(&e))?;
        match run {
            None => Ok(None),
            Some(run) => run_json(&store, &run, None)
                .map(Some)
                .map_err(|e| error_chain(&e)),
        }
    })
    .await;
    match found {
        Ok(Ok(Some(json))) => json_response(StatusCode::OK, &json),
        Ok(Ok(None)) => {
            // Accepted but not yet recorded: the executor writes the run
            // record as its first act.
            error(StatusCode::NOT_FOUND, "no such run")
        }
        Ok(Err(message)) => error(StatusCode::INTERNAL_SERVER_ERROR, message),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn cancel(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    match state.daemon.dispatcher.cancel(&id) {
        Cancelled::Unknown => error(StatusCode::NOT_FOUND, format!("no run `{id}`")),
        finished @ Cancelled::Finished { .. } => json_response(StatusCode::CONFLICT, &finished),
        other => json_response(StatusCode::OK, &other),
    }
}

/// A piece of a task attempt's log: from `offset` (or the start of the
/// last `tail` lines), at most `limit` bytes (1 MiB at most). Headers say
/// where the next piece starts and whether the attempt still runs, so a
/// client follows a log in bounded memory on both sides.
async fn logs(
    State(state): State<Shared>,
    Path((id, task)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = query(raw);
    let number = |key: &str| -> Result<Option<u64>, String> {
        match query.get(key).map(|v| v.parse::<u64>()) {
            None => Ok(None),
            Some(Ok(n)) => Ok(Some(n)),
            Some(Err(_)) => Err(format!("`{key}` must be a number")),
        }
    };
    let numbers = (|| {
        Ok::<_, String>((
            number("attempt")?,
            number("offset")?,
            number("limit")?,
            number("tail")?,
        ))
    })();
    let (attempt, offset, limit, tail) = match numbers {
        Ok(numbers) => numbers,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let Ok(attempt) = attempt.map(u32::try_from).transpose() else {
        return error(StatusCode::BAD_REQUEST, "`attempt` is too large");
    };
    let store = Arc::clone(&state.daemon.dispatcher.engine.store);
    let state_dir = state.daemon.state_dir.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<LogPiece, (StatusCode, String)> {
        let internal = |m: String| (StatusCode::INTERNAL_SERVER_ERROR, m);
        let log = find_attempt_log(&store, &id, &task, attempt).map_err(|e| match e {
            LogError::Store(e) => internal(error_chain(&e)),
            other => (StatusCode::NOT_FOUND, other.to_string()),
        })?;
        let mut piece = LogPiece {
            attempt: log.attempt,
            running: log.running,
            bytes: Vec::new(),
            next: offset.unwrap_or(0),
        };
        let Some(path) = &log.path else {
            return Ok(piece);
        };
        // The path comes from the store, never from the request; still,
        // read nothing outside the state directory.
        let root = std::fs::canonicalize(&state_dir).map_err(|e| internal(e.to_string()))?;
        let real = match std::fs::canonicalize(path) {
            Ok(real) if real.starts_with(&root) => real,
            Ok(_) => {
                return Err((
                    StatusCode::FORBIDDEN,
                    "log path is outside the state directory".into(),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(piece),
            Err(e) => return Err(internal(e.to_string())),
        };
        let from = match (offset, tail) {
            (None, Some(lines)) => tail_offset(&real, usize::try_from(lines).unwrap_or(usize::MAX))
                .map_err(|e| internal(e.to_string()))?,
            (offset, _) => offset.unwrap_or(0),
        };
        let (bytes, _) = read_chunk(&real, from, limit.unwrap_or(LOG_CHUNK))
            .map_err(|e| internal(e.to_string()))?;
        piece.next = from + bytes.len() as u64;
        piece.bytes = bytes;
        Ok(piece)
    })
    .await;
    match read {
        Ok(Ok(piece)) => {
            let headers = [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                ),
                (
                    header::HeaderName::from_static("x-dag-log-next"),
                    HeaderValue::from(piece.next),
                ),
                (
                    header::HeaderName::from_static("x-dag-log-attempt"),
                    HeaderValue::from(piece.attempt),
                ),
                (
                    header::HeaderName::from_static("x-dag-log-running"),
                    HeaderValue::from_static(if piece.running { "1" } else { "0" }),
                ),
            ];
            (headers, piece.bytes).into_response()
        }
        Ok(Err((status, message))) => error(status, message),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// What one read of a log answers.
struct LogPiece {
    attempt: u32,
    running: bool,
    bytes: Vec<u8>,
    /// The offset after `bytes`.
    next: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GcBody {
    keep_runs: usize,
    #[serde(default)]
    dry_run: bool,
}

/// `dag gc` for a client: the cache beside the daemon's store.
async fn gc(State(state): State<Shared>, body: Bytes) -> Response {
    let body: GcBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed request: {e}")),
    };
    let store = Arc::clone(&state.daemon.dispatcher.engine.store);
    let state_dir = state.daemon.state_dir.clone();
    let collected = tokio::task::spawn_blocking(move || {
        crate::cache::collect_garbage(&store, &state_dir, body.keep_runs, body.dry_run)
    })
    .await;
    match collected {
        Ok(Ok(summary)) => json_response(StatusCode::OK, &summary),
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{}; nothing was removed", error_chain(&e)),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CliBody {
    args: Vec<String>,
}

async fn cli(State(state): State<Shared>, body: Bytes) -> Response {
    let body: CliBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed request: {e}")),
    };
    let state_dir = state.daemon.state_dir.clone();
    let dags_dir = state.daemon.dags_dir.clone();
    let commands = Arc::clone(&state.commands);
    match tokio::task::spawn_blocking(move || commands(&body.args, &state_dir, &dags_dir)).await {
        Ok(output) => json_response(StatusCode::OK, &output),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_and_bad_escapes_survive() {
        let q = query(Some("dag=a%20b&limit=5&x=%zz&flag&=v&t=%4".into()));
        assert_eq!(q.get("dag").map(String::as_str), Some("a b"));
        assert_eq!(q.get("limit").map(String::as_str), Some("5"));
        assert_eq!(q.get("x").map(String::as_str), Some("%zz"));
        assert_eq!(q.get("flag").map(String::as_str), Some(""));
        assert_eq!(q.get("t").map(String::as_str), Some("%4"));
        assert!(!q.contains_key(""));
    }
}
