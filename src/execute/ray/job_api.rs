//! [`JobsApi`]: the calls `dag` makes to a Ray head's Jobs REST API
//! (`/api/jobs/`), over the crate's small blocking HTTP client. Async
//! callers go through `tokio::task::spawn_blocking`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::client::{ClientError, request_host};
use crate::model::ray_host_port;

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The most bytes of an answer read, other than logs.
const MAX_ANSWER: u64 = 4 << 20;

/// A Ray head's Jobs API at one address.
#[derive(Debug, Clone)]
pub struct JobsApi {
    /// As written (`http://127.0.0.1:8265`), for messages.
    address: String,
    /// `host:port`.
    host: String,
}

/// What went wrong talking to the head.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// Nothing answered: the head is down, or the address is wrong.
    #[error("cannot reach the Ray head at {address}: {detail}")]
    Unreachable { address: String, detail: String },
    /// The head answered, but not with what was asked for.
    #[error("the Ray head at {address} answered {status}: {body}")]
    Refused {
        address: String,
        status: u16,
        body: String,
    },
}

/// A job's state: `PENDING`, `RUNNING`, `STOPPED`, `SUCCEEDED`, `FAILED`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobInfo {
    pub submission_id: Option<String>,
    pub status: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub driver_node_id: Option<String>,
    #[serde(default)]
    pub driver_exit_code: Option<i64>,
    /// When the job started and ended, in ms since the epoch.
    #[serde(default)]
    pub start_time: Option<i64>,
    #[serde(default)]
    pub end_time: Option<i64>,
}

impl JobInfo {
    pub fn is_terminal(&self) -> bool {
        matches!(self.status.as_str(), "STOPPED" | "SUCCEEDED" | "FAILED")
    }
}

#[derive(Deserialize)]
struct Logs {
    logs: String,
}

impl JobsApi {
    /// `Err` for an address that is not `http://host:port`.
    pub fn new(address: &str) -> Result<Self, String> {
        let host = ray_host_port(address).ok_or_else(|| {
            format!("`{address}` is not an `http://host:port` address of a Ray head")
        })?;
        Ok(Self {
            address: address.to_string(),
            host,
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// The job with this submission id, `None` if the head has none.
    pub fn job(&self, submission_id: &str) -> Result<Option<JobInfo>, ApiError> {
        let path = format!("/api/jobs/{}", submission_id);
        let response = self.call("GET", &path, None, MAX_ANSWER)?;
        match response.status {
            200 => self.decode(&response.body).map(Some),
            404 => Ok(None),
            status => Err(self.refused(status, &response.body)),
        }
    }

    /// Every job the head knows.
    pub fn jobs(&self) -> Result<Vec<JobInfo>, ApiError> {
        let response = self.call("GET", "/api/jobs/", None, MAX_ANSWER)?;
        match response.status {
            200 => self.decode(&response.body),
            status => Err(self.refused(status, &response.body)),
        }
    }

    /// Submits a job (`request` is the body of `POST /api/jobs/`).
    pub fn submit(&self, request: &Value) -> Result<(), ApiError> {
        let body = serde_json::to_vec(request).map_err(|error| ApiError::Refused {
            address: self.address.clone(),
            status: 0,
            body: format!("cannot encode the job: {error}"),
        })?;
        let response = self.call("POST", "/api/jobs/", Some(&body), MAX_ANSWER)?;
        match response.status {
            200 => Ok(()),
            status => Err(self.refused(status, &response.body)),
        }
    }

    /// Asks the head to stop the job. A job that already ended is not an
    /// error.
    pub fn stop(&self, submission_id: &str) -> Result<(), ApiError> {
        let path = format!("/api/jobs/{submission_id}/stop");
        let response = self.call("POST", &path, Some(b"{}"), MAX_ANSWER)?;
        match response.status {
            200 => Ok(()),
            status => Err(self.refused(status, &response.body)),
        }
    }

    /// The job's driver output, if it is at most `max_bytes` long.
    pub fn logs(&self, submission_id: &str, max_bytes: u64) -> Result<String, ApiError> {
        let path = format!("/api/jobs/{submission_id}/logs");
        // The JSON string escapes some bytes: allow for that.
        let response = self.call("GET", &path, None, max_bytes.saturating_mul(2) + 4096)?;
        match response.status {
            200 => {
                let logs: Logs = self.decode(&response.body)?;
                Ok(logs.logs)
            }
            status => Err(self.refused(status, &response.body)),
        }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        max: u64,
    ) -> Result<crate::client::Response, ApiError> {
        request_host(&self.host, method, path, body, CALL_TIMEOUT, max).map_err(|error| match error
        {
            ClientError::TooLarge { limit, .. } => ApiError::Refused {
                address: self.address.clone(),
                status: 0,
                body: format!("the answer to {method} {path} is larger than {limit} bytes"),
            },
            other => ApiError::Unreachable {
                address: self.address.clone(),
                detail: other.to_string(),
            },
        })
    }

    fn decode<T: for<'de> Deserialize<'de>>(&self, body: &[u8]) -> Result<T, ApiError> {
        serde_json::from_slice(body).map_err(|error| ApiError::Refused {
            address: self.address.clone(),
            status: 200,
            body: format!("an answer that is not what the Jobs API sends: {error}"),
        })
    }

    fn refused(&self, status: u16, body: &[u8]) -> ApiError {
        let text = String::from_utf8_lossy(body);
        let text: String = text.chars().take(500).collect();
        ApiError::Refused {
            address: self.address.clone(),
            status,
            body: text.trim().to_string(),
        }
    }
}

/// `{run}-{task}-{attempt}` with every character Ray's submission ids and
/// URL paths do not take replaced by `_`.
pub fn submission_id(run_id: &str, task_id: &str, attempt: u32) -> String {
    format!("{run_id}-{task_id}-{attempt}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submission_ids_are_deterministic_and_url_safe() {
        assert_eq!(
            submission_id("20261206T071200-ab12", "train_forest", 2),
            "20261206T071200-ab12-train_forest-2"
        );
        assert_eq!(submission_id("r/1 x", "t?", 1), "r_1_x-t_-1");
    }

    #[test]
    fn a_closed_port_is_unreachable_with_the_address_in_the_message() -> Result<(), String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        drop(listener);
        let address = format!("http://127.0.0.1:{port}");
        let api = JobsApi::new(&address)?;
        let error = api.job("x").err().ok_or("a closed port answered")?;
        assert!(matches!(error, ApiError::Unreachable { .. }), "{error}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot reach the Ray head at {address}")),
            "{error}"
        );
        Ok(())
    }
}
