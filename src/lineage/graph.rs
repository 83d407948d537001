//! [`LineageGraph`]: artifacts, tasks and model versions joined by what
//! produced, consumed or registered what, and its three renderings (JSON,
//! an indented tree, Mermaid). Building it from the store is `walk`'s job.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Artifact,
    Task,
    Model,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// `name@version`, for a model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// task → artifact it wrote.
    Produced,
    /// artifact → task that read it.
    Consumed,
    /// task or artifact → the model version registered from it.
    Registered,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub relation: Relation,
}

/// `dag lineage --json`: `{"nodes": [..], "edges": [..]}`; the first node is
/// where the walk started.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LineageGraph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Runs that read an artifact of the walk but fell outside
    /// `--runs` (a downstream walk only); absent when none did.
    #[serde(skip_serializing_if = "is_zero")]
    pub omitted_runs: usize,
    #[serde(skip)]
    positions: BTreeMap<String, usize>,
    #[serde(skip)]
    edge_set: BTreeSet<Edge>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Which way a walk went, so a tree reads from the start outwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upstream,
    Downstream,
}

impl LineageGraph {
    pub fn artifact_id(digest: &str) -> String {
        format!("artifact:{digest}")
    }

    pub fn task_id(run_id: &str, task_id: &str) -> String {
        format!("task:{run_id}:{task_id}")
    }

    pub fn model_id(name: &str, version: u32) -> String {
        format!("model:{name}@{version}")
    }

    /// Adds `node` unless one with its id exists; returns whether it was new.
    pub fn add_node(&mut self, node: Node) -> bool {
        if self.positions.contains_key(&node.id) {
            return false;
        }
        self.positions.insert(node.id.clone(), self.nodes.len());
        self.nodes.push(node);
        true
    }

    pub fn add_edge(&mut self, from: &str, to: &str, relation: Relation) {
        let edge = Edge {
            from: from.to_string(),
            to: to.to_string(),
            relation,
        };
        if self.edge_set.insert(edge.clone()) {
            self.edges.push(edge);
        }
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.positions.get(id).map(|&i| &self.nodes[i])
    }

    /// The walk as an indented tree from its first node.
    pub fn tree(&self, direction: Direction) -> String {
        let mut out = String::new();
        if let Some(root) = self.nodes.first() {
            let mut shown = BTreeSet::new();
            self.tree_node(&root.id, None, direction, 0, &mut shown, &mut out);
        }
        if self.omitted_runs > 0 {
            out.push_str(&format!(
                "({} earlier {} that read these artifacts not shown; `--runs all` shows every run)\n",
                self.omitted_runs,
                if self.omitted_runs == 1 { "run" } else { "runs" }
            ));
        }
        out
    }

    fn tree_node(
        &self,
        id: &str,
        relation: Option<Relation>,
        direction: Direction,
        depth: usize,
        shown: &mut BTreeSet<String>,
        out: &mut String,
    ) {
        let Some(node) = self.node(id) else { return };
        let verb = relation
            .map(|r| verb(r, direction, node.kind))
            .unwrap_or("");
        let repeated = !shown.insert(id.to_string());
        out.push_str(&format!(
            "{:indent$}{verb}{}{}\n",
            "",
            label(node),
            if repeated { " (shown above)" } else { "" },
            indent = depth * 2
        ));
        if repeated {
            return;
        }
        let children: Vec<(&str, Relation)> = self
            .edges
            .iter()
            .filter_map(|e| match direction {
                Direction::Upstream if e.to == id => Some((e.from.as_str(), e.relation)),
                Direction::Downstream if e.from == id => Some((e.to.as_str(), e.relation)),
                _ => None,
            })
            .collect();
        for (child, relation) in children {
            self.tree_node(child, Some(relation), direction, depth + 1, shown, out);
        }
    }

    /// A Mermaid flowchart; nodes are numbered in walk order.
    pub fn mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (index, node) in self.nodes.iter().enumerate() {
            let text = label(node).replace('"', "'");
            let shape = match node.kind {
                NodeKind::Artifact => format!("n{index}[(\"{text}\")]"),
                NodeKind::Task => format!("n{index}[\"{text}\"]"),
                NodeKind::Model => format!("n{index}{{{{\"{text}\"}}}}"),
            };
            out.push_str(&format!("  {shape}\n"));
        }
        for edge in &self.edges {
            if let (Some(from), Some(to)) =
                (self.positions.get(&edge.from), self.positions.get(&edge.to))
            {
                let relation = match edge.relation {
                    Relation::Produced => "produced",
                    Relation::Consumed => "consumed",
                    Relation::Registered => "registered",
                };
                out.push_str(&format!("  n{from} -->|{relation}| n{to}\n"));
            }
        }
        out
    }
}

fn verb(relation: Relation, direction: Direction, child: NodeKind) -> &'static str {
    match (direction, relation, child) {
        (Direction::Upstream, Relation::Produced, _) => "produced by ",
        (Direction::Upstream, Relation::Consumed, _) => "from ",
        (Direction::Upstream, Relation::Registered, _) => "registered by ",
        (Direction::Downstream, Relation::Produced, _) => "wrote ",
        (Direction::Downstream, Relation::Consumed, _) => "read by ",
        (Direction::Downstream, Relation::Registered, _) => "registered as ",
    }
}

fn label(node: &Node) -> String {
    let short = |d: &str| d.get(..12).unwrap_or(d).to_string();
    match node.kind {
        NodeKind::Artifact => match (&node.path, &node.digest) {
            (Some(path), Some(digest)) => format!("{path} {}", short(digest)),
            (None, Some(digest)) => short(digest),
            (Some(path), None) => path.clone(),
            (None, None) => node.id.clone(),
        },
        NodeKind::Task => format!(
            "task `{}` in run {}",
            node.task_id.as_deref().unwrap_or("?"),
            node.run_id.as_deref().unwrap_or("?")
        ),
        NodeKind::Model => format!("model {}", node.model.as_deref().unwrap_or(&node.id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(path: &str, digest: &str) -> Node {
        Node {
            id: LineageGraph::artifact_id(digest),
            kind: NodeKind::Artifact,
            path: Some(path.into()),
            digest: Some(digest.into()),
            run_id: None,
            task_id: None,
            model: None,
        }
    }

    fn task(run: &str, id: &str) -> Node {
        Node {
            id: LineageGraph::task_id(run, id),
            kind: NodeKind::Task,
            path: None,
            digest: None,
            run_id: Some(run.into()),
            task_id: Some(id.into()),
            model: None,
        }
    }

    fn chain() -> LineageGraph {
        let mut graph = LineageGraph::default();
        graph.add_node(artifact("out.csv", "d2"));
        graph.add_node(task("r1", "clean"));
        graph.add_edge("task:r1:clean", "artifact:d2", Relation::Produced);
        graph.add_node(artifact("raw.csv", "d1"));
        graph.add_edge("artifact:d1", "task:r1:clean", Relation::Consumed);
        graph
    }

    #[test]
    fn nodes_and_edges_are_added_once() {
        let mut graph = chain();
        assert!(!graph.add_node(artifact("out.csv", "d2")));
        graph.add_edge("artifact:d1", "task:r1:clean", Relation::Consumed);
        assert_eq!((graph.nodes.len(), graph.edges.len()), (3, 2));
    }

    #[test]
    fn upstream_tree_reads_from_the_artifact_back_to_raw_inputs() {
        assert_eq!(
            chain().tree(Direction::Upstream),
            "out.csv d2\n  produced by task `clean` in run r1\n    from raw.csv d1\n"
        );
    }

    #[test]
    fn mermaid_numbers_nodes_and_labels_edges() {
        let text = chain().mermaid();
        assert!(text.contains("  n1 -->|produced| n0\n"), "{text}");
        assert!(text.contains("  n2 -->|consumed| n1\n"), "{text}");
    }
}
