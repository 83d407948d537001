//! Minimum evidence: the shipped lifecycle fed data too thin to learn or
//! judge from never reaches `production`, and `dag runs show` names the
//! count and the threshold.

use serde_json::Value;

use super::lifecycle::lifecycle_project;
use super::support::{Project, task};

/// The first `per_class` rows of each class in `classes` of the raw data
/// set, as a CSV with its header.
fn rows_of(project: &Project, classes: &[(&str, usize)]) -> String {
    let raw = std::fs::read_to_string(project.path().join("data/raw/ObesityDataSet.csv"))
        .expect("read the data set");
    let mut lines = raw.lines();
    let mut out = format!("{}\n", lines.next().expect("header"));
    for (class, count) in classes {
        let picked: Vec<&str> = raw
            .lines()
            .filter(|line| line.ends_with(&format!(",{class}")))
            .take(*count)
            .collect();
        assert_eq!(picked.len(), *count, "not enough rows of {class}");
        for line in picked {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

const CLASSES: [&str; 7] = [
    "Insufficient_Weight",
    "Normal_Weight",
    "Overweight_Level_I",
    "Overweight_Level_II",
    "Obesity_Type_I",
    "Obesity_Type_II",
    "Obesity_Type_III",
];

/// Runs the shipped `obesity` DAG on `csv`, with expectations that check
/// only the columns, so the stages' own guards are what stops it.
fn run_on(project: &Project, name: &str, csv: &str) -> (i32, Value) {
    let path = format!("data/raw/{name}.csv");
    project.write(&path, csv);
    project.write(
        "dags/expectations/columns_only.yaml",
        "expectations:\n  - { kind: columns_present, columns: [NObeyesdad, Weight, Height] }\n",
    );
    project.json(&[
        "run",
        "obesity",
        "--json",
        "--param",
        &format!("raw_data={path}"),
        "--param",
        "expectations=dags/expectations/columns_only.yaml",
        "--param",
        "n_trees=8",
        "--param",
        "cv_folds=2",
    ])
}

fn assert_no_production(project: &Project) {
    let (_, models) = project.json(&["models", "list", "--json"]);
    let promoted = models.as_array().is_some_and(|versions| {
        versions.iter().any(|v| {
            v["aliases"]
                .as_array()
                .is_some_and(|a| a.iter().any(|alias| alias == "production"))
        })
    });
    assert!(
        !promoted,
        "a degenerate data set reached production: {models:#}"
    );
}

/// `dag runs show` of `run` mentions `needle`.
fn shown(project: &Project, run: &Value, needle: &str) {
    let output = project.dag(&["runs", "show", run["run_id"].as_str().unwrap_or_default()]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains(needle), "`{needle}` not in:\n{text}");
}

#[test]
fn thin_data_sets_fail_where_they_are_too_thin_and_say_why() {
    let project = lifecycle_project();
    let mut one_of_each: Vec<(&str, usize)> = CLASSES.iter().map(|c| (*c, 1)).collect();
    one_of_each.truncate(5);
    let cases: [(&str, String, &str, &str); 4] = [
        (
            "five",
            rows_of(&project, &one_of_each),
            "split",
            "has 5 rows; a train/test split needs at least 20 (`min_rows`)",
        ),
        (
            "one",
            rows_of(&project, &[("Normal_Weight", 1)]),
            "split",
            "has 1 row; a train/test split needs at least 20 (`min_rows`)",
        ),
        (
            "one_class",
            rows_of(&project, &[("Normal_Weight", 60)]),
            "train_forest",
            "has one class only (`Normal_Weight`); a classifier needs at least 2",
        ),
        (
            "lonely",
            rows_of(
                &project,
                &[
                    ("Normal_Weight", 30),
                    ("Obesity_Type_I", 30),
                    ("Obesity_Type_III", 1),
                ],
            ),
            "split",
            "class `Obesity_Type_III` of `NObeyesdad` in",
        ),
    ];
    for (name, csv, failing, message) in cases {
        let (exit, run) = run_on(&project, name, &csv);
        assert_eq!(exit, 1, "{name}: {run:#}");
        let failed = task(&run, failing);
        assert_eq!(failed["status"], "failed", "{name}: {failed:#}");
        assert!(
            failed["reason"]
                .as_str()
                .is_some_and(|r| r.contains(message)),
            "{name}: {failed:#}"
        );
        assert_eq!(task(&run, "promote")["status"], "upstream_failed", "{name}");
        shown(&project, &run, message);
        assert_no_production(&project);
    }
}

#[test]
fn a_small_but_learnable_data_set_is_registered_and_rejected_by_the_gate() {
    let project = lifecycle_project();
    let ten_of_each: Vec<(&str, usize)> = CLASSES.iter().map(|c| (*c, 10)).collect();
    let (exit, run) = run_on(&project, "seventy", &rows_of(&project, &ten_of_each));
    assert_eq!(exit, 0, "{run:#}");
    assert_eq!(task(&run, "register_forest")["status"], "succeeded");
    let message = "too little evidence: 21 evaluation rows, at least 100 needed (`min_rows`)";
    let gate = task(&run, "gate_forest");
    assert!(
        gate["reason"].as_str().is_some_and(|r| r.contains(message)),
        "{gate:#}"
    );
    let promote = task(&run, "promote");
    assert_eq!(promote["status"], "skipped", "{promote:#}");
    shown(&project, &run, message);
    assert_no_production(&project);
    // The verdict is kept with the version, with the threshold it missed.
    let (_, version) = project.json(&["models", "show", "obesity@challenger", "--json"]);
    let verdict = &version["gates"][0];
    assert_eq!(verdict["passed"], false);
    assert_eq!(verdict["criteria"][0]["criterion"], "rows >= 100");
    assert_eq!(verdict["criteria"][0]["value"], 21.0);
}
