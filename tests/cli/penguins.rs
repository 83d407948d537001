//! A second data set, one the project was not built around: the Palmer
//! penguins (CC0, `data/penguins/README.md`), with real missing values
//! written `NA`, through the whole lifecycle from a DAG written against the
//! operator reference only (`tests/fixtures/penguins/penguins.yaml`).

use crate::support::{Project, repo_root, task};

fn project() -> Project {
    let project = Project::new();
    let data = project.path().join("data/penguins");
    std::fs::create_dir_all(&data).expect("create data/penguins");
    std::fs::copy(
        repo_root().join("data/penguins/penguins.csv"),
        data.join("penguins.csv"),
    )
    .expect("copy the data set");
    let dag = std::fs::read_to_string(repo_root().join("tests/fixtures/penguins/penguins.yaml"))
        .expect("the penguins DAG");
    project.write("dags/penguins.yaml", &dag);
    project
}

#[test]
fn the_penguins_lifecycle_cleans_trains_gates_and_promotes_reproducibly() {
    let project = project();
    let (code, run) = project.json(&["run", "penguins", "--json"]);
    assert_eq!(code, 0, "{run:#}");

    // Every missing value is imputed, none dropped: 2 rows without
    // measurements, 11 without `sex`.
    let clean = task(&run, "clean");
    assert_eq!(clean["metrics"]["rows_in"], 344.0);
    assert_eq!(clean["metrics"]["rows_out"], 344.0);
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(project.path().join("work/clean_report.json")).expect("clean report"),
    )
    .expect("JSON");
    for column in [
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
    ] {
        assert_eq!(
            report["columns"][column]["imputed"], 2,
            "{column}: {report:#}"
        );
    }
    assert_eq!(report["columns"]["sex"]["nulls_from_tokens"], 11);
    assert_eq!(report["columns"]["sex"]["imputed"], 11);

    // The split, the model and so its scores are deterministic: 100 of the
    // 103 held-out penguins right (to 1e-12: the score passes through JSON).
    assert_eq!(task(&run, "split")["metrics"]["test_rows"], 103.0);
    assert_eq!(task(&run, "features")["metrics"]["features"], 9.0);
    let accuracy = task(&run, "evaluate")["metrics"]["accuracy"]
        .as_f64()
        .expect("accuracy");
    assert!((accuracy - 100.0 / 103.0).abs() < 1e-12, "{accuracy}");
    assert_eq!(task(&run, "gate")["metrics"]["passed"], 1.0);
    assert_eq!(task(&run, "promote")["status"], "succeeded");

    let (_, production) = project.json(&["models", "show", "penguins@production", "--json"]);
    assert_eq!(production["version"], 1);
    let top = production["importance"][0]["feature"]
        .as_str()
        .expect("importance");
    assert_eq!(top, "flipper_length_mm", "{production:#}");

    // A second run changes nothing.
    let (_, again) = project.json(&["run", "penguins", "--json"]);
    for t in again["tasks"].as_array().expect("tasks") {
        assert_eq!(t["status"], "up_to_date", "{t:#}");
    }
}

/// A value that only fails late, when a feature is derived from it, is
/// reported with its row in `penguins.csv`, not only its row in the split
/// file that reached the failing task.
#[test]
fn a_late_failure_names_the_row_of_the_source_file() {
    let project = project();
    let csv = project.path().join("data/penguins/penguins.csv");
    let text = std::fs::read_to_string(&csv).expect("penguins.csv");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Data row 200 (line 201): a bill depth of 0, which no range rule stops.
    let mut cells: Vec<&str> = lines[200].split(',').collect();
    cells[3] = "0";
    lines[200] = cells.join(",");
    std::fs::write(&csv, lines.join("\n") + "\n").expect("write penguins.csv");
    let dag = std::fs::read_to_string(project.path().join("dags/penguins.yaml"))
        .expect("penguins DAG")
        .replace(
            "bill_depth_mm: { min: 10, max: 25, impute: median }",
            "bill_depth_mm: { impute: median }",
        )
        .replace(
            "params: { target: species, exclude: [year] }",
            "params: { target: species, exclude: [year], derive: [{ name: bill_ratio, formula: ratio, numerator: bill_length_mm, denominator: bill_depth_mm }] }",
        );
    assert!(dag.contains("bill_ratio") && dag.contains("bill_depth_mm: { impute"));
    project.write("dags/penguins.yaml", &dag);

    let (code, run) = project.json(&["run", "penguins", "--json"]);
    assert_eq!(code, 1, "{run:#}");
    let failed: Vec<&serde_json::Value> = run["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|t| t["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{run:#}");
    let error = failed[0]["reason"].as_str().expect("reason");
    assert!(
        error.contains("column `bill_depth_mm`")
            && error.contains("(source row 200): derived column `bill_ratio` is not finite"),
        "{error}"
    );
}
