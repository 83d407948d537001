//! `dag lineage`: from a model or a file back to raw inputs, and forward.

use super::serve_support::copy_dir;
use super::support::{Project, repo_root};

fn nodes<'a>(graph: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    graph["nodes"]
        .as_array()
        .map(|nodes| nodes.iter().filter(|n| n["kind"] == kind).collect())
        .unwrap_or_default()
}

fn task_ids(graph: &serde_json::Value) -> Vec<String> {
    let mut ids: Vec<String> = nodes(graph, "task")
        .iter()
        .filter_map(|n| n["task_id"].as_str().map(String::from))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// One lifecycle run, shared by every assertion: it takes seconds.
#[test]
fn obesity_lineage_reaches_the_raw_csv_and_back() {
    let project = Project::new();
    copy_dir(&repo_root().join("dags"), &project.path().join("dags"));
    let raw = "data/raw/ObesityDataSet.csv";
    let raw_path = project.path().join(raw);
    std::fs::create_dir_all(raw_path.parent().expect("parent")).expect("create data/raw");
    std::fs::copy(repo_root().join(raw), &raw_path).expect("copy the dataset");
    let raw_digest = blake3::hash(&std::fs::read(&raw_path).expect("read csv"))
        .to_hex()
        .to_string();
    let (exit, run) = project.json(&["run", "obesity", "--json"]);
    assert_eq!(exit, 0, "{run:#}");
    let run_id = run["run_id"].as_str().expect("run id").to_string();

    let (exit, graph) = project.json(&["lineage", "obesity@production", "--json"]);
    assert_eq!(exit, 0, "{graph:#}");
    assert_eq!(graph["nodes"][0]["kind"], "model");
    let raw_nodes: Vec<_> = nodes(&graph, "artifact")
        .into_iter()
        .filter(|n| n["digest"] == raw_digest.as_str())
        .collect();
    assert_eq!(raw_nodes.len(), 1, "{graph:#}");
    assert_eq!(raw_nodes[0]["path"], raw);
    // The raw CSV is a leaf: nothing produced it.
    let raw_id = raw_nodes[0]["id"].clone();
    let edges = graph["edges"].as_array().expect("edges");
    assert!(!edges.iter().any(|e| e["to"] == raw_id), "{graph:#}");
    assert!(edges.iter().any(|e| e["relation"] == "registered"));
    let upstream_tasks = task_ids(&graph);
    for expected in ["clean", "split", "train_forest"] {
        assert!(
            upstream_tasks.iter().any(|t| t == expected),
            "`{expected}` missing from {upstream_tasks:?}"
        );
    }

    let (exit, from_task) = project.json(&["lineage", &format!("{run_id}:train_forest"), "--json"]);
    assert_eq!(exit, 0, "{from_task:#}");
    assert!(
        nodes(&from_task, "artifact")
            .iter()
            .any(|n| n["digest"] == raw_digest.as_str())
    );

    let (exit, forward) = project.json(&["lineage", raw, "--downstream", "--json"]);
    assert_eq!(exit, 0, "{forward:#}");
    let forward_tasks = task_ids(&forward);
    assert!(
        forward_tasks.iter().any(|t| t == "clean"),
        "{forward_tasks:?}"
    );
    assert!(
        forward_tasks.iter().any(|t| t == "train_forest"),
        "{forward_tasks:?}"
    );
    assert!(!nodes(&forward, "model").is_empty(), "{forward:#}");

    let output = project.dag(&["lineage", "obesity@production"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("model obesity@"), "{text}");
    assert!(
        text.contains(&format!("from {raw} {}", &raw_digest[..12])),
        "{text}"
    );

    let output = project.dag(&["lineage", "obesity@production", "--format", "mermaid"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("flowchart LR\n"), "{text}");
    assert!(text.contains("-->|registered|"), "{text}");
}

#[test]
fn an_unknown_target_is_invalid_input_with_what_to_do() {
    let project = Project::new();
    let output = project.dag(&["lineage", "data/nothing.csv"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`data/nothing.csv` is not an artifact"),
        "{stderr}"
    );
}

/// Every run re-reads the same file; a downstream walk follows only the
/// newest runs and counts the rest, so its output stops growing.
#[test]
fn downstream_lineage_follows_the_newest_runs_and_counts_the_rest() {
    let project = Project::new();
    project.write("data/source.csv", "x\n1\n2\n");
    project.write(
        "dags/reread.yaml",
        "name: reread\ntasks:\n  copy:\n    operator: shell\n    cache: false\n    inputs: { source: data/source.csv }\n    outputs: { copy: out/copy.csv }\n    params: { command: 'mkdir -p out && cp data/source.csv out/copy.csv' }\n",
    );
    let mut runs = Vec::new();
    for _ in 0..4 {
        let (code, run) = project.json(&["run", "reread", "--json"]);
        assert_eq!(code, 0, "{run:#}");
        runs.push(run["run_id"].as_str().expect("run id").to_string());
    }
    let run_ids = |graph: &serde_json::Value| -> Vec<String> {
        let mut ids: Vec<String> = nodes(graph, "task")
            .iter()
            .filter_map(|n| n["run_id"].as_str().map(String::from))
            .collect();
        ids.sort();
        ids
    };
    let (code, limited) = project.json(&[
        "lineage",
        "data/source.csv",
        "--downstream",
        "--runs",
        "2",
        "--json",
    ]);
    assert_eq!(code, 0, "{limited:#}");
    let mut newest = runs[2..].to_vec();
    newest.sort();
    assert_eq!(run_ids(&limited), newest, "the two newest runs");
    assert_eq!(limited["omitted_runs"], 2, "{limited:#}");

    let (_, every) = project.json(&[
        "lineage",
        "data/source.csv",
        "--downstream",
        "--runs",
        "all",
        "--json",
    ]);
    let mut all = runs.clone();
    all.sort();
    assert_eq!(run_ids(&every), all);
    assert!(every.get("omitted_runs").is_none(), "{every:#}");

    let text = project.dag(&["lineage", "data/source.csv", "--downstream", "--runs", "1"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("(3 earlier runs that read these artifacts not shown"),
        "{text}"
    );
    let zero = project.dag(&["lineage", "data/source.csv", "--downstream", "--runs", "0"]);
    assert_eq!(zero.status.code(), Some(2), "{zero:?}");
}
