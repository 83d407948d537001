//! The model registry as people look at it: each model's versions with
//! their metrics, aliases and the gate verdicts recorded in the run that
//! registered them, and each alias's target, rollback target and moves.
//!
//! Reads the registry (files under the state directory) and the store; moves
//! nothing — promotion and rollback are the registry's.

use dag_operators::models::{AliasEvent, ModelRegistry, ModelVersion, RegistryError};
use dag_state::{StateError, Store, TaskStatus};
use serde::Serialize;

/// The operator whose verdict lets a version in.
pub const GATE_OPERATOR: &str = "ml.gate";

/// One model, as `/models/{name}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelView {
    pub name: String,
    /// Newest first.
    pub versions: Vec<VersionView>,
    pub aliases: Vec<AliasView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionView {
    #[serde(flatten)]
    pub version: ModelVersion,
    /// The gates of the run that registered this version.
    pub gates: Vec<GateVerdict>,
}

/// What a gate task said, read from its record.
#[derive(Debug, Clone, Serialize)]
pub struct GateVerdict {
    pub run_id: String,
    pub task_id: String,
    pub status: TaskStatus,
    /// The gate's `passed` value; `None` when the task did not decide.
    pub passed: Option<bool>,
    /// Its one line: the checks that passed, or why it rejected.
    pub summary: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AliasView {
    pub alias: String,
    pub version: u32,
    /// Where `rollback` would move it.
    pub rollback_to: Option<u32>,
    /// Oldest first.
    pub moves: Vec<AliasEvent>,
}

/// A line of the model list.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub name: String,
    pub versions: usize,
    pub latest: u32,
    /// `(alias, version)`, by alias.
    pub aliases: Vec<(String, u32)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelViewError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StateError),
}

/// Whether `name` could name a registered model: lowercase letters, digits,
/// `_` and `-` (the registry's rule). Checked before a name from a request
/// reaches the registry, whose directories are named after models.
pub fn is_model_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Every registered model, by name.
pub fn model_summaries(registry: &ModelRegistry) -> Result<Vec<ModelSummary>, RegistryError> {
    let mut summaries: Vec<ModelSummary> = Vec::new();
    for version in registry.list(None)? {
        match summaries.last_mut() {
            Some(last) if last.name == version.name => {
                last.versions += 1;
                last.latest = last.latest.max(version.version);
                last.aliases.extend(
                    version
                        .aliases
                        .iter()
                        .map(|alias| (alias.clone(), version.version)),
                );
            }
            _ => summaries.push(ModelSummary {
                name: version.name.clone(),
                versions: 1,
                latest: version.version,
                aliases: version
                    .aliases
                    .iter()
                    .map(|alias| (alias.clone(), version.version))
                    .collect(),
            }),
        }
    }
    for summary in &mut summaries {
        summary.aliases.sort();
    }
    Ok(summaries)
}

/// Model `name`: versions newest first with their gate verdicts, and aliases.
pub fn model_view(
    registry: &ModelRegistry,
    store: &Store,
    name: &str,
) -> Result<ModelView, ModelViewError> {
    if !is_model_name(name) {
        return Err(RegistryError::UnknownModel { name: name.into() }.into());
    }
    let mut versions = Vec::new();
    for version in registry.list(Some(name))?.into_iter().rev() {
        let gates = match &version.run_id {
            Some(run_id) => gate_verdicts(store, run_id)?,
            None => Vec::new(),
        };
        versions.push(VersionView { version, gates });
    }
    let aliases = registry
        .alias_states(name)?
        .into_iter()
        .map(|(alias, state)| AliasView {
            alias,
            version: state.current,
            rollback_to: state.history.last().copied(),
            moves: state.log,
        })
        .collect();
    Ok(ModelView {
        name: name.to_string(),
        versions,
        aliases,
    })
}

fn gate_verdicts(store: &Store, run_id: &str) -> Result<Vec<GateVerdict>, StateError> {
    Ok(store
        .tasks(run_id)?
        .into_iter()
        .filter(|task| task.operator == GATE_OPERATOR)
        .map(|task| GateVerdict {
            passed: task
                .values
                .get("passed")
                .and_then(serde_json::Value::as_bool),
            summary: task.summary.or(task.reason),
            run_id: task.run_id,
            task_id: task.task_id,
            status: task.status,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_registry_are_not_model_names() {
        assert!(is_model_name("obesity"));
        assert!(is_model_name("m-2_b"));
        for bad in ["", "../x", "a/b", "..", "Upper", "a b", "x%2F"] {
            assert!(!is_model_name(bad), "{bad}");
        }
    }

    #[test]
    fn an_outside_path_is_an_unknown_model() -> Result<(), Box<dyn std::error::Error>> {
        let store = crate::views::test_support::TestStore::new()?;
        let registry = ModelRegistry::open(store.dir.path())?;
        let error = model_view(&registry, &store, "../../etc").err();
        assert!(
            matches!(
                error,
                Some(ModelViewError::Registry(RegistryError::UnknownModel { .. }))
            ),
            "{error:?}"
        );
        Ok(())
    }
}
