//! `ml.evaluate`: scores a model file on the held-out test split and writes
//! the metrics JSON, with the permutation importance of each raw input
//! column (see [`crate::ml::importance`]), and, when declared, a
//! confusion-matrix heatmap PNG and an importance bar chart PNG.
//!
//! A class present in the test split but unknown to the model is kept in the
//! report (it can only be mispredicted); it does not fail the evaluation.
//! A test split of fewer than `min_rows` rows does: its metrics would be
//! noise (the message names the count and the threshold).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::ml::MlError;
use crate::ml::atomic::write_atomic;
use crate::ml::dataset::Table;
use crate::ml::forest::argmax;
use crate::ml::importance::{
    ImportanceParams, MAX_REPEATS, permutation_importance, write_importance_png,
};
use crate::ml::metrics::{ClassScores, roc_auc_ovr, score};
use crate::ml::model::TrainedModel;
use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    require_names, run_blocking,
};

pub struct Evaluate;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Columns whose values split the per-group accuracy report (one name or a list).
    #[serde(default)]
    group_by: GroupBy,
    /// Fewer test rows than this fail the evaluation.
    #[serde(default = "default_min_rows")]
    min_rows: usize,
    /// Permutation importance of the raw input columns: `false` to skip it,
    /// or `{repeats, seed, metric}`.
    #[serde(default)]
    importance: Importance,
}

/// `importance: false`, `importance: true` or the settings.
#[derive(Debug, Clone, Copy)]
struct Importance(Option<ImportanceParams>);

impl schemars::JsonSchema for Importance {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Importance".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let settings = generator.subschema_for::<ImportanceParams>();
        schemars::json_schema!({
            "description": "`false` skips it; `true` (the default) or a mapping computes it",
            "anyOf": [{"type": "boolean"}, settings],
        })
    }
}

impl Default for Importance {
    fn default() -> Self {
        Self(Some(ImportanceParams::default()))
    }
}

impl<'de> Deserialize<'de> for Importance {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Bool(false) => Ok(Self(None)),
            Value::Bool(true) => Ok(Self::default()),
            other => serde_json::from_value::<ImportanceParams>(other)
                .map(|params| Self(Some(params)))
                .map_err(|e| {
                    serde::de::Error::custom(format!(
                        "`importance` is `false`, `true` or a mapping of `repeats`, `seed` and `metric` (`accuracy` or `f1_macro`): {e}"
                    ))
                }),
        }
    }
}

fn default_min_rows() -> usize {
    10
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum GroupBy {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl GroupBy {
    fn columns(&self) -> Vec<String> {
        match self {
            Self::None => Vec::new(),
            Self::One(column) => vec![column.clone()],
            Self::Many(columns) => columns.clone(),
        }
    }
}

/// The evaluation of one model on one table.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub report: Value,
    pub accuracy: f64,
    pub f1_macro: f64,
    pub f1_weighted: f64,
    pub roc_auc_ovr: Option<f64>,
    pub classes: Vec<String>,
    pub confusion: Vec<Vec<usize>>,
}

/// Scores `model` on `table`, which must hold the target column.
pub fn evaluate(
    model: &TrainedModel,
    table: &Table,
    group_by: &[String],
) -> Result<Evaluation, MlError> {
    let labels = model.transformer().labels(table)?;
    let proba = model.predict_table(table)?;
    let mut classes: Vec<String> = model.classes().to_vec();
    classes.extend(labels.iter().cloned());
    classes.sort();
    classes.dedup();
    let index_of = |name: &str| {
        classes
            .binary_search_by(|c| c.as_str().cmp(name))
            .unwrap_or(0)
    };
    let model_to_all: Vec<usize> = model.classes().iter().map(|c| index_of(c)).collect();
    let truth: Vec<usize> = labels.iter().map(|l| index_of(l)).collect();
    let mut rows = Vec::with_capacity(table.rows);
    let mut predicted = Vec::with_capacity(table.rows);
    for row in proba.rows() {
        let model_row = row.to_vec();
        predicted.push(model_to_all[argmax(&model_row)]);
        let mut all = vec![0.0; classes.len()];
        model_to_all
            .iter()
            .zip(&model_row)
            .for_each(|(i, p)| all[*i] = *p);
        rows.push(all);
    }
    let scores = score(&truth, &predicted, classes.len());
    let (auc_per_class, auc) = roc_auc_ovr(&truth, &rows, classes.len());
    let mut per_class = Map::new();
    for ((name, s), auc) in classes.iter().zip(&scores.per_class).zip(&auc_per_class) {
        let ClassScores {
            precision,
            recall,
            f1,
            support,
        } = s;
        per_class.insert(name.clone(), json!({"precision": precision, "recall": recall, "f1": f1, "support": support, "roc_auc": auc}));
    }
    let mut groups = Map::new();
    for column in group_by {
        let values = table.text(column)?;
        let mut tally: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for ((value, t), p) in values.iter().zip(&truth).zip(&predicted) {
            let entry = tally.entry(value).or_default();
            entry.0 += usize::from(t == p);
            entry.1 += 1;
        }
        let section: Map<String, Value> = tally
            .into_iter()
            .map(|(value, (correct, n))| {
                (
                    value.to_string(),
                    json!({"accuracy": correct as f64 / n as f64, "support": n}),
                )
            })
            .collect();
        groups.insert(column.clone(), Value::Object(section));
    }
    let missing: Vec<&String> = classes
        .iter()
        .filter(|c| model.classes().binary_search(c).is_err())
        .collect();
    let report = json!({
        "accuracy": scores.accuracy,
        "f1_macro": scores.f1_macro,
        "f1_weighted": scores.f1_weighted,
        "roc_auc_ovr": auc,
        "rows": table.rows,
        "model": model.kind(),
        "model_digest": model.digest(),
        "per_class": per_class,
        "confusion_matrix": {"classes": classes, "matrix": scores.confusion},
        "classes_unknown_to_model": missing,
        "groups": groups,
    });
    Ok(Evaluation {
        report,
        accuracy: scores.accuracy,
        f1_macro: scores.f1_macro,
        f1_weighted: scores.f1_weighted,
        roc_auc_ovr: auc,
        classes,
        confusion: scores.confusion,
    })
}

impl Operator for Evaluate {
    fn name(&self) -> &'static str {
        "ml.evaluate"
    }

    fn description(&self) -> &'static str {
        "scores `model` on the held-out `test` split; writes `metrics` JSON and a `confusion` PNG"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<Params>())
    }

    fn ports(&self) -> crate::Ports {
        const PORTS: crate::Ports = crate::Ports {
            inputs: &[
                crate::Port::required("model", "a model file (native or ONNX)"),
                crate::Port::required("test", "the held-out rows, with the target"),
            ],
            outputs: &[
                crate::Port::required(
                    "metrics",
                    "JSON: accuracy, F1, ROC-AUC, per-class scores, confusion matrix, groups, permutation importance",
                ),
                crate::Port::optional("confusion", "PNG: the confusion matrix with class names"),
                crate::Port::optional("importance", "PNG: the permutation importance bar chart"),
            ],
            ..crate::Ports::NONE
        };
        PORTS
    }

    fn version(&self) -> &'static str {
        // 2: permutation importance in the report; named confusion axes.
        "2"
    }

    fn value_names(&self) -> &'static [&'static str] {
        &["accuracy", "f1_macro"]
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("inputs", spec.inputs, &["model", "test"]);
        problems.extend(require_names("outputs", spec.outputs, &["metrics"]));
        match parse_params::<Params>(spec.params) {
            Err(problem) => problems.push(problem),
            Ok(params) => {
                if let Some(settings) = params.importance.0
                    && (settings.repeats == 0 || settings.repeats > MAX_REPEATS)
                {
                    problems.push(Problem::new(
                        "params.importance.repeats",
                        format!(
                            "`repeats` must be between 1 and {MAX_REPEATS}, got {}",
                            settings.repeats
                        ),
                    ));
                }
                if params.importance.0.is_none() && spec.outputs.contains_key("importance") {
                    problems.push(Problem::new(
                        "outputs.importance",
                        "the `importance` chart needs `importance` on; remove the output or the `importance: false`",
                    ));
                }
            }
        }
        for output in ["confusion", "importance"] {
            if let Some(path) = spec.outputs.get(output)
                && !path.to_ascii_lowercase().ends_with(".png")
            {
                problems.push(Problem::new(
                    format!("outputs.{output}"),
                    format!("`{path}` must be a `.png` file"),
                ));
            }
        }
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| {
            let params: Params =
                parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
            let model = TrainedModel::load(ctx.input("model")?)?;
            let test = ctx.input("test")?;
            let table = Table::read(test)?;
            if table.rows < params.min_rows {
                return Err(OperatorError::failed(format!(
                    "`{}` has {} test rows; an evaluation needs at least {} (`min_rows`)",
                    test.display(),
                    table.rows,
                    params.min_rows
                )));
            }
            let mut evaluation = evaluate(&model, &table, &params.group_by.columns())?;
            let mut top = None;
            if let Some(settings) = params.importance.0 {
                ctx.progress.report(0, 1, "permutation importance");
                let importances = permutation_importance(&model, &table, &settings)?;
                if let Some(path) = ctx.outputs.get("importance") {
                    write_importance_png(path, &importances, &settings)?;
                }
                top = importances
                    .first()
                    .map(|i| format!(", top feature {} ({:+.3})", i.feature, i.mean));
                evaluation.report["permutation_importance"] = json!({
                    "metric": settings.metric.name(),
                    "repeats": settings.repeats,
                    "seed": settings.seed,
                    "features": importances,
                });
            }
            let bytes = serde_json::to_vec_pretty(&evaluation.report).map_err(|source| {
                MlError::Encode {
                    what: "metrics",
                    source,
                }
            })?;
            write_atomic(ctx.output("metrics")?, &bytes)?;
            if let Some(path) = ctx.outputs.get("confusion") {
                crate::ml::heatmap::write_confusion_png(
                    path,
                    &evaluation.classes,
                    &evaluation.confusion,
                )?;
            }
            let mut outcome = Outcome::default()
                .value("accuracy", evaluation.accuracy)
                .value("f1_macro", evaluation.f1_macro)
                .metric("accuracy", evaluation.accuracy)
                .metric("f1_macro", evaluation.f1_macro)
                .metric("f1_weighted", evaluation.f1_weighted);
            if let Some(auc) = evaluation.roc_auc_ovr {
                outcome = outcome.metric("roc_auc_ovr", auc);
            }
            Ok(outcome.summary(format!(
                "accuracy {:.3}, macro-F1 {:.3}{}",
                evaluation.accuracy,
                evaluation.f1_macro,
                top.unwrap_or_default()
            )))
        })
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;
    use crate::ml::test_fixtures::{tiny_csv, tiny_model, write};

    #[test]
    fn evaluation_reports_metrics_groups_and_confusion() {
        let dir = tempfile::tempdir().unwrap();
        let model = TrainedModel::load(&tiny_model(dir.path(), 1)).unwrap();
        let table = Table::read(&write(dir.path(), "test.csv", &tiny_csv(12))).unwrap();
        let evaluation = evaluate(&model, &table, &["g".to_string()]).unwrap();
        assert_eq!(evaluation.accuracy, 1.0);
        assert_eq!(evaluation.report["groups"]["g"]["a"]["support"], json!(6));
        assert_eq!(
            evaluation.report["confusion_matrix"]["classes"],
            json!(["high", "low", "mid"])
        );
        assert_eq!(evaluation.report["per_class"]["low"]["support"], json!(4));
        assert_eq!(evaluation.roc_auc_ovr, Some(1.0));
    }

    #[test]
    fn class_missing_from_training_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let model = TrainedModel::load(&tiny_model(dir.path(), 1)).unwrap();
        let test = "g,x,label\na,0.0,low\nb,10.0,mid\na,5.0,extreme\n";
        let table = Table::read(&write(dir.path(), "test.csv", test)).unwrap();
        let evaluation = evaluate(&model, &table, &[]).unwrap();
        assert_eq!(evaluation.classes, ["extreme", "high", "low", "mid"]);
        assert_eq!(
            evaluation.report["classes_unknown_to_model"],
            json!(["extreme"])
        );
        assert_eq!(
            evaluation.report["per_class"]["extreme"]["recall"],
            json!(0.0)
        );
        assert!((evaluation.accuracy - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn evaluate_operator_writes_metrics_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = Context::detached(dir.path(), json!({"group_by": "g"}));
        ctx.inputs.insert("model".into(), tiny_model(dir.path(), 1));
        ctx.inputs
            .insert("test".into(), write(dir.path(), "test.csv", &tiny_csv(12)));
        ctx.outputs
            .insert("metrics".into(), dir.path().join("m.json"));
        ctx.outputs
            .insert("confusion".into(), dir.path().join("c.png"));
        ctx.outputs
            .insert("importance".into(), dir.path().join("i.png"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(Evaluate.execute(&ctx)).unwrap();
        let summary = outcome.summary.as_deref().unwrap();
        assert!(
            summary.starts_with("accuracy 1.000, macro-F1 1.000, top feature x (+0."),
            "{summary}"
        );
        let report: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("m.json")).unwrap()).unwrap();
        let importance = &report["permutation_importance"];
        assert_eq!(importance["metric"], "accuracy");
        assert_eq!(importance["repeats"], 5);
        assert_eq!(importance["features"][0]["feature"], "x");
        assert_eq!(importance["features"][1]["feature"], "g");
        assert!(
            std::fs::read(dir.path().join("i.png"))
                .unwrap()
                .starts_with(b"\x89PNG")
        );
        assert_eq!(outcome.metrics["roc_auc_ovr"], 1.0);
        assert!(
            std::fs::read(dir.path().join("c.png"))
                .unwrap()
                .starts_with(b"\x89PNG")
        );
    }

    fn problems(params: Value, outputs: &[(&str, &str)]) -> Vec<String> {
        let inputs = BTreeMap::from([
            ("model".to_string(), "m.json".to_string()),
            ("test".to_string(), "t.csv".to_string()),
        ]);
        let mut declared = BTreeMap::from([("metrics".to_string(), "m.json".to_string())]);
        for (name, path) in outputs {
            declared.insert(name.to_string(), path.to_string());
        }
        Evaluate
            .check(&TaskSpec {
                params: &params,
                inputs: &inputs,
                outputs: &declared,
            })
            .into_iter()
            .map(|p| format!("{}: {}", p.at, p.message))
            .collect()
    }

    #[test]
    fn importance_settings_are_checked_at_load_time() {
        assert!(problems(json!({}), &[("importance", "i.png")]).is_empty());
        assert!(
            problems(
                json!({"importance": {"repeats": 3, "seed": 7, "metric": "f1_macro"}}),
                &[]
            )
            .is_empty()
        );
        let zero = problems(json!({"importance": {"repeats": 0}}), &[]);
        assert_eq!(zero.len(), 1, "{zero:?}");
        assert!(
            zero[0].starts_with("params.importance.repeats: "),
            "{zero:?}"
        );
        let off = problems(json!({"importance": false}), &[("importance", "i.png")]);
        assert!(off[0].starts_with("outputs.importance: "), "{off:?}");
        let typo = problems(json!({"importance": {"repeat": 3}}), &[]);
        assert!(
            typo[0].contains("`importance` is `false`, `true` or a mapping"),
            "{typo:?}"
        );
        let not_png = problems(json!({}), &[("importance", "i.svg")]);
        assert!(
            not_png[0].starts_with("outputs.importance: "),
            "{not_png:?}"
        );
    }

    #[test]
    fn too_few_test_rows_fail_with_the_count_and_the_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = Context::detached(dir.path(), json!({}));
        ctx.inputs.insert("model".into(), tiny_model(dir.path(), 1));
        ctx.inputs
            .insert("test".into(), write(dir.path(), "test.csv", &tiny_csv(2)));
        ctx.outputs
            .insert("metrics".into(), dir.path().join("m.json"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let message = runtime
            .block_on(Evaluate.execute(&ctx))
            .unwrap_err()
            .to_string();
        assert!(
            message.ends_with("has 2 test rows; an evaluation needs at least 10 (`min_rows`)"),
            "{message}"
        );
    }

    #[test]
    fn missing_feature_column_in_test_split_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let model = TrainedModel::load(&tiny_model(dir.path(), 1)).unwrap();
        let table = Table::read(&write(dir.path(), "test.csv", "g,label\na,low\n")).unwrap();
        let message = evaluate(&model, &table, &[]).unwrap_err().to_string();
        assert!(message.contains("no column `x`"), "{message}");
    }
}
