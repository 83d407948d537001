//! [`RandomForest`]: bagged [`DecisionTree`]s fitted in parallel, with class
//! probabilities (the mean of the trees' leaf distributions).
//!
//! Each tree draws from its own generator seeded by `(seed, tree index)`, and
//! trees are collected in index order, so the forest is identical however the
//! thread pool schedules the work. Implements linfa's `Fit` and
//! `PredictInplace`. A single decision tree is a forest of one tree without
//! bootstrap.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};

use linfa::prelude::*;
use linfa::traits::{Fit, PredictInplace};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ml::MlError;
use crate::ml::compiled_tree::{CompiledTree, score_rows};
use crate::ml::rng::SplitMix64;
use crate::ml::tree::{DecisionTree, TrainingData, TreeParams};

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    /// Each class weighs `n / (k · n_c)`, so rare classes count as much as common ones.
    Balanced,
    #[default]
    None,
}

/// Hyperparameters of a forest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    pub n_trees: usize,
    pub bootstrap: bool,
    pub tree: TreeParams,
    pub class_weight: ClassWeight,
    pub seed: u64,
    pub n_classes: usize,
}

/// Called after each fitted tree with the number of trees done; returning
/// `true` from the cancel check stops fitting.
pub struct FitHooks<'a> {
    pub progress: &'a (dyn Fn(usize) + Sync),
    pub cancelled: &'a (dyn Fn() -> bool + Sync),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomForest {
    n_features: usize,
    n_classes: usize,
    trees: Vec<DecisionTree>,
    #[serde(skip)]
    compiled: CompiledCache,
}

/// The trees in scoring layout, built on first use; not part of the file
/// and not part of equality.
#[derive(Debug, Clone, Default)]
struct CompiledCache(std::sync::OnceLock<Vec<CompiledTree>>);

impl PartialEq for CompiledCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl ForestParams {
    /// Fits with progress and cancellation hooks.
    pub fn fit_with_hooks(
        &self,
        x: &Array2<f64>,
        y: &Array1<usize>,
        hooks: &FitHooks<'_>,
    ) -> Result<RandomForest, MlError> {
        let n = x.nrows();
        if n == 0 || n != y.len() {
            return Err(MlError::invalid(format!(
                "cannot fit a forest on {n} rows and {} labels",
                y.len()
            )));
        }
        if self.n_trees == 0 {
            return Err(MlError::invalid("`n_trees` must be at least 1"));
        }
        if let Some(bad) = y.iter().find(|c| **c >= self.n_classes) {
            return Err(MlError::invalid(format!(
                "label {bad} is outside the {} classes",
                self.n_classes
            )));
        }
        let columns: Vec<Vec<f64>> = x.axis_iter(Axis(1)).map(|c| c.to_vec()).collect();
        let labels = y.to_vec();
        let weights = sample_weights(&labels, self.n_classes, self.class_weight);
        let data = TrainingData {
            columns: &columns,
            labels: &labels,
            weights: &weights,
            n_classes: self.n_classes,
        };
        let done = AtomicUsize::new(0);
        let trees = (0..self.n_trees)
            .into_par_iter()
            .map(|index| {
                if (hooks.cancelled)() {
                    return Err(MlError::Cancelled);
                }
                let mut rng = SplitMix64::for_stream(self.seed, index as u64);
                let samples = if self.bootstrap {
                    (0..n).map(|_| rng.below(n)).collect()
                } else {
                    (0..n).collect()
                };
                let tree = DecisionTree::fit(&data, samples, &self.tree, &mut rng);
                (hooks.progress)(done.fetch_add(1, Ordering::Relaxed) + 1);
                Ok(tree)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RandomForest {
            n_features: x.ncols(),
            n_classes: self.n_classes,
            trees,
            compiled: CompiledCache::default(),
        })
    }
}

fn sample_weights(labels: &[usize], n_classes: usize, class_weight: ClassWeight) -> Vec<f64> {
    match class_weight {
        ClassWeight::None => vec![1.0; labels.len()],
        ClassWeight::Balanced => {
            let mut counts = vec![0usize; n_classes];
            labels.iter().for_each(|c| counts[*c] += 1);
            let present = counts.iter().filter(|c| **c > 0).count() as f64;
            let n = labels.len() as f64;
            labels
                .iter()
                .map(|c| n / (present * counts[*c] as f64))
                .collect()
        }
    }
}

impl Fit<Array2<f64>, Array1<usize>, MlError> for ForestParams {
    type Object = RandomForest;

    fn fit(
        &self,
        dataset: &DatasetBase<Array2<f64>, Array1<usize>>,
    ) -> Result<RandomForest, MlError> {
        let hooks = FitHooks {
            progress: &|_| {},
            cancelled: &|| false,
        };
        self.fit_with_hooks(dataset.records(), dataset.targets(), &hooks)
    }
}

impl RandomForest {
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    pub(crate) fn trees(&self) -> &[DecisionTree] {
        &self.trees
    }

    pub(crate) fn n_classes(&self) -> usize {
        self.n_classes
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Class probabilities (rows × classes): the mean leaf distribution.
    /// Large inputs are scored in parallel blocks of rows; each row sums its
    /// trees in a fixed order, so results do not depend on scheduling. Small
    /// inputs (a single request) stay on the calling thread, where handing
    /// them to the pool would cost more than scoring them.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        const BLOCK: usize = 512;
        let (rows, width, k) = (x.nrows(), x.ncols(), self.n_classes);
        let compiled = self
            .compiled
            .0
            .get_or_init(|| self.trees.iter().map(DecisionTree::compile).collect());
        let input: Cow<'_, [f64]> = match x.as_slice() {
            Some(slice) => Cow::Borrowed(slice),
            None => Cow::Owned(x.iter().copied().collect()),
        };
        let mut out = vec![0.0; rows * k];
        let scale = 1.0 / self.trees.len().max(1) as f64;
        let score = |x_block: &[f64], out_block: &mut [f64]| {
            let n = out_block.len() / k.max(1);
            score_rows(compiled, x_block, n, width, out_block);
            out_block.iter_mut().for_each(|s| *s *= scale);
        };
        if rows <= BLOCK || width == 0 || k == 0 {
            score(&input, &mut out);
        } else {
            out.par_chunks_mut(BLOCK * k)
                .zip(input.par_chunks(BLOCK * width))
                .for_each(|(out_block, x_block)| score(x_block, out_block));
        }
        Array2::from_shape_vec((rows, k), out).unwrap_or_else(|_| Array2::zeros((rows, k)))
    }

    /// Checks a forest read from a file against the model's shape.
    pub fn validate(&self, n_features: usize, n_classes: usize) -> Result<(), String> {
        if self.n_features != n_features || self.n_classes != n_classes || self.trees.is_empty() {
            return Err(format!(
                "forest expects {} features and {} classes, the model has {n_features} and {n_classes}",
                self.n_features, self.n_classes
            ));
        }
        self.trees.iter().enumerate().try_for_each(|(i, t)| {
            t.validate(n_features, n_classes)
                .map_err(|e| format!("tree {i}: {e}"))
        })
    }
}

/// The index of the largest value; the lowest index wins ties.
pub fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

impl PredictInplace<Array2<f64>, Array1<usize>> for RandomForest {
    fn predict_inplace(&self, x: &Array2<f64>, y: &mut Array1<usize>) {
        let proba = self.predict_proba(x.view());
        for (target, row) in y.iter_mut().zip(proba.rows()) {
            *target = row.as_slice().map_or(0, argmax);
        }
    }

    fn default_target(&self, x: &Array2<f64>) -> Array1<usize> {
        Array1::zeros(x.nrows())
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;
    use crate::ml::tree::{MaxFeatures, MaxFeaturesRule};

    fn params(seed: u64) -> ForestParams {
        ForestParams {
            n_trees: 20,
            bootstrap: true,
            tree: TreeParams {
                max_depth: Some(4),
                min_samples_split: 2,
                min_samples_leaf: 1,
                max_features: MaxFeatures::Named(MaxFeaturesRule::Sqrt),
            },
            class_weight: ClassWeight::Balanced,
            seed,
            n_classes: 3,
        }
    }

    fn blobs() -> DatasetBase<Array2<f64>, Array1<usize>> {
        let mut rng = SplitMix64::new(9);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..90 {
            let class = i % 3;
            for f in 0..4 {
                let noise = rng.below(1000) as f64 / 1000.0;
                x.push(if f == 0 {
                    class as f64 * 2.0 + noise
                } else {
                    noise
                });
            }
            y.push(class);
        }
        Dataset::new(Array2::from_shape_vec((90, 4), x).unwrap(), Array1::from(y))
    }

    #[test]
    fn forest_learns_separable_classes_and_probabilities_sum_to_one() {
        let data = blobs();
        let forest = params(1).fit(&data).unwrap();
        let predicted = forest.predict(data.records());
        let correct = predicted
            .iter()
            .zip(data.targets())
            .filter(|(a, b)| a == b)
            .count();
        assert!(correct >= 85, "{correct}/90");
        let proba = forest.predict_proba(data.records().view());
        for row in proba.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn same_seed_same_forest_other_seed_other_forest() {
        let data = blobs();
        assert_eq!(params(5).fit(&data).unwrap(), params(5).fit(&data).unwrap());
        assert_ne!(params(5).fit(&data).unwrap(), params(6).fit(&data).unwrap());
    }

    #[test]
    fn balanced_weights_make_every_class_weigh_the_same() {
        let weights = sample_weights(&[0, 0, 0, 1], 2, ClassWeight::Balanced);
        assert_eq!(weights, [4.0 / 6.0, 4.0 / 6.0, 4.0 / 6.0, 2.0]);
    }

    #[test]
    fn cancellation_stops_fitting() {
        let data = blobs();
        let hooks = FitHooks {
            progress: &|_| {},
            cancelled: &|| true,
        };
        let result = params(1).fit_with_hooks(data.records(), data.targets(), &hooks);
        assert!(matches!(result, Err(MlError::Cancelled)));
    }

    /// The mean leaf distribution of `row`, walking each tree node by node.
    fn walked(forest: &RandomForest, row: &[f64]) -> Vec<f64> {
        let mut sums = vec![0.0; forest.n_classes];
        for tree in &forest.trees {
            for (s, p) in sums.iter_mut().zip(tree.leaf_distribution(row)) {
                *s += p;
            }
        }
        let scale = 1.0 / forest.trees.len() as f64;
        sums.iter().map(|s| s * scale).collect()
    }

    #[test]
    fn batch_scoring_equals_the_node_walk_bit_for_bit() {
        let data = blobs();
        let forest = params(3).fit(&data).unwrap();
        // 1,350 rows: parallel blocks, groups of rows, and rows left over.
        let rows: Vec<f64> = (0..15)
            .flat_map(|_| data.records().iter().copied())
            .collect();
        let x = Array2::from_shape_vec((1350, 4), rows).unwrap();
        let proba = forest.predict_proba(x.view());
        for (i, row) in x.rows().into_iter().enumerate() {
            let row = row.to_vec();
            let alone = forest.predict_proba(ArrayView2::from_shape((1, 4), &row).unwrap());
            let expected = walked(&forest, &row);
            for (c, e) in expected.iter().enumerate() {
                assert_eq!(proba[[i, c]].to_bits(), e.to_bits(), "row {i}");
                assert_eq!(alone[[0, c]].to_bits(), e.to_bits(), "row {i} alone");
            }
        }
    }

    #[test]
    fn argmax_prefers_the_lowest_index_on_ties() {
        assert_eq!(argmax(&[0.2, 0.4, 0.4]), 1);
    }
}
