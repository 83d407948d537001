//! The operators chained as the lifecycle DAGs chain them: features → train
//! → evaluate → register → gate → promote, through their `execute` entry
//! points on a small fixture; then a second model gated against the first
//! on the same rows.

#![expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]

use std::path::Path;

use serde_json::{Value, json};

use crate::ml::test_fixtures::{tiny_csv, write};
use crate::models::ModelRegistry;
use crate::{Context, Operator, Outcome};

fn run(
    operator: &dyn Operator,
    dir: &Path,
    params: Value,
    inputs: &[(&str, &str)],
    outputs: &[(&str, &str)],
) -> Outcome {
    let mut ctx = Context::detached(dir, params);
    ctx.inputs = inputs
        .iter()
        .map(|(k, v)| (k.to_string(), dir.join(v)))
        .collect();
    ctx.outputs = outputs
        .iter()
        .map(|(k, v)| (k.to_string(), dir.join(v)))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(operator.execute(&ctx)).unwrap()
}

#[test]
fn lifecycle_operators_chain_from_features_to_promotion() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "train.csv", &tiny_csv(60));
    write(d, "test.csv", &tiny_csv(42));
    run(
        &crate::ml::Features,
        d,
        json!({"target": "label"}),
        &[("train", "train.csv")],
        &[("transformer", "t.json")],
    );
    let trained = run(
        &crate::ml::Train,
        d,
        json!({"model": "random_forest", "n_trees": 10, "seed": 1, "cv_folds": 3}),
        &[("train", "train.csv"), ("transformer", "t.json")],
        &[("model", "model.json"), ("metrics", "train_metrics.json")],
    );
    assert!(trained.metrics.contains_key("cv_f1_macro_mean"));
    let evaluated = run(
        &crate::ml::Evaluate,
        d,
        json!({"group_by": "g"}),
        &[("model", "model.json"), ("test", "test.csv")],
        &[("metrics", "eval.json"), ("confusion", "c.png")],
    );
    assert_eq!(evaluated.metrics["accuracy"], 1.0);
    let registered = run(
        &crate::models::Register,
        d,
        json!({"name": "obesity", "aliases": ["challenger"]}),
        &[
            ("model", "model.json"),
            ("metrics", "eval.json"),
            ("train", "train.csv"),
            ("test", "test.csv"),
        ],
        &[],
    );
    assert_eq!(
        registered.summary.as_deref(),
        Some("registered obesity v1 (challenger)")
    );
    assert_eq!(registered.values["digest"], trained.values["model_digest"]);
    let gate_params = |version: &Value| {
        json!({
            "model": "obesity",
            "version": version,
            "criteria": ["accuracy >= 0.9", "recall[low] >= 0.9"],
            "champion": {"max_regression": 0.02},
            "fairness": {"group": "g", "max_gap": 0.1},
            "min_rows_per_class": 3
        })
    };
    let gate = run(
        &crate::ml::Gate,
        d,
        gate_params(&registered.values["version"]),
        &[("data", "test.csv")],
        &[("verdict", "verdict.json")],
    );
    assert_eq!(
        gate.values["passed"],
        json!(true),
        "{:?}",
        gate.values["reasons"]
    );
    let promoted = run(
        &crate::models::Promote,
        d,
        json!({"name": "obesity", "version": registered.values["version"], "aliases": ["champion", "production"], "require_gate": true}),
        &[],
        &[],
    );
    assert_eq!(
        promoted.summary.as_deref(),
        Some("champion: (none) → v1, production: (none) → v1")
    );
    let registry = ModelRegistry::open(&d.join(".dag")).unwrap();
    let production = registry.resolve("obesity", "production").unwrap();
    assert_eq!(production.metrics["accuracy"], 1.0);
    assert!(production.data_digests.contains_key("train"));
    assert_eq!(production.run_id.as_deref(), Some("detached"));
    assert!(production.gates[0].passed && production.gates[0].champion.is_none());

    // A second forest, gated against the first on the same test rows.
    let retrained = run(
        &crate::ml::Train,
        d,
        json!({"model": "random_forest", "n_trees": 4, "seed": 2}),
        &[("train", "train.csv"), ("transformer", "t.json")],
        &[("model", "model2.json")],
    );
    assert_ne!(
        retrained.values["model_digest"],
        trained.values["model_digest"]
    );
    let second = run(
        &crate::models::Register,
        d,
        json!({"name": "obesity", "aliases": ["challenger"]}),
        &[("model", "model2.json"), ("test", "test.csv")],
        &[],
    );
    assert_eq!(second.values["version"], json!(2));
    run(
        &crate::ml::Gate,
        d,
        gate_params(&second.values["version"]),
        &[("data", "test.csv")],
        &[("verdict", "verdict2.json")],
    );
    let verdict = &registry.get("obesity", 2).unwrap().gates[0];
    let champion = verdict.champion.as_ref().unwrap();
    assert_eq!(champion.version, 1);
    assert_eq!(verdict.rows.count, 42);
    assert_eq!(
        champion.metrics["accuracy"],
        production.gates[0].challenger.metrics["accuracy"]
    );
}
