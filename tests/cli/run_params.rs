//! A run's params pass the operators' checks before anything runs, in the
//! CLI and in the daemon; a param rendered from another task's value is
//! checked when the run renders it, and refused values are not retried.

use serde_json::Value;

use super::daemon_support::{Daemon, http};
use super::support::{Project, task};

const SPLIT: &str = r#"
name: split
params:
  test_size: 0.25
tasks:
  split:
    operator: data.split
    inputs: { data: data/table.csv }
    outputs: { train: data/train.parquet, test: data/test.parquet }
    params: { target: y, seed: 1, test_size: "{{ params.test_size }}" }
"#;

const REFUSED: &str = "task `split` (`data.split`): `test_size` must be between 0 and 1, not 1.5";

fn project() -> Project {
    let project = Project::new();
    let rows: String = (0..40)
        .map(|i| format!("{i},{}\n", if i % 2 == 0 { "a" } else { "b" }))
        .collect();
    project.write("data/table.csv", &format!("x,y\n{rows}"));
    project.write("dags/split.yaml", SPLIT);
    project
}

fn runs(project: &Project) -> Vec<Value> {
    let (exit, runs) = project.json(&["runs", "--json"]);
    assert_eq!(exit, 0, "{runs:#}");
    runs.as_array().cloned().unwrap_or_default()
}

#[test]
fn a_param_an_operator_refuses_is_refused_before_the_run_by_the_cli_and_the_daemon() {
    let project = project();
    for args in [
        &["run", "split", "--param", "test_size=1.5"][..],
        &["run", "split", "--param", "test_size=1.5", "--dry-run"][..],
        &["plan", "split", "--why", "--param", "test_size=1.5"][..],
    ] {
        let output = project.dag(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("the operators refuse these params: {REFUSED}")),
            "{args:?}: {stderr}"
        );
    }
    assert!(runs(&project).is_empty(), "a refused run was recorded");
    assert!(!project.path().join("data/train.parquet").exists());

    // An override the operator accepts runs.
    let (exit, run) = project.json(&["run", "split", "--param", "test_size=0.5", "--json"]);
    assert_eq!(exit, 0, "{run:#}");
    assert_eq!(task(&run, "split")["status"], "succeeded");

    // The daemon refuses the same request with a 422 naming the task, and
    // queues nothing.
    let daemon = Daemon::start(&project, &[]);
    let (status, body) = http(
        &daemon.addr,
        "POST",
        "/api/runs",
        br#"{"dag":"split","params":{"test_size":1.5}}"#,
        &[],
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains(REFUSED), "{body}");
    let (status, body) = http(
        &daemon.addr,
        "POST",
        "/api/runs",
        br#"{"dag":"split","params":{"test_size":0.4}}"#,
        &[],
    );
    assert_eq!(status, 202, "{body}");
    drop(daemon);
    let recorded = runs(&project);
    // The CLI's run and the daemon's accepted one.
    assert_eq!(recorded.len(), 2, "{recorded:#?}");
    assert!(
        recorded.iter().all(|run| run["params"]["test_size"] != 1.5),
        "{recorded:#?}"
    );
}

#[test]
fn a_typed_param_from_an_upstream_value_is_checked_in_the_run_and_not_retried() {
    let project = project();
    let dag = |share: &str| {
        format!(
            r#"
name: late
tasks:
  pick:
    operator: shell
    params: {{ command: "printf '{{\"values\":{{\"share\":{share}}}}}' > $DAG_OUTCOME" }}
    values: [share]
  split:
    operator: data.split
    retries: 3
    retry_delay: 10ms
    inputs: {{ data: data/table.csv }}
    outputs: {{ train: data/train.parquet, test: data/test.parquet }}
    params: {{ target: y, seed: 1, test_size: "{{{{ tasks.pick.outputs.share }}}}" }}
"#
        )
    };
    // The value exists only in a run, so the load does not judge it...
    project.write("dags/late.yaml", &dag("0.5"));
    let (exit, run) = project.json(&["run", "late", "--json"]);
    assert_eq!(exit, 0, "{run:#}");
    assert_eq!(task(&run, "split")["status"], "succeeded", "{run:#}");
    // ...and the run does, once: the same value fails every attempt.
    project.write("dags/late.yaml", &dag("1.5"));
    let (exit, run) = project.json(&["run", "late", "--json"]);
    assert_eq!(exit, 1, "{run:#}");
    let split = task(&run, "split");
    assert_eq!(split["status"], "failed", "{run:#}");
    assert_eq!(split["attempts"], 1, "invalid params were retried: {run:#}");
    assert_eq!(
        split["reason"],
        "invalid params: `test_size` must be between 0 and 1, not 1.5"
    );
}
