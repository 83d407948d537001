//! [`Plan`] and [`build_plan`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::Value;

use crate::model::Dag;
use crate::render::{Scope, render_string, task_references};

/// Why one task depends on another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeKind {
    Needs,
    /// The downstream task's input `name` is the upstream's output.
    Artifact(String),
    Reference,
}

/// The task graph of one run. Tasks are indexed by position in `ids`
/// (sorted by id, so indices are stable for a given DAG).
#[derive(Debug, Clone)]
pub struct Plan {
    pub ids: Vec<String>,
    pub upstream: Vec<Vec<usize>>,
    pub downstream: Vec<Vec<usize>>,
    /// Why each edge exists, keyed by (upstream, downstream).
    /// Each edge's kinds, sorted and without repeats (usually one, so a
    /// vector rather than a set: 300,000 edges, 300,000 small allocations).
    pub edges: BTreeMap<(usize, usize), Vec<EdgeKind>>,
    /// A topological order; ties broken by id.
    pub order: Vec<usize>,
    /// `levels[n]`: tasks whose longest upstream chain has length n. Tasks of
    /// one level can run in parallel.
    pub levels: Vec<Vec<usize>>,
    /// Each task's input and output paths, rendered with the run's params and
    /// normalised, relative to the project root.
    pub inputs: Vec<BTreeMap<String, String>>,
    pub outputs: Vec<BTreeMap<String, String>>,
}

impl Plan {
    pub fn index(&self, id: &str) -> Option<usize> {
        self.ids
            .binary_search_by(|probe| probe.as_str().cmp(id))
            .ok()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Every task downstream of `task`, transitively.
    pub fn descendants(&self, task: usize) -> BTreeSet<usize> {
        walk(task, &self.downstream)
    }

    /// Every task upstream of `task`, transitively.
    pub fn ancestors(&self, task: usize) -> BTreeSet<usize> {
        walk(task, &self.upstream)
    }
}

fn walk(start: usize, next: &[Vec<usize>]) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![start];
    while let Some(task) = stack.pop() {
        for &n in &next[task] {
            if seen.insert(n) {
                stack.push(n);
            }
        }
    }
    seen
}

/// Cycles as `build_plan` reports them, for a message: `a -> b -> a; ...`.
pub fn describe_cycles(cycles: &[Vec<String>]) -> String {
    cycles
        .iter()
        .map(|c| c.join(" -> "))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The plan for `dag` with `params`: the one the load's check built when
/// the params are the ones it was built with, else a new one.
pub fn plan_for(
    dag: &Dag,
    params: &BTreeMap<String, Value>,
) -> Result<std::sync::Arc<Plan>, Vec<Vec<String>>> {
    match &dag.checked_plan {
        Some(checked) if checked.params == *params => Ok(std::sync::Arc::clone(&checked.plan)),
        _ => build_plan(dag, params).map(std::sync::Arc::new),
    }
}

/// Builds the plan for `dag` with `params` (defaults merged with overrides).
/// Unknown task names in `needs` or references are ignored here: the checker
/// reports them. Fails with every dependency cycle, each as a path of ids
/// that starts and ends with the same task.
pub fn build_plan(dag: &Dag, params: &BTreeMap<String, Value>) -> Result<Plan, Vec<Vec<String>>> {
    let ids: Vec<String> = dag.tasks.keys().cloned().collect();
    let positions: std::collections::HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| (id.as_str(), n))
        .collect();
    let index = |id: &str| positions.get(id).copied();
    let scope = Scope {
        params,
        run: None,
        outputs: None,
        secrets: None,
    };
    let render_paths = |paths: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        paths
            .iter()
            .map(|(name, path)| {
                let rendered = render_string(path, &scope).unwrap_or_else(|_| path.clone());
                (name.clone(), normalize(&rendered))
            })
            .collect()
    };
    let inputs: Vec<_> = dag
        .tasks
        .values()
        .map(|t| render_paths(&t.inputs))
        .collect();
    let outputs: Vec<_> = dag
        .tasks
        .values()
        .map(|t| render_paths(&t.outputs))
        .collect();
    let mut producers: BTreeMap<&str, usize> = BTreeMap::new();
    for (task, paths) in outputs.iter().enumerate() {
        for path in paths.values() {
            producers.entry(path.as_str()).or_insert(task);
        }
    }

    let mut edges: BTreeMap<(usize, usize), Vec<EdgeKind>> = BTreeMap::new();
    let mut add_edge = |from: usize, to: usize, kind: EdgeKind| {
        let kinds = edges.entry((from, to)).or_default();
        if let Err(at) = kinds.binary_search(&kind) {
            kinds.insert(at, kind);
        }
    };
    for (downstream, task) in dag.tasks.values().enumerate() {
        for need in &task.needs {
            if let Some(upstream) = index(need) {
                add_edge(upstream, downstream, EdgeKind::Needs);
            }
        }
        for (name, path) in &inputs[downstream] {
            if let Some(&upstream) = producers.get(path.as_str())
                && upstream != downstream
            {
                add_edge(upstream, downstream, EdgeKind::Artifact(name.clone()));
            }
        }
        let mut referenced = Vec::new();
        task_references(&task.params, &mut referenced);
        for path in task.inputs.values().chain(task.outputs.values()) {
            task_references(&Value::String(path.clone()), &mut referenced);
        }
        if let Some(condition) = &task.when {
            for reference in condition.references() {
                if let crate::model::Reference::TaskOutput { task, .. } = reference {
                    referenced.push(task.clone());
                }
            }
        }
        let referenced: Vec<String> = referenced
            .into_iter()
            .flat_map(|id| match dag.mapped.get(&id) {
                Some(instances) => instances.clone(),
                None => vec![id],
            })
            .collect();
        for upstream in referenced.iter().filter_map(|id| index(id)) {
            if upstream != downstream {
                add_edge(upstream, downstream, EdgeKind::Reference);
            }
        }
    }

    let mut graph: DiGraph<usize, ()> = DiGraph::with_capacity(ids.len(), edges.len());
    let nodes: Vec<NodeIndex> = (0..ids.len()).map(|i| graph.add_node(i)).collect();
    for &(from, to) in edges.keys() {
        graph.add_edge(nodes[from], nodes[to], ());
    }
    let sorted = match toposort(&graph, None) {
        Ok(sorted) => sorted,
        Err(_) => return Err(cycles(&graph, &ids)),
    };

    let mut upstream = vec![Vec::new(); ids.len()];
    let mut downstream = vec![Vec::new(); ids.len()];
    for &(from, to) in edges.keys() {
        upstream[to].push(from);
        downstream[from].push(to);
    }
    let mut depth = vec![0usize; ids.len()];
    for node in &sorted {
        let task = graph[*node];
        depth[task] = upstream[task]
            .iter()
            .map(|&u| depth[u] + 1)
            .max()
            .unwrap_or(0);
    }
    let mut levels: Vec<Vec<usize>> = vec![Vec::new(); depth.iter().max().map_or(0, |d| d + 1)];
    for (task, &d) in depth.iter().enumerate() {
        levels[d].push(task);
    }
    let order = levels.iter().flatten().copied().collect();
    Ok(Plan {
        ids,
        upstream,
        downstream,
        edges,
        order,
        levels,
        inputs,
        outputs,
    })
}

/// Each strongly connected component with more than one task (or a task
/// needing itself) as a closed path `a -> b -> a`.
fn cycles(graph: &DiGraph<usize, ()>, ids: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for component in tarjan_scc(graph) {
        let members: BTreeSet<NodeIndex> = component.iter().copied().collect();
        let self_loop = component.len() == 1 && graph.contains_edge(component[0], component[0]);
        if component.len() < 2 && !self_loop {
            continue;
        }
        let start = *members
            .iter()
            .min_by_key(|n| &ids[graph[**n]])
            .unwrap_or(&component[0]);
        // Breadth-first from `start` to the shortest way back to it.
        let mut parent: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut closing = None;
        while let Some(current) = queue.pop_front() {
            let mut next: Vec<NodeIndex> = graph
                .neighbors(current)
                .filter(|n| members.contains(n))
                .collect();
            next.sort_by_key(|n| &ids[graph[*n]]);
            if next.contains(&start) {
                closing = Some(current);
                break;
            }
            for step in next {
                if step != start && !parent.contains_key(&step) {
                    parent.insert(step, current);
                    queue.push_back(step);
                }
            }
        }
        let mut path = vec![start];
        let mut node = closing.unwrap_or(start);
        while node != start {
            path.push(node);
            node = parent.get(&node).copied().unwrap_or(start);
        }
        path[1..].reverse();
        path.push(start);
        found.push(path.into_iter().map(|n| ids[graph[n]].clone()).collect());
    }
    found.sort();
    found
}

/// `./data/../data/x.csv` → `data/x.csv`; absolute paths stay absolute.
pub fn normalize(path: &str) -> String {
    let mut out = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out.to_string_lossy().into_owned()
}

#[cfg(test)]
mod plan_for_tests {
    use std::sync::Arc;

    use super::*;

    fn load(text: &str) -> Dag {
        let registry = crate::ops::registry();
        let mut read = |_: &Path| Ok(text.to_string());
        crate::parse::load_dag(Path::new("d.yaml"), &mut read, &registry)
            .unwrap_or_else(|diagnostics| panic!("{diagnostics:?}"))
    }

    const DAG: &str = "name: d\nparams: { dir: a }\ntasks:\n  make:\n    operator: noop\n    outputs: { out: \"{{ params.dir }}/x.csv\" }\n  use:\n    operator: noop\n    inputs: { data: a/x.csv }\n";

    #[test]
    fn the_checked_plan_serves_its_own_params_and_no_others() {
        let dag = load(DAG);
        let checked = dag.checked_plan.as_ref().map(|c| Arc::clone(&c.plan));
        let checked = checked.unwrap_or_else(|| panic!("the load keeps its plan"));
        let same = plan_for(&dag, &dag.params).unwrap_or_else(|c| panic!("{c:?}"));
        assert!(Arc::ptr_eq(&same, &checked));
        // `use` reads what `make` writes only while `dir` is `a`.
        let (make, used) = (same.index("make"), same.index("use"));
        assert!(make.zip(used).is_some_and(|(m, u)| same.upstream[u] == [m]));
        let mut other = dag.params.clone();
        other.insert("dir".into(), Value::from("b"));
        let rebuilt = plan_for(&dag, &other).unwrap_or_else(|c| panic!("{c:?}"));
        assert!(!Arc::ptr_eq(&rebuilt, &checked));
        let used = rebuilt.index("use").unwrap_or_else(|| panic!("use"));
        assert!(rebuilt.upstream[used].is_empty(), "{:?}", rebuilt.outputs);
    }
}
