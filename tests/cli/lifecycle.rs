//! The shipped obesity lifecycle, end to end, on the real dataset: the
//! main pipeline with its results pinned, a second run that does nothing,
//! and the drift → retraining loop, which writes only its own artifacts and
//! gates the retrained model against the champion on the same rows.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::serve_support::copy_dir;
use super::support::{Project, repo_root, task};

pub fn lifecycle_project() -> Project {
    let project = Project::new();
    copy_dir(&repo_root().join("dags"), &project.path().join("dags"));
    let raw = project.path().join("data/raw");
    std::fs::create_dir_all(&raw).expect("data/raw");
    std::fs::copy(
        repo_root().join("data/raw/ObesityDataSet.csv"),
        raw.join("ObesityDataSet.csv"),
    )
    .expect("copy data");
    project
}

/// blake3 of every file under `dir`, by path relative to the project.
fn digests(project: &Project, dir: &str) -> BTreeMap<String, String> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir)
            .expect("read dir")
            .filter_map(Result::ok)
        {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                let name = path.strip_prefix(root).unwrap_or(&path);
                out.insert(
                    name.display().to_string(),
                    blake3::hash(&bytes).to_hex().to_string(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(project.path(), &project.path().join(dir), &mut out);
    out
}

fn metric(run: &Value, task_id: &str, name: &str) -> f64 {
    task(run, task_id)["metrics"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("task `{task_id}` has no metric `{name}`: {run:#}"))
}

#[test]
fn obesity_lifecycle_runs_reruns_nothing_and_closes_the_feedback_loop() {
    let project = lifecycle_project();

    let (exit, run) = project.json(&["run", "obesity", "--json"]);
    assert_eq!(exit, 0, "{run:#}");
    assert_eq!(metric(&run, "clean", "rows_out"), 2087.0);
    assert_eq!(metric(&run, "split", "train_rows"), 1461.0);
    assert_eq!(metric(&run, "split", "test_rows"), 626.0);
    // Same data, params and seed give the same models, so their scores are
    // pinned (to 1e-12: they pass through JSON text): 618 of the 626
    // held-out rows right for the forest, 570 for the logistic baseline.
    let close = |value: f64, expected: f64| {
        assert!((value - expected).abs() < 1e-12, "{value} != {expected}");
    };
    close(metric(&run, "evaluate_forest", "accuracy"), 618.0 / 626.0);
    close(
        metric(&run, "evaluate_forest", "f1_macro"),
        0.986_716_610_960_617_2,
    );
    close(metric(&run, "evaluate_logistic", "accuracy"), 570.0 / 626.0);
    close(
        metric(&run, "evaluate_logistic", "f1_macro"),
        0.906_964_675_934_176_8,
    );
    // The model file's digest pins the bytes; the forest uses only
    // IEEE-exact arithmetic, so it holds across platforms as well as runs.
    let forest = std::fs::read(project.path().join("data/models/forest.json")).expect("forest");
    assert_eq!(
        blake3::hash(&forest).to_hex().as_str(),
        "c118da47fbf56d0e730f2137bf5cd3465522af68904057b37f88e095e8419445"
    );
    assert_eq!(metric(&run, "gate_forest", "passed"), 1.0);
    assert_eq!(task(&run, "promote")["status"], "succeeded");
    // Permutation importance is seeded, so its ranking is pinned too: the
    // forest leans on weight and height (BMI is derived from them), and the
    // registered version carries the ranking.
    let (_, shown) = project.json(&["models", "show", "obesity@production", "--json"]);
    let importance = shown["importance"].as_array().expect("importance");
    assert_eq!(
        importance.len(),
        16,
        "one entry per raw input column: {shown:#}"
    );
    let top: Vec<&str> = importance[..2]
        .iter()
        .map(|i| i["feature"].as_str().expect("a name"))
        .collect();
    assert_eq!(top, ["Weight", "Height"], "{shown:#}");
    assert!(
        importance[0]["mean"].as_f64().expect("a mean") > 0.3,
        "{shown:#}"
    );
    let text = project.dag(&["models", "show", "obesity@production"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("importance Weight"), "{text}");
    let chart = std::fs::read(project.path().join("data/reports/forest_importance.png"))
        .expect("the importance chart");
    assert!(chart.starts_with(b"\x89PNG"));

    // Nothing runs the second time.
    let (_, again) = project.json(&["run", "obesity", "--json"]);
    for t in again["tasks"].as_array().expect("tasks") {
        assert_eq!(t["status"], "up_to_date", "{t:#}");
    }
    let main_artifacts = digests(&project, "data");

    // No drift: retraining stops at its drift check, with the reason, which
    // names the reference: the training data of the production version.
    let (exit, _) = project.json(&["run", "obesity_batch", "--json"]);
    assert_eq!(exit, 0);
    let (exit, quiet) = project.json(&["run", "obesity_retraining", "--json"]);
    assert_eq!(exit, 0, "{quiet:#}");
    let train = task(&quiet, "train_forest");
    assert_eq!(train["status"], "skipped");
    let reason = train["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("no drift detected against obesity@production (v1, train "),
        "{train:#}"
    );

    // A drifted batch lands; monitoring detects the drift and its
    // `dag.trigger` task starts retraining.
    let (exit, batch) = project.json(&[
        "run",
        "obesity_batch",
        "--json",
        "--param",
        "drift_shift=25",
    ]);
    assert_eq!(exit, 0, "{batch:#}");
    let (exit, monitored) = project.json(&["run", "obesity_monitoring", "--json"]);
    assert_eq!(exit, 0, "{monitored:#}");
    assert_eq!(
        task(&monitored, "trigger_retraining")["status"],
        "succeeded"
    );
    let retrained = &monitored["triggered"][0];
    assert_eq!(retrained["dag"], "obesity_retraining", "{monitored:#}");
    assert_eq!(retrained["status"], "succeeded", "{retrained:#}");
    assert_eq!(retrained["trigger"]["kind"], "dag");
    let detail = retrained["trigger"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!(
            "obesity_monitoring run {} task trigger_retraining: drift in",
            monitored["run_id"].as_str().unwrap_or_default()
        )),
        "{detail}"
    );
    let show = project.dag(&[
        "runs",
        "show",
        retrained["run_id"].as_str().unwrap_or_default(),
    ]);
    assert!(
        String::from_utf8_lossy(&show.stdout).contains("trigger   dag (obesity_monitoring run"),
        "{}",
        String::from_utf8_lossy(&show.stdout)
    );
    // Production's splits (from the registry) plus the batch's own.
    assert_eq!(metric(retrained, "combine_train", "rows"), 1461.0 + 351.0);
    assert_eq!(metric(retrained, "combine_test", "rows"), 626.0 + 151.0);

    // The gate scored the champion on the challenger's test rows.
    let verdict: Value = serde_json::from_slice(
        &std::fs::read(
            project
                .path()
                .join("data/retraining/reports/forest_verdict.json"),
        )
        .expect("the verdict"),
    )
    .expect("JSON verdict");
    let test = std::fs::read(
        project
            .path()
            .join("data/retraining/processed/test.parquet"),
    )
    .expect("the retraining test split");
    assert_eq!(verdict["rows"]["count"], 777);
    assert_eq!(
        verdict["rows"]["digest"],
        json!(blake3::hash(&test).to_hex().to_string())
    );
    assert_eq!(verdict["champion"]["version"], 1);
    assert_eq!(verdict["challenger"]["version"], 2);
    assert_eq!(verdict["passed"], true, "{verdict:#}");
    let promote = task(retrained, "promote");
    assert_eq!(promote["status"], "succeeded", "{promote:#}");
    let (_, production) = project.json(&["models", "show", "obesity@production", "--json"]);
    assert_eq!(production["version"], 2);
    assert_eq!(production["gates"][0]["champion"]["version"], 1);

    // The retraining wrote only under its own paths.
    assert_eq!(digests(&project, "data/raw"), {
        let mut raw = main_artifacts.clone();
        raw.retain(|path, _| path.starts_with("data/raw/"));
        raw
    });
    let mut after = digests(&project, "data");
    after.retain(|path, _| main_artifacts.contains_key(path));
    assert_eq!(
        after, main_artifacts,
        "the retraining overwrote main artifacts"
    );

    // The main pipeline afterwards: up to date, except what depends on the
    // moved aliases, each with the reason.
    let (exit, after) = project.json(&["run", "obesity", "--json"]);
    assert_eq!(exit, 0, "{after:#}");
    for t in after["tasks"].as_array().expect("tasks") {
        let reason = t["reason"].as_str().unwrap_or_default();
        match t["id"].as_str().unwrap_or_default() {
            "gate_forest" => assert!(
                reason.starts_with("ran again: `champion` now points at v2"),
                "{t:#}"
            ),
            "predict_holdout" => assert!(
                reason.starts_with("ran again: `production` points at obesity:v2"),
                "{t:#}"
            ),
            // Its input, the holdout predictions, changed.
            "smoke_test" => assert_eq!(t["status"], "succeeded", "{t:#}"),
            "promote" => {
                assert_eq!(
                    t["status"], "up_to_date",
                    "a later promotion supersedes, {t:#}"
                )
            }
            _ => assert_eq!(t["status"], "up_to_date", "{t:#}"),
        }
    }
}
