//! The JSON Schema of DAG files (`dag schema`), generated from types that
//! mirror the file format. Editors use it for completion and checks; the
//! parser remains the authority, and a test keeps the two in agreement.

use std::collections::BTreeMap;

use schemars::JsonSchema;

/// A DAG file.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[expect(dead_code, reason = "only the schema of these types is used")]
pub struct DagFile {
    /// The DAG's name: lowercase letters, digits and `_`.
    name: String,
    /// One line shown by `dag list`.
    description: Option<String>,
    /// Other DAG files whose tasks and params are merged into this one.
    include: Option<Vec<IncludeEntry>>,
    /// Typed default values, overridable with `--param key=value`; referenced as `{{ params.<name> }}`.
    params: Option<BTreeMap<String, serde_json::Value>>,
    /// Settings applied to every task that does not set them.
    defaults: Option<TaskDefaults>,
    /// Most tasks running at once.
    max_parallel: Option<u32>,
    /// When the daemon runs this DAG.
    schedule: Option<ScheduleEntry>,
    /// File globs; the daemon reruns the DAG when a matching file's content changes.
    watch: Option<Vec<String>>,
    /// When the daemon starts after a crash, resume runs of this DAG the crash interrupted (default false).
    resume_interrupted: Option<bool>,
    /// Named executors that tasks pick with `executor:` (see docs/ray.md).
    executors: Option<BTreeMap<String, ExecutorEntry>>,
    /// Tasks by id (lowercase letters, digits and `_`).
    tasks: Option<BTreeMap<String, TaskEntry>>,
    /// Secrets by name, used as `{{ secrets.<name> }}`: masked in logs, never recorded.
    secrets: Option<BTreeMap<String, SecretEntry>>,
    /// Notified when the run fails.
    on_failure: Option<HookTargets>,
    /// Notified when the run succeeds.
    on_success: Option<HookTargets>,
    /// Notified before each retry of any task.
    on_retry: Option<HookTargets>,
    /// Notified once when the run is still going after `sla`.
    on_sla_miss: Option<HookTargets>,
    /// How long the run may take before `on_sla_miss` fires.
    sla: Option<Duration>,
}

/// Where a secret's value is read when a run starts: exactly one of the two.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[expect(dead_code, reason = "only the schema of these types is used")]
struct SecretEntry {
    /// An environment variable of the engine's process.
    env: Option<String>,
    /// A file, relative to the project root (one trailing newline dropped).
    file: Option<String>,
}

/// One hook target, or a list of them.
#[derive(JsonSchema)]
#[serde(untagged)]
#[expect(dead_code, reason = "only the schema of these types is used")]
enum HookTargets {
    One(HookTarget),
    Many(Vec<HookTarget>),
}

/// Where a notification goes: exactly one of `webhook`, `webhook_env` or `command`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[expect(dead_code, reason = "only the schema of these types is used")]
struct HookTarget {
    /// `http://` or `https://` URL; gets the notification as a JSON POST.
    webhook: Option<String>,
    /// An environment variable holding the webhook URL, read at delivery.
    webhook_env: Option<String>,
    /// `json` (default) or `slack` (`{"text": ...}`).
    format: Option<HookFormat>,
    /// A shell command; gets the JSON on stdin.
    command: Option<String>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[expect(dead_code, reason = "only the schema of these types is used")]
enum HookFormat {
    Json,
    Slack,
}

/// A named executor: where the attempts of the tasks that pick it run.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[expect(dead_code, reason = "only the schema of these types is used")]
struct ExecutorEntry {
    /// `ray`: each attempt is one job on a Ray cluster.
    kind: ExecutorKindEntry,
    /// The head's dashboard, `http://host:port` (overridden by `DAG_RAY_ADDRESS`).
    address: String,
    /// `entrypoint_num_cpus` of each job.
    num_cpus: Option<f64>,
    /// `entrypoint_num_gpus` of each job.
    num_gpus: Option<f64>,
    /// `entrypoint_memory`: bytes, or a size such as `2GiB`.
    memory: Option<serde_json::Value>,
    /// `entrypoint_resources`: custom resource → amount.
    resources: Option<BTreeMap<String, f64>>,
    /// Passed to Ray as the job's `runtime_env`; the task's env vars are added to `env_vars`.
    runtime_env: Option<BTreeMap<String, serde_json::Value>>,
    /// The `dag` binary's path on the workers (default: the running binary's).
    dag_binary: Option<String>,
    /// How often a job's status is polled (default 200ms).
    poll_interval: Option<Duration>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[expect(dead_code, reason = "only the schema of these types is used")]
enum ExecutorKindEntry {
    Ray,
}

/// A file path, or a file with extra upstream tasks for its root tasks.
#[derive(JsonSchema)]
#[serde(untagged)]
#[expect(dead_code, reason = "only the schema of these types is used")]
enum IncludeEntry {
    Path(String),
    WithNeeds {
        file: String,
        /// Upstream task ids added to the included file's root tasks.
        needs: Option<Vec<String>>,
    },
}

/// A cron line (5 fields with 0 = Sunday, 6/7 fields with seconds, or `@daily`), or a mapping.
#[derive(JsonSchema)]
#[serde(untagged)]
#[expect(dead_code, reason = "only the schema of these types is used")]
enum ScheduleEntry {
    Cron(String),
    Detailed {
        cron: String,
        /// IANA time zone name, e.g. `Europe/Madrid`.
        timezone: Option<String>,
        catchup: Option<Catchup>,
        max_active_runs: Option<u32>,
        overlap: Option<Overlap>,
    },
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[expect(dead_code, reason = "only the schema of these types is used")]
enum Catchup {
    None,
    Last,
    All,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[expect(dead_code, reason = "only the schema of these types is used")]
enum Overlap {
    Skip,
    Queue,
    CancelPrevious,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[expect(dead_code, reason = "only the schema of these types is used")]
enum TriggerRule {
    AllSuccess,
    AllDone,
    AllFailed,
    OneFailed,
    OneSuccess,
    NoneFailed,
}

/// A duration such as `500ms`, `30s`, `5m`, `1h30m`, or a number of seconds.
#[derive(JsonSchema)]
#[serde(untagged)]
#[expect(dead_code, reason = "only the schema of these types is used")]
enum Duration {
    Text(String),
    Seconds(f64),
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[expect(dead_code, reason = "only the schema of these types is used")]
pub struct TaskDefaults {
    retries: Option<u32>,
    retry_delay: Option<Duration>,
    retry_backoff: Option<f64>,
    retry_max_delay: Option<Duration>,
    timeout: Option<Duration>,
    trigger_rule: Option<TriggerRule>,
    cache: Option<bool>,
    executor: Option<String>,
}

/// One task.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[expect(dead_code, reason = "only the schema of these types is used")]
pub struct TaskEntry {
    /// The operator's name (`dag operators` lists them).
    operator: String,
    description: Option<String>,
    /// Upstream task ids. Dependencies through artifacts and `{{ tasks.<id>... }}` are implied.
    needs: Option<Vec<String>>,
    /// Input artifacts: name → path relative to the project root.
    inputs: Option<BTreeMap<String, String>>,
    /// Output artifacts: name → path relative to the project root.
    outputs: Option<BTreeMap<String, String>>,
    /// The operator's params; strings may hold `{{ ... }}` templates.
    params: Option<serde_json::Value>,
    /// Further attempts after the first fails.
    retries: Option<u32>,
    /// Wait before the first retry (default 1s).
    retry_delay: Option<Duration>,
    /// Multiplier of the wait for each further retry (default 2).
    retry_backoff: Option<f64>,
    /// Upper bound of the wait (default 5m).
    retry_max_delay: Option<Duration>,
    /// Limit of one attempt.
    timeout: Option<Duration>,
    /// When to run, given how upstream tasks ended (default `all_success`).
    trigger_rule: Option<TriggerRule>,
    /// A condition; when false the task is skipped with the reason recorded.
    when: Option<String>,
    /// `false`: always run, never reuse an earlier result.
    cache: Option<bool>,
    /// Notified when the task fails.
    on_failure: Option<HookTargets>,
    /// Notified when the task succeeds.
    on_success: Option<HookTargets>,
    /// Notified before each retry of the task.
    on_retry: Option<HookTargets>,
    /// Notified once when the task is still going after `sla`.
    on_sla_miss: Option<HookTargets>,
    /// How long the task may take before `on_sla_miss` fires.
    sla: Option<Duration>,
    /// A name under `executors:` (or `local`, the default): where attempts run.
    executor: Option<String>,
    /// For `shell` and `python`: the values the task writes (to
    /// `DAG_OUTCOME`, or returns), so `{{ tasks.<id>.outputs.<name> }}`
    /// references to them are checked at load time.
    values: Option<Vec<String>>,
    /// One task per value: `map: { n_trees: [100, 300] }` makes
    /// `ID[n_trees=100]` and `ID[n_trees=300]`, with `{{ map.n_trees }}`
    /// replaced in each; downstream, `ID` stands for all of them.
    map: Option<BTreeMap<String, MapValues>>,
}

/// What a mapped task maps over.
#[derive(JsonSchema)]
#[serde(untagged)]
#[expect(dead_code, reason = "only its schema is used")]
enum MapValues {
    /// The values: strings, numbers or booleans.
    List(Vec<serde_json::Value>),
    /// The files a glob matches when the DAG is loaded: `{ glob: "data/shards/*.csv" }`.
    Glob { glob: String },
    /// A param's list, as the run has it: `{ param: sizes }`.
    Param { param: String },
    /// An upstream task's list output, as the run produces it:
    /// `{ from: tasks.list.outputs.parts }`.
    From { from: String },
    /// A param's or an upstream output's list, as a template:
    /// `"{{ params.sizes }}"`, `"{{ tasks.list.outputs.parts }}"`.
    Template(String),
}

/// The schema of DAG files, with each operator's params: a task whose
/// `operator` is `ml.train` has `params` checked against `ml.train`'s.
pub fn dag_file_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(DagFile)).unwrap_or_default();
    let mut branches = Vec::new();
    let mut shared_defs = serde_json::Map::new();
    for operator in crate::ops::registry().iter() {
        let Some(mut params) = operator.params_schema() else {
            continue;
        };
        let name = operator.name();
        if let Some(object) = params.as_object_mut() {
            object.remove("$schema");
            object.remove("title");
            if let Some(serde_json::Value::Object(defs)) = object.remove("$defs") {
                for (def, body) in defs {
                    shared_defs.insert(format!("{name}.{def}"), body);
                }
            }
        }
        branches.push(serde_json::json!({
            "if": {"properties": {"operator": {"const": name}}, "required": ["operator"]},
            "then": {"properties": {"params": params}},
        }));
    }
    let mut branches = serde_json::Value::Array(branches);
    let mut shared_defs = serde_json::Value::Object(shared_defs);
    for operator in crate::ops::registry().iter() {
        let prefix = format!("#/$defs/{}.", operator.name());
        // Only this operator's own references get its prefix.
        prefix_refs(&mut branches, operator.name(), &prefix);
        prefix_refs(&mut shared_defs, operator.name(), &prefix);
    }
    if let Some(defs) = schema
        .get_mut("$defs")
        .and_then(serde_json::Value::as_object_mut)
    {
        if let serde_json::Value::Object(shared) = shared_defs {
            defs.extend(shared);
        }
        if let Some(task) = defs
            .get_mut("TaskEntry")
            .and_then(serde_json::Value::as_object_mut)
        {
            task.insert("allOf".into(), branches);
        }
    }
    schema
}

/// Rewrites `#/$defs/X` to `#/$defs/{operator}.X` inside the parts of
/// `value` that belong to `operator`: its `if`/`then` branch, or the
/// definitions named `{operator}.*`.
fn prefix_refs(value: &mut serde_json::Value, operator: &str, prefix: &str) {
    fn rewrite(value: &mut serde_json::Value, prefix: &str) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, inner) in map.iter_mut() {
                    match inner {
                        serde_json::Value::String(target) if key == "$ref" => {
                            if let Some(rest) = target.strip_prefix("#/$defs/") {
                                *target = format!("{prefix}{rest}");
                            }
                        }
                        other => rewrite(other, prefix),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|i| rewrite(i, prefix)),
            _ => {}
        }
    }
    match value {
        serde_json::Value::Array(branches) => {
            for branch in branches.iter_mut() {
                if branch.pointer("/if/properties/operator/const")
                    == Some(&serde_json::Value::String(operator.into()))
                {
                    rewrite(branch, prefix);
                }
            }
        }
        serde_json::Value::Object(defs) => {
            for (name, def) in defs.iter_mut() {
                if name.rsplit_once('.').is_some_and(|(op, _)| op == operator) {
                    rewrite(def, prefix);
                }
            }
        }
        _ => {}
    }
}

pub fn dag_file_schema_json() -> String {
    serde_json::to_string_pretty(&dag_file_schema()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{DAG_KEYS, DEFAULTS_KEYS, TASK_KEYS};

    fn properties(schema: &serde_json::Value) -> Vec<String> {
        let mut keys: Vec<String> = schema["properties"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    fn sorted(keys: &[&str]) -> Vec<String> {
        let mut keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        keys.sort();
        keys
    }

    #[test]
    fn schema_keys_match_what_the_parser_accepts() {
        let schema = dag_file_schema();
        assert_eq!(properties(&schema), sorted(DAG_KEYS));
        assert_eq!(properties(&schema["$defs"]["TaskEntry"]), sorted(TASK_KEYS));
        assert_eq!(
            properties(&schema["$defs"]["TaskDefaults"]),
            sorted(DEFAULTS_KEYS)
        );
    }
}
