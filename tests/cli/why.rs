//! `dag plan --why` and `dag run --dry-run`: predictions with reasons, and
//! nothing runs.

use super::support::{Project, task};

const DAG: &str = r#"
name: why
params:
  n: 3
tasks:
  make:
    operator: shell
    params: { command: "seq {{ params.n }} > data/nums.txt" }
    outputs: { nums: data/nums.txt }
  double:
    operator: shell
    inputs: { nums: data/nums.txt }
    params: { command: "awk '{print $1*2}' data/nums.txt > data/double.txt" }
    outputs: { out: data/double.txt }
  words:
    operator: shell
    inputs: { text: data/words.txt }
    params: { command: "wc -w < data/words.txt > data/count.txt" }
    outputs: { out: data/count.txt }
  join:
    operator: noop
    needs: [double, words]
  side_effect:
    operator: shell
    params: { command: "true" }
  quiet:
    operator: shell
    cache: false
    params: { command: "echo q > data/quiet.txt" }
    outputs: { out: data/quiet.txt }
"#;

fn project() -> Project {
    let project = Project::new();
    project.write("dags/why.yaml", DAG);
    project.write("data/words.txt", "a b c\n");
    project
}

fn decision(plan: &serde_json::Value, id: &str) -> String {
    task(plan, id)["decision"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn reasons(plan: &serde_json::Value, id: &str) -> Vec<String> {
    task(plan, id)["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn running(plan: &serde_json::Value) -> Vec<String> {
    let mut ids: Vec<String> = plan["tasks"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .filter(|t| t["decision"] == "run")
                .filter_map(|t| t["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

#[test]
fn before_any_run_every_cacheable_task_has_no_previous_run() {
    let project = project();
    let (exit, plan) = project.json(&["plan", "why", "--why", "--json"]);
    assert_eq!(exit, 0, "{plan:#}");
    assert_eq!(plan["dag"], "why");
    assert_eq!(reasons(&plan, "make"), ["no previous run"]);
    assert_eq!(
        reasons(&plan, "double"),
        [
            "upstream `make` will run",
            "input `nums` is written by `make` and may change"
        ]
    );
    assert_eq!(
        reasons(&plan, "side_effect"),
        ["shell task without declared outputs always runs"]
    );
    assert_eq!(
        reasons(&plan, "quiet"),
        ["`cache: false`: the task always runs"]
    );
    assert!(
        !project.path().join("data/nums.txt").exists(),
        "--why ran a task"
    );
    assert!(
        !project.path().join(".dag/logs").exists(),
        "--why recorded a run"
    );
}

#[test]
fn editing_one_input_marks_exactly_the_affected_tasks() {
    let project = project();
    let (exit, first) = project.json(&["run", "why", "--json"]);
    assert_eq!(exit, 0, "{first:#}");
    let (_, unchanged) = project.json(&["run", "why", "--dry-run", "--json"]);
    assert_eq!(running(&unchanged), ["quiet", "side_effect"]);
    let first_id = first["run_id"].as_str().unwrap_or("?");
    assert_eq!(
        reasons(&unchanged, "make"),
        [format!("up to date (result of run {first_id})")]
    );

    project.write("data/words.txt", "a b c d\n");
    let (_, plan) = project.json(&["plan", "why", "--why", "--json"]);
    assert_eq!(running(&plan), ["join", "quiet", "side_effect", "words"]);
    let words = reasons(&plan, "words");
    assert_eq!(words.len(), 1, "{words:?}");
    assert!(
        words[0].starts_with("input `text` changed: ") && words[0].contains(" → "),
        "{words:?}"
    );
    assert_eq!(reasons(&plan, "join"), ["upstream `words` will run"]);
    assert_eq!(decision(&plan, "double"), "skip");

    // The prediction holds: a real run reruns the same tasks.
    let (_, run) = project.json(&["run", "why", "--json"]);
    for id in ["make", "double"] {
        assert_eq!(task(&run, id)["status"], "up_to_date", "{id}");
    }
    for id in ["words", "join"] {
        assert_eq!(task(&run, id)["status"], "succeeded", "{id}");
    }
}

#[test]
fn changing_a_param_names_it_with_old_and_new_values() {
    let project = project();
    project.json(&["run", "why", "--json"]);
    let (_, plan) = project.json(&["plan", "why", "--why", "--param", "n=5", "--json"]);
    assert_eq!(
        reasons(&plan, "make"),
        ["param `params.command` changed: \"seq 3 > data/nums.txt\" → \"seq 5 > data/nums.txt\""]
    );
    assert_eq!(decision(&plan, "double"), "run");
    assert_eq!(decision(&plan, "words"), "skip");
}

#[test]
fn forcing_a_task_says_so_and_keeps_its_downstream_predictable() {
    let project = project();
    project.json(&["run", "why", "--json"]);
    let (_, plan) = project.json(&["run", "why", "--dry-run", "--force-task", "make", "--json"]);
    assert_eq!(reasons(&plan, "make"), ["forced by `--force-task make`"]);
    assert_eq!(decision(&plan, "double"), "skip");
    let (_, plan) = project.json(&["plan", "why", "--why", "--force", "--json"]);
    assert_eq!(running(&plan).len(), 6);
    assert_eq!(reasons(&plan, "words"), ["forced by `--force`"]);
}

#[test]
fn a_damaged_output_is_named_and_restored_from_the_cache_when_it_can_be() {
    let project = project();
    let (_, first) = project.json(&["run", "why", "--json"]);
    let first_id = first["run_id"].as_str().unwrap_or("?");
    project.write("data/double.txt", "tampered\n");
    std::fs::remove_file(project.path().join("data/count.txt")).expect("remove an output");
    let (_, plan) = project.json(&["plan", "why", "--why", "--json"]);
    assert_eq!(decision(&plan, "double"), "skip");
    assert_eq!(
        reasons(&plan, "double"),
        [
            format!("restore from cache (result of run {first_id})"),
            format!("output `out` at `data/double.txt` changed since run {first_id}"),
        ]
    );
    assert_eq!(
        reasons(&plan, "words"),
        [
            format!("restore from cache (result of run {first_id})"),
            format!("output `out` at `data/count.txt` is missing since run {first_id}"),
        ]
    );
    assert_eq!(
        std::fs::read_to_string(project.path().join("data/double.txt")).unwrap_or_default(),
        "tampered\n",
        "--why restored an output"
    );

    std::fs::remove_dir_all(project.path().join(".dag/cache")).expect("remove the run cache");
    let (_, plan) = project.json(&["plan", "why", "--why", "--json"]);
    let double = reasons(&plan, "double");
    assert_eq!(double.len(), 1, "{double:?}");
    assert!(
        double[0].starts_with("output `out` at `data/double.txt` changed since run "),
        "{double:?}"
    );
}

#[test]
fn text_output_lists_each_task_with_its_decision() {
    let project = project();
    let output = project.dag(&["plan", "why", "--why"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("why: 6 to run, 0 to skip\n"), "{text}");
    assert!(
        text.contains("  run   make         no previous run\n"),
        "{text}"
    );
}
