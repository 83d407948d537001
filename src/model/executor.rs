//! [`Executor`]: where a task's attempts run. A DAG file declares named
//! executors under `executors:`; a task (or `defaults`) picks one with
//! `executor: NAME`. Without one, a task runs in the engine's own process
//! tree (the implicit `local` executor).
//!
//! Where a task runs is not part of what it computes: the executor never
//! enters a task's fingerprint or cache key, only the attempt's record.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Overrides the address of every Ray executor (`http://host:port` or
/// `host:port` of the head's dashboard).
pub const RAY_ADDRESS_VAR: &str = "DAG_RAY_ADDRESS";

/// `local`: every task runs locally whatever executor it names, so the
/// same DAG file runs on a machine without the cluster.
pub const EXECUTOR_OVERRIDE_VAR: &str = "DAG_EXECUTOR_OVERRIDE";

/// The name of the implicit executor: the engine's own process tree.
pub const LOCAL: &str = "local";

/// One named executor.
#[derive(Debug, Clone, PartialEq)]
pub struct Executor {
    pub name: String,
    pub kind: ExecutorKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorKind {
    Ray(RayExecutor),
}

/// A Ray cluster reached through its Jobs REST API: one attempt, one job.
#[derive(Debug, Clone, PartialEq)]
pub struct RayExecutor {
    /// `http://host:port` of the head's dashboard, as written.
    pub address: String,
    /// `entrypoint_num_cpus`.
    pub num_cpus: Option<f64>,
    /// `entrypoint_num_gpus`.
    pub num_gpus: Option<f64>,
    /// `entrypoint_memory`, in bytes.
    pub memory: Option<u64>,
    /// `entrypoint_resources`: custom resource name → amount.
    pub resources: BTreeMap<String, f64>,
    /// Passed to Ray as the job's `runtime_env` (the task's own env vars
    /// are added to its `env_vars`).
    pub runtime_env: serde_json::Map<String, serde_json::Value>,
    /// The `dag` binary's path on the workers; the running binary's own
    /// path when not given (right for a local head, or nodes that share
    /// the filesystem).
    pub dag_binary: Option<PathBuf>,
    /// How often the job's status is asked for.
    pub poll_interval: Duration,
}

impl RayExecutor {
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(200);

    /// The address in effect: [`RAY_ADDRESS_VAR`] when set, else the
    /// declared one.
    pub fn effective_address(&self) -> String {
        match std::env::var(RAY_ADDRESS_VAR) {
            Ok(address) if !address.trim().is_empty() => address.trim().to_string(),
            _ => self.address.clone(),
        }
    }
}

/// `http://host:port[/]` or `host:port` → `host:port`; `None` for anything
/// else (HTTPS, a path, no port).
pub fn ray_host_port(address: &str) -> Option<String> {
    let rest = address.strip_prefix("http://").unwrap_or(address);
    if rest.contains("://") {
        return None;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = rest.rsplit_once(':')?;
    if host.is_empty() || rest.contains('/') || port.parse::<u16>().is_err() {
        return None;
    }
    Some(rest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_plain_http_host_and_port() {
        assert_eq!(
            ray_host_port("http://127.0.0.1:8265").as_deref(),
            Some("127.0.0.1:8265")
        );
        assert_eq!(
            ray_host_port("head.internal:8265/").as_deref(),
            Some("head.internal:8265")
        );
        for bad in [
            "https://x:8265",
            "http://x",
            "x:port",
            "http://x:8265/api",
            ":8265",
        ] {
            assert_eq!(ray_host_port(bad), None, "{bad}");
        }
    }
}
