//! The closed loop left running: 32 cycles of labelled batches (with and
//! without drift, of varying size, tiny, with a new category), traffic
//! served by `dag serve` and checked through its prediction log, retraining
//! started by monitoring's `dag.trigger`, gate accepts and rejects,
//! promotions, and rollbacks by hand — driven through the entry points the
//! daemon uses, deterministically (every seed is fixed), with every
//! invariant of the loop checked after every cycle (`invariants`).
//!
//! Models are small (24 trees, 2-fold CV, a short logistic fit) so the
//! whole soak takes a couple of minutes in a debug build.

mod invariants;
mod traffic;

use std::time::Duration;

use serde_json::Value;

use super::lifecycle::lifecycle_project;
use super::support::{Project, task};
use invariants::{Ledger, aliased, blake3_of};
use traffic::{batch_records, predict, start_server};

const CYCLES: usize = 32;

/// What happens in one cycle.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A labelled batch lands and monitoring checks it (and may retrain).
    Batch {
        rows: usize,
        shift: i64,
        new_category: f64,
    },
    /// A batch lands, its records are sent to the server, and monitoring
    /// checks the prediction log instead of the batch.
    Served { rows: usize, shift: i64 },
    /// A person retrains by hand with a deliberately weak model.
    WeakExperiment,
    /// A drifted batch is retrained on and promoted; a person rolls
    /// production back, then reruns that retraining.
    RollbackAndReplay,
}

/// The schedule: eight kinds of cycle, four rounds with other sizes and shifts.
fn step(cycle: usize) -> Step {
    let round = cycle / 8;
    let rows = [600, 300, 450, 800][round % 4];
    let shift = [25, 20, 22, 18][round % 4];
    let batch = |rows, shift| Step::Batch {
        rows,
        shift,
        new_category: 0.0,
    };
    match cycle % 8 {
        0 => batch(rows, 0),
        1 => batch(rows, shift),
        2 => batch(rows / 2 + 100, shift - 3),
        3 => batch(rows, shift + 2),
        4 => batch(15 + 5 * round, 25),
        5 => Step::Served {
            rows: 150 + 50 * round,
            shift,
        },
        6 => Step::Batch {
            rows,
            shift: 0,
            new_category: 0.5,
        },
        _ if round.is_multiple_of(2) => Step::WeakExperiment,
        _ => Step::RollbackAndReplay,
    }
}

/// A project whose training stage fits small models, so cycles are quick.
fn soak_project() -> Project {
    let project = lifecycle_project();
    let path = project.path().join("dags/obesity_training.yaml");
    let mut text = std::fs::read_to_string(&path).expect("read the training stage");
    for (from, to) in [
        ("n_trees: 300", "n_trees: 24"),
        ("cv_folds: 5", "cv_folds: 2"),
        ("max_iterations: 300", "max_iterations: 40"),
    ] {
        assert!(
            text.contains(from),
            "the training stage no longer says `{from}`"
        );
        text = text.replace(from, to);
    }
    std::fs::write(&path, text).expect("write the training stage");
    project
}

fn dag_run(project: &Project, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.push("--json");
    project.json(&all)
}

fn land_batch(project: &Project, cycle: usize, rows: usize, shift: i64, new_category: f64) {
    let (exit, landed) = dag_run(
        project,
        &[
            "obesity_batch",
            "--param",
            &format!("rows={rows}"),
            "--param",
            &format!("drift_shift={shift}"),
            "--param",
            &format!("batch_seed={}", 100 + cycle),
            "--param",
            &format!("new_category_share={new_category}"),
        ],
    );
    assert_eq!(exit, 0, "cycle {cycle}: {landed:#}");
}

/// Production's version and training-data digest.
fn production(project: &Project) -> (Value, Value) {
    let version = aliased(project, "production").expect("a production version");
    (
        version["version"].clone(),
        version["data_digests"]["train"].clone(),
    )
}

/// Runs monitoring on `current` and checks that its reference was the
/// training data of the production version it started with. Returns the
/// run (with the retraining it triggered, if any).
fn monitor(project: &Project, cycle: usize, current: Option<&str>) -> (i32, Value) {
    let before = production(project);
    let param = current.map(|c| format!("current={c}"));
    let mut args = vec!["obesity_monitoring"];
    if let Some(param) = &param {
        args.extend(["--param", param.as_str()]);
    }
    let (exit, monitored) = dag_run(project, &args);
    let report: Value = serde_json::from_slice(
        &std::fs::read(project.path().join("data/reports/drift.json")).expect("drift report"),
    )
    .expect("JSON drift report");
    assert_eq!(
        (
            &report["reference"]["version"],
            &report["reference"]["digest"]
        ),
        (&before.0, &before.1),
        "cycle {cycle}: the drift reference is not production's training data"
    );
    (exit, monitored)
}

/// Checks a retraining run's gate compared like with like: the champion it
/// names was production when it started, and the rows are its test split.
fn gate_compared_like_with_like(
    project: &Project,
    cycle: usize,
    retrained: &Value,
    champion: &Value,
) {
    let gate = task(retrained, "gate_forest");
    assert!(
        gate["status"] == "succeeded",
        "cycle {cycle}: the gate did not judge: {gate:#}"
    );
    let verdict: Value = serde_json::from_slice(
        &std::fs::read(
            project
                .path()
                .join("data/retraining/reports/forest_verdict.json"),
        )
        .expect("verdict"),
    )
    .expect("JSON verdict");
    assert_eq!(&verdict["champion"]["version"], champion, "cycle {cycle}");
    assert_eq!(
        verdict["rows"]["digest"].as_str(),
        blake3_of(project, "data/retraining/processed/test.parquet").as_deref(),
        "cycle {cycle}: the gate's rows are not the retraining's test split"
    );
}

#[test]
fn the_loop_holds_for_32_cycles_with_every_invariant_checked_after_each() {
    let project = soak_project();
    let mut ledger = Ledger::default();
    let (exit, first) = dag_run(&project, &["obesity"]);
    assert_eq!(exit, 0, "{first:#}");
    ledger.check(&project, "bootstrap");
    let server = start_server(&project);
    let (mut retrained, mut rejected, mut promoted, mut rolled_back, mut served) = (0, 0, 0, 0, 0);
    for cycle in 0..CYCLES {
        let what = step(cycle);
        let name = format!("cycle {cycle} ({what:?})");
        let champion = production(&project).0;
        match what {
            Step::Batch {
                rows,
                shift,
                new_category,
            } => {
                land_batch(&project, cycle, rows, shift, new_category);
                let (exit, monitored) = monitor(&project, cycle, None);
                let drift = &task(&monitored, "detect_drift")["summary"];
                let triggered = monitored["triggered"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if rows < 100 {
                    assert!(
                        drift
                            .as_str()
                            .is_some_and(|s| s.starts_with("not enough rows to judge drift")),
                        "{name}: {drift}"
                    );
                    assert!(triggered.is_empty(), "{name}");
                } else if new_category > 0.0 {
                    // A category nobody has seen stops at the batch's validation.
                    let run = &triggered[0];
                    assert_eq!(exit, 1, "{name}: {monitored:#}");
                    let id = run["run_id"].as_str().unwrap_or_default().to_string();
                    ledger
                        .expected_failures
                        .insert(id, "rows with values not allowed: `Scooter`".into());
                } else if let Some(run) = triggered.first() {
                    assert_eq!(exit, 0, "{name}: {monitored:#}");
                    gate_compared_like_with_like(&project, cycle, run, &champion);
                    retrained += 1;
                    if task(run, "promote")["status"] == "succeeded" {
                        promoted += 1;
                    } else {
                        rejected += 1;
                    }
                } else {
                    assert_eq!(exit, 0, "{name}: {monitored:#}");
                }
                // The first batch is like the training data; the next three
                // are drifted, and each must lead to a retraining whose gate
                // compared like with like (checked above).
                if cycle == 0 {
                    assert!(
                        drift
                            .as_str()
                            .is_some_and(|s| s.starts_with("no drift detected")),
                        "{name}: {drift}"
                    );
                }
                if (1..=3).contains(&cycle) {
                    assert_eq!(triggered.len(), 1, "{name}: no retraining: {monitored:#}");
                }
            }
            Step::Served { rows, shift } => {
                land_batch(&project, cycle, rows, shift, 0.0);
                let records = batch_records(&project);
                let refused = records
                    .iter()
                    .filter(|r| predict(&server.addr, r) == 422)
                    .count();
                served += records.len();
                let log = ".dag/predictions/current.csv";
                wait_for_rows(&project, log, served);
                let (_, monitored) = monitor(&project, cycle, Some(log));
                let report: Value = serde_json::from_slice(
                    &std::fs::read(project.path().join("data/reports/drift.json")).expect("report"),
                )
                .expect("JSON report");
                let counts = &report["traffic"]["counts"];
                let logged = counts["answered"].as_u64().unwrap_or(0)
                    + counts["rejected"].as_u64().unwrap_or(0);
                assert_eq!(
                    logged as usize, served,
                    "{name}: every request is in the log: {counts}"
                );
                assert!(
                    counts["rejected"].as_u64().unwrap_or(0) as usize >= refused,
                    "{name}: {counts}"
                );
                if let Some(run) = monitored["triggered"].as_array().and_then(|t| t.first()) {
                    gate_compared_like_with_like(&project, cycle, run, &champion);
                    retrained += 1;
                }
            }
            Step::WeakExperiment => {
                land_batch(&project, cycle, 600, 25, 0.0);
                let (exit, weak) = dag_run(
                    &project,
                    &[
                        "obesity_retraining",
                        "--param",
                        "n_trees=1",
                        "--param",
                        "max_depth=2",
                    ],
                );
                assert_eq!(exit, 0, "{name}: {weak:#}");
                let gate = task(&weak, "gate_forest");
                assert!(
                    gate["reason"]
                        .as_str()
                        .is_some_and(|r| r.starts_with("gate rejected")),
                    "{name}: {gate:#}"
                );
                assert_eq!(task(&weak, "promote")["status"], "skipped", "{name}");
                assert_eq!(production(&project).0, champion, "{name}: production moved");
                gate_compared_like_with_like(&project, cycle, &weak, &champion);
                rejected += 1;
            }
            Step::RollbackAndReplay => {
                land_batch(&project, cycle, 700, 24, 0.0);
                let (exit, monitored) = monitor(&project, cycle, None);
                assert_eq!(exit, 0, "{name}: {monitored:#}");
                let run = &monitored["triggered"][0];
                assert_eq!(
                    task(run, "promote")["status"],
                    "succeeded",
                    "{name}: {run:#}"
                );
                promoted += 1;
                retrained += 1;
                let (exit, rollback) = project.json(&[
                    "models",
                    "rollback",
                    "obesity",
                    "--alias",
                    "production",
                    "--json",
                ]);
                assert_eq!(exit, 0, "{name}: {rollback:#}");
                assert_eq!(
                    rollback["followed"][0]["alias"], "champion",
                    "{name}: {rollback:#}"
                );
                assert_eq!(
                    production(&project).0,
                    champion,
                    "{name}: back where it was"
                );
                ledger.moves_by_hand += 2;
                rolled_back += 1;
                // Rerunning the retraining that made the rolled-back version
                // must not quietly promote it again.
                let (exit, replay) = dag_run(&project, &["obesity_retraining"]);
                assert_eq!(exit, 1, "{name}: {replay:#}");
                let promote = task(&replay, "promote");
                let refusal = "by `dag models rollback`";
                assert!(
                    promote["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains(refusal)),
                    "{name}: {promote:#}"
                );
                let id = replay["run_id"].as_str().unwrap_or_default().to_string();
                ledger.expected_failures.insert(id, refusal.into());
                assert_eq!(
                    production(&project).0,
                    champion,
                    "{name}: the rollback stands"
                );
            }
        }
        ledger.check(&project, &name);
    }
    drop(server);
    println!(
        "soak: {CYCLES} cycles, {retrained} retrainings ({promoted} promoted, {rejected} rejected), \
         {rolled_back} rollbacks, {served} requests served, {} runs that had to fail did",
        ledger.expected_failures.len()
    );
    // The schedule exercised every path of the loop.
    assert!(retrained >= 12, "{retrained} retrainings");
    assert!(
        promoted >= 4 && rejected >= 2,
        "{promoted} promoted, {rejected} rejected"
    );
    assert_eq!(rolled_back, 2);
    assert!(served >= 600);
    assert!(ledger.expected_failures.len() >= 6);
}

/// Waits until the prediction log holds `rows` rows.
fn wait_for_rows(project: &Project, log: &str, rows: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(project.path().join(log)).unwrap_or_default();
        if text.lines().count() > rows {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log has {} rows, not {rows}",
            text.lines().count().saturating_sub(1)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
