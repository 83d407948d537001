//! The lifecycle DAG files under `dags/` pass the load-time checks of the
//! ml and registry operators they use, with templates rendered from the
//! files' default params, so the examples cannot rot.

#![expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{Registry, TaskSpec};

const DAGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../dags");

/// Renders strings that are exactly `{{ params.<name> }}` with the default value.
fn render(value: &Value, params: &serde_json::Map<String, Value>) -> Value {
    match value {
        Value::String(s) => {
            let inner = s
                .trim()
                .strip_prefix("{{")
                .and_then(|s| s.strip_suffix("}}"))
                .map(str::trim);
            match inner
                .and_then(|i| i.strip_prefix("params."))
                .and_then(|name| params.get(name))
            {
                Some(rendered) => rendered.clone(),
                None => value.clone(),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| render(v, params)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), render(v, params)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn paths(task: &Value, key: &str) -> BTreeMap<String, String> {
    task.get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn lifecycle_dag_tasks_pass_operator_checks() {
    let registry = Registry::builtin();
    let mut checked = 0;
    for name in [
        "obesity_training.yaml",
        "obesity_validation.yaml",
        "obesity_deployment.yaml",
    ] {
        let text = std::fs::read_to_string(format!("{DAGS}/{name}")).unwrap();
        let dag: Value = serde_yaml::from_str(&text).unwrap();
        let params = dag
            .get("params")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (id, task) in dag["tasks"].as_object().unwrap() {
            let operator = task["operator"].as_str().unwrap();
            let Some(op) = registry.get(operator) else {
                continue;
            };
            let rendered = render(task.get("params").unwrap_or(&Value::Null), &params);
            let (inputs, outputs) = (paths(task, "inputs"), paths(task, "outputs"));
            let problems = op.check(&TaskSpec {
                params: &rendered,
                inputs: &inputs,
                outputs: &outputs,
            });
            assert!(problems.is_empty(), "{name} task `{id}`: {problems:?}");
            checked += 1;
        }
    }
    // Ten tasks; `serve.smoke` belongs to the engine, not to this registry.
    assert_eq!(checked, 9);
}
