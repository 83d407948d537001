//! The public shapes of a DAG: how the daemon's status lists it (with its
//! schedule's next fire), and its task graph laid out by the plan's levels
//! with the artifact names that join tasks.
//!
//! Building a plan is `plan`'s job; this module only reads one.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::Dag;
use crate::plan::{EdgeKind, Plan};

/// One DAG as `GET /api/status` and `dag daemon status --json` list it.
#[derive(Debug, Clone, Serialize)]
pub struct DagStatusJson {
    pub name: String,
    pub path: std::path::PathBuf,
    pub spec_hash: String,
    /// The schedule as written.
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    /// RFC 3339, the next time cron fires it.
    pub next_fire: Option<String>,
    pub watch: Vec<String>,
    /// The rendered diagnostics of the newest edit, when it does not load.
    pub error: Option<String>,
}

impl DagStatusJson {
    pub fn new(dag: &Dag, spec_hash: &str, error: Option<&str>, now: DateTime<Utc>) -> Self {
        Self {
            name: dag.name.clone(),
            path: dag.path.clone(),
            spec_hash: spec_hash.to_string(),
            schedule: dag.schedule.as_ref().map(|s| s.expression.clone()),
            timezone: dag.schedule.as_ref().and_then(|s| s.timezone.clone()),
            next_fire: next_fire(dag, now),
            watch: dag.watch.clone(),
            error: error.map(str::to_string),
        }
    }
}

/// RFC 3339 of the next cron fire of `dag` after `now`, if it has a schedule.
pub fn next_fire(dag: &Dag, now: DateTime<Utc>) -> Option<String> {
    dag.schedule
        .as_ref()
        .and_then(|s| crate::daemon::cron::next_fire(s, now))
        .map(|t| crate::execute::rfc3339(t.timestamp_millis()))
}

/// The artifact names an edge stands for (an input of the downstream task
/// that is an output of the upstream one), in name order.
pub fn edge_artifacts(kinds: &[EdgeKind]) -> Vec<String> {
    kinds
        .iter()
        .filter_map(|kind| match kind {
            EdgeKind::Artifact(name) => Some(name.clone()),
            EdgeKind::Needs | EdgeKind::Reference => None,
        })
        .collect()
}

/// A DAG's task graph by plan levels: level `n` holds the tasks whose
/// longest upstream chain has `n` tasks; tasks of a level can run at once.
#[derive(Debug, Clone, Serialize)]
pub struct DagGraph {
    pub levels: Vec<Vec<GraphNode>>,
    pub edges: Vec<GraphEdge>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GraphNode {
    pub id: String,
    pub operator: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GraphEdge {
    pub from: String,
    pub to: String,
    /// The artifacts passed along this edge; empty for `needs` and references.
    pub artifacts: Vec<String>,
}

impl DagGraph {
    pub fn new(dag: &Dag, plan: &Plan) -> Self {
        let levels = plan
            .levels
            .iter()
            .map(|level| {
                level
                    .iter()
                    .map(|&index| {
                        let id = &plan.ids[index];
                        let task = dag.tasks.get(id);
                        GraphNode {
                            id: id.clone(),
                            operator: task.map(|t| t.operator.clone()).unwrap_or_default(),
                            description: task.and_then(|t| t.description.clone()),
                        }
                    })
                    .collect()
            })
            .collect();
        let edges = plan
            .edges
            .iter()
            .map(|((from, to), kinds)| GraphEdge {
                from: plan.ids[*from].clone(),
                to: plan.ids[*to].clone(),
                artifacts: edge_artifacts(kinds),
            })
            .collect();
        Self { levels, edges }
    }

    pub fn task_count(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// Task ids in plan order (level by level).
    pub fn order(&self) -> Vec<String> {
        self.levels
            .iter()
            .flatten()
            .map(|node| node.id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::views::test_support::dag;

    #[test]
    fn levels_follow_the_plan_and_edges_name_their_artifacts() -> Result<(), String> {
        let dag = dag(
            "name: g\ntasks:\n  make:\n    operator: noop\n    outputs: { table: out/t.csv }\n  use:\n    operator: noop\n    inputs: { rows: out/t.csv }\n  after:\n    operator: noop\n    needs: [use]\n",
        )?;
        let plan = crate::plan::build_plan(&dag, &dag.params).map_err(|c| format!("{c:?}"))?;
        let graph = DagGraph::new(&dag, &plan);
        let levels: Vec<Vec<&str>> = graph
            .levels
            .iter()
            .map(|l| l.iter().map(|n| n.id.as_str()).collect())
            .collect();
        assert_eq!(levels, vec![vec!["make"], vec!["use"], vec!["after"]]);
        assert_eq!(graph.task_count(), 3);
        let by_pair: Vec<(&str, &str, Vec<String>)> = graph
            .edges
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str(), e.artifacts.clone()))
            .collect();
        assert!(by_pair.contains(&("make", "use", vec!["rows".to_string()])));
        assert!(by_pair.contains(&("use", "after", Vec::new())));
        Ok(())
    }
}
