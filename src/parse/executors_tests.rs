//! `executors:` and `executor:` at load time: what is accepted, and every
//! mistake as a diagnostic with its place and a stable code.

use std::path::Path;
use std::time::Duration;

use crate::model::{Dag, ExecutorKind};
use crate::parse::{Diagnostic, load_dag};

fn load(text: &str) -> Result<Dag, Vec<Diagnostic>> {
    load_dag(
        Path::new("d.yaml"),
        &mut |_| Ok(text.to_string()),
        &crate::ops::registry(),
    )
}

fn codes(text: &str) -> Vec<(&'static str, usize, usize)> {
    load(text)
        .err()
        .unwrap_or_default()
        .iter()
        .map(|d| {
            let (_, line, column) = d.position().unwrap_or_default();
            (d.code, line, column)
        })
        .collect()
}

#[test]
fn a_ray_executor_reads_every_field_and_defaults_pick_it() -> Result<(), String> {
    let dag = load(
        r#"name: d
executors:
  cluster:
    kind: ray
    address: "http://127.0.0.1:8265"
    num_cpus: 1
    num_gpus: 0.5
    memory: 2GiB
    resources: { accelerator: 1 }
    runtime_env: { env_vars: { A: "1" }, pip: [polars] }
    dag_binary: /opt/dag/bin/dag
    poll_interval: 500ms
defaults:
  executor: cluster
tasks:
  a: { operator: noop }
  b: { operator: noop, executor: local }
"#,
    )
    .map_err(|d| format!("{d:?}"))?;
    let cluster = dag.executors.get("cluster").ok_or("no executor")?;
    let ExecutorKind::Ray(ray) = &cluster.kind;
    assert_eq!(ray.address, "http://127.0.0.1:8265");
    assert_eq!((ray.num_cpus, ray.num_gpus), (Some(1.0), Some(0.5)));
    assert_eq!(ray.memory, Some(2 << 30));
    assert_eq!(ray.resources.get("accelerator"), Some(&1.0));
    assert_eq!(ray.runtime_env["env_vars"]["A"], "1");
    assert_eq!(
        ray.dag_binary.as_deref(),
        Some(Path::new("/opt/dag/bin/dag"))
    );
    assert_eq!(ray.poll_interval, Duration::from_millis(500));
    assert_eq!(dag.tasks["a"].executor.as_deref(), Some("cluster"));
    assert_eq!(dag.tasks["b"].executor.as_deref(), Some("local"));
    Ok(())
}

#[test]
fn mistakes_are_diagnosed_where_they_are_with_stable_codes() {
    let text = r#"name: d
executors:
  local: { kind: ray, address: "http://h:1" }
  slurm: { kind: slurm }
  tls: { kind: ray, address: "https://h:8265" }
  bad: { kind: ray, address: "http://h:1", num_cpus: -1, memory: 2 parsecs, resources: { gpu: x }, runtime_env: [a], poll_interval: 1ms, colour: blue }
  nokind: { address: "http://h:1" }
tasks:
  a: { operator: noop, executor: clustr }
"#;
    let found = codes(text);
    let expected = [
        ("dag::reserved_name", 3, 3),
        ("dag::unknown_executor_kind", 4, 18),
        ("dag::bad_address", 5, 30),
        ("dag::bad_value", 6, 54),
        ("dag::bad_value", 6, 66),
        ("dag::wrong_type", 6, 95),
        ("dag::wrong_type", 6, 113),
        ("dag::bad_value", 6, 133),
        ("dag::unknown_key", 6, 138),
        ("dag::missing_key", 7, 11),
        ("dag::unknown_executor", 9, 34),
    ];
    for want in expected {
        assert!(found.contains(&want), "missing {want:?} in {found:?}");
    }
    assert_eq!(found.len(), expected.len(), "{found:?}");
}

#[test]
fn an_unknown_executor_named_by_defaults_points_at_the_task() {
    let found =
        codes("name: d\ndefaults: { executor: nowhere }\ntasks:\n  a: { operator: noop }\n");
    assert_eq!(found, [("dag::unknown_executor", 4, 3)]);
}
