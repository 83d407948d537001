//! Skip-if-unchanged: exactly the affected tasks rerun.

use super::support::{Project, task};

const DAG: &str = r#"
name: inc
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
"#;

fn statuses(run: &serde_json::Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = run["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap_or("").to_string(),
                t["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

const ALL_TASKS: [&str; 5] = ["double", "join", "make", "side_effect", "words"];

/// Every task of the DAG is in the run, those in `ran` succeeded and the
/// rest are up to date: a missing task fails, as does an extra one.
fn expect(run: &serde_json::Value, ran: &[&str]) {
    let found = statuses(run);
    let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ALL_TASKS, "tasks of the run: {:#}", run["tasks"]);
    for (id, status) in &found {
        let wanted = if ran.contains(&id.as_str()) {
            "succeeded"
        } else {
            "up_to_date"
        };
        assert_eq!(status, wanted, "task `{id}` in {:#}", run["tasks"]);
    }
}

/// `dag run inc --json ARGS`, which must succeed.
fn run_ok(project: &Project, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", "inc", "--json"];
    args.extend_from_slice(extra);
    let (exit, run) = project.json(&args);
    assert_eq!(exit, 0, "dag {args:?} failed: {run:#}");
    assert_eq!(run["status"], "succeeded", "{run:#}");
    run
}

fn file(project: &Project, path: &str) -> String {
    std::fs::read_to_string(project.path().join(path))
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
}

#[test]
fn a_second_run_reuses_everything_cacheable() {
    let project = Project::new();
    project.write("dags/inc.yaml", DAG);
    project.write("data/words.txt", "a b c\n");
    let first = run_ok(&project, &[]);
    expect(&first, &["make", "double", "words", "join", "side_effect"]);
    let second = run_ok(&project, &[]);
    // A shell task without declared outputs has effects nobody can see: it always runs.
    expect(&second, &["side_effect"]);
    assert!(
        task(&second, "make")["reason"]
            .as_str()
            .is_some_and(|r| r.contains(first["run_id"].as_str().unwrap_or("?")))
    );
}

#[test]
fn editing_one_input_reruns_only_what_depends_on_it() {
    let project = Project::new();
    project.write("dags/inc.yaml", DAG);
    project.write("data/words.txt", "a b c\n");
    run_ok(&project, &[]);
    project.write("data/words.txt", "a b c d\n");
    let run = run_ok(&project, &[]);
    expect(&run, &["words", "join", "side_effect"]);
    assert_eq!(file(&project, "data/count.txt").trim(), "4");
}

#[test]
fn changing_a_param_reruns_its_task_and_everything_downstream() {
    let project = Project::new();
    project.write("dags/inc.yaml", DAG);
    project.write("data/words.txt", "a b c\n");
    run_ok(&project, &[]);
    assert_eq!(file(&project, "data/double.txt"), "2\n4\n6\n");
    let run = run_ok(&project, &["--param", "n=5"]);
    expect(&run, &["make", "double", "join", "side_effect"]);
    assert_eq!(run["params"]["n"], 5);
    // The rerun tasks wrote from the new param: five numbers, doubled.
    assert_eq!(file(&project, "data/nums.txt"), "1\n2\n3\n4\n5\n");
    assert_eq!(file(&project, "data/double.txt"), "2\n4\n6\n8\n10\n");
    // Back to the default: the earlier results stand again, restored.
    let back = run_ok(&project, &[]);
    expect(&back, &["side_effect"]);
    assert_eq!(file(&project, "data/double.txt"), "2\n4\n6\n");
}

#[test]
fn a_damaged_output_is_restored_else_rerun_and_force_makes_tasks_run_again() {
    let project = Project::new();
    project.write("dags/inc.yaml", DAG);
    project.write("data/words.txt", "a b c\n");
    run_ok(&project, &[]);
    project.write("data/double.txt", "tampered\n");
    let run = run_ok(&project, &[]);
    expect(&run, &["side_effect"]);
    assert!(
        task(&run, "double")["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("restored 1 output from the run cache")),
        "{run:#}"
    );
    assert_eq!(file(&project, "data/double.txt"), "2\n4\n6\n");
    // Without the run cache, the damaged output's task runs again.
    std::fs::remove_dir_all(project.path().join(".dag/cache")).expect("remove the run cache");
    project.write("data/double.txt", "tampered\n");
    let run = run_ok(&project, &[]);
    expect(&run, &["double", "side_effect"]);
    let run = run_ok(&project, &["--force-task", "make"]);
    // `make` writes the same bytes, so what depends on it stays up to date.
    expect(&run, &["make", "side_effect"]);
    let run = run_ok(&project, &["--force"]);
    expect(&run, &["make", "double", "words", "join", "side_effect"]);
}
