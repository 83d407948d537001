//! `dag run --resume`: only what did not finish runs again; `dag runs diff`
//! between two runs.

use super::support::{Project, task};

const DAG: &str = r#"
name: chain
params:
  word: hello
tasks:
  first:
    operator: shell
    params: { command: "echo {{ params.word }} >> data/first.log; echo {{ params.word }} > data/first.txt" }
    outputs: { out: data/first.txt }
  middle:
    operator: shell
    inputs: { text: data/first.txt }
    params: { command: "test -f data/marker && cat data/first.txt > data/middle.txt" }
    outputs: { out: data/middle.txt }
  last:
    operator: shell
    inputs: { text: data/middle.txt }
    params: { command: "cat data/middle.txt > data/last.txt" }
    outputs: { out: data/last.txt }
"#;

#[test]
fn resume_reruns_only_what_failed_and_reuses_the_rest() {
    let project = Project::new();
    project.write("dags/chain.yaml", DAG);
    let (exit, failed) = project.json(&["run", "chain", "--param", "word=bonjour", "--json"]);
    assert_eq!(exit, 1, "{failed:#}");
    assert_eq!(task(&failed, "middle")["status"], "failed");
    assert_eq!(task(&failed, "last")["status"], "upstream_failed");
    let failed_id = failed["run_id"].as_str().unwrap_or("?").to_string();

    project.write("data/marker", "");
    let (exit, resumed) = project.json(&["run", "chain", "--resume", &failed_id, "--json"]);
    assert_eq!(exit, 0, "{resumed:#}");
    assert_eq!(resumed["trigger"]["kind"], "resume");
    assert_eq!(resumed["params"]["word"], "bonjour");
    assert_eq!(task(&resumed, "first")["status"], "up_to_date");
    assert_eq!(task(&resumed, "first")["attempts"], 0);
    assert_eq!(task(&resumed, "middle")["status"], "succeeded");
    assert_eq!(task(&resumed, "last")["status"], "succeeded");
    // `first` ran once, in the first run, with the first run's params.
    let log = std::fs::read_to_string(project.path().join("data/first.log")).unwrap_or_default();
    assert_eq!(log, "bonjour\n");
    let last = std::fs::read_to_string(project.path().join("data/last.txt")).unwrap_or_default();
    assert_eq!(last, "bonjour\n");

    let output = project.dag(&["runs", "show", resumed["run_id"].as_str().unwrap_or("?")]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!("finished in run {failed_id} (resumed)")),
        "{text}"
    );
    assert!(
        text.contains(&format!("resumed   from run {failed_id}\n")),
        "{text}"
    );
    let (_, shown) = project.json(&[
        "runs",
        "show",
        resumed["run_id"].as_str().unwrap_or("?"),
        "--json",
    ]);
    assert_eq!(shown["resumed_from"], failed_id.as_str());
    assert!(failed.get("resumed_from").is_none(), "{failed:#}");
}

/// The chain's first run: `middle` fails (no marker yet), `last` never runs.
fn failed_chain(project: &Project, dag: &str) -> String {
    project.write("dags/chain.yaml", dag);
    let (exit, failed) = project.json(&["run", "chain", "--json"]);
    assert_eq!(exit, 1, "{failed:#}");
    assert_eq!(task(&failed, "first")["status"], "succeeded");
    failed["run_id"].as_str().expect("run id").to_string()
}

#[test]
fn resume_after_an_edit_carries_over_the_unchanged_finished_tasks() {
    let project = Project::new();
    let failed_id = failed_chain(&project, DAG);
    // Fix `middle` and describe `first`: a description is not what a task
    // computes, so `first` still stands.
    let edited = DAG
        .replace("test -f data/marker && cat", "cat")
        .replace("  first:\n", "  first:\n    description: writes the word\n");
    project.write("dags/chain.yaml", &edited);
    let output = project
        .command(&["run", "chain", "--resume", &failed_id, "--json"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let resumed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(
        task(&resumed, "first")["status"],
        "up_to_date",
        "{resumed:#}"
    );
    assert_eq!(task(&resumed, "first")["attempts"], 0);
    assert_eq!(task(&resumed, "middle")["status"], "succeeded");
    assert_eq!(task(&resumed, "last")["status"], "succeeded");
    let log = std::fs::read_to_string(project.path().join("data/first.log")).expect("log");
    assert_eq!(log, "hello\n", "`first` ran once");
}

#[test]
fn resume_after_an_edit_reruns_a_changed_task_and_what_depends_on_it() {
    let project = Project::new();
    let failed_id = failed_chain(&project, DAG);
    project.write("data/marker", "");
    let edited = DAG.replace(
        "echo {{ params.word }} > data/first.txt",
        "echo {{ params.word }}! > data/first.txt",
    );
    project.write("dags/chain.yaml", &edited);
    let output = project
        .command(&["run", "chain", "--resume", &failed_id, "--json"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "`chain` changed since run {failed_id}: `first` changed or went away"
        )),
        "{stderr}"
    );
    let resumed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(
        task(&resumed, "first")["status"],
        "succeeded",
        "{resumed:#}"
    );
    assert_eq!(task(&resumed, "first")["attempts"], 1);
    let log = std::fs::read_to_string(project.path().join("data/first.log")).expect("log");
    assert_eq!(log, "hello\nhello\n", "`first` ran again");
    let last = std::fs::read_to_string(project.path().join("data/last.txt")).expect("last");
    assert_eq!(last, "hello!\n");
}

#[test]
fn resuming_another_dags_run_hints_at_the_file_it_came_from() {
    let project = Project::new();
    project.write("pipelines/chain.yaml", DAG);
    let (_, failed) = project.json(&["run", "pipelines/chain.yaml", "--json"]);
    let failed_id = failed["run_id"].as_str().expect("run id").to_string();
    project.write(
        "dags/other.yaml",
        "name: other\ntasks:\n  a: { operator: noop }\n",
    );
    let output = project.dag(&["run", "other", "--resume", &failed_id]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "dag run pipelines/chain.yaml --resume {failed_id}"
        )),
        "{stderr}"
    );
    // The hint works.
    project.write("data/marker", "");
    let hinted = project.dag(&["run", "pipelines/chain.yaml", "--resume", &failed_id]);
    assert_eq!(hinted.status.code(), Some(0), "{hinted:?}");
}

#[test]
fn resume_of_an_unknown_run_is_invalid_input() {
    let project = Project::new();
    project.write("dags/chain.yaml", DAG);
    let output = project.dag(&["run", "chain", "--resume", "nope"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no run `nope`"));
}

const SCORED: &str = r#"
name: scored
params:
  n: 3
tasks:
  make:
    operator: shell
    params: { command: "seq {{ params.n }} > data/nums.txt" }
    outputs: { nums: data/nums.txt }
  score:
    operator: shell
    inputs: { nums: data/nums.txt }
    params: { command: "printf '{\"metrics\": {\"lines\": %s}}' $(wc -l < data/nums.txt) > \"$DAG_OUTCOME\"" }
"#;

#[test]
fn runs_diff_names_params_inputs_and_metric_deltas() {
    let project = Project::new();
    project.write("dags/scored.yaml", SCORED);
    let (_, a) = project.json(&["run", "scored", "--json"]);
    let (_, b) = project.json(&["run", "scored", "--param", "n=5", "--json"]);
    assert_eq!(task(&b, "score")["metrics"]["lines"], 5.0, "{b:#}");
    let ids = [
        a["run_id"].as_str().unwrap_or("?"),
        b["run_id"].as_str().unwrap_or("?"),
    ];
    let (exit, diff) = project.json(&["runs", "diff", ids[0], ids[1], "--json"]);
    assert_eq!(exit, 0, "{diff:#}");
    assert_eq!(diff["spec_changed"], false);
    assert_eq!(diff["params"][0]["name"], "n");
    assert_eq!(
        (
            diff["params"][0]["a"].clone(),
            diff["params"][0]["b"].clone()
        ),
        (3.into(), 5.into())
    );
    let score = task(&diff, "score");
    assert_eq!(score["inputs"][0]["name"], "nums");
    assert_ne!(score["inputs"][0]["a"], score["inputs"][0]["b"]);
    assert_eq!(score["metrics"][0]["name"], "lines");
    assert_eq!(score["metrics"][0]["delta"], 2.0);

    let output = project.dag(&["runs", "diff", ids[0], ids[1]]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("param `n`: 3 → 5\n"), "{text}");
    assert!(
        text.contains("  metric `lines` 3.0000 → 5.0000 (+2.0000)\n"),
        "{text}"
    );
}
