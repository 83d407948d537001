//! `dag lineage`: resolves what the user named (a file, `MODEL@VERSION`,
//! `RUN_ID:TASK`, a digest) and prints its lineage from the store. The walk
//! itself is [`crate::lineage`].

use dag_operators::models::ModelRegistry;

use super::args::{Global, LineageArgs, LineageFormat};
use super::console::{out, outln};
use super::workspace::open_store;
use super::{CliResult, Exit, Failure};
use crate::execute::hash_file;
use crate::lineage::{Direction, ModelLink, Start, downstream, upstream};
use crate::record::error_chain;
use crate::views::model_link;

pub fn lineage(global: &Global, args: &LineageArgs) -> CliResult {
    let store = open_store(global)?;
    let registry =
        ModelRegistry::open(&global.state_dir).map_err(|e| Failure::internal(error_chain(&e)))?;
    let start = resolve(&store, &registry, &args.target)?;
    let internal = |e: dag_state::StateError| Failure::internal(error_chain(&e));
    let (graph, direction) = if args.downstream {
        let models: Vec<ModelLink> = registry
            .list(None)
            .map_err(|e| Failure::internal(error_chain(&e)))?
            .iter()
            .map(model_link)
            .collect();
        let graph = downstream(&store, &start, &models, args.runs.0).map_err(internal)?;
        (graph, Direction::Downstream)
    } else {
        (
            upstream(&store, &start).map_err(internal)?,
            Direction::Upstream,
        )
    };
    let format = if args.json {
        LineageFormat::Json
    } else {
        args.format
    };
    match format {
        LineageFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&graph).unwrap_or_default()
        ),
        LineageFormat::Text => out!("{}", graph.tree(direction)),
        LineageFormat::Mermaid => out!("{}", graph.mermaid()),
    }
    Ok(Exit::Success)
}

/// `MODEL@VERSION` when it is not a file, `RUN_ID:TASK` when the run
/// exists, else a path (a file in the project is hashed, and counts when a
/// task recorded that digest; else the path's newest producer's record),
/// else a digest some task recorded. Lineage is only ever of recorded
/// artifacts: a file outside the project is never read, and no file's
/// digest is shown unless the store already knows it.
fn resolve(
    store: &dag_state::Store,
    registry: &ModelRegistry,
    target: &str,
) -> Result<Start, Failure> {
    let internal = |e: dag_state::StateError| Failure::internal(error_chain(&e));
    let as_path = std::path::Path::new(target);
    if as_path.is_file() && inside_project(as_path) {
        let (digest, _) = hash_file(as_path)
            .map_err(|e| Failure::invalid(format!("cannot read `{target}`: {e}")))?;
        if is_recorded(store, &digest).map_err(internal)? {
            return Ok(Start::Artifact {
                path: Some(crate::plan::normalize(target)),
                digest,
            });
        }
    }
    if let Some((name, reference)) = target.split_once('@') {
        let version = registry.resolve(name, reference).map_err(|e| {
            Failure::invalid(format!("{}; `dag models list` shows them", error_chain(&e)))
        })?;
        return Ok(Start::Model(model_link(&version)));
    }
    if let Some((run_id, task_id)) = target.split_once(':')
        && store.run(run_id).map_err(internal)?.is_some()
    {
        let record = store.task(run_id, task_id).map_err(internal)?.ok_or_else(|| {
                Failure::invalid(format!(
                    "run `{run_id}` has no task `{task_id}`; `dag runs show {run_id}` lists its tasks"
                ))
            })?;
        return Ok(Start::Task(Box::new(record)));
    }
    let path = crate::plan::normalize(target);
    if let Some(producer) = store.latest_producer_of_path(&path).map_err(internal)?
        && let Some(output) = producer.outputs.iter().find(|o| o.path == path)
    {
        return Ok(Start::Artifact {
            path: Some(path),
            digest: output.digest.clone(),
        });
    }
    if is_recorded(store, target).map_err(internal)? {
        return Ok(Start::Artifact {
            path: None,
            digest: target.to_string(),
        });
    }
    Err(Failure::invalid(format!(
        "`{target}` is not an artifact, a digest, `MODEL@VERSION` or `RUN_ID:TASK` that the store knows \
         (a file counts when a run recorded it, as it is now); run the DAG that makes it, or check \
         the name with `dag runs` / `dag models list`"
    )))
}

/// Whether a task recorded `digest` as an input or an output.
fn is_recorded(store: &dag_state::Store, digest: &str) -> Result<bool, dag_state::StateError> {
    Ok(!store.producers_of_digest(digest)?.is_empty()
        || !store.consumers_of_digest(digest)?.is_empty())
}

/// Whether `path` is inside the directory `dag` runs in (the project).
fn inside_project(path: &std::path::Path) -> bool {
    let (Ok(project), Ok(real)) = (
        std::env::current_dir().and_then(std::fs::canonicalize),
        std::fs::canonicalize(path),
    ) else {
        return false;
    };
    real.starts_with(project)
}
