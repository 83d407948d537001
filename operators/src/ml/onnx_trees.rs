//! Native scoring of the most common exported tabular model: a graph whose
//! probabilities come straight from one `ai.onnx.ml` `TreeEnsembleClassifier`
//! (what skl2onnx writes for gradient boosting and random forests, and what
//! the XGBoost and LightGBM converters write too).
//!
//! tract runs these graphs correctly but walks the leaf table from its start
//! for every tree and row, so scoring grows with rows × trees × leaves: a
//! few hundred rows of a 700-tree model took most of a minute. Here each tree
//! is a flat node array and each leaf a slice of votes, so a row costs one
//! root-to-leaf walk per tree.
//!
//! Semantics follow the operator's definition: a branch compares the input
//! feature as a 32-bit float with the node's threshold (`BRANCH_LEQ`,
//! `BRANCH_LT`, `BRANCH_GTE`, `BRANCH_GT`, `BRANCH_EQ`, `BRANCH_NEQ`), a
//! missing value (NaN) goes to the true branch when
//! `nodes_missing_value_tracks_true` says so, each class's score is
//! `base_values[class]` plus the weights of its votes at the reached leaves
//! summed in tree order, and `post_transform` (`NONE`, `SOFTMAX`,
//! `LOGISTIC`, `SOFTMAX_ZERO`) maps scores to probabilities. Graphs outside
//! this shape (another node on the probability path, a binary model that
//! scores one class only, `PROBIT`) are left to tract.

use std::collections::HashMap;

use tract_onnx::pb;

const ML_DOMAIN: &str = "ai.onnx.ml";

/// A tree-ensemble classifier, flattened for scoring.
#[derive(Debug, Clone)]
pub struct TreeEnsemble {
    nodes: Vec<Node>,
    /// Index of each tree's root in `nodes`, in tree order.
    roots: Vec<u32>,
    /// Every leaf's votes, as `(class, weight)`; a leaf holds a range.
    votes: Vec<(u32, f64)>,
    base: Vec<f64>,
    post: PostTransform,
    /// The highest feature index any branch reads.
    max_feature: usize,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    feature: u32,
    threshold: f32,
    mode: Mode,
    missing_true: bool,
    /// Branch targets, or for a leaf its range in `votes`.
    first: u32,
    second: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Leaf,
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PostTransform {
    None,
    Softmax,
    Logistic,
    SoftmaxZero,
}

/// The tree ensemble behind the graph's probability output, when the graph
/// is one `TreeEnsembleClassifier` (with `Identity` nodes only after it) on
/// the graph's input; `Ok(None)` for any other graph. An error is an
/// ensemble whose attributes contradict each other.
pub fn ensemble_of(
    graph: &pb::GraphProto,
    input: &str,
    n_classes: usize,
) -> Result<Option<TreeEnsemble>, String> {
    let mut ensembles = graph
        .node
        .iter()
        .filter(|n| n.op_type == "TreeEnsembleClassifier" && n.domain == ML_DOMAIN);
    let (Some(node), None) = (ensembles.next(), ensembles.next()) else {
        return Ok(None);
    };
    let others_are_identities = graph
        .node
        .iter()
        .filter(|n| !std::ptr::eq(*n, node))
        .all(|n| n.op_type == "Identity" && n.domain.is_empty() && n.input.len() == 1);
    if !others_are_identities || node.input.first().map(String::as_str) != Some(input) {
        return Ok(None);
    }
    // The probabilities output must be a graph output, directly or through
    // identities, and the label output must not be what a caller reads as
    // probabilities (it is an integer or string vector, never [N, C]).
    let Some(probabilities) = node.output.get(1) else {
        return Ok(None);
    };
    let mut reached = vec![probabilities.as_str()];
    let mut grew = true;
    while grew {
        grew = false;
        for n in &graph.node {
            if n.op_type == "Identity"
                && reached.contains(&n.input[0].as_str())
                && let Some(out) = n.output.first()
                && !reached.contains(&out.as_str())
            {
                reached.push(out);
                grew = true;
            }
        }
    }
    if !graph
        .output
        .iter()
        .any(|o| reached.contains(&o.name.as_str()))
    {
        return Ok(None);
    }
    let attrs = Attributes::of(node);
    let post = match attrs.text("post_transform").as_deref() {
        None | Some("NONE") => PostTransform::None,
        Some("SOFTMAX") => PostTransform::Softmax,
        Some("LOGISTIC") => PostTransform::Logistic,
        Some("SOFTMAX_ZERO") => PostTransform::SoftmaxZero,
        Some(_) => return Ok(None),
    };
    let labels = attrs
        .ints("classlabels_int64s")
        .map(<[i64]>::len)
        .or_else(|| attrs.strings("classlabels_strings").map(<[Vec<u8>]>::len))
        .unwrap_or(0);
    if labels != n_classes {
        // The probability width is checked (with a clearer message) by the
        // caller's translation; leave such graphs to it.
        return Ok(None);
    }
    let class_ids = attrs.required_ints("class_ids")?;
    let mut distinct: Vec<i64> = class_ids.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != n_classes {
        // A binary model scoring one class only: its second column is
        // derived by rules tract already implements.
        return Ok(None);
    }
    build(&attrs, post, n_classes).map(Some)
}

fn build(
    attrs: &Attributes,
    post: PostTransform,
    n_classes: usize,
) -> Result<TreeEnsemble, String> {
    let tree_ids = attrs.required_ints("nodes_treeids")?;
    let node_ids = attrs.required_ints("nodes_nodeids")?;
    let features = attrs.required_ints("nodes_featureids")?;
    let modes = attrs.strings("nodes_modes").ok_or("has no `nodes_modes`")?;
    let trues = attrs.required_ints("nodes_truenodeids")?;
    let falses = attrs.required_ints("nodes_falsenodeids")?;
    let thresholds = attrs.floats("nodes_values", "nodes_values_as_tensor")?;
    let missing = attrs.ints("nodes_missing_value_tracks_true").unwrap_or(&[]);
    let count = tree_ids.len();
    let lengths = [
        node_ids.len(),
        features.len(),
        modes.len(),
        trues.len(),
        falses.len(),
        thresholds.len(),
    ];
    if lengths.iter().any(|&l| l != count) || !(missing.is_empty() || missing.len() == count) {
        return Err("has `nodes_*` attributes of different lengths".into());
    }
    if count == 0 || count > u32::MAX as usize / 2 {
        return Err(format!("has {count} tree nodes"));
    }

    // Trees in order of first appearance; nodes addressed by (tree, node id).
    let mut index: HashMap<(i64, i64), u32> = HashMap::with_capacity(count);
    let mut tree_order: Vec<i64> = Vec::new();
    for (i, (&tree, &id)) in tree_ids.iter().zip(node_ids).enumerate() {
        if index.insert((tree, id), i as u32).is_some() {
            return Err(format!("declares node {id} of tree {tree} twice"));
        }
        if !tree_order.contains(&tree) {
            tree_order.push(tree);
        }
    }

    // Votes grouped by leaf, in declaration order within a leaf.
    let class_trees = attrs.required_ints("class_treeids")?;
    let class_nodes = attrs.required_ints("class_nodeids")?;
    let class_ids = attrs.required_ints("class_ids")?;
    let weights = attrs.floats("class_weights", "class_weights_as_tensor")?;
    if [class_nodes.len(), class_ids.len(), weights.len()]
        .iter()
        .any(|&l| l != class_trees.len())
    {
        return Err("has `class_*` attributes of different lengths".into());
    }
    let mut by_leaf: Vec<Vec<(u32, f64)>> = vec![Vec::new(); count];
    for (((&tree, &node), &class), &weight) in class_trees
        .iter()
        .zip(class_nodes)
        .zip(class_ids)
        .zip(&weights)
    {
        let Some(&at) = index.get(&(tree, node)) else {
            return Err(format!(
                "has a vote for node {node} of tree {tree}, which it does not declare"
            ));
        };
        let class = usize::try_from(class)
            .ok()
            .filter(|&c| c < n_classes)
            .ok_or_else(|| format!("has a vote for class {class} of {n_classes}"))?;
        by_leaf[at as usize].push((class as u32, f64::from(weight)));
    }

    let mut nodes = Vec::with_capacity(count);
    let mut votes = Vec::with_capacity(class_trees.len());
    let mut max_feature = 0usize;
    for i in 0..count {
        let mode = match modes[i].as_slice() {
            b"LEAF" => Mode::Leaf,
            b"BRANCH_LEQ" => Mode::Leq,
            b"BRANCH_LT" => Mode::Lt,
            b"BRANCH_GTE" => Mode::Gte,
            b"BRANCH_GT" => Mode::Gt,
            b"BRANCH_EQ" => Mode::Eq,
            b"BRANCH_NEQ" => Mode::Neq,
            other => {
                return Err(format!(
                    "has a node mode `{}`",
                    String::from_utf8_lossy(other)
                ));
            }
        };
        let node = if mode == Mode::Leaf {
            let start = votes.len() as u32;
            votes.extend_from_slice(&by_leaf[i]);
            Node {
                feature: 0,
                threshold: 0.0,
                mode,
                missing_true: false,
                first: start,
                second: votes.len() as u32,
            }
        } else {
            let child = |id: i64| {
                index.get(&(tree_ids[i], id)).copied().ok_or_else(|| {
                    format!(
                        "has node {} of tree {} pointing at node {id}, which it does not declare",
                        node_ids[i], tree_ids[i]
                    )
                })
            };
            let feature = usize::try_from(features[i])
                .map_err(|_| format!("has a branch on feature {}", features[i]))?;
            max_feature = max_feature.max(feature);
            Node {
                feature: feature as u32,
                threshold: thresholds[i],
                mode,
                missing_true: missing.get(i).is_some_and(|&m| m != 0),
                first: child(trues[i])?,
                second: child(falses[i])?,
            }
        };
        nodes.push(node);
    }

    // Every tree's root is its node 0 (the operator numbers nodes from 0),
    // and every walk must end: a child always has a higher position in a
    // well-formed tree, which is checked rather than assumed.
    let mut roots = Vec::with_capacity(tree_order.len());
    for tree in &tree_order {
        let root = index
            .get(&(*tree, 0))
            .ok_or_else(|| format!("has no node 0 in tree {tree}"))?;
        roots.push(*root);
    }
    check_acyclic(&nodes, &roots)?;

    let mut base = attrs
        .floats("base_values", "base_values_as_tensor")
        .unwrap_or_default()
        .into_iter()
        .map(f64::from)
        .collect::<Vec<_>>();
    if base.is_empty() {
        base = vec![0.0; n_classes];
    } else if base.len() != n_classes {
        return Err(format!(
            "has {} base values for {n_classes} classes",
            base.len()
        ));
    }
    Ok(TreeEnsemble {
        nodes,
        roots,
        votes,
        base,
        post,
        max_feature,
    })
}

/// Every walk from a root reaches a leaf: no node is visited twice on one path.
fn check_acyclic(nodes: &[Node], roots: &[u32]) -> Result<(), String> {
    // 0 = unseen, 1 = on the current path, 2 = known to end at leaves.
    let mut state = vec![0u8; nodes.len()];
    for &root in roots {
        let mut stack = vec![(root, false)];
        while let Some((at, done)) = stack.pop() {
            let i = at as usize;
            if done {
                state[i] = 2;
                continue;
            }
            match state[i] {
                2 => continue,
                1 => return Err("has a tree whose branches loop".into()),
                _ => {}
            }
            state[i] = 1;
            stack.push((at, true));
            let node = nodes[i];
            if node.mode != Mode::Leaf {
                for child in [node.first, node.second] {
                    if state[child as usize] == 1 {
                        return Err("has a tree whose branches loop".into());
                    }
                    if state[child as usize] == 0 {
                        stack.push((child, false));
                    }
                }
            }
        }
    }
    Ok(())
}

impl TreeEnsemble {
    /// The smallest input width the trees can read.
    pub fn min_features(&self) -> usize {
        self.max_feature + 1
    }

    /// Class probabilities for each row of `x` (row-major, `width` values
    /// per row), row-major with `n_classes` values per row.
    pub fn predict(&self, x: &[f32], width: usize) -> Vec<f64> {
        let n_classes = self.base.len();
        let rows = x.len().checked_div(width).unwrap_or(0);
        let mut out = Vec::with_capacity(rows * n_classes);
        for row in x.chunks_exact(width.max(1)).take(rows) {
            let start = out.len();
            out.extend_from_slice(&self.base);
            let scores = &mut out[start..];
            for &root in &self.roots {
                let (from, to) = self.leaf(root, row);
                for &(class, weight) in &self.votes[from as usize..to as usize] {
                    scores[class as usize] += weight;
                }
            }
            self.post.apply(scores);
        }
        out
    }

    fn leaf(&self, root: u32, row: &[f32]) -> (u32, u32) {
        let mut node = self.nodes[root as usize];
        while node.mode != Mode::Leaf {
            let value = row[node.feature as usize];
            let go_true = if value.is_nan() {
                node.missing_true
            } else {
                match node.mode {
                    Mode::Leq => value <= node.threshold,
                    Mode::Lt => value < node.threshold,
                    Mode::Gte => value >= node.threshold,
                    Mode::Gt => value > node.threshold,
                    Mode::Eq => value == node.threshold,
                    Mode::Neq => value != node.threshold,
                    Mode::Leaf => unreachable!("the loop stops at leaves"),
                }
            };
            node = self.nodes[if go_true { node.first } else { node.second } as usize];
        }
        (node.first, node.second)
    }
}

impl PostTransform {
    fn apply(self, scores: &mut [f64]) {
        match self {
            Self::None => {}
            Self::Logistic => {
                for s in scores.iter_mut() {
                    *s = 1.0 / (1.0 + (-*s).exp());
                }
            }
            Self::Softmax => softmax(scores, false),
            Self::SoftmaxZero => softmax(scores, true),
        }
    }
}

/// Softmax; with `skip_zeros`, scores of exactly zero stay zero and take no
/// share (the operator's `SOFTMAX_ZERO`).
fn softmax(scores: &mut [f64], skip_zeros: bool) {
    let counted = |s: f64| !(skip_zeros && s == 0.0);
    let max = scores
        .iter()
        .copied()
        .filter(|&s| counted(s))
        .fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return;
    }
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        if counted(*s) {
            *s = (*s - max).exp();
            sum += *s;
        }
    }
    for s in scores.iter_mut() {
        if counted(*s) || !skip_zeros {
            *s /= sum;
        }
    }
}

/// A node's attributes by name.
struct Attributes<'a>(HashMap<&'a str, &'a pb::AttributeProto>);

impl<'a> Attributes<'a> {
    fn of(node: &'a pb::NodeProto) -> Self {
        Self(
            node.attribute
                .iter()
                .map(|a| (a.name.as_str(), a))
                .collect(),
        )
    }

    fn ints(&self, name: &str) -> Option<&'a [i64]> {
        self.0.get(name).map(|a| a.ints.as_slice())
    }

    fn required_ints(&self, name: &str) -> Result<&'a [i64], String> {
        self.ints(name).ok_or_else(|| format!("has no `{name}`"))
    }

    fn strings(&self, name: &str) -> Option<&'a [Vec<u8>]> {
        self.0.get(name).map(|a| a.strings.as_slice())
    }

    fn text(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    /// A float list, or its `_as_tensor` double form (narrowed to f32 as
    /// the runtime compares in the input's type).
    fn floats(&self, name: &str, tensor_name: &str) -> Result<Vec<f32>, String> {
        if let Some(a) = self.0.get(name) {
            return Ok(a.floats.clone());
        }
        let Some(tensor) = self.0.get(tensor_name).and_then(|a| a.t.as_ref()) else {
            return Err(format!("has neither `{name}` nor `{tensor_name}`"));
        };
        if !tensor.double_data.is_empty() {
            return Ok(tensor.double_data.iter().map(|&d| d as f32).collect());
        }
        if !tensor.float_data.is_empty() {
            return Ok(tensor.float_data.clone());
        }
        const DOUBLE: i32 = 11;
        if tensor.data_type == DOUBLE && tensor.raw_data.len() % 8 == 0 {
            return Ok(tensor
                .raw_data
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect());
        }
        Err(format!(
            "has `{tensor_name}` in a storage this reader does not take"
        ))
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;

    fn ints(name: &str, values: &[i64]) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.into(),
            ints: values.to_vec(),
            ..Default::default()
        }
    }

    fn floats(name: &str, values: &[f32]) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.into(),
            floats: values.to_vec(),
            ..Default::default()
        }
    }

    fn strings(name: &str, values: &[&str]) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.into(),
            strings: values.iter().map(|s| s.as_bytes().to_vec()).collect(),
            ..Default::default()
        }
    }

    fn text(name: &str, value: &str) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.into(),
            s: value.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    /// Two trees over 2 features and 3 classes:
    /// tree 0: x0 <= 0.5 ? leaf{class 0: 1.0} : leaf{class 1: 2.0}
    /// tree 1: x1 <  1.0 ? leaf{class 2: 0.5, class 0: 0.25} : leaf{class 1: 1.0}
    /// (a NaN in x1 goes to the true branch of tree 1).
    fn graph(post: &str, false_of_root: i64) -> pb::GraphProto {
        let node = pb::NodeProto {
            op_type: "TreeEnsembleClassifier".into(),
            domain: ML_DOMAIN.into(),
            input: vec!["x".into()],
            output: vec!["label".into(), "p".into()],
            attribute: vec![
                ints("nodes_treeids", &[0, 0, 0, 1, 1, 1]),
                ints("nodes_nodeids", &[0, 1, 2, 0, 1, 2]),
                ints("nodes_featureids", &[0, 0, 0, 1, 0, 0]),
                strings(
                    "nodes_modes",
                    &["BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LT", "LEAF", "LEAF"],
                ),
                floats("nodes_values", &[0.5, 0.0, 0.0, 1.0, 0.0, 0.0]),
                ints("nodes_truenodeids", &[1, 0, 0, 1, 0, 0]),
                ints("nodes_falsenodeids", &[false_of_root, 0, 0, 2, 0, 0]),
                ints("nodes_missing_value_tracks_true", &[0, 0, 0, 1, 0, 0]),
                ints("class_treeids", &[0, 0, 1, 1, 1]),
                ints("class_nodeids", &[1, 2, 1, 1, 2]),
                ints("class_ids", &[0, 1, 2, 0, 1]),
                floats("class_weights", &[1.0, 2.0, 0.5, 0.25, 1.0]),
                ints("classlabels_int64s", &[0, 1, 2]),
                text("post_transform", post),
            ],
            ..Default::default()
        };
        let identity = pb::NodeProto {
            op_type: "Identity".into(),
            input: vec!["p".into()],
            output: vec!["probabilities".into()],
            ..Default::default()
        };
        pb::GraphProto {
            node: vec![node, identity],
            output: vec![
                pb::ValueInfoProto {
                    name: "label".into(),
                    ..Default::default()
                },
                pb::ValueInfoProto {
                    name: "probabilities".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn scores_sum_the_reached_leaves_and_post_transform_applies() {
        let trees = ensemble_of(&graph("NONE", 2), "x", 3).unwrap().unwrap();
        assert_eq!(trees.min_features(), 2);
        // Row 1: x0 = 0 (true: class 0 +1), x1 = 2 (false: class 1 +1).
        // Row 2: x0 = 0.5 (LEQ is true), x1 = NaN (true: class 2 +0.5, 0 +0.25).
        // Row 3: x0 = 0.6 (false: class 1 +2), x1 = 0.999 (true).
        let x = [0.0, 2.0, 0.5, f32::NAN, 0.6, 0.999];
        let p = trees.predict(&x, 2);
        assert_eq!(p, vec![1.0, 1.0, 0.0, 1.25, 0.0, 0.5, 0.25, 2.0, 0.5]);

        let soft = ensemble_of(&graph("SOFTMAX", 2), "x", 3).unwrap().unwrap();
        let p = soft.predict(&x[..2], 2);
        let e = [1f64.exp(), 1f64.exp(), 1.0];
        let sum: f64 = e.iter().sum();
        for (got, want) in p.iter().zip(e.iter().map(|v| v / sum)) {
            assert!((got - want).abs() < 1e-12, "{p:?}");
        }
        let logistic = ensemble_of(&graph("LOGISTIC", 2), "x", 3).unwrap().unwrap();
        let p = logistic.predict(&x[..2], 2);
        assert!((p[2] - 0.5).abs() < 1e-12 && (p[0] - 1.0 / (1.0 + (-1f64).exp())).abs() < 1e-12);
    }

    #[test]
    fn other_graphs_are_left_to_tract_and_broken_ensembles_are_errors() {
        // Another input name, another class count, PROBIT: not ours.
        assert!(ensemble_of(&graph("NONE", 2), "y", 3).unwrap().is_none());
        assert!(ensemble_of(&graph("NONE", 2), "x", 4).unwrap().is_none());
        assert!(ensemble_of(&graph("PROBIT", 2), "x", 3).unwrap().is_none());
        let mut with_relu = graph("NONE", 2);
        with_relu.node[1].op_type = "Relu".into();
        assert!(ensemble_of(&with_relu, "x", 3).unwrap().is_none());
        // A root whose false branch is itself loops forever: refused.
        let looped = ensemble_of(&graph("NONE", 0), "x", 3).unwrap_err();
        assert!(looped.contains("loop"), "{looped}");
        // A branch to a node the tree does not have.
        let dangling = ensemble_of(&graph("NONE", 7), "x", 3).unwrap_err();
        assert!(dangling.contains("node 7"), "{dangling}");
    }
}
