//! `ml.gate` end to end on tiny registered models: both versions scored on
//! the same rows, verdicts kept in the registry, minimum evidence, and when
//! an earlier verdict stops applying.

#![expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]

use serde_json::{Value, json};

use crate::ml::Gate;
use crate::ml::test_fixtures::{tiny_csv, tiny_model, write};
use crate::models::{GateRecord, ModelRegistry, RegisterInfo};
use crate::{Context, Earlier, Operator, Outcome};

fn run(ctx: &Context) -> Result<Outcome, crate::OperatorError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(Gate.execute(ctx))
}

/// Two registered versions and a gate context judging `version`.
fn setup(version: u32, params: Value) -> (tempfile::TempDir, Context, ModelRegistry) {
    let dir = tempfile::tempdir().unwrap();
    let mut base = json!({"model": "m", "version": version, "champion": {"max_regression": 0.02}, "min_rows_per_class": 2});
    if let (Some(base), Some(extra)) = (base.as_object_mut(), params.as_object()) {
        base.extend(extra.clone());
    }
    let mut ctx = Context::detached(dir.path(), base);
    ctx.inputs
        .insert("data".into(), write(dir.path(), "eval.csv", &tiny_csv(60)));
    ctx.outputs
        .insert("verdict".into(), dir.path().join("verdict.json"));
    let registry = ModelRegistry::open(&ctx.state_dir).unwrap();
    for seed in [1, 2, 3] {
        registry
            .register("m", &tiny_model(dir.path(), seed), RegisterInfo::default())
            .unwrap();
    }
    (dir, ctx, registry)
}

fn holds(ctx: &Context, outcome: &Outcome) -> Result<(), String> {
    Gate.effect_holds(&Earlier {
        params: &ctx.params,
        values: &outcome.values,
        state_dir: &ctx.state_dir,
    })
}

#[test]
fn champion_and_challenger_are_scored_on_the_same_rows_and_the_verdict_is_kept() {
    let (dir, ctx, registry) = setup(
        2,
        json!({"criteria": ["accuracy >= 0.5", "recall[low] >= 0.5"]}),
    );
    registry.set_alias("m", "champion", 1).unwrap();
    let outcome = run(&ctx).unwrap();
    assert!(outcome.short_circuit.is_none(), "{outcome:?}");
    let file: GateRecord =
        serde_json::from_slice(&std::fs::read(dir.path().join("verdict.json")).unwrap()).unwrap();
    let rows = std::fs::read(dir.path().join("eval.csv")).unwrap();
    assert_eq!(file.rows.count, 60);
    assert_eq!(file.rows.digest, blake3::hash(&rows).to_hex().to_string());
    let champion = file.champion.clone().unwrap();
    assert_eq!(
        (champion.version, champion.alias.as_deref()),
        (1, Some("champion"))
    );
    assert_eq!(file.challenger.version, 2);
    assert!(champion.metrics.contains_key("recall[low]"));
    let criteria: Vec<&str> = file.criteria.iter().map(|c| c.criterion.as_str()).collect();
    assert_eq!(criteria[..2], ["rows >= 30", "rows of each class >= 2"]);
    assert_eq!(criteria[2..4], ["accuracy >= 0.5", "recall[low] >= 0.5"]);
    assert!(
        criteria[4].starts_with("f1_macro >= champion v1 ("),
        "{criteria:?}"
    );
    let stored = registry.get("m", 2).unwrap().gates;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].by.as_ref().map(|a| a.task_id.clone()),
        Some(Some("task".into()))
    );
    assert_eq!(
        GateRecord {
            at: None,
            by: None,
            ..stored[0].clone()
        },
        file
    );
    assert_eq!(outcome.values["champion_version"], json!(1));
}

#[test]
fn a_verdict_stands_until_the_champion_moves_elsewhere() {
    let (_dir, ctx, registry) = setup(2, json!({}));
    registry.set_alias("m", "champion", 1).unwrap();
    let outcome = run(&ctx).unwrap();
    assert_eq!(holds(&ctx, &outcome), Ok(()));
    registry.set_alias("m", "champion", 2).unwrap();
    assert_eq!(
        holds(&ctx, &outcome),
        Ok(()),
        "promoting the challenger keeps it"
    );
    registry.set_alias("m", "champion", 3).unwrap();
    assert_eq!(
        holds(&ctx, &outcome).unwrap_err(),
        "`champion` now points at v3; this verdict compared against v1"
    );
}

#[test]
fn too_few_rows_reject_with_the_count_and_the_threshold() {
    let (dir, mut ctx, registry) = setup(1, json!({"criteria": ["accuracy >= 0.5"]}));
    ctx.inputs
        .insert("data".into(), write(dir.path(), "few.csv", &tiny_csv(6)));
    let outcome = run(&ctx).unwrap();
    assert_eq!(
        outcome.short_circuit.as_deref(),
        Some(
            "gate rejected v1 on 6 rows: too little evidence: 6 evaluation rows, at least 30 needed (`min_rows`)"
        )
    );
    assert!(!registry.get("m", 1).unwrap().gates[0].passed);
}

#[test]
fn an_impossible_per_class_criterion_rejects_and_an_unknown_class_fails() {
    let (_dir, mut ctx, _registry) = setup(1, json!({"criteria": ["recall[mid] > 1"]}));
    let outcome = run(&ctx).unwrap();
    let reason = outcome.short_circuit.unwrap();
    assert!(reason.ends_with("recall[mid] 1.0000 <= 1"), "{reason}");
    ctx.params["criteria"] = json!(["recall[mdi] >= 0.5"]);
    let error = run(&ctx).unwrap_err().to_string();
    assert!(error.contains("did you mean `recall[mid]`?"), "{error}");
}
