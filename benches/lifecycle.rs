//! The obesity lifecycle (release build): `cargo bench --bench lifecycle`.
//!
//! - the whole lifecycle (data, training with 5-fold CV and a 300-tree
//!   forest, validation against the champion, deployment with the serving
//!   smoke test) from a cold state dir
//! - the same lifecycle again: every task up to date
//! - one 300-tree, depth-12 forest fit alone (`train_forest` without CV)

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{RunOptions, report, run_dag, task_duration};
use dag::parse::load_dag_file;

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

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let registry = Arc::new(dag::ops::registry());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (mut cold, mut warm, mut forest) = (Vec::new(), Vec::new(), Vec::new());
    let mut task_count = 0;
    for _ in 0..3 {
        let project = tempfile::tempdir().expect("temp project");
        copy_dir(&root.join("dags"), &project.path().join("dags"));
        std::fs::create_dir_all(project.path().join("data/raw")).expect("data/raw");
        std::fs::copy(
            root.join("data/raw/ObesityDataSet.csv"),
            project.path().join("data/raw/ObesityDataSet.csv"),
        )
        .expect("copy dataset");
        let dag = Arc::new(
            load_dag_file(&project.path().join("dags/obesity.yaml"), &registry)
                .unwrap_or_else(|d| panic!("{}", d[0].render(false))),
        );
        task_count = dag.tasks.len();
        let (elapsed, _, tasks) = run_dag(
            &runtime,
            &dag,
            &registry,
            project.path(),
            RunOptions::default(),
        );
        cold.push(elapsed);
        let train_with_cv = task_duration(&tasks, "train_forest");
        let (elapsed, _, _) = run_dag(
            &runtime,
            &dag,
            &registry,
            project.path(),
            RunOptions::default(),
        );
        warm.push(elapsed);
        let options = RunOptions {
            params: [("cv_folds".to_string(), serde_json::Value::Null)].into(),
            only: vec!["train_forest".into()],
            force: true,
        };
        let (_, _, tasks) = run_dag(&runtime, &dag, &registry, project.path(), options);
        forest.push(task_duration(&tasks, "train_forest"));
        println!(
            "  (train_forest with 5-fold CV + final fit: {} ms)",
            train_with_cv.as_millis()
        );
    }
    report(
        &format!("obesity lifecycle, cold ({} tasks, 4 stages)", task_count),
        &mut cold,
        None,
    );
    report("obesity lifecycle, everything up to date", &mut warm, None);
    report(
        "forest fit alone: 300 trees, depth 12, ~1460 rows",
        &mut forest,
        None,
    );
}
