//! Documented commands and flags no other test runs: `dag graph` in both
//! formats, `--log-format json`, and exit code 3 while another process holds
//! the store.

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
