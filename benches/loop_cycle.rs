//! One cycle of the closed loop (release build), run as users run it: the
//! release `dag` binary in a temp project whose `production` model came from
//! `dag run obesity` (not timed). A cycle is:
//!
//! - a drifted labelled batch lands: `dag run obesity_batch --param drift_shift=25`;
//! - `dag run obesity_monitoring` finds the drift against production's
//!   training data, and its `dag.trigger` runs `obesity_retraining`: the
//!   batch cleaned, validated and split, production's data from the
//!   registry, a 300-tree forest with 5-fold CV and the logistic baseline,
//!   the gate scoring challenger and champion on the same rows, the
//!   promotion and the serving smoke test;
//! - `dag run obesity` afterwards, which reruns only what the moved aliases
//!   invalidated (the gate's verdict, the holdout predictions, the smoke test).
//!
//! `cargo bench --bench loop_cycle`

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::report;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from)
        .expect("read dir")
        .filter_map(Result::ok)
    {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
        }
    }
}

/// Runs `dag <args>` in `dir`; returns how long it took and its JSON.
fn dag(dir: &Path, args: &[&str]) -> (Duration, serde_json::Value) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_dag"))
        .args(args)
        .arg("--json")
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run dag");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "dag {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    (elapsed, json)
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (mut cycles, mut batches, mut loops, mut mains) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let project = tempfile::tempdir().expect("temp project");
        let dir = project.path();
        copy_dir(&root.join("dags"), &dir.join("dags"));
        std::fs::create_dir_all(dir.join("data/raw")).expect("data/raw");
        std::fs::copy(
            root.join("data/raw/ObesityDataSet.csv"),
            dir.join("data/raw/ObesityDataSet.csv"),
        )
        .expect("copy dataset");
        dag(dir, &["run", "obesity"]);

        let (batch, _) = dag(dir, &["run", "obesity_batch", "--param", "drift_shift=25"]);
        let (monitored, json) = dag(dir, &["run", "obesity_monitoring"]);
        let retraining = &json["triggered"][0];
        assert_eq!(retraining["status"], "succeeded", "{json:#}");
        let promoted = retraining["tasks"].as_array().is_some_and(|tasks| {
            tasks
                .iter()
                .any(|t| t["id"] == "promote" && t["status"] == "succeeded")
        });
        assert!(promoted, "the retrained model was not promoted: {json:#}");
        let (main, _) = dag(dir, &["run", "obesity"]);
        batches.push(batch);
        loops.push(monitored);
        mains.push(main);
        cycles.push(batch + monitored + main);
    }
    report(
        "one loop cycle: batch, drift, retrain, gate, promote",
        &mut cycles,
        None,
    );
    report("  dag run obesity_batch (600 rows)", &mut batches, None);
    report(
        "  dag run obesity_monitoring + retraining",
        &mut loops,
        None,
    );
    report("  dag run obesity afterwards", &mut mains, None);
}
