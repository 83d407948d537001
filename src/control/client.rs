//! [`DaemonClient`]: a client of the daemon's API, as the CLI uses it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::CommandOutput;
use crate::cache::GcSummary;
use crate::client::{self, Response};
use crate::daemon::info::{DaemonInfo, TOKEN_VAR};
use crate::record::error_chain;

/// How long one API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a call to the daemon did not give an answer to use.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon understood and refused (4xx): a user's mistake.
    #[error("{0}")]
    Refused(String),
    /// The daemon failed, or could not be reached (5xx, transport).
    #[error("{0}")]
    Failed(String),
}

/// A running daemon, and the token to reach it with.
#[derive(Debug, Clone)]
pub struct DaemonClient {
    pub info: DaemonInfo,
    token: Option<String>,
}

impl DaemonClient {
    /// A client for `info`, with the token from `DAG_API_TOKEN` if set.
    pub fn new(info: DaemonInfo) -> Self {
        Self {
            info,
            token: std::env::var(TOKEN_VAR).ok().filter(|t| !t.is_empty()),
        }
    }

    /// One request; the answer whatever its status.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, ClientError> {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        client::request(
            self.info.addr,
            method,
            path,
            self.token.as_deref(),
            bytes.as_deref(),
            CALL_TIMEOUT,
        )
        .map_err(|e| {
            ClientError::Failed(format!(
                "the daemon at {} did not answer: {}",
                self.info.addr,
                error_chain(&e)
            ))
        })
    }

    /// One request; a 4xx or 5xx answer is an error carrying the daemon's
    /// message.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, ClientError> {
        let response = self.request(method, path, body)?;
        match response.status {
            200..=299 => Ok(response),
            401 => Err(ClientError::Refused(format!(
                "the daemon refused the request: set {TOKEN_VAR} to its token"
            ))),
            status => {
                let message = response
                    .json()
                    .ok()
                    .and_then(|v| v.get("error").and_then(Value::as_str).map(String::from))
                    .unwrap_or_else(|| response.text());
                Err(if status >= 500 {
                    ClientError::Failed(message)
                } else {
                    ClientError::Refused(message)
                })
            }
        }
    }

    /// `GET path` as JSON.
    pub fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        self.call("GET", path, None)?
            .json()
            .map_err(|e| ClientError::Failed(format!("malformed answer from the daemon: {e}")))
    }

    /// Submits a run of `dag`; the daemon's answer (`{state, run_id, ...}`).
    pub fn submit(
        &self,
        dag: &str,
        params: &BTreeMap<String, Value>,
        options: &Value,
        detail: String,
    ) -> Result<Value, ClientError> {
        let mut body = json!({ "dag": dag, "params": params, "detail": detail });
        if !options.is_null() {
            body["options"] = options.clone();
        }
        self.call("POST", "/api/runs", Some(&body))?
            .json()
            .map_err(|e| ClientError::Failed(format!("malformed answer from the daemon: {e}")))
    }

    /// Submits a backfill run: the DAG for one logical date, recorded with
    /// trigger `backfill`.
    pub fn submit_backfill(
        &self,
        dag: &str,
        params: &BTreeMap<String, Value>,
        logical_date: &str,
        detail: String,
    ) -> Result<Value, ClientError> {
        let body = json!({
            "dag": dag, "params": params, "detail": detail,
            "backfill": { "logical_date": logical_date },
        });
        self.call("POST", "/api/runs", Some(&body))?
            .json()
            .map_err(|e| ClientError::Failed(format!("malformed answer from the daemon: {e}")))
    }

    /// Asks the daemon to cancel a run; the raw answer (200, 404, 409).
    pub fn cancel(&self, run_id: &str) -> Result<Response, ClientError> {
        self.request(
            "POST",
            &format!("/api/runs/{}/cancel", path_segment(run_id)),
            Some(&json!({})),
        )
    }

    /// Has the daemon collect the run cache's garbage (`dag gc`).
    pub fn gc(&self, keep_runs: usize, dry_run: bool) -> Result<GcSummary, ClientError> {
        let body = json!({ "keep_runs": keep_runs, "dry_run": dry_run });
        let answer = self.call("POST", "/api/gc", Some(&body))?;
        serde_json::from_slice(&answer.body)
            .map_err(|e| ClientError::Failed(format!("malformed answer from the daemon: {e}")))
    }

    /// Has the daemon run a read-only command line against its store.
    pub fn command(&self, argv: &[String]) -> Result<CommandOutput, ClientError> {
        self.call("POST", "/api/cli", Some(&json!({ "args": argv })))?
            .json()
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| ClientError::Failed("malformed answer from the daemon".into()))
    }
}

/// Percent-encodes one path segment.
pub fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_escape_everything_but_unreserved_characters() {
        assert_eq!(path_segment("20261126-a_b.c~"), "20261126-a_b.c~");
        assert_eq!(path_segment("../x y/%"), "..%2Fx%20y%2F%25");
    }
}
