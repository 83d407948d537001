//! Documented commands and flags no other test runs: `dag graph` in both
//! formats, `--log-format json`, and exit code 3 while another process holds
//! the store, `latest` / `latest~N` in place of a run id.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::support::Project;

const DIAMOND: &str = r#"
name: diamond
tasks:
  fetch:
    operator: shell
    params: { command: "echo 1 > data/raw.txt" }
    outputs: { raw: data/raw.txt }
  clean:
    operator: shell
    inputs: { raw: data/raw.txt }
    params: { command: "cp data/raw.txt data/clean.txt" }
    outputs: { clean: data/clean.txt }
  report:
    operator: noop
    needs: [clean, fetch]
"#;

fn stdout_of(project: &Project, args: &[&str]) -> String {
    let output = project.dag(args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "dag {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn graph_prints_mermaid_and_dot_with_artifact_names_on_edges() {
    let project = Project::new();
    project.write("dags/diamond.yaml", DIAMOND);
    let mermaid = stdout_of(&project, &["graph", "diamond", "--format", "mermaid"]);
    assert_eq!(
        mermaid,
        "flowchart LR\n\
         \x20 fetch[\"fetch<br/><small>shell</small>\"]\n\
         \x20 clean[\"clean<br/><small>shell</small>\"]\n\
         \x20 report[\"report<br/><small>noop</small>\"]\n\
         \x20 clean --> report\n\
         \x20 fetch -->|raw| clean\n\
         \x20 fetch --> report\n"
    );
    let dot = stdout_of(&project, &["graph", "diamond", "--format", "dot"]);
    assert_eq!(
        dot,
        "digraph \"diamond\" {\n\
         \x20 rankdir=LR;\n\
         \x20 node [shape=box];\n\
         \x20 \"fetch\" [label=\"fetch\\nshell\"];\n\
         \x20 \"clean\" [label=\"clean\\nshell\"];\n\
         \x20 \"report\" [label=\"report\\nnoop\"];\n\
         \x20 \"clean\" -> \"report\";\n\
         \x20 \"fetch\" -> \"clean\" [label=\"raw\"];\n\
         \x20 \"fetch\" -> \"report\";\n\
         }\n"
    );
}

#[test]
fn log_format_json_writes_one_json_object_per_engine_log_line() {
    let project = Project::new();
    project.write("dags/diamond.yaml", DIAMOND);
    let output = project.dag(&["run", "diamond", "-v", "--log-format", "json"]);
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.iter().any(|l| l.contains("run finished")),
        "`-v` did not log the run's end: {stderr}"
    );
    for line in lines {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(value["level"].is_string(), "{line}");
        assert!(value["timestamp"].is_string(), "{line}");
    }
    // The default text format is not JSON.
    let text = project.dag(&["run", "diamond", "-v"]);
    let stderr = String::from_utf8_lossy(&text.stderr);
    let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_err(),
        "{first}"
    );
}

#[test]
fn a_store_held_by_a_running_dag_run_makes_other_commands_exit_3() {
    let project = Project::new();
    project.write(
        "dags/slow.yaml",
        "name: slow\ntasks:\n  wait:\n    operator: shell\n    params: { command: \"touch started; sleep 30\" }\n",
    );
    let mut holder = project
        .command(&["run", "slow"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dag run");
    // The task runs, so the run holds the store.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !project.path().join("started").exists() {
        assert!(Instant::now() < deadline, "the task never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = project.dag(&["runs"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("in use by another process") && stderr.contains("dag daemon"),
        "{stderr}"
    );
}

#[test]
fn latest_and_latest_tilde_n_name_runs_wherever_a_run_id_is_taken() {
    let project = Project::new();
    project.write(
        "dags/flaky.yaml",
        "name: flaky\ntasks:\n  a:\n    operator: shell\n    params: { command: \"echo attempt-output; test -f ok\" }\n",
    );
    let ids: Vec<String> = (0..3)
        .map(|_| {
            let (exit, run) = project.json(&["run", "flaky", "--json"]);
            assert_eq!(exit, 1);
            run["run_id"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    let shown_id = |reference: &str| {
        let (exit, run) = project.json(&["runs", "show", reference, "--json"]);
        assert_eq!(exit, 0, "{reference}");
        run["run_id"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(shown_id("latest"), ids[2]);
    assert_eq!(shown_id("latest~1"), ids[1]);
    assert_eq!(shown_id("latest~2"), ids[0]);
    let too_far = project.dag(&["runs", "show", "latest~3"]);
    assert_eq!(too_far.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&too_far.stderr).contains("further than the 3 runs"),
        "{}",
        String::from_utf8_lossy(&too_far.stderr)
    );
    assert!(stdout_of(&project, &["logs", "latest", "a"]).contains("attempt-output"));
    let diff = stdout_of(&project, &["runs", "diff", "latest~1", "latest"]);
    assert!(
        diff.starts_with(&format!("{} → {}", ids[1], ids[2])),
        "{diff}"
    );

    project.write("ok", "");
    let (exit, resumed) = project.json(&["run", "flaky", "--resume", "latest", "--json"]);
    assert_eq!(exit, 0, "{resumed:#}");
    assert_eq!(
        resumed["resumed_from"],
        serde_json::Value::from(ids[2].clone())
    );
}
