//! `serve.smoke`: the deployment's last check. It serves a registry alias
//! in-process on a free loopback port, waits for `/ready`, sends one
//! held-out record to `POST /predict` with the loopback client, and compares
//! the answer with what `ml.predict_batch` predicted for the same row: the
//! same class, every probability within [`TOLERANCE`], and the same model
//! version. So it checks what a client would see (HTTP, validation, the
//! transformer embedded in the model file), not the scoring code alone.
//!
//! It writes nothing: the server it starts keeps no prediction log.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use dag_operators::ml::{ColumnValues, Table};
use dag_operators::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, error_chain,
    parse_params, require_names, run_blocking,
};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::client::{self, Response};
use crate::serve::{BackgroundServer, LogConfig, ServeConfig};

/// How far a served probability may be from the batch one.
pub const TOLERANCE: f64 = 1e-9;

/// One HTTP request may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Smoke;

fn production() -> String {
    "production".into()
}

fn ready_timeout_secs() -> u64 {
    30
}

/// The longest `ready_timeout_secs` accepted: a day. Longer waits mean a
/// mistake, and an unbounded one could overflow the clock.
const MAX_READY_TIMEOUT_SECS: u64 = 86_400;

impl Params {
    fn problems(&self) -> Vec<Problem> {
        if self.ready_timeout_secs > MAX_READY_TIMEOUT_SECS {
            return vec![Problem::new(
                "params.ready_timeout_secs",
                format!(
                    "`ready_timeout_secs` must be at most {MAX_READY_TIMEOUT_SECS} (a day), found {}",
                    self.ready_timeout_secs
                ),
            )];
        }
        Vec::new()
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Registry name of the model.
    model: String,
    /// The alias to serve.
    #[serde(default = "production")]
    alias: String,
    /// The row of `data` (and of the predictions) to send.
    #[serde(default)]
    row: usize,
    /// How long the server may take to load a verified model.
    #[serde(default = "ready_timeout_secs")]
    ready_timeout_secs: u64,
}

/// What `ml.predict_batch` wrote for one row.
#[derive(Debug, Clone, PartialEq)]
struct BatchPrediction {
    class: String,
    /// `(class, probability)` from the `p_<class>` columns.
    probabilities: Vec<(String, f64)>,
    /// `name:vN` for a registry model, `file:<digest>` for a model file.
    model_version: String,
}

fn failed(message: impl Into<String>) -> OperatorError {
    OperatorError::failed(message)
}

impl BatchPrediction {
    fn read(path: &Path, row: usize) -> Result<Self, OperatorError> {
        let table = Table::read(path)?;
        let rows = table.numeric("row")?;
        let at = rows.iter().position(|r| *r == row as f64).ok_or_else(|| {
            failed(format!(
                "`{}` has no prediction for row {row}",
                path.display()
            ))
        })?;
        let text = |column: &str| -> Result<String, OperatorError> {
            Ok(table.text_values(column)?[at].clone().into_owned())
        };
        let mut probabilities = Vec::new();
        for (name, values) in &table.columns {
            if let (Some(class), ColumnValues::Numeric(values)) = (name.strip_prefix("p_"), values)
            {
                let p = values[at].ok_or_else(|| {
                    failed(format!(
                        "`{}` has no `{name}` for row {row}",
                        path.display()
                    ))
                })?;
                probabilities.push((class.to_string(), p));
            }
        }
        if probabilities.is_empty() {
            return Err(failed(format!(
                "`{}` has no `p_<class>` columns; is it the output of `ml.predict_batch`?",
                path.display()
            )));
        }
        Ok(Self {
            class: text("predicted")?,
            probabilities,
            model_version: text("model_version")?,
        })
    }
}

/// The record of `row` with the fields the served model names, as JSON.
fn record(
    data: &Table,
    source: &Path,
    row: usize,
    fields: &[String],
) -> Result<Value, OperatorError> {
    let mut record = Map::new();
    for name in fields {
        let value = match data.column(name) {
            Ok(ColumnValues::Numeric(values)) => values[row]
                .and_then(Number::from_f64)
                .map_or(Value::Null, Value::Number),
            Ok(ColumnValues::Text(values)) => {
                values[row].clone().map_or(Value::Null, Value::String)
            }
            Err(_) => {
                return Err(failed(format!(
                    "`{}` has no column `{name}`, which the served model needs",
                    source.display()
                )));
            }
        };
        record.insert(name.clone(), value);
    }
    Ok(Value::Object(record))
}

/// The `error` a refused request carried, or its raw body.
fn reason(response: &Response) -> String {
    response
        .json()
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| response.text())
}

fn get(addr: SocketAddr, path: &str) -> Result<Response, client::ClientError> {
    client::request(addr, "GET", path, None, None, REQUEST_TIMEOUT)
}

/// Waits until the server has a verified model; returns `/ready`'s answer.
fn wait_ready(addr: SocketAddr, params: &Params, ctx: &Context) -> Result<Value, OperatorError> {
    let deadline = Instant::now()
        .checked_add(Duration::from_secs(params.ready_timeout_secs))
        .ok_or_else(|| {
            failed(format!(
                "`ready_timeout_secs` {} is too long to wait",
                params.ready_timeout_secs
            ))
        })?;
    loop {
        let last = match get(addr, "/ready") {
            Ok(response) if response.status == 200 => {
                return response
                    .json()
                    .map_err(|e| failed(format!("`GET /ready` answered with invalid JSON: {e}")));
            }
            Ok(response) => reason(&response),
            Err(error) => error.to_string(),
        };
        if ctx.cancel.is_cancelled() {
            return Err(OperatorError::Cancelled);
        }
        if Instant::now() >= deadline {
            return Err(failed(format!(
                "`{}@{}` was not ready after {} s: {last}",
                params.model, params.alias, params.ready_timeout_secs
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks the answer of `/predict` against the batch prediction.
fn compare(answer: &Value, batch: &BatchPrediction, row: usize) -> Result<String, OperatorError> {
    let served = answer
        .get("model")
        .and_then(|m| {
            Some(format!(
                "{}:v{}",
                m.get("name")?.as_str()?,
                m.get("version")?
            ))
        })
        .ok_or_else(|| failed(format!("the answer names no model: {answer}")))?;
    if !batch.model_version.starts_with("file:") && served != batch.model_version {
        return Err(failed(format!(
            "the server answers with `{served}` but the batch predictions were made by `{}`; rerun the batch prediction",
            batch.model_version
        )));
    }
    let class = answer
        .get("class")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if class != batch.class {
        return Err(failed(format!(
            "row {row}: the server predicts `{class}`, the batch prediction is `{}`",
            batch.class
        )));
    }
    let probabilities = answer
        .get("probabilities")
        .and_then(Value::as_object)
        .ok_or_else(|| failed(format!("the answer has no probabilities: {answer}")))?;
    if probabilities.len() != batch.probabilities.len() {
        return Err(failed(format!(
            "row {row}: the server answers {} classes, the batch prediction has {}",
            probabilities.len(),
            batch.probabilities.len()
        )));
    }
    for (name, expected) in &batch.probabilities {
        let got = probabilities.get(name).and_then(Value::as_f64);
        if !got.is_some_and(|p| (p - expected).abs() <= TOLERANCE) {
            return Err(failed(format!(
                "row {row}: probability of `{name}` is {} from the server and {expected} in the batch prediction",
                got.map_or_else(|| "missing".to_string(), |p| p.to_string())
            )));
        }
    }
    Ok(served)
}

impl Operator for Smoke {
    fn name(&self) -> &'static str {
        "serve.smoke"
    }

    fn description(&self) -> &'static str {
        "serves `model@alias` in-process and checks that one record of `data` gets the batch `predictions`"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(dag_operators::schema_of::<Params>())
    }

    fn ports(&self) -> dag_operators::Ports {
        const PORTS: dag_operators::Ports = dag_operators::Ports {
            inputs: &[
                dag_operators::Port::required(
                    "data",
                    "the rows the batch predictions were made for",
                ),
                dag_operators::Port::required(
                    "predictions",
                    "the CSV `ml.predict_batch` wrote for the same version",
                ),
            ],
            outputs: &[],
            ..dag_operators::Ports::NONE
        };
        PORTS
    }

    fn value_names(&self) -> &'static [&'static str] {
        &["model_version", "class"]
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("inputs", spec.inputs, &["data", "predictions"]);
        match parse_params::<Params>(spec.params) {
            Ok(params) => problems.extend(params.problems()),
            Err(problem) => problems.push(problem),
        }
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| {
            let params: Params =
                parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
            let data_path = ctx.input("data")?;
            let data = Table::read(data_path)?;
            if params.row >= data.rows {
                return Err(failed(format!(
                    "row {} is outside `{}` ({} rows)",
                    params.row,
                    data_path.display(),
                    data.rows
                )));
            }
            let batch = BatchPrediction::read(ctx.input("predictions")?, params.row)?;
            let server = BackgroundServer::start(ServeConfig {
                state_dir: ctx.state_dir.clone(),
                model: params.model.clone(),
                alias: params.alias.clone(),
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                challenger: None,
                log: LogConfig {
                    sample: 0.0,
                    max_bytes: 0,
                    keep: 0,
                },
                token: None,
                poll_interval: Duration::from_millis(250),
                invalid: crate::serve::InvalidRecords::Reject,
            })
            .map_err(|e| {
                failed(format!(
                    "cannot start the prediction server: {}",
                    error_chain(&e)
                ))
            })?;
            let addr = server.addr();
            wait_ready(addr, &params, &ctx)?;
            let described = get(addr, "/model")
                .map_err(|e| failed(e.to_string()))?
                .json()
                .map_err(|e| failed(format!("`GET /model` answered with invalid JSON: {e}")))?;
            let fields: Vec<String> = described
                .get("schema")
                .and_then(Value::as_array)
                .map(|schema| {
                    schema
                        .iter()
                        .filter_map(|f| f.get("name")?.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let body = record(&data, data_path, params.row, &fields)?.to_string();
            let started = Instant::now();
            let response = client::request(
                addr,
                "POST",
                "/predict",
                None,
                Some(body.as_bytes()),
                REQUEST_TIMEOUT,
            )
            .map_err(|e| failed(e.to_string()))?;
            let latency = started.elapsed();
            if response.status != 200 {
                return Err(failed(format!(
                    "`POST /predict` with row {} answered {}: {}",
                    params.row,
                    response.status,
                    reason(&response)
                )));
            }
            let answer = response
                .json()
                .map_err(|e| failed(format!("`POST /predict` answered with invalid JSON: {e}")))?;
            let served = compare(&answer, &batch, params.row)?;
            if let Err(error) = server.stop() {
                ctx.log.line(format_args!(
                    "the prediction server did not stop cleanly: {}",
                    error_chain(&error)
                ));
            }
            let ms = latency.as_secs_f64() * 1e3;
            ctx.log.line(format_args!(
                "row {} answered `{}` by {served} in {ms:.2} ms, as in the batch predictions",
                params.row, batch.class
            ));
            Ok(Outcome::default()
                .value("model_version", served.clone())
                .value("class", batch.class.clone())
                .metric("latency_ms", ms)
                .summary(format!(
                    "{served} served row {} as `{}`, matching the batch prediction",
                    params.row, batch.class
                )))
        })
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;
    use crate::serve::test_support::{csv, registry_with_versions};
    use dag_operators::ml::predictions_csv;
    use serde_json::json;

    /// A project with `obesity@production` on version 1, held-out rows and
    /// their batch predictions (made with `label` as the model version).
    fn project(label: &str) -> (tempfile::TempDir, Context) {
        let (dir, registry, versions) = registry_with_versions(1);
        let data = dir.path().join("holdout.csv");
        std::fs::write(&data, csv(12)).unwrap();
        let model = registry.load_verified(&versions[0]).unwrap();
        let predictions = dir.path().join("predictions.csv");
        let text = predictions_csv(&model, &Table::read(&data).unwrap(), label).unwrap();
        std::fs::write(&predictions, text).unwrap();
        let mut ctx = Context::detached(
            dir.path(),
            json!({"model": "obesity", "alias": "production", "row": 4}),
        );
        ctx.inputs.insert("data".into(), data);
        ctx.inputs.insert("predictions".into(), predictions);
        (dir, ctx)
    }

    fn run(ctx: &Context) -> Result<Outcome, OperatorError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(Smoke.execute(ctx))
    }

    #[test]
    fn served_answer_matches_the_batch_prediction() {
        let (_dir, ctx) = project("obesity:v1");
        let outcome = run(&ctx).unwrap();
        assert_eq!(outcome.values["model_version"], json!("obesity:v1"));
        let batch = BatchPrediction::read(ctx.input("predictions").unwrap(), 4).unwrap();
        assert_eq!(outcome.values["class"], json!(batch.class));
    }

    #[test]
    fn a_different_batch_prediction_fails_naming_what_differs() {
        let (_dir, ctx) = project("obesity:v1");
        let path = ctx.input("predictions").unwrap().to_path_buf();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        // Row 4 is line 5; nudge its first probability by more than the tolerance.
        let mut fields: Vec<String> = lines[5].split(',').map(str::to_string).collect();
        let p: f64 = fields[2].parse().unwrap();
        fields[2] = (p + 1e-6).to_string();
        lines[5] = fields.join(",");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let message = run(&ctx).unwrap_err().to_string();
        assert!(message.contains("row 4: probability of"), "{message}");
    }

    #[test]
    fn predictions_of_another_version_fail() {
        let (_dir, ctx) = project("obesity:v7");
        let message = run(&ctx).unwrap_err().to_string();
        assert!(
            message.contains("`obesity:v1`") && message.contains("`obesity:v7`"),
            "{message}"
        );
    }

    #[test]
    fn an_alias_without_a_model_fails_after_the_ready_timeout() {
        let (_dir, mut ctx) = project("obesity:v1");
        ctx.params = json!({"model": "obesity", "alias": "nowhere", "ready_timeout_secs": 0});
        let message = run(&ctx).unwrap_err().to_string();
        assert!(
            message.contains("`obesity@nowhere` was not ready"),
            "{message}"
        );
    }

    #[test]
    fn check_requires_data_and_predictions_and_a_model() {
        let params = json!({"alias": "production"});
        let inputs = std::collections::BTreeMap::new();
        let outputs = std::collections::BTreeMap::new();
        let problems = Smoke.check(&TaskSpec {
            params: &params,
            inputs: &inputs,
            outputs: &outputs,
        });
        let text = format!("{problems:?}");
        assert!(
            text.contains("`data`") && text.contains("`predictions`") && text.contains("`model`"),
            "{text}"
        );
    }
}
