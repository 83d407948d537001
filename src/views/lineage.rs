//! Lineage as a picture: a [`LineageGraph`] laid out in columns, sources on
//! the left (the raw files nobody produced) and the starting point on the
//! right, and the link from a registered model version to the walk.

use std::collections::BTreeMap;

use dag_operators::models::ModelVersion;
use serde::Serialize;

use crate::lineage::{LineageGraph, ModelLink};

/// What lineage needs of a registered version.
pub fn model_link(version: &ModelVersion) -> ModelLink {
    ModelLink {
        name: version.name.clone(),
        version: version.version,
        digest: version.digest.clone(),
        data_digests: version.data_digests.values().cloned().collect(),
        run_id: version.run_id.clone(),
        task_id: version.task_id.clone(),
    }
}

/// Node indexes of a graph by column: column 0 holds the nodes nothing
/// points at; every other node sits one column right of the furthest node
/// pointing at it, so every edge goes rightwards.
#[derive(Debug, Clone, Serialize)]
pub struct LineageLayout {
    pub columns: Vec<Vec<usize>>,
}

impl LineageLayout {
    pub fn new(graph: &LineageGraph) -> Self {
        let index: BTreeMap<&str, usize> = graph
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i))
            .collect();
        let count = graph.nodes.len();
        let mut incoming = vec![0usize; count];
        let mut next: Vec<Vec<usize>> = vec![Vec::new(); count];
        for edge in &graph.edges {
            if let (Some(&from), Some(&to)) =
                (index.get(edge.from.as_str()), index.get(edge.to.as_str()))
            {
                next[from].push(to);
                incoming[to] += 1;
            }
        }
        let mut column = vec![0usize; count];
        let mut placed = vec![false; count];
        let mut ready: Vec<usize> = (0..count).filter(|&n| incoming[n] == 0).collect();
        while let Some(node) = ready.pop() {
            placed[node] = true;
            for &to in &next[node] {
                column[to] = column[to].max(column[node] + 1);
                incoming[to] -= 1;
                if incoming[to] == 0 {
                    ready.push(to);
                }
            }
        }
        // A digest read and written by the same task makes a cycle; its
        // nodes go one column past everything placed.
        let last = column.iter().copied().max().unwrap_or(0);
        for node in (0..count).filter(|&n| !placed[n]) {
            column[node] = last + 1;
        }
        let width = column.iter().copied().max().map_or(0, |c| c + 1);
        let mut columns = vec![Vec::new(); width];
        for (node, &c) in column.iter().enumerate() {
            columns[c].push(node);
        }
        Self { columns }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::{Node, NodeKind, Relation};

    fn node(id: &str, kind: NodeKind) -> Node {
        Node {
            id: id.into(),
            kind,
            path: None,
            digest: None,
            run_id: None,
            task_id: None,
            model: None,
        }
    }

    #[test]
    fn every_edge_points_rightwards_and_sources_are_leftmost() {
        let mut graph = LineageGraph::default();
        graph.add_node(node("model", NodeKind::Model));
        graph.add_node(node("train", NodeKind::Task));
        graph.add_node(node("raw", NodeKind::Artifact));
        graph.add_node(node("clean", NodeKind::Task));
        graph.add_node(node("table", NodeKind::Artifact));
        graph.add_edge("raw", "clean", Relation::Consumed);
        graph.add_edge("clean", "table", Relation::Produced);
        graph.add_edge("table", "train", Relation::Consumed);
        graph.add_edge("raw", "train", Relation::Consumed);
        graph.add_edge("train", "model", Relation::Registered);
        let layout = LineageLayout::new(&graph);
        let column_of = |id: &str| {
            layout
                .columns
                .iter()
                .position(|c| c.iter().any(|&n| graph.nodes[n].id == id))
        };
        assert_eq!(column_of("raw"), Some(0));
        assert_eq!(column_of("model"), Some(4));
        for edge in &graph.edges {
            assert!(column_of(&edge.from) < column_of(&edge.to), "{edge:?}");
        }
    }

    #[test]
    fn a_cycle_is_placed_rather_than_lost() {
        let mut graph = LineageGraph::default();
        graph.add_node(node("a", NodeKind::Artifact));
        graph.add_node(node("t", NodeKind::Task));
        graph.add_edge("a", "t", Relation::Consumed);
        graph.add_edge("t", "a", Relation::Produced);
        let layout = LineageLayout::new(&graph);
        let placed: usize = layout.columns.iter().map(Vec::len).sum();
        assert_eq!(placed, 2);
    }
}
