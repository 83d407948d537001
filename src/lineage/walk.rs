//! Walking the store's lineage indexes into a [`LineageGraph`]: upstream to
//! the raw inputs nobody produced, or downstream to every task that read an
//! artifact and every model version registered from it. Reads only; finding
//! the starting point (a file, a model alias) is the caller's job.

use std::collections::BTreeSet;

use dag_state::{StateError, Store, TaskRecord};

use super::graph::{LineageGraph, Node, NodeKind, Relation};

/// A registered model version, as lineage needs it.
#[derive(Debug, Clone)]
pub struct ModelLink {
    pub name: String,
    pub version: u32,
    /// The model file's digest.
    pub digest: String,
    /// Input name → digest of what the register task consumed.
    pub data_digests: Vec<String>,
    pub run_id: Option<String>,
    pub task_id: Option<String>,
}

/// Where a walk starts.
#[derive(Debug, Clone)]
pub enum Start {
    Artifact {
        path: Option<String>,
        digest: String,
    },
    Task(Box<TaskRecord>),
    Model(ModelLink),
}

/// Everything `start` came from, down to artifacts no recorded task produced.
pub fn upstream(store: &Store, start: &Start) -> Result<LineageGraph, StateError> {
    let mut graph = LineageGraph::default();
    let mut pending: Vec<(Option<String>, String)> = Vec::new();
    let mut tasks: Vec<TaskRecord> = Vec::new();
    match start {
        Start::Artifact { path, digest } => pending.push((path.clone(), digest.clone())),
        Start::Task(record) => {
            graph.add_node(task_node(record));
            tasks.push((**record).clone());
        }
        Start::Model(model) => {
            graph.add_node(model_node(model));
            let model_id = LineageGraph::model_id(&model.name, model.version);
            let record = match (&model.run_id, &model.task_id) {
                (Some(run), Some(task)) => store.task(run, task)?,
                _ => None,
            };
            match record {
                Some(record) => {
                    graph.add_node(task_node(&record));
                    let id = LineageGraph::task_id(&record.run_id, &record.task_id);
                    graph.add_edge(&id, &model_id, Relation::Registered);
                    tasks.push(record);
                }
                None => {
                    for digest in &model.data_digests {
                        graph.add_node(artifact_node(None, digest));
                        let id = LineageGraph::artifact_id(digest);
                        graph.add_edge(&id, &model_id, Relation::Registered);
                        pending.push((None, digest.clone()));
                    }
                }
            }
        }
    }
    let mut walked = BTreeSet::new();
    loop {
        if let Some(record) = tasks.pop() {
            let task_id = LineageGraph::task_id(&record.run_id, &record.task_id);
            for input in &record.inputs {
                let id = LineageGraph::artifact_id(&input.digest);
                graph.add_node(artifact_node(Some(&input.path), &input.digest));
                graph.add_edge(&id, &task_id, Relation::Consumed);
                pending.push((Some(input.path.clone()), input.digest.clone()));
            }
            continue;
        }
        let Some((path, digest)) = pending.pop() else {
            break;
        };
        graph.add_node(artifact_node(path.as_deref(), &digest));
        if !walked.insert(digest.clone()) {
            continue;
        }
        if let Some(producer) = store.latest_producer_of_digest(&digest)? {
            let task_id = LineageGraph::task_id(&producer.run_id, &producer.task_id);
            if graph.add_node(task_node(&producer)) {
                tasks.push(producer);
            }
            graph.add_edge(
                &task_id,
                &LineageGraph::artifact_id(&digest),
                Relation::Produced,
            );
        }
    }
    Ok(graph)
}

/// Everything made from `start`: the tasks that read it, what they wrote,
/// transitively, and the model versions registered from any of it.
pub fn downstream(
    store: &Store,
    start: &Start,
    models: &[ModelLink],
    runs: Option<usize>,
) -> Result<LineageGraph, StateError> {
    let mut graph = LineageGraph::default();
    let mut pending: Vec<String> = Vec::new();
    match start {
        Start::Artifact { path, digest } => {
            graph.add_node(artifact_node(path.as_deref(), digest));
            pending.push(digest.clone());
        }
        Start::Task(record) => {
            graph.add_node(task_node(record));
            pending.extend(wrote(&mut graph, record));
        }
        Start::Model(model) => {
            graph.add_node(model_node(model));
            return Ok(graph);
        }
    }
    let mut walked = BTreeSet::new();
    let mut omitted = BTreeSet::new();
    while let Some(digest) = pending.pop() {
        if !walked.insert(digest.clone()) {
            continue;
        }
        let artifact_id = LineageGraph::artifact_id(&digest);
        // Consumers come newest run first; past the `runs` newest runs
        // that read this artifact, the rest are counted, not walked.
        let mut runs_seen: Vec<String> = Vec::new();
        for consumer in store.consumers_of_digest(&digest)? {
            if !runs_seen.contains(&consumer.run_id) {
                runs_seen.push(consumer.run_id.clone());
            }
            if runs.is_some_and(|limit| runs_seen.len() > limit) {
                omitted.insert(consumer.run_id.clone());
                continue;
            }
            let task_id = LineageGraph::task_id(&consumer.run_id, &consumer.task_id);
            let new = graph.add_node(task_node(&consumer));
            graph.add_edge(&artifact_id, &task_id, Relation::Consumed);
            if new {
                pending.extend(wrote(&mut graph, &consumer));
            }
        }
        for model in models
            .iter()
            .filter(|m| m.digest == digest || m.data_digests.contains(&digest))
        {
            graph.add_node(model_node(model));
            let model_id = LineageGraph::model_id(&model.name, model.version);
            graph.add_edge(&artifact_id, &model_id, Relation::Registered);
        }
    }
    // A run walked through another artifact is shown, so not omitted.
    omitted.retain(|run| {
        !graph
            .nodes
            .iter()
            .any(|n| n.run_id.as_deref() == Some(run.as_str()))
    });
    graph.omitted_runs = omitted.len();
    Ok(graph)
}

/// Adds `record`'s outputs and returns their digests.
fn wrote(graph: &mut LineageGraph, record: &TaskRecord) -> Vec<String> {
    let task_id = LineageGraph::task_id(&record.run_id, &record.task_id);
    record
        .outputs
        .iter()
        .map(|output| {
            graph.add_node(artifact_node(Some(&output.path), &output.digest));
            graph.add_edge(
                &task_id,
                &LineageGraph::artifact_id(&output.digest),
                Relation::Produced,
            );
            output.digest.clone()
        })
        .collect()
}

fn artifact_node(path: Option<&str>, digest: &str) -> Node {
    Node {
        id: LineageGraph::artifact_id(digest),
        kind: NodeKind::Artifact,
        path: path.map(String::from),
        digest: Some(digest.to_string()),
        run_id: None,
        task_id: None,
        model: None,
    }
}

fn task_node(record: &TaskRecord) -> Node {
    Node {
        id: LineageGraph::task_id(&record.run_id, &record.task_id),
        kind: NodeKind::Task,
        path: None,
        digest: None,
        run_id: Some(record.run_id.clone()),
        task_id: Some(record.task_id.clone()),
        model: None,
    }
}

fn model_node(model: &ModelLink) -> Node {
    Node {
        id: LineageGraph::model_id(&model.name, model.version),
        kind: NodeKind::Model,
        path: None,
        digest: Some(model.digest.clone()),
        run_id: model.run_id.clone(),
        task_id: model.task_id.clone(),
        model: Some(format!("{}@{}", model.name, model.version)),
    }
}
