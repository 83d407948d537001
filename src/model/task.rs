//! [`Task`]: one node of a DAG as the file declared it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::parse::{SourceFile, Span};

use super::{Condition, TriggerRule};

/// Retry policy: `retries` further attempts after the first, waiting
/// `delay * backoff^(n-1)` (capped at `max_delay`) before attempt `n + 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub retries: u32,
    pub delay: Duration,
    pub backoff: f64,
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            retries: 0,
            delay: Duration::from_secs(1),
            backoff: 2.0,
            max_delay: Duration::from_secs(300),
        }
    }
}

impl Retry {
    /// The wait before attempt `next_attempt` (2 for the first retry).
    pub fn delay_before(&self, next_attempt: u32) -> Duration {
        let exponent = next_attempt.saturating_sub(2).min(64) as i32;
        let seconds = self.delay.as_secs_f64() * self.backoff.powi(exponent);
        Duration::try_from_secs_f64(seconds)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Where a task came from, for diagnostics about it.
#[derive(Debug, Clone)]
pub struct TaskOrigin {
    pub file: Arc<SourceFile>,
    /// The task's key under `tasks:`.
    pub key: Span,
    /// Each `needs` entry, in order.
    pub needs: Vec<Span>,
    /// The span of each key's value (`operator`, `when`, `inputs`, ...).
    pub fields: BTreeMap<&'static str, Span>,
    /// The task's whole mapping, to point problems at any value inside it.
    pub body: crate::parse::Node,
}

impl TaskOrigin {
    /// Where the value of `field` is, or the task's key when it has none.
    pub fn span_of(&self, field: &str) -> Span {
        self.fields.get(field).copied().unwrap_or(self.key)
    }
}

#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub operator: String,
    pub description: Option<String>,
    /// Explicit upstream ids. Dependencies implied by artifacts are added by the planner.
    pub needs: Vec<String>,
    /// Declared input artifacts, name → path template.
    pub inputs: BTreeMap<String, String>,
    /// Declared output artifacts, name → path template.
    pub outputs: BTreeMap<String, String>,
    /// Operator params with templates not yet rendered.
    pub params: serde_json::Value,
    pub retry: Retry,
    pub timeout: Option<Duration>,
    pub trigger_rule: TriggerRule,
    pub when: Option<Box<Condition>>,
    /// `cache: false` opts out of skip-if-unchanged.
    pub cache: bool,
    /// Task-level notifications.
    pub hooks: Box<super::Hooks>,
    /// The executor its attempts run on (`executor:`); `None` is local.
    pub executor: Option<String>,
    /// `values:`: the values a `shell` or `python` task writes, declared so
    /// references to them are checked at load time.
    pub values: Option<Vec<String>>,
    /// `map:`: one task per value, expanded when the file is loaded.
    pub map: Option<Box<TaskMap>>,
    pub origin: TaskOrigin,
}

/// `map: { KEY: [v1, v2, ...] }` or `map: { KEY: { glob: PATTERN } }` of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskMap {
    pub key: String,
    pub values: Vec<serde_json::Value>,
    /// The files a glob matched when the file was loaded, instead of a list.
    pub glob: Option<String>,
    /// The param whose list the task maps over (`{ param: NAME }`): its
    /// default when the file is loaded, the run's value when a run starts.
    pub param: Option<String>,
    /// The upstream output whose list the task maps over (`{ from:
    /// tasks.UP.outputs.NAME }`): known only when that task has run, so the
    /// task is one placeholder until then and is expanded by the run.
    pub from: Option<MapFrom>,
}

/// `tasks.TASK.outputs.OUTPUT`: where a mapped task's list comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapFrom {
    pub task: String,
    pub output: String,
}

impl std::fmt::Display for MapFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tasks.{}.outputs.{}", self.task, self.output)
    }
}

impl Task {
    /// blake3 of what the task computes, as declared: operator, params,
    /// inputs, outputs, needs, trigger rule, condition and cache setting.
    /// Retries, timeouts, descriptions, hooks and the executor are left
    /// out: they change how a task runs, not what it produces. A run records
    /// it for every task, so `--resume` after an edit can tell which
    /// finished tasks still stand.
    pub fn definition_hash(&self) -> String {
        let mut needs = self.needs.clone();
        needs.sort();
        let definition = serde_json::json!({
            "operator": self.operator,
            "params": self.params,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "needs": needs,
            "trigger_rule": self.trigger_rule.to_string(),
            "when": self.when.as_ref().map(|w| w.text.as_str()),
            "cache": self.cache,
        });
        let bytes = serde_json::to_vec(&definition).unwrap_or_default();
        blake3::hash(&bytes).to_hex().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let retry = Retry {
            retries: 5,
            delay: Duration::from_secs(1),
            backoff: 2.0,
            max_delay: Duration::from_secs(5),
        };
        assert_eq!(retry.delay_before(2), Duration::from_secs(1));
        assert_eq!(retry.delay_before(3), Duration::from_secs(2));
        assert_eq!(retry.delay_before(4), Duration::from_secs(4));
        assert_eq!(retry.delay_before(5), Duration::from_secs(5));
    }
}
