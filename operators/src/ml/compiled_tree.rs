//! [`CompiledTree`] and [`score_rows`]: fitted trees laid out for scoring,
//! and the loop that sums a forest's leaf distributions over a block of rows.
//!
//! Each node is one 16-byte step (threshold, feature, left child); the right
//! child sits right after the left one, so the next node is
//! `left + (value > threshold)`, without a branch. A leaf points to itself
//! with an infinite threshold, so every row takes exactly `depth` steps and a
//! group of rows (or of trees, for a single row) can walk in lockstep, which
//! keeps many independent loads in flight. A leaf keeps only the nonzero
//! entries of its class distribution (most leaves are pure: one entry), so
//! adding it to a row's sums is one or two additions instead of one per
//! class. Every row adds its trees' distributions in tree order, and adding
//! zero leaves a (non-negative) sum unchanged, so the sums are bit-for-bit
//! those of walking each tree node by node and adding whole distributions.
//! Fitting and the file format belong to [`crate::ml::tree`].

/// A node as [`DecisionTree`](crate::ml::DecisionTree) stores it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TreeNode {
    /// `distribution` indexes the leaf's class distribution.
    Leaf { distribution: u32 },
    /// Rows with `x[feature] > threshold` go to `left + 1`, the others to `left`.
    Split {
        feature: u32,
        threshold: f64,
        left: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Step {
    threshold: f64,
    feature: u32,
    left: u32,
}

/// Rows that walk a tree together: enough independent loads to hide cache
/// latency, few enough that the cursors stay in registers.
const ROW_LANES: usize = 16;

/// Trees a single row walks together.
const TREE_LANES: usize = 16;

/// A nonzero entry of a leaf's class distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Share {
    p: f64,
    class: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompiledTree {
    /// Never empty; every `left` of a split is followed by its right sibling
    /// and a leaf's `left` is itself, so a walk never leaves `steps`.
    steps: Vec<Step>,
    /// For each step, the range of `shares` holding its leaf distribution
    /// (empty for splits); always within `shares`.
    leaf: Vec<(u32, u32)>,
    /// The nonzero entries of every leaf distribution, leaf after leaf;
    /// every `class` is below `n_classes`.
    shares: Vec<Share>,
    /// Steps from the root to the deepest leaf.
    depth: usize,
    /// Row width a walk needs: one more than the largest feature read.
    width: usize,
    n_classes: usize,
}

impl CompiledTree {
    /// Lays out `nodes` (root first, children after their parent, the right
    /// child right after the left one) with their leaf distributions
    /// (`n_classes` values per leaf in `leaves`). A node breaking those rules
    /// (which the tree's `validate` refuses) becomes an empty leaf rather
    /// than a walk out of bounds.
    pub fn new(nodes: &[TreeNode], leaves: &[f64], n_classes: usize) -> Self {
        let n = nodes.len().max(1);
        let mut steps = Vec::with_capacity(n);
        let mut leaf = Vec::with_capacity(n);
        let mut shares = Vec::new();
        let mut width = 1;
        let leaf_step = |i: usize| Step {
            threshold: f64::INFINITY,
            feature: 0,
            left: i as u32,
        };
        for (i, node) in nodes.iter().enumerate() {
            let start = shares.len() as u32;
            match *node {
                TreeNode::Split {
                    feature,
                    threshold,
                    left,
                } if (left as usize) > i && (left as usize) + 1 < nodes.len() => {
                    width = width.max(feature as usize + 1);
                    steps.push(Step {
                        threshold,
                        feature,
                        left,
                    });
                }
                TreeNode::Split { .. } => steps.push(leaf_step(i)),
                TreeNode::Leaf { distribution } => {
                    let from = (distribution as usize).saturating_mul(n_classes);
                    let values = leaves.get(from..from.saturating_add(n_classes));
                    shares.extend(
                        values
                            .unwrap_or_default()
                            .iter()
                            .zip(0u32..)
                            .filter(|(p, _)| **p != 0.0)
                            .map(|(p, class)| Share { p: *p, class }),
                    );
                    steps.push(leaf_step(i));
                }
            }
            // More shares than u32 can count would need a tree of billions
            // of leaves; such a tree is not scored rather than misread.
            let end = u32::try_from(shares.len()).unwrap_or(start);
            leaf.push((start, end.max(start)));
        }
        if steps.is_empty() {
            steps.push(leaf_step(0));
            leaf.push((0, 0));
        }
        // Children follow their parent, so one backward pass gives heights.
        let mut height = vec![0usize; steps.len()];
        for i in (0..steps.len()).rev() {
            let left = steps[i].left as usize;
            if left != i {
                height[i] = 1 + height[left].max(height[left + 1]);
            }
        }
        Self {
            steps,
            leaf,
            shares,
            depth: height[0],
            width,
            n_classes,
        }
    }

    /// Adds the distribution of the leaf step `at` to one row's `sums`.
    fn add_leaf(&self, at: u32, sums: &mut [f64]) {
        let (start, end) = self.leaf[at as usize];
        for share in &self.shares[start as usize..end as usize] {
            sums[share.class as usize] += share.p;
        }
    }

    /// Walks full groups of [`ROW_LANES`] rows and adds each row's leaf
    /// distribution to its sums. `rows` holds `groups * ROW_LANES` rows of
    /// `width` values; the caller has checked the shapes.
    fn accumulate_groups(&self, rows: &[f64], width: usize, groups: usize, sums: &mut [f64]) {
        let k = self.n_classes;
        for group in 0..groups {
            let first = group * ROW_LANES;
            let base: [usize; ROW_LANES] = std::array::from_fn(|lane| (first + lane) * width);
            let mut at = [0u32; ROW_LANES];
            for _ in 0..self.depth {
                for lane in 0..ROW_LANES {
                    // SAFETY: `at[lane]` is a step index: it starts at the
                    // root and `new` makes every step's `left` (and `left +
                    // 1` for splits) an index of `steps`. `base[lane] +
                    // feature` is inside `rows`: `score_rows` checked that
                    // `rows` holds `groups * ROW_LANES` rows of `width >=
                    // self.width` values, and `new` made `self.width` exceed
                    // every feature a step reads.
                    let (step, value) = unsafe {
                        let step = *self.steps.get_unchecked(at[lane] as usize);
                        (
                            step,
                            *rows.get_unchecked(base[lane] + step.feature as usize),
                        )
                    };
                    at[lane] = step.left + u32::from(value > step.threshold);
                }
            }
            for (lane, node) in at.iter().enumerate() {
                let row = first + lane;
                self.add_leaf(*node, &mut sums[row * k..(row + 1) * k]);
            }
        }
    }
}

/// Adds the leaf distributions of `trees` for each of `n_rows` rows of
/// `rows` (row-major, `width` values per row) to `sums` (row-major,
/// `n_classes` per row). Does nothing when the shapes do not fit together
/// (rows narrower than a tree reads, or buffers too short).
pub fn score_rows(
    trees: &[CompiledTree],
    rows: &[f64],
    n_rows: usize,
    width: usize,
    sums: &mut [f64],
) {
    let Some(k) = trees.first().map(|t| t.n_classes) else {
        return;
    };
    let fits = trees.iter().all(|t| t.n_classes == k && t.width <= width)
        && n_rows.checked_mul(width).is_some_and(|n| n <= rows.len())
        && n_rows.checked_mul(k).is_some_and(|n| n <= sums.len());
    if !fits {
        return;
    }
    let groups = n_rows / ROW_LANES;
    let grouped = groups * ROW_LANES;
    if groups > 0 {
        for tree in trees {
            tree.accumulate_groups(
                &rows[..grouped * width],
                width,
                groups,
                &mut sums[..grouped * k],
            );
        }
    }
    for row in grouped..n_rows {
        accumulate_row(
            trees,
            &rows[row * width..(row + 1) * width],
            &mut sums[row * k..(row + 1) * k],
        );
    }
}

/// One row through every tree, [`TREE_LANES`] trees at a time; the
/// distributions are added in tree order.
fn accumulate_row(trees: &[CompiledTree], row: &[f64], sums: &mut [f64]) {
    for group in trees.chunks(TREE_LANES) {
        let depth = group.iter().map(|t| t.depth).max().unwrap_or(0);
        let mut at = [0u32; TREE_LANES];
        for _ in 0..depth {
            for (tree, node) in group.iter().zip(&mut at) {
                // SAFETY: as in `accumulate_groups`: `*node` is a step index
                // of `tree`, and `score_rows` checked that `row` holds
                // `width >= tree.width` values, more than any feature read.
                let (step, value) = unsafe {
                    let step = *tree.steps.get_unchecked(*node as usize);
                    (step, *row.get_unchecked(step.feature as usize))
                };
                *node = step.left + u32::from(value > step.threshold);
            }
        }
        for (tree, node) in group.iter().zip(&at) {
            tree.add_leaf(*node, sums);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(feature: u32, threshold: f64, left: u32) -> TreeNode {
        TreeNode::Split {
            feature,
            threshold,
            left,
        }
    }

    #[test]
    fn rows_go_left_up_to_the_threshold_and_right_above_it() {
        let nodes = [
            split(0, 0.5, 1),
            TreeNode::Leaf { distribution: 0 },
            TreeNode::Leaf { distribution: 1 },
        ];
        let tree = CompiledTree::new(&nodes, &[1.0, 0.0, 0.0, 1.0], 2);
        let rows = [0.5, 0.6, -1.0];
        let mut sums = vec![0.0; 6];
        score_rows(&[tree], &rows, 3, 1, &mut sums);
        assert_eq!(sums, [1.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn a_broken_split_becomes_an_empty_leaf_instead_of_a_walk_out_of_bounds() {
        let nodes = [split(0, 0.5, 7)];
        let tree = CompiledTree::new(&nodes, &[], 2);
        let rows = vec![1.0; 40];
        let mut sums = vec![0.0; 80];
        score_rows(&[tree], &rows, 40, 1, &mut sums);
        assert!(sums.iter().all(|s| *s == 0.0));
    }

    #[test]
    fn a_leaf_adds_only_its_nonzero_shares_and_a_missing_one_adds_nothing() {
        let nodes = [
            split(0, 0.5, 1),
            TreeNode::Leaf { distribution: 0 },
            TreeNode::Leaf { distribution: 9 },
        ];
        let tree = CompiledTree::new(&nodes, &[0.0, 0.25, 0.0, 0.75], 4);
        assert_eq!(tree.shares.len(), 2);
        let mut sums = vec![1.0; 8];
        score_rows(&[tree], &[0.0, 1.0], 2, 1, &mut sums);
        assert_eq!(sums, [1.0, 1.25, 1.0, 1.75, 1.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn rows_narrower_than_a_tree_reads_are_left_unscored() {
        let nodes = [
            split(3, 0.5, 1),
            TreeNode::Leaf { distribution: 0 },
            TreeNode::Leaf { distribution: 0 },
        ];
        let tree = CompiledTree::new(&nodes, &[1.0], 1);
        let rows = vec![1.0; 32];
        let mut sums = vec![0.0; 16];
        score_rows(std::slice::from_ref(&tree), &rows, 16, 2, &mut sums);
        assert!(sums.iter().all(|s| *s == 0.0));
        score_rows(&[tree], &rows, 8, 4, &mut sums);
        assert_eq!(sums[..8], [1.0; 8]);
    }
}
