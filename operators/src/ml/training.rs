//! Fitting a classifier from typed hyperparameters: [`Hyperparameters`],
//! [`fit_classifier`], stratified k-fold cross-validation and grid search.
//!
//! It works on an already transformed feature matrix and class indices; it
//! does not read files nor name classes.

use std::collections::BTreeMap;

use ndarray::{Array1, Array2, Axis};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ml::MlError;
use crate::ml::forest::{ClassWeight, FitHooks, ForestParams, argmax};
use crate::ml::logistic::LogisticParams;
use crate::ml::metrics::{mean_std, score};
use crate::ml::model::Classifier;
use crate::ml::rng::SplitMix64;
use crate::ml::tree::{MaxFeatures, MaxFeaturesRule, TreeParams};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    RandomForest,
    DecisionTree,
    LogisticRegression,
}

/// Every hyperparameter `ml.train` accepts; the grid may vary any of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hyperparameters {
    /// The kind of model to fit.
    pub model: ModelKind,
    /// Trees of a `random_forest` (1 to 10,000).
    #[serde(default = "default_trees")]
    pub n_trees: usize,
    /// The deepest a tree grows; unlimited unless set.
    #[serde(default)]
    pub max_depth: Option<usize>,
    /// A node with fewer samples is not split.
    #[serde(default = "default_split")]
    pub min_samples_split: usize,
    /// Each leaf keeps at least this many samples.
    #[serde(default = "default_leaf")]
    pub min_samples_leaf: usize,
    /// `sqrt` for forests and `all` for a single tree unless set.
    #[serde(default)]
    pub max_features: Option<MaxFeatures>,
    /// `balanced` weighs each class by the inverse of its frequency.
    #[serde(default)]
    pub class_weight: ClassWeight,
    /// Optimiser iterations of a `logistic_regression`.
    #[serde(default = "default_iterations")]
    pub max_iterations: u64,
    /// L2 regularisation strength of a `logistic_regression`.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// The same data, params and seed give byte-identical models.
    #[serde(default)]
    pub seed: u64,
}

fn default_trees() -> usize {
    100
}

/// The most trees a forest may have: more only costs time and memory (a
/// mistyped `n_trees` must not exhaust the machine).
pub const MAX_TREES: usize = 10_000;

/// The most hyperparameter sets a grid may hold: each one is
/// cross-validated, and the grid is listed before anything is fitted.
pub const MAX_GRID_CANDIDATES: usize = 1_000;
fn default_split() -> usize {
    2
}
fn default_leaf() -> usize {
    1
}
fn default_iterations() -> u64 {
    200
}
fn default_alpha() -> f64 {
    1.0
}

impl Hyperparameters {
    /// Problems with values serde accepts but fitting would not, each with
    /// the hyperparameter it is about.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.n_trees == 0 {
            problems.push(("n_trees", "`n_trees` must be at least 1".to_string()));
        }
        if self.n_trees > MAX_TREES {
            problems.push((
                "n_trees",
                format!(
                    "`n_trees` must be at most {MAX_TREES}, got {}",
                    self.n_trees
                ),
            ));
        }
        if self.min_samples_leaf == 0 {
            problems.push((
                "min_samples_leaf",
                "`min_samples_leaf` must be at least 1".to_string(),
            ));
        }
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            problems.push(("alpha", "`alpha` must be a finite number >= 0".to_string()));
        }
        if self.max_iterations == 0 {
            problems.push((
                "max_iterations",
                "`max_iterations` must be at least 1".to_string(),
            ));
        }
        problems
    }

    /// This set with one hyperparameter replaced (for grid search).
    pub fn with(&self, name: &str, value: &Value) -> Result<Self, MlError> {
        let mut object = serde_json::to_value(self).map_err(|source| MlError::Encode {
            what: "params",
            source,
        })?;
        if let Some(map) = object.as_object_mut() {
            map.insert(name.to_string(), value.clone());
        }
        serde_json::from_value(object).map_err(|e| {
            MlError::invalid(format!(
                "grid value `{value}` for `{name}` is not valid: {e}"
            ))
        })
    }
}

/// Fits the classifier `params` describes on `x` (rows × features), labels `y` in `0..n_classes`.
pub fn fit_classifier(
    params: &Hyperparameters,
    x: &Array2<f64>,
    y: &Array1<usize>,
    n_classes: usize,
    hooks: &FitHooks<'_>,
) -> Result<Classifier, MlError> {
    let forest = |n_trees, bootstrap, max_features| ForestParams {
        n_trees,
        bootstrap,
        tree: TreeParams {
            max_depth: params.max_depth,
            min_samples_split: params.min_samples_split,
            min_samples_leaf: params.min_samples_leaf,
            max_features: params
                .max_features
                .unwrap_or(MaxFeatures::Named(max_features)),
        },
        class_weight: params.class_weight,
        seed: params.seed,
        n_classes,
    };
    Ok(match params.model {
        ModelKind::RandomForest => Classifier::RandomForest(
            forest(params.n_trees, true, MaxFeaturesRule::Sqrt).fit_with_hooks(x, y, hooks)?,
        ),
        ModelKind::DecisionTree => Classifier::DecisionTree(
            forest(1, false, MaxFeaturesRule::All).fit_with_hooks(x, y, hooks)?,
        ),
        ModelKind::LogisticRegression => {
            let model = LogisticParams {
                max_iterations: params.max_iterations,
                alpha: params.alpha,
                n_classes,
            }
            .fit(x, y)?;
            (hooks.progress)(1);
            Classifier::LogisticRegression(model)
        }
    })
}

/// Predicted class indices.
pub fn predict_classes(classifier: &Classifier, x: &Array2<f64>) -> Result<Vec<usize>, MlError> {
    Ok(classifier
        .predict_proba(x.view())?
        .rows()
        .into_iter()
        .map(|r| argmax(&r.to_vec()))
        .collect())
}

/// Assigns each row to one of `k` folds so every class is spread evenly.
pub fn stratified_folds(y: &[usize], k: usize, seed: u64) -> Vec<usize> {
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (row, class) in y.iter().enumerate() {
        by_class.entry(*class).or_default().push(row);
    }
    let mut fold_of = vec![0; y.len()];
    let mut rng = SplitMix64::for_stream(seed, u64::MAX);
    let mut next = 0;
    for rows in by_class.values_mut() {
        rng.shuffle(rows);
        for row in rows.iter() {
            fold_of[*row] = next % k;
            next += 1;
        }
    }
    fold_of
}

/// Cross-validation result: mean and standard deviation over folds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CvScores {
    pub folds: usize,
    pub accuracy_mean: f64,
    pub accuracy_std: f64,
    pub f1_macro_mean: f64,
    pub f1_macro_std: f64,
}

/// Stratified k-fold cross-validation of `params` on `x`, `y`.
pub fn cross_validate(
    params: &Hyperparameters,
    x: &Array2<f64>,
    y: &Array1<usize>,
    n_classes: usize,
    k: usize,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<CvScores, MlError> {
    if k < 2 || k > y.len() {
        return Err(MlError::invalid(format!(
            "`cv_folds` is {k}, but cross-validation needs 2 to {} folds on {} training rows",
            y.len(),
            y.len()
        )));
    }
    let folds = stratified_folds(y.as_slice().unwrap_or(&y.to_vec()), k, params.seed);
    let mut accuracies = Vec::with_capacity(k);
    let mut f1s = Vec::with_capacity(k);
    for fold in 0..k {
        if cancelled() {
            return Err(MlError::Cancelled);
        }
        let train: Vec<usize> = (0..y.len()).filter(|r| folds[*r] != fold).collect();
        let test: Vec<usize> = (0..y.len()).filter(|r| folds[*r] == fold).collect();
        let hooks = FitHooks {
            progress: &|_| {},
            cancelled,
        };
        let classifier = fit_classifier(
            params,
            &x.select(Axis(0), &train),
            &y.select(Axis(0), &train),
            n_classes,
            &hooks,
        )?;
        let predicted = predict_classes(&classifier, &x.select(Axis(0), &test))?;
        let truth: Vec<usize> = test.iter().map(|r| y[*r]).collect();
        let scores = score(&truth, &predicted, n_classes);
        accuracies.push(scores.accuracy);
        f1s.push(scores.f1_macro);
    }
    let (accuracy_mean, accuracy_std) = mean_std(&accuracies);
    let (f1_macro_mean, f1_macro_std) = mean_std(&f1s);
    Ok(CvScores {
        folds: k,
        accuracy_mean,
        accuracy_std,
        f1_macro_mean,
        f1_macro_std,
    })
}

/// Every combination of a grid (keys in sorted order, values in given order).
pub fn grid_candidates(
    base: &Hyperparameters,
    grid: &BTreeMap<String, Vec<Value>>,
) -> Result<Vec<Hyperparameters>, MlError> {
    // Counted before any is built: a few short lists multiply to millions.
    let mut count: usize = 1;
    for (name, values) in grid {
        if values.is_empty() {
            return Err(MlError::invalid(format!(
                "`grid.{name}` is an empty list; give it at least one value"
            )));
        }
        count = count.saturating_mul(values.len());
    }
    if count > MAX_GRID_CANDIDATES {
        let sizes: Vec<String> = grid.values().map(|v| v.len().to_string()).collect();
        let total = if count == usize::MAX {
            "more than can be counted".to_string()
        } else {
            count.to_string()
        };
        return Err(MlError::invalid(format!(
            "the grid has {total} combinations ({}); at most {MAX_GRID_CANDIDATES} are tried",
            sizes.join(" × ")
        )));
    }
    let mut candidates = vec![base.clone()];
    for (name, values) in grid {
        let mut next = Vec::with_capacity(candidates.len() * values.len());
        for candidate in &candidates {
            for value in values {
                next.push(candidate.with(name, value)?);
            }
        }
        candidates = next;
    }
    Ok(candidates)
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;

    fn base() -> Hyperparameters {
        serde_json::from_value(serde_json::json!({"model": "random_forest", "n_trees": 5})).unwrap()
    }

    #[test]
    fn stratified_folds_spread_each_class_evenly() {
        let y: Vec<usize> = (0..30).map(|i| i % 3).collect();
        let folds = stratified_folds(&y, 5, 1);
        for fold in 0..5 {
            for class in 0..3 {
                let n = (0..30)
                    .filter(|r| folds[*r] == fold && y[*r] == class)
                    .count();
                assert_eq!(n, 2, "fold {fold} class {class}");
            }
        }
    }

    #[test]
    fn grid_expands_to_the_cartesian_product() {
        let grid = BTreeMap::from([
            (
                "max_depth".to_string(),
                vec![Value::from(4), Value::from(8)],
            ),
            (
                "n_trees".to_string(),
                vec![Value::from(10), Value::from(20), Value::from(30)],
            ),
        ]);
        let candidates = grid_candidates(&base(), &grid).unwrap();
        assert_eq!(candidates.len(), 6);
        assert_eq!(candidates[5].max_depth, Some(8));
        assert_eq!(candidates[5].n_trees, 30);
    }

    #[test]
    fn grid_value_of_the_wrong_type_is_an_error() {
        let grid = BTreeMap::from([("n_trees".to_string(), vec![Value::from("many")])]);
        let message = grid_candidates(&base(), &grid).unwrap_err().to_string();
        assert!(message.contains("`n_trees`"), "{message}");
    }

    #[test]
    fn a_grid_too_large_or_with_an_empty_list_is_refused_before_it_is_built() {
        let values: Vec<Value> = (1..=30).map(Value::from).collect();
        let names = [
            "max_depth",
            "min_samples_leaf",
            "min_samples_split",
            "n_trees",
            "max_iterations",
            "alpha",
        ];
        // 30^6 = 729,000,000 sets: listing them would need tens of GB.
        let grid: BTreeMap<String, Vec<Value>> = names
            .iter()
            .map(|n| (n.to_string(), values.clone()))
            .collect();
        let message = grid_candidates(&base(), &grid).unwrap_err().to_string();
        assert_eq!(
            message,
            "the grid has 729000000 combinations (30 × 30 × 30 × 30 × 30 × 30); at most 1000 are tried"
        );
        // Right at the limit it is built.
        let ten: Vec<Value> = (1..=10).map(Value::from).collect();
        let grid: BTreeMap<String, Vec<Value>> = names[..3]
            .iter()
            .map(|n| (n.to_string(), ten.clone()))
            .collect();
        assert_eq!(grid_candidates(&base(), &grid).unwrap().len(), 1000);
        // A product past usize::MAX does not wrap into a small number.
        let many: Vec<Value> = (1..=1000).map(Value::from).collect();
        let grid: BTreeMap<String, Vec<Value>> =
            (0..8).map(|n| (format!("p{n}"), many.clone())).collect();
        let message = grid_candidates(&base(), &grid).unwrap_err().to_string();
        assert!(message.contains("more than can be counted"), "{message}");
        let empty = BTreeMap::from([("max_depth".to_string(), Vec::new())]);
        assert_eq!(
            grid_candidates(&base(), &empty).unwrap_err().to_string(),
            "`grid.max_depth` is an empty list; give it at least one value"
        );
    }

    #[test]
    fn more_folds_than_rows_is_refused_before_anything_is_allocated() {
        let x = Array2::<f64>::zeros((10, 2));
        let y: Array1<usize> = (0..10).map(|i| i % 2).collect();
        for k in [11, usize::MAX] {
            let message = cross_validate(&base(), &x, &y, 2, k, &|| false)
                .unwrap_err()
                .to_string();
            assert_eq!(
                message,
                format!(
                    "`cv_folds` is {k}, but cross-validation needs 2 to 10 folds on 10 training rows"
                )
            );
        }
    }

    #[test]
    fn zero_trees_and_more_than_the_most_trees_are_problems() {
        let mut p = base();
        p.n_trees = 0;
        assert_eq!(
            p.problems(),
            [("n_trees", "`n_trees` must be at least 1".to_string())]
        );
        p.n_trees = MAX_TREES;
        assert!(p.problems().is_empty());
        p.n_trees = 99_999_999_999;
        assert_eq!(
            p.problems(),
            [(
                "n_trees",
                "`n_trees` must be at most 10000, got 99999999999".to_string()
            )]
        );
    }
}
