//! [`DecisionTree`]: a CART classification tree grown with gini impurity,
//! per-split feature sampling and sample weights, written to be bit-for-bit
//! reproducible: no hash maps, a fixed visiting order, and ties broken by the
//! lowest feature index, then the lowest threshold.
//!
//! It does not sample rows (the forest bootstraps) nor own a random seed (the
//! caller passes a generator).

use serde::{Deserialize, Serialize};

use crate::ml::compiled_tree::{CompiledTree, TreeNode};
use crate::ml::rng::SplitMix64;

/// How many features each split considers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum MaxFeatures {
    Count(usize),
    Named(MaxFeaturesRule),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MaxFeaturesRule {
    Sqrt,
    Log2,
    All,
}

impl MaxFeatures {
    pub fn resolve(self, n_features: usize) -> usize {
        let n = n_features as f64;
        let count = match self {
            Self::Count(count) => count,
            Self::Named(MaxFeaturesRule::Sqrt) => n.sqrt().floor() as usize,
            Self::Named(MaxFeaturesRule::Log2) => n.log2().floor() as usize,
            Self::Named(MaxFeaturesRule::All) => n_features,
        };
        count.clamp(1, n_features.max(1))
    }
}

/// Growth limits of one tree.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TreeParams {
    pub max_depth: Option<usize>,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    pub max_features: MaxFeatures,
}

const LEAF: u32 = u32::MAX;

/// One node: `(feature, threshold, left, right)`. A leaf has feature
/// `u32::MAX` and `left` indexes its class distribution. Samples with
/// `x[feature] <= threshold` go left. Children are numbered after their
/// parent and the right one right after the left one; `fit` grows them that
/// way and scoring relies on it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Node(u32, f64, u32, u32);

/// One node of a tree, by index: a split sends `x[feature] <= threshold` to
/// `left`, or a leaf holds its class distribution.
pub(crate) enum NodeView<'a> {
    Split {
        feature: u32,
        threshold: f64,
        left: u32,
        right: u32,
    },
    Leaf(&'a [f64]),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionTree {
    nodes: Vec<Node>,
    /// Leaf class distributions, `n_classes` values per leaf, each summing to 1.
    leaves: Vec<f64>,
    n_classes: usize,
}

/// Training data in column-major order, shared by every tree of a forest.
pub struct TrainingData<'a> {
    pub columns: &'a [Vec<f64>],
    pub labels: &'a [usize],
    /// Per-sample weight (class weights).
    pub weights: &'a [f64],
    pub n_classes: usize,
}

struct Split {
    feature: usize,
    threshold: f64,
    score: f64,
}

impl DecisionTree {
    /// Grows a tree on `samples` (row indices; repeats are bootstrap copies).
    pub fn fit(
        data: &TrainingData<'_>,
        mut samples: Vec<usize>,
        params: &TreeParams,
        rng: &mut SplitMix64,
    ) -> Self {
        let mut tree = Self {
            nodes: Vec::new(),
            leaves: Vec::new(),
            n_classes: data.n_classes,
        };
        let n_features = data.columns.len();
        let mtry = params.max_features.resolve(n_features);
        let mut features: Vec<usize> = (0..n_features).collect();
        let mut scratch: Vec<(f64, usize)> = Vec::with_capacity(samples.len());
        // (start, end, depth, node slot to fill)
        tree.nodes.push(Node(LEAF, 0.0, 0, 0));
        let mut stack = vec![(0usize, samples.len(), 0usize, 0usize)];
        while let Some((start, end, depth, slot)) = stack.pop() {
            let node_samples = &mut samples[start..end];
            let counts = class_weights(data, node_samples);
            let can_split = params.max_depth.is_none_or(|d| depth < d)
                && node_samples.len() >= params.min_samples_split.max(2)
                && counts.iter().filter(|w| **w > 0.0).count() > 1;
            let split = if can_split {
                for i in 0..mtry {
                    let j = i + rng.below(n_features - i);
                    features.swap(i, j);
                }
                let mut chosen = features[..mtry].to_vec();
                chosen.sort_unstable();
                best_split(
                    data,
                    node_samples,
                    &chosen,
                    &counts,
                    params.min_samples_leaf.max(1),
                    &mut scratch,
                )
            } else {
                None
            };
            match split {
                Some(split) => {
                    let column = &data.columns[split.feature];
                    let mid = partition(node_samples, |i| column[i] <= split.threshold);
                    let left = tree.nodes.len();
                    tree.nodes.push(Node(LEAF, 0.0, 0, 0));
                    tree.nodes.push(Node(LEAF, 0.0, 0, 0));
                    tree.nodes[slot] = Node(
                        split.feature as u32,
                        split.threshold,
                        left as u32,
                        left as u32 + 1,
                    );
                    // Right first so the left subtree is grown (and numbered) first.
                    stack.push((start + mid, end, depth + 1, left + 1));
                    stack.push((start, start + mid, depth + 1, left));
                }
                None => {
                    let leaf = tree.leaves.len() / data.n_classes;
                    let total: f64 = counts.iter().sum();
                    tree.leaves.extend(
                        counts
                            .iter()
                            .map(|w| if total > 0.0 { w / total } else { 0.0 }),
                    );
                    tree.nodes[slot] = Node(LEAF, 0.0, leaf as u32, 0);
                }
            }
        }
        tree
    }

    /// The class distribution of the leaf `row` falls into.
    pub fn leaf_distribution(&self, row: &[f64]) -> &[f64] {
        let mut node = self.nodes[0];
        while node.0 != LEAF {
            node = if row[node.0 as usize] <= node.1 {
                self.nodes[node.2 as usize]
            } else {
                self.nodes[node.3 as usize]
            };
        }
        let at = node.2 as usize * self.n_classes;
        &self.leaves[at..at + self.n_classes]
    }

    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The nodes in index order, as an exporter writes them.
    pub(crate) fn node_views(&self) -> impl Iterator<Item = NodeView<'_>> {
        self.nodes.iter().map(|node| {
            if node.0 == LEAF {
                let at = node.2 as usize * self.n_classes;
                NodeView::Leaf(&self.leaves[at..at + self.n_classes])
            } else {
                NodeView::Split {
                    feature: node.0,
                    threshold: node.1,
                    left: node.2,
                    right: node.3,
                }
            }
        })
    }

    /// The tree in the layout batch scoring uses (see [`CompiledTree`]).
    pub fn compile(&self) -> CompiledTree {
        let nodes: Vec<TreeNode> = self
            .nodes
            .iter()
            .map(|node| {
                if node.0 == LEAF {
                    TreeNode::Leaf {
                        distribution: node.2,
                    }
                } else {
                    TreeNode::Split {
                        feature: node.0,
                        threshold: node.1,
                        left: node.2,
                    }
                }
            })
            .collect();
        CompiledTree::new(&nodes, &self.leaves, self.n_classes)
    }

    /// Checks the structure read from a file, so prediction cannot index out of bounds.
    pub fn validate(&self, n_features: usize, n_classes: usize) -> Result<(), String> {
        if self.n_classes != n_classes
            || self.nodes.is_empty()
            || !self.leaves.len().is_multiple_of(n_classes.max(1))
        {
            return Err("tree shape does not match the model's classes".into());
        }
        let n_leaves = self.leaves.len() / n_classes.max(1);
        for (i, node) in self.nodes.iter().enumerate() {
            let ok = if node.0 == LEAF {
                (node.2 as usize) < n_leaves
            } else {
                (node.0 as usize) < n_features
                    && (node.2 as usize) > i
                    && node.3 == node.2.saturating_add(1)
                    && (node.3 as usize) < self.nodes.len()
            };
            if !ok {
                return Err(format!("node {i} points outside the tree"));
            }
        }
        Ok(())
    }
}

fn class_weights(data: &TrainingData<'_>, samples: &[usize]) -> Vec<f64> {
    let mut counts = vec![0.0; data.n_classes];
    for &i in samples {
        counts[data.labels[i]] += data.weights[i];
    }
    counts
}

/// Σ w_c² / W: the quantity a gini split maximises summed over both sides.
fn purity(counts: &[f64]) -> f64 {
    let total: f64 = counts.iter().sum();
    if total <= 0.0 {
        0.0
    } else {
        counts.iter().map(|w| w * w).sum::<f64>() / total
    }
}

fn best_split(
    data: &TrainingData<'_>,
    samples: &[usize],
    features: &[usize],
    counts: &[f64],
    min_leaf: usize,
    scratch: &mut Vec<(f64, usize)>,
) -> Option<Split> {
    let n = samples.len();
    if n < 2 * min_leaf {
        return None;
    }
    let parent = purity(counts);
    let mut best: Option<Split> = None;
    let mut left = vec![0.0; counts.len()];
    let mut right = vec![0.0; counts.len()];
    for &feature in features {
        let column = &data.columns[feature];
        scratch.clear();
        scratch.extend(samples.iter().map(|&i| (column[i], i)));
        scratch.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        left.iter_mut().for_each(|w| *w = 0.0);
        right.copy_from_slice(counts);
        for position in 0..n - 1 {
            let (value, i) = scratch[position];
            let weight = data.weights[i];
            left[data.labels[i]] += weight;
            right[data.labels[i]] -= weight;
            let next = scratch[position + 1].0;
            let left_count = position + 1;
            if next <= value || left_count < min_leaf || n - left_count < min_leaf {
                continue;
            }
            let score = purity(&left) + purity(&right);
            if best.as_ref().is_none_or(|b| score > b.score) {
                let threshold = value + (next - value) / 2.0;
                // Guard against the midpoint rounding up to `next`.
                let threshold = if threshold >= next { value } else { threshold };
                best = Some(Split {
                    feature,
                    threshold,
                    score,
                });
            }
        }
    }
    best.filter(|b| b.score > parent * (1.0 + 1e-12))
}

/// Moves the samples satisfying `goes_left` to the front, keeping relative
/// order on both sides; returns how many went left.
fn partition(samples: &mut [usize], goes_left: impl Fn(usize) -> bool) -> usize {
    let (left, right): (Vec<usize>, Vec<usize>) = samples.iter().partition(|&&i| goes_left(i));
    let mid = left.len();
    samples[..mid].copy_from_slice(&left);
    samples[mid..].copy_from_slice(&right);
    mid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::compiled_tree::score_rows;

    fn params(max_depth: Option<usize>) -> TreeParams {
        TreeParams {
            max_depth,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features: MaxFeatures::Named(MaxFeaturesRule::All),
        }
    }

    #[test]
    fn separable_data_is_split_at_the_midpoint() {
        let columns = vec![vec![1.0, 2.0, 3.0, 10.0, 11.0, 12.0]];
        let labels = [0, 0, 0, 1, 1, 1];
        let weights = [1.0; 6];
        let data = TrainingData {
            columns: &columns,
            labels: &labels,
            weights: &weights,
            n_classes: 2,
        };
        let tree = DecisionTree::fit(
            &data,
            (0..6).collect(),
            &params(None),
            &mut SplitMix64::new(1),
        );
        assert_eq!(tree.n_nodes(), 3);
        assert_eq!(tree.leaf_distribution(&[6.4]), [1.0, 0.0]);
        assert_eq!(tree.leaf_distribution(&[6.6]), [0.0, 1.0]);
    }

    #[test]
    fn ties_between_features_pick_the_lowest_index() {
        let columns = vec![vec![0.0, 0.0, 1.0, 1.0], vec![0.0, 0.0, 1.0, 1.0]];
        let labels = [0, 0, 1, 1];
        let weights = [1.0; 4];
        let data = TrainingData {
            columns: &columns,
            labels: &labels,
            weights: &weights,
            n_classes: 2,
        };
        let tree = DecisionTree::fit(
            &data,
            (0..4).collect(),
            &params(None),
            &mut SplitMix64::new(1),
        );
        assert_eq!(tree.nodes[0].0, 0);
    }

    #[test]
    fn max_depth_zero_gives_a_single_leaf_with_class_frequencies() {
        let columns = vec![vec![1.0, 2.0, 3.0, 4.0]];
        let labels = [0, 1, 1, 1];
        let weights = [1.0; 4];
        let data = TrainingData {
            columns: &columns,
            labels: &labels,
            weights: &weights,
            n_classes: 2,
        };
        let tree = DecisionTree::fit(
            &data,
            (0..4).collect(),
            &params(Some(0)),
            &mut SplitMix64::new(1),
        );
        assert_eq!(tree.n_nodes(), 1);
        assert_eq!(tree.leaf_distribution(&[0.0]), [0.25, 0.75]);
    }

    #[test]
    fn min_samples_leaf_blocks_small_children() {
        let columns = vec![vec![1.0, 2.0, 3.0, 4.0]];
        let labels = [0, 1, 1, 1];
        let weights = [1.0; 4];
        let data = TrainingData {
            columns: &columns,
            labels: &labels,
            weights: &weights,
            n_classes: 2,
        };
        let mut p = params(None);
        p.min_samples_leaf = 2;
        let tree = DecisionTree::fit(&data, (0..4).collect(), &p, &mut SplitMix64::new(1));
        assert!(tree.nodes.iter().all(|n| n.0 == LEAF || n.1 == 2.5));
    }

    #[test]
    fn compiled_tree_agrees_with_the_node_walk() {
        let columns = vec![
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            vec![6.0, 1.0, 5.0, 2.0, 4.0, 3.0],
        ];
        let labels = [0, 1, 0, 1, 2, 2];
        let weights = [1.0; 6];
        let data = TrainingData {
            columns: &columns,
            labels: &labels,
            weights: &weights,
            n_classes: 3,
        };
        let tree = DecisionTree::fit(
            &data,
            (0..6).collect(),
            &params(None),
            &mut SplitMix64::new(1),
        );
        let compiled = tree.compile();
        let rows: Vec<f64> = (0..20)
            .flat_map(|i| [i as f64 * 0.37, 7.0 - i as f64 * 0.41])
            .collect();
        let mut sums = vec![0.0; 20 * 3];
        // 20 rows: one group of rows walking together, and single rows.
        score_rows(&[compiled], &rows, 20, 2, &mut sums);
        for (row, expected) in rows.chunks(2).zip(sums.chunks(3)) {
            assert_eq!(tree.leaf_distribution(row), expected);
        }
    }

    #[test]
    fn validate_rejects_a_node_pointing_outside_the_tree() {
        let tree = DecisionTree {
            nodes: vec![Node(0, 0.5, 5, 6)],
            leaves: vec![1.0, 0.0],
            n_classes: 2,
        };
        assert!(tree.validate(1, 2).is_err());
    }

    #[test]
    fn validate_rejects_children_that_are_not_side_by_side() {
        let leaf = |distribution| Node(LEAF, 0.0, distribution, 0);
        let tree = DecisionTree {
            nodes: vec![Node(0, 0.5, 1, 3), leaf(0), leaf(1), leaf(1)],
            leaves: vec![1.0, 0.0, 0.0, 1.0],
            n_classes: 2,
        };
        assert!(tree.validate(1, 2).is_err());
        let fixed = DecisionTree {
            nodes: vec![Node(0, 0.5, 1, 2), leaf(0), leaf(1)],
            ..tree
        };
        assert_eq!(fixed.validate(1, 2), Ok(()));
    }

    #[test]
    fn max_features_rules_resolve_like_common_practice() {
        assert_eq!(MaxFeatures::Named(MaxFeaturesRule::Sqrt).resolve(32), 5);
        assert_eq!(MaxFeatures::Named(MaxFeaturesRule::Log2).resolve(32), 5);
        assert_eq!(MaxFeatures::Count(100).resolve(32), 32);
        assert_eq!(MaxFeatures::Count(0).resolve(32), 1);
    }
}
