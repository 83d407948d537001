//! The run cache: outputs that were overwritten or deleted come back from
//! `.dag/cache` instead of being recomputed; corrupt entries are caught by
//! their digest; `dag gc` removes what old runs alone referenced.

use std::path::PathBuf;

use super::support::{Project, task};

/// `upper` appends to `ran.log` (outside its outputs) each time it really
/// runs, so a restore can be told apart from a rerun.
const DAG: &str = r#"
name: cached
tasks:
  upper:
    operator: shell
    inputs: { text: data/in.txt }
    params: { command: "tr a-z A-Z < data/in.txt > data/out/upper.txt; echo ran >> ran.log" }
    outputs: { upper: data/out/upper.txt }
"#;

fn project(input: &str) -> Project {
    let project = Project::new();
    project.write("dags/cached.yaml", DAG);
    project.write("data/in.txt", input);
    project
}

fn run(project: &Project) -> serde_json::Value {
    let (exit, run) = project.json(&["run", "cached", "--json"]);
    assert_eq!(exit, 0, "{run:#}");
    run
}

fn read(project: &Project, relative: &str) -> String {
    std::fs::read_to_string(project.path().join(relative)).unwrap_or_default()
}

/// How many times `upper` has really run.
fn executions(project: &Project) -> usize {
    read(project, "ran.log").lines().count()
}

/// The run-cache entries (not temporary files), sorted.
fn cache_entries(project: &Project) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(project.path().join(".dag/cache"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .flat_map(|shard| std::fs::read_dir(shard.path()).into_iter().flatten())
        .filter_map(Result::ok)
        .filter(|file| !file.file_name().to_string_lossy().starts_with('.'))
        .map(|file| file.path())
        .collect();
    entries.sort();
    entries
}

fn reason(run: &serde_json::Value) -> String {
    task(run, "upper")["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn putting_an_earlier_input_back_restores_its_outputs_without_running() {
    let project = project("alpha\n");
    let first = run(&project);
    assert_eq!(read(&project, "data/out/upper.txt"), "ALPHA\n");
    project.write("data/in.txt", "beta\n");
    run(&project);
    assert_eq!(read(&project, "data/out/upper.txt"), "BETA\n");
    assert_eq!(executions(&project), 2);

    project.write("data/in.txt", "alpha\n");
    let (_, plan) = project.json(&["run", "cached", "--dry-run", "--json"]);
    let first_id = first["run_id"].as_str().unwrap_or("?");
    assert_eq!(
        task(&plan, "upper")["reasons"][0],
        format!("restore from cache (result of run {first_id})")
    );
    let again = run(&project);
    assert_eq!(task(&again, "upper")["status"], "up_to_date");
    assert_eq!(task(&again, "upper")["attempts"], 0);
    assert_eq!(
        reason(&again),
        format!("restored 1 output from the run cache (result of run {first_id})")
    );
    assert_eq!(executions(&project), 2, "the operator ran again");
    assert_eq!(read(&project, "data/out/upper.txt"), "ALPHA\n");
    assert_eq!(
        task(&again, "upper")["outputs"][0]["digest"],
        task(&first, "upper")["outputs"][0]["digest"]
    );
}

#[test]
fn a_deleted_output_is_restored_from_the_cache_not_rerun() {
    let project = project("gamma\n");
    run(&project);
    std::fs::remove_dir_all(project.path().join("data/out")).expect("delete the outputs");
    let again = run(&project);
    assert_eq!(task(&again, "upper")["status"], "up_to_date");
    assert!(reason(&again).starts_with("restored 1 output from the run cache"));
    assert_eq!(executions(&project), 1);
    assert_eq!(read(&project, "data/out/upper.txt"), "GAMMA\n");

    let output = project.dag(&["runs", "show", again["run_id"].as_str().unwrap_or("?")]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("restored 1 output from the run cache"),
        "{text}"
    );
}

#[test]
fn a_corrupt_cache_entry_is_caught_by_its_digest_and_the_task_reruns() {
    let project = project("delta\n");
    run(&project);
    let entries = cache_entries(&project);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    let mut permissions = std::fs::metadata(entry).expect("entry").permissions();
    #[expect(clippy::permissions_set_readonly_false, reason = "simulating damage")]
    permissions.set_readonly(false);
    std::fs::set_permissions(entry, permissions).expect("make the entry writable");
    std::fs::write(entry, "DELTA\u{0}\n").expect("corrupt the entry");
    std::fs::remove_file(project.path().join("data/out/upper.txt")).expect("delete the output");

    let output = project.dag(&["run", "cached", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let again: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(task(&again, "upper")["status"], "succeeded");
    assert_eq!(executions(&project), 2);
    assert_eq!(read(&project, "data/out/upper.txt"), "DELTA\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WARN") && stderr.contains("is corrupt"),
        "{stderr}"
    );
    // The rerun put a good copy back.
    assert_eq!(
        std::fs::read_to_string(entry).unwrap_or_default(),
        "DELTA\n"
    );
}

#[test]
fn gc_removes_entries_only_old_runs_reference_and_dry_run_removes_nothing() {
    let project = project("one\n");
    run(&project);
    for input in ["two\n", "three\n"] {
        project.write("data/in.txt", input);
        run(&project);
    }
    assert_eq!(cache_entries(&project).len(), 3);

    let (exit, dry) = project.json(&["gc", "--keep-runs", "2", "--dry-run", "--json"]);
    assert_eq!(exit, 0, "{dry:#}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["removed"].as_array().map(Vec::len), Some(1), "{dry:#}");
    assert_eq!(dry["freed_bytes"], 4);
    assert_eq!(dry["kept"], 2);
    assert_eq!(
        cache_entries(&project).len(),
        3,
        "--dry-run removed an entry"
    );

    let output = project.dag(&["gc", "--keep-runs", "2"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("removed 1 run-cache entry, freed 4 B; kept 2 (10 B)"),
        "{text}"
    );
    assert_eq!(cache_entries(&project).len(), 2);

    // "TWO\n" is still cached, "ONE\n" is not: one comes back, one reruns.
    std::fs::remove_file(project.path().join("data/out/upper.txt")).expect("delete the output");
    project.write("data/in.txt", "two\n");
    let restored = run(&project);
    assert_eq!(task(&restored, "upper")["status"], "up_to_date");
    assert_eq!(executions(&project), 3);
    project.write("data/in.txt", "one\n");
    let rerun = run(&project);
    assert_eq!(task(&rerun, "upper")["status"], "succeeded");
    assert_eq!(executions(&project), 4);
}

#[test]
fn uncached_tasks_leave_nothing_in_the_run_cache() {
    let project = Project::new();
    project.write(
        "dags/plain.yaml",
        r#"
name: plain
tasks:
  fresh:
    operator: shell
    cache: false
    params: { command: "echo fresh > fresh.txt" }
    outputs: { out: fresh.txt }
"#,
    );
    let (exit, first) = project.json(&["run", "plain", "--json"]);
    assert_eq!(exit, 0, "{first:#}");
    assert!(cache_entries(&project).is_empty());
}
