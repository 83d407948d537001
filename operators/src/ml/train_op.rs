//! `ml.train`: fits a classifier on the training split with an already fitted
//! transformer, optionally choosing hyperparameters by stratified k-fold
//! cross-validation over a grid, and writes one self-contained model file.
//!
//! It refuses training data too thin to learn from — fewer than `min_rows`
//! rows, one class only, or a class with fewer than `min_rows_per_class`
//! rows — naming the count and the threshold. It does not evaluate on
//! held-out data (that is `ml.evaluate`) nor register the model (that is
//! `models.register`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use ndarray::Array1;
use serde_json::{Map, Value, json};

use crate::ml::MlError;
use crate::ml::atomic::write_atomic;
use crate::ml::dataset::Table;
use crate::ml::features::Transformer;
use crate::ml::forest::FitHooks;
use crate::ml::metrics::score;
use crate::ml::model::{MODEL_FORMAT, ModelFile};
use crate::ml::train_evidence::{count_param, enough_evidence};
use crate::ml::training::{
    CvScores, Hyperparameters, cross_validate, fit_classifier, grid_candidates, predict_classes,
};
use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    require_names, run_blocking,
};

pub struct Train;

/// The shape of `ml.train` params, for the schema: every hyperparameter,
/// plus cross-validation, a grid search and the row minimums.
#[derive(schemars::JsonSchema)]
#[expect(dead_code, reason = "only the schema of this type is used")]
struct TrainParamsSchema {
    #[serde(flatten)]
    hyper: Hyperparameters,
    /// Stratified k-fold cross-validation on the training rows (k ≥ 2); its
    /// scores are written to the `metrics` output.
    cv_folds: Option<usize>,
    /// Hyperparameter → values to try; every combination (at most 1,000)
    /// is cross-validated and the best (by macro-F1) is fitted on all rows.
    grid: Option<BTreeMap<String, Vec<Value>>>,
    /// Fewer training rows fail the task (default 20).
    min_rows: Option<usize>,
    /// A class with fewer training rows fails the task (default 2).
    min_rows_per_class: Option<usize>,
}

/// `ml.train` params: every [`Hyperparameters`] field plus `cv_folds`,
/// `grid`, `min_rows` and `min_rows_per_class`.
#[derive(Debug, Clone)]
pub struct TrainParams {
    pub hyper: Hyperparameters,
    pub cv_folds: Option<usize>,
    pub grid: BTreeMap<String, Vec<Value>>,
    /// Fewer training rows than this are refused (default 20).
    pub min_rows: usize,
    /// A class with fewer training rows than this is refused (default 2).
    pub min_rows_per_class: usize,
}

impl TrainParams {
    pub fn parse(params: &Value) -> Result<Self, Vec<Problem>> {
        let mut map = params.as_object().cloned().unwrap_or_default();
        let mut problems = Vec::new();
        let min_rows = count_param(&mut map, "min_rows", 20, &mut problems);
        let min_rows_per_class = count_param(&mut map, "min_rows_per_class", 2, &mut problems);
        let cv_folds = match map.remove("cv_folds") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_u64() {
                Some(k) if k >= 2 => Some(k as usize),
                _ => {
                    problems.push(Problem::new(
                        "params.cv_folds",
                        format!("`cv_folds` must be an integer >= 2, got `{value}`"),
                    ));
                    None
                }
            },
        };
        let grid = match map.remove("grid") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(value) => serde_json::from_value::<BTreeMap<String, Vec<Value>>>(value)
                .unwrap_or_else(|e| {
                    problems.push(Problem::new(
                        "params.grid",
                        format!("`grid` must map hyperparameters to lists: {e}"),
                    ));
                    BTreeMap::new()
                }),
        };
        let hyper = match parse_params::<Hyperparameters>(&Value::Object(map)) {
            Ok(hyper) => hyper,
            Err(problem) => {
                problems.push(problem);
                return Err(problems);
            }
        };
        problems.extend(
            hyper
                .problems()
                .into_iter()
                .map(|(field, message)| Problem::new(format!("params.{field}"), message)),
        );
        for name in grid.keys() {
            if matches!(name.as_str(), "model" | "seed") {
                problems.push(Problem::new(
                    "params.grid",
                    format!("`{name}` cannot be searched over"),
                ));
            }
        }
        match grid_candidates(&hyper, &grid) {
            Err(error) => problems.push(Problem::new("params.grid", error.to_string())),
            // Each set the grid makes is held to the same rules.
            Ok(candidates) if !grid.is_empty() => {
                let mut seen = std::collections::BTreeSet::new();
                for (field, message) in candidates.iter().flat_map(Hyperparameters::problems) {
                    if seen.insert(message.clone()) {
                        problems.push(Problem::new(
                            format!("params.grid.{field}"),
                            format!("in the grid: {message}"),
                        ));
                    }
                }
            }
            Ok(_) => {}
        }
        if problems.is_empty() {
            Ok(Self {
                hyper,
                cv_folds,
                grid,
                min_rows,
                min_rows_per_class,
            })
        } else {
            Err(problems)
        }
    }
}

/// Reads a transformer written by `data.features`.
pub fn read_transformer(path: &Path) -> Result<Transformer, MlError> {
    let bytes = std::fs::read(path).map_err(|e| MlError::io("read transformer", path, e))?;
    let transformer: Transformer =
        serde_json::from_slice(&bytes).map_err(|source| MlError::Format {
            path: path.into(),
            what: "transformer",
            source,
        })?;
    transformer.validate().map_err(|message| {
        MlError::invalid(format!(
            "transformer `{}` is inconsistent: {message}",
            path.display()
        ))
    })?;
    Ok(transformer)
}

/// Everything `ml.train` produces.
pub struct TrainResult {
    pub model: ModelFile,
    pub bytes: Vec<u8>,
    pub train_accuracy: f64,
    pub cv: Option<CvScores>,
    pub grid: Vec<(Hyperparameters, CvScores)>,
}

/// Fits the model `params` describes on `table` (the training split).
pub fn train(
    params: &TrainParams,
    transformer: Transformer,
    table: &Table,
    hooks: &FitHooks<'_>,
) -> Result<TrainResult, MlError> {
    let labels = transformer.labels(table)?;
    enough_evidence(params, table, &labels)?;
    let mut classes = labels.clone();
    classes.sort();
    classes.dedup();
    let y: Array1<usize> = labels
        .iter()
        .map(|l| classes.binary_search(l).unwrap_or(0))
        .collect();
    let x = transformer.transform(table)?;
    let n_classes = classes.len();
    let mut chosen = params.hyper.clone();
    let mut grid = Vec::new();
    let mut cv = None;
    if !params.grid.is_empty() {
        let k = params.cv_folds.unwrap_or(5);
        let mut best: Option<(Hyperparameters, CvScores)> = None;
        for candidate in grid_candidates(&params.hyper, &params.grid)? {
            let scores = cross_validate(&candidate, &x, &y, n_classes, k, hooks.cancelled)?;
            if best
                .as_ref()
                .is_none_or(|(_, b)| scores.f1_macro_mean > b.f1_macro_mean)
            {
                best = Some((candidate.clone(), scores.clone()));
            }
            grid.push((candidate, scores));
        }
        if let Some((params, scores)) = best {
            chosen = params;
            cv = Some(scores);
        }
    } else if let Some(k) = params.cv_folds {
        cv = Some(cross_validate(
            &chosen,
            &x,
            &y,
            n_classes,
            k,
            hooks.cancelled,
        )?);
    }
    let classifier = fit_classifier(&chosen, &x, &y, n_classes, hooks)?;
    let predicted = predict_classes(&classifier, &x)?;
    let train_accuracy = score(y.as_slice().unwrap_or(&[]), &predicted, n_classes).accuracy;
    let params_value = serde_json::to_value(&chosen).map_err(|source| MlError::Encode {
        what: "params",
        source,
    })?;
    let model = ModelFile {
        format: MODEL_FORMAT.into(),
        classes,
        transformer,
        params: params_value,
        classifier,
    };
    let bytes = model.to_bytes()?;
    Ok(TrainResult {
        model,
        bytes,
        train_accuracy,
        cv,
        grid,
    })
}

fn metrics_json(result: &TrainResult, rows: usize) -> Value {
    let mut out = Map::new();
    out.insert("model".into(), json!(result.model.classifier.kind()));
    out.insert("train_accuracy".into(), json!(result.train_accuracy));
    if let Some(cv) = &result.cv {
        out.insert("cv_accuracy_mean".into(), json!(cv.accuracy_mean));
        out.insert("cv_accuracy_std".into(), json!(cv.accuracy_std));
        out.insert("cv_f1_macro_mean".into(), json!(cv.f1_macro_mean));
        out.insert("cv_f1_macro_std".into(), json!(cv.f1_macro_std));
        out.insert("cv_folds".into(), json!(cv.folds));
    }
    out.insert("params".into(), result.model.params.clone());
    if !result.grid.is_empty() {
        let grid: Vec<Value> = result
            .grid
            .iter()
            .map(|(p, s)| json!({"params": p, "cv": s}))
            .collect();
        out.insert("grid".into(), Value::Array(grid));
    }
    out.insert("rows".into(), json!(rows));
    out.insert(
        "features".into(),
        json!(result.model.transformer.feature_names),
    );
    out.insert("classes".into(), json!(result.model.classes));
    Value::Object(out)
}

impl Operator for Train {
    fn name(&self) -> &'static str {
        "ml.train"
    }

    fn description(&self) -> &'static str {
        "fits random_forest, decision_tree or logistic_regression on `train` with `transformer`; optional cv and grid search"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<TrainParamsSchema>())
    }

    fn ports(&self) -> crate::Ports {
        const PORTS: crate::Ports = crate::Ports {
            inputs: &[
                crate::Port::required("train", "the training rows"),
                crate::Port::required("transformer", "the fitted `data.features` transformer"),
            ],
            outputs: &[
                crate::Port::required(
                    "model",
                    "the model file (JSON, identical bytes for identical data, params and seed)",
                ),
                crate::Port::optional("metrics", "JSON: training and cross-validation scores"),
            ],
            ..crate::Ports::NONE
        };
        PORTS
    }

    fn value_names(&self) -> &'static [&'static str] {
        &["model", "model_digest"]
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("inputs", spec.inputs, &["train", "transformer"]);
        problems.extend(require_names("outputs", spec.outputs, &["model"]));
        if let Err(found) = TrainParams::parse(spec.params) {
            problems.extend(found);
        }
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| {
            let params = TrainParams::parse(&ctx.params).map_err(|p| {
                OperatorError::Params(
                    p.into_iter()
                        .map(|p| p.message)
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })?;
            let table = Table::read(ctx.input("train")?)?;
            let transformer = read_transformer(ctx.input("transformer")?)?;
            let started = Instant::now();
            let total = if params.hyper.model == crate::ml::training::ModelKind::RandomForest {
                params.hyper.n_trees
            } else {
                1
            };
            let progress = |done: usize| ctx.progress.report(done as u64, total as u64, "trees");
            let cancelled = || ctx.cancel.is_cancelled();
            let hooks = FitHooks {
                progress: &progress,
                cancelled: &cancelled,
            };
            let result = train(&params, transformer, &table, &hooks)?;
            ctx.log.line(format_args!(
                "trained {} on {} rows in {:.3} s",
                result.model.classifier.kind(),
                table.rows,
                started.elapsed().as_secs_f64()
            ));
            let model_path = ctx.output("model")?;
            write_atomic(model_path, &result.bytes)?;
            let digest = blake3::hash(&result.bytes).to_hex().to_string();
            if let Some(path) = ctx.outputs.get("metrics") {
                let json = metrics_json(&result, table.rows);
                let bytes = serde_json::to_vec_pretty(&json).map_err(|source| MlError::Encode {
                    what: "metrics",
                    source,
                })?;
                write_atomic(path, &bytes)?;
            }
            let mut outcome = Outcome::default()
                .value("model", model_path.display().to_string())
                .value("model_digest", digest.clone())
                .metric("train_accuracy", result.train_accuracy);
            let mut summary = format!(
                "{} train accuracy {:.3}",
                result.model.classifier.kind(),
                result.train_accuracy
            );
            if let Some(cv) = &result.cv {
                outcome = outcome
                    .metric("cv_accuracy_mean", cv.accuracy_mean)
                    .metric("cv_accuracy_std", cv.accuracy_std)
                    .metric("cv_f1_macro_mean", cv.f1_macro_mean)
                    .metric("cv_f1_macro_std", cv.f1_macro_std);
                summary.push_str(&format!(
                    ", cv macro-F1 {:.3} ± {:.3}",
                    cv.f1_macro_mean, cv.f1_macro_std
                ));
            }
            Ok(outcome.summary(format!("{summary}, digest {}", &digest[..12])))
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
    use crate::ml::test_fixtures::{tiny_csv, write};

    fn check(params: Value) -> Vec<Problem> {
        let inputs = BTreeMap::from([
            ("train".to_string(), "t.csv".to_string()),
            ("transformer".into(), "x.json".into()),
        ]);
        let outputs = BTreeMap::from([("model".to_string(), "m.json".to_string())]);
        Train.check(&TaskSpec {
            params: &params,
            inputs: &inputs,
            outputs: &outputs,
        })
    }

    #[test]
    fn typos_and_bad_values_are_load_time_problems() {
        assert!(check(json!({"model": "random_forest", "n_tree": 3}))[0].at == "params.n_tree");
        assert!(
            check(json!({"model": "svm"}))[0]
                .message
                .contains("unknown variant")
        );
        assert_eq!(
            check(json!({"model": "random_forest", "cv_folds": 1}))[0].at,
            "params.cv_folds"
        );
        assert_eq!(
            check(json!({"model": "random_forest", "grid": {"seed": [1, 2]}}))[0].at,
            "params.grid"
        );
        assert!(
            check(json!({"model": "random_forest", "max_features": "half"}))[0]
                .at
                .starts_with("params")
        );
        assert!(check(json!({"model": "random_forest", "max_features": "log2", "grid": {"max_depth": [3, 6]}})).is_empty());
        let too_many = check(json!({"model": "random_forest", "n_trees": 20_000}));
        assert_eq!(too_many.len(), 1, "{too_many:?}");
        assert_eq!(too_many[0].at, "params.n_trees");
        // A grid value is held to the same rules, once per problem.
        let grid = check(
            json!({"model": "random_forest", "grid": {"n_trees": [10, 20_000, 0], "max_depth": [3, 6]}}),
        );
        let found: Vec<(&str, &str)> = grid
            .iter()
            .map(|p| (p.at.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "params.grid.n_trees",
                    "in the grid: `n_trees` must be at most 10000, got 20000"
                ),
                (
                    "params.grid.n_trees",
                    "in the grid: `n_trees` must be at least 1"
                ),
            ]
        );
    }

    #[test]
    fn grid_search_picks_by_cv_and_records_every_candidate() {
        let dir = tempfile::tempdir().unwrap();
        let table = Table::read(&write(dir.path(), "t.csv", &tiny_csv(60))).unwrap();
        let config: crate::ml::FeatureConfig =
            serde_json::from_value(json!({"target": "label"})).unwrap();
        let transformer = Transformer::fit(&config, &table).unwrap();
        let params = TrainParams::parse(&json!({
            "model": "decision_tree", "cv_folds": 3, "grid": {"max_depth": [0, 3]}
        }))
        .unwrap();
        let hooks = FitHooks {
            progress: &|_| {},
            cancelled: &|| false,
        };
        let result = train(&params, transformer, &table, &hooks).unwrap();
        assert_eq!(result.grid.len(), 2);
        assert_eq!(result.model.params["max_depth"], json!(3));
        assert!(result.cv.unwrap().f1_macro_mean > 0.9);
        assert_eq!(result.train_accuracy, 1.0);
    }

    fn fit(csv: &str, params: Value) -> Result<TrainResult, MlError> {
        let dir = tempfile::tempdir().unwrap();
        let table = Table::read(&write(dir.path(), "t.csv", csv)).unwrap();
        let config: crate::ml::FeatureConfig =
            serde_json::from_value(json!({"target": "label"})).unwrap();
        let transformer = Transformer::fit(&config, &table).unwrap();
        let hooks = FitHooks {
            progress: &|_| {},
            cancelled: &|| false,
        };
        train(
            &TrainParams::parse(&params).unwrap(),
            transformer,
            &table,
            &hooks,
        )
    }

    fn refused(csv: &str, params: Value) -> String {
        match fit(csv, params) {
            Ok(_) => panic!("training on this data should be refused"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn thin_training_data_is_refused_with_the_count_and_the_threshold() {
        let forest = json!({"model": "random_forest", "n_trees": 3});
        let few = refused(&tiny_csv(5), forest.clone());
        assert!(
            few.ends_with("has 5 training rows; at least 20 needed (`min_rows`)"),
            "{few}"
        );
        let one_class: String = (0..30).map(|i| format!("a,{i},low\n")).collect();
        let message = refused(&format!("g,x,label\n{one_class}"), forest.clone());
        assert!(
            message.ends_with("has one class only (`low`); a classifier needs at least 2"),
            "{message}"
        );
        let lonely = format!("{}b,99,rare\n", tiny_csv(30));
        let message = refused(&lonely, forest.clone());
        assert!(
            message.starts_with("class `rare` has 1 training rows in `")
                && message.ends_with("at least 2 needed (`min_rows_per_class`)"),
            "{message}"
        );
        let mut allowed = forest;
        allowed["min_rows_per_class"] = json!(1);
        assert!(fit(&lonely, allowed).is_ok());
        assert_eq!(
            check(json!({"model": "random_forest", "min_rows": 0}))[0].at,
            "params.min_rows"
        );
    }
}
