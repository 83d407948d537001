//! The shipped obesity lifecycle, end to end, on the real dataset: all five
//! stages, a second run that does nothing, and the drift → retraining loop.

use super::support::{Project, repo_root, task};

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from)
        .expect("read dir")
        .filter_map(Result::ok)
    {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy file");
        }
    }
}

fn lifecycle_project() -> Project {
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

#[test]
fn obesity_lifecycle_runs_reruns_nothing_and_closes_the_feedback_loop() {
    let project = lifecycle_project();

    let (exit, run) = project.json(&["run", "obesity", "--json"]);
    assert_eq!(exit, 0, "{run:#}");
    assert_eq!(task(&run, "clean")["metrics"]["rows_out"], 2087.0);
    let forest = &task(&run, "evaluate_forest")["metrics"];
    assert!(
        forest["accuracy"].as_f64().is_some_and(|a| a >= 0.93),
        "{forest}"
    );
    assert!(
        forest["f1_macro"].as_f64().is_some_and(|f| f >= 0.93),
        "{forest}"
    );
    let logistic = &task(&run, "evaluate_logistic")["metrics"];
    assert!(
        logistic["accuracy"].as_f64().is_some_and(|a| a >= 0.87),
        "{logistic}"
    );
    assert_eq!(task(&run, "promote")["status"], "succeeded");
    assert_eq!(task(&run, "detect_drift")["status"], "succeeded");

    // Nothing runs the second time: every task is up to date, except the
    // drift trigger, whose condition is still false (no drift).
    assert_eq!(task(&run, "trigger_retraining")["status"], "skipped");
    let (_, again) = project.json(&["run", "obesity", "--json"]);
    for t in again["tasks"].as_array().expect("tasks") {
        let expected = if t["id"] == "trigger_retraining" {
            "skipped"
        } else {
            "up_to_date"
        };
        assert_eq!(t["status"], expected, "{t:#}");
    }

    // No drift: retraining stops at its drift check, with the reason.
    let (exit, quiet) = project.json(&["run", "obesity_retraining", "--json"]);
    assert_eq!(exit, 0, "{quiet:#}");
    assert_eq!(task(&quiet, "check_drift")["status"], "succeeded");
    let train = task(&quiet, "train_forest");
    assert_eq!(train["status"], "skipped");
    assert!(
        train["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("no drift detected")),
        "{train:#}"
    );

    // A drifted batch lands; monitoring detects the drift and its
    // `dag.trigger` task starts retraining, which registers a challenger and
    // lets the gate judge it against the champion.
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
    assert_eq!(task(&monitored, "detect_drift")["status"], "succeeded");
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
    // Why did it run? `dag runs show` answers from the store.
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
    assert_eq!(task(retrained, "combine")["metrics"]["rows"], 2711.0);
    assert_eq!(task(retrained, "register_forest")["status"], "succeeded");
    let (_, models) = project.json(&["models", "list", "--json"]);
    let versions = models.as_array().expect("versions");
    assert_eq!(versions.len(), 2, "{models:#}");
    // The batch's weights were shifted without relabelling, so the retrained
    // forest is worse and the gate keeps the champion in production.
    let promote = task(retrained, "promote");
    assert_eq!(promote["status"], "skipped");
    assert!(
        promote["reason"]
            .as_str()
            .is_some_and(|r| r.contains("worse than the champion")),
        "{promote:#}"
    );
    let production = versions.iter().find(|v| {
        v["aliases"]
            .as_array()
            .is_some_and(|a| a.contains(&"production".into()))
    });
    assert_eq!(
        production.map(|v| &v["version"]),
        Some(&serde_json::json!(1))
    );
}
