//! `dag run` and `dag runs` seen from outside.

use std::time::{Duration, Instant};

use super::support::{Project, task};

const PIPELINE: &str = r#"
name: pipeline
params:
  rows: 3
tasks:
  extract:
    operator: shell
    params:
      command: "seq {{ params.rows }} > data/raw.txt; printf '{\"metrics\":{\"rows\":%s},\"values\":{\"source\":\"seq\"}}' $(wc -l < data/raw.txt) > $DAG_OUTCOME"
    outputs: { raw: data/raw.txt }
    values: [source]
  transform:
    operator: shell
    inputs: { raw: data/raw.txt }
    params: { command: "sort -r {{ tasks.extract.outputs.raw }} > data/sorted.txt; echo from {{ tasks.extract.outputs.source }}" }
    outputs: { sorted: data/sorted.txt }
  report:
    operator: noop
    needs: [transform]
"#;

#[test]
fn run_json_has_the_documented_shape_and_passes_values_downstream() {
    let project = Project::new();
    project.write("dags/pipeline.yaml", PIPELINE);
    let (exit, run) = project.json(&["run", "pipeline", "--json", "--param", "rows=5"]);
    assert_eq!(exit, 0, "{run:#}");
    assert_eq!(run["dag"], "pipeline");
    assert_eq!(run["status"], "succeeded");
    assert!(run["run_id"].as_str().is_some_and(|id| id.len() == 20));
    let extract = task(&run, "extract");
    assert_eq!(extract["status"], "succeeded");
    assert_eq!(extract["attempts"], 1);
    assert_eq!(extract["metrics"]["rows"], 5.0);
    assert!(extract["duration_ms"].is_i64());
    let sorted =
        std::fs::read_to_string(project.path().join("data/sorted.txt")).expect("transform wrote");
    assert_eq!(sorted, "5\n4\n3\n2\n1\n");
    assert_eq!(task(&run, "transform")["outputs"][0]["size"], 10);

    let (_, shown) = project.json(&[
        "runs",
        "show",
        run["run_id"].as_str().expect("id"),
        "--json",
    ]);
    assert_eq!(shown["tasks"].as_array().map(Vec::len), Some(3));
    assert_eq!(shown["params"]["rows"], 5);
    let (_, listed) = project.json(&["runs", "--json"]);
    assert_eq!(listed[0]["run_id"], run["run_id"]);
    assert_eq!(listed[0]["status"], "succeeded");
}

#[test]
fn a_failed_task_exits_1_retries_and_applies_trigger_rules() {
    let project = Project::new();
    project.write(
        "dags/rules.yaml",
        "name: rules\ntasks:\n  flaky:\n    operator: noop\n    params: { fail: true }\n    retries: 2\n    retry_delay: 10ms\n  after:\n    operator: noop\n    needs: [flaky]\n  cleanup:\n    operator: noop\n    needs: [flaky]\n    trigger_rule: all_done\n  alert:\n    operator: noop\n    needs: [flaky]\n    trigger_rule: one_failed\n  celebrate:\n    operator: noop\n    needs: [flaky]\n    trigger_rule: none_failed\n",
    );
    let (exit, run) = project.json(&["run", "rules", "--json"]);
    assert_eq!(exit, 1);
    assert_eq!(run["status"], "failed");
    assert_eq!(task(&run, "flaky")["status"], "failed");
    assert_eq!(task(&run, "flaky")["attempts"], 3);
    assert_eq!(task(&run, "after")["status"], "upstream_failed");
    assert_eq!(task(&run, "after")["reason"], "upstream `flaky` failed");
    assert_eq!(task(&run, "cleanup")["status"], "succeeded");
    assert_eq!(task(&run, "alert")["status"], "succeeded");
    assert_eq!(task(&run, "celebrate")["status"], "upstream_failed");
}

#[test]
fn a_timeout_kills_the_task_and_is_recorded() {
    let project = Project::new();
    project.write(
        "dags/slow.yaml",
        "name: slow\ntasks:\n  sleeper:\n    operator: shell\n    params: { command: \"sleep 30\" }\n    timeout: 300ms\n",
    );
    let started = Instant::now();
    let (exit, run) = project.json(&["run", "slow", "--json"]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the timeout did not stop the task"
    );
    assert_eq!(exit, 1);
    assert_eq!(task(&run, "sleeper")["reason"], "timed out after 300ms");
}

#[test]
fn when_false_and_short_circuit_skip_with_reasons() {
    let project = Project::new();
    project.write(
        "dags/gated.yaml",
        r#"name: gated
params:
  deploy: false
tasks:
  gate:
    operator: shell
    params: { command: "printf '{\"short_circuit\":\"accuracy 0.5 < 0.9\"}' > $DAG_OUTCOME" }
  deploy:
    operator: noop
    needs: [gate]
  notify:
    operator: noop
    needs: [deploy]
    trigger_rule: all_done
  optional:
    operator: noop
    when: params.deploy
"#,
    );
    let (exit, run) = project.json(&["run", "gated", "--json"]);
    assert_eq!(exit, 0, "{run:#}");
    assert_eq!(task(&run, "gate")["status"], "succeeded");
    assert_eq!(task(&run, "deploy")["status"], "skipped");
    assert_eq!(task(&run, "deploy")["reason"], "accuracy 0.5 < 0.9");
    assert_eq!(task(&run, "notify")["status"], "skipped");
    assert_eq!(
        task(&run, "optional")["reason"],
        "`when: params.deploy` is false"
    );
    let (_, run) = project.json(&[
        "run",
        "gated",
        "--json",
        "--param",
        "deploy=true",
        "--only",
        "optional",
    ]);
    assert_eq!(run["tasks"].as_array().map(Vec::len), Some(1));
    assert_eq!(task(&run, "optional")["status"], "succeeded");
}

#[test]
fn bad_params_and_unknown_dags_exit_2_with_a_hint() {
    let project = Project::new();
    project.write("dags/pipeline.yaml", PIPELINE);
    let output = project.dag(&["run", "pipeline", "--param", "row=3"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("unknown param `row` (did you mean `rows`?)")
    );
    let output = project.dag(&["run", "pipelin"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("did you mean `pipeline`?"));
    let output = project.dag(&["runs", "show", "nope"]);
    assert_eq!(output.status.code(), Some(2));
    // `--limit 0` would list nothing and say there are no runs.
    let output = project.dag(&["runs", "--limit", "0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("must be 1 or more"));
}

#[test]
fn logs_show_each_attempt() {
    let project = Project::new();
    project.write(
        "dags/talk.yaml",
        "name: talk\ntasks:\n  say:\n    operator: shell\n    params: { command: \"echo attempt $DAG_ATTEMPT; test $DAG_ATTEMPT -ge 2\" }\n    retries: 1\n    retry_delay: 10ms\n",
    );
    let (exit, run) = project.json(&["run", "talk", "--json"]);
    assert_eq!(exit, 0);
    let id = run["run_id"].as_str().expect("id");
    let first = project.dag(&["logs", id, "say", "--attempt", "1"]);
    assert!(String::from_utf8_lossy(&first.stdout).contains("attempt 1"));
    let last = project.dag(&["logs", id, "say"]);
    assert!(String::from_utf8_lossy(&last.stdout).contains("attempt 2"));
}

#[test]
fn a_closed_stdout_ends_quietly_instead_of_panicking() {
    let project = Project::new();
    project.write("dags/pipeline.yaml", PIPELINE);
    project.dag(&["run", "pipeline"]);
    let mut child = project
        .command(&["runs"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn dag runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("dag exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101), "{stderr}");
}
