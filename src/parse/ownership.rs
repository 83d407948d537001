//! Artifact ownership across the DAGs of a directory: a path, once its
//! templates are rendered with each DAG's default params, has one producer.
//!
//! A producer is a task declaration (its file and id) together with what it
//! renders to (operator, params, inputs, outputs). The same declaration
//! included by several DAGs with the same params is one producer — the
//! stage files under `dags/` are DAGs of their own and parts of `obesity` at
//! once. The same declaration rendered with other params, or another task,
//! writing the same path is a conflict: running one DAG would overwrite the
//! other's artifacts. Paths that depend on run variables or on other tasks'
//! values are not known before a run and are not checked here.
//!
//! [`check_ownership`] is pure (it takes loaded DAGs); [`load_dag_directory`]
//! loads files and turns each conflict into a load error of both DAGs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use dag_operators::Registry;
use serde_json::Value;

use super::node::{Node, Value as NodeValue};
use super::{Diagnostic, SourceFile, Span, load_dag_file};
use crate::model::{Dag, Reference, Task, Template};
use crate::render::{Scope, render_string, render_value};

/// Two DAGs whose tasks would write the same paths differently.
#[derive(Debug, Clone)]
pub struct Conflict {
    /// The two DAGs, in name order.
    pub dags: [String; 2],
    pub paths: Vec<String>,
    pub diagnostic: Diagnostic,
}

/// What a task is, for telling one producer from another: its declaration
/// (file and id) and what it renders to.
type Identity = (PathBuf, String, String, Value, BTreeMap<String, String>);

/// One task of one DAG, as it writes its outputs.
struct Producer<'a> {
    dag: &'a Dag,
    task: &'a Task,
    identity: Identity,
    /// `(output name, normalized path)`, for paths known before a run.
    outputs: Vec<(String, String)>,
}

impl<'a> Producer<'a> {
    /// The task rendered with the DAG's default params; `None` when its
    /// params do not render (the loader reports that).
    fn of(dag: &'a Dag, task: &'a Task) -> Option<Self> {
        let scope = Scope {
            params: &dag.params,
            run: None,
            outputs: None,
            secrets: None,
        };
        let path = |template: &String| {
            render_string(template, &scope)
                .ok()
                .map(|rendered| crate::plan::normalize(&rendered))
        };
        let params = render_value(&task.params, &scope).ok()?;
        let inputs = task
            .inputs
            .iter()
            .filter_map(|(name, template)| Some((name.clone(), path(template)?)))
            .collect();
        let outputs = task
            .outputs
            .iter()
            .filter(|(_, template)| only_params(template))
            .filter_map(|(name, template)| Some((name.clone(), path(template)?)))
            .collect();
        Some(Self {
            dag,
            task,
            identity: (
                task.origin.file.path.clone(),
                task.id.clone(),
                task.operator.clone(),
                params,
                inputs,
            ),
            outputs,
        })
    }
}

/// A path two producers write: `(path, first's output name, second's)`.
type Clash = (String, String, String);

/// Every pair of DAGs in `dags` whose producers of some path differ, one
/// conflict per pair of tasks, with a diagnostic pointing at both
/// declarations.
pub fn check_ownership(dags: &[&Dag]) -> Vec<Conflict> {
    // Only DAGs of different names can conflict.
    if dags.iter().all(|dag| dag.name == dags[0].name) {
        return Vec::new();
    }
    let mut sorted: Vec<&Dag> = dags.to_vec();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let producers: Vec<Producer<'_>> = sorted
        .iter()
        .flat_map(|dag| {
            dag.tasks
                .values()
                .filter_map(|task| Producer::of(dag, task))
        })
        .collect();
    // path → (producer, output name) of its first producer
    let mut owners: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    // (first producer, second producer) → the paths both write
    let mut clashes: BTreeMap<(usize, usize), Vec<Clash>> = BTreeMap::new();
    for (index, producer) in producers.iter().enumerate() {
        for (name, path) in &producer.outputs {
            let Some(&(first, first_name)) = owners.get(path.as_str()) else {
                owners.insert(path, (index, name));
                continue;
            };
            let owner = &producers[first];
            if owner.identity == producer.identity || owner.dag.name == producer.dag.name {
                continue;
            }
            clashes.entry((first, index)).or_default().push((
                path.clone(),
                first_name.to_string(),
                name.clone(),
            ));
        }
    }
    clashes
        .into_iter()
        .map(|((first, second), paths)| {
            let (first, second) = (&producers[first], &producers[second]);
            Conflict {
                diagnostic: diagnostic(first, second, &paths),
                dags: [first.dag.name.clone(), second.dag.name.clone()],
                paths: paths.into_iter().map(|(path, _, _)| path).collect(),
            }
        })
        .collect()
}

/// Whether a path template references nothing but params.
fn only_params(template: &str) -> bool {
    Template::parse(template).is_ok_and(|t| {
        t.references()
            .all(|(reference, _)| matches!(reference, Reference::Param(_)))
    })
}

fn diagnostic(first: &Producer<'_>, second: &Producer<'_>, paths: &[Clash]) -> Diagnostic {
    let listed: Vec<String> = paths.iter().map(|(p, _, _)| format!("`{p}`")).collect();
    let shown = if listed.len() > 3 {
        format!("{} and {} more", listed[..3].join(", "), listed.len() - 3)
    } else {
        listed.join(", ")
    };
    let (path, first_output, second_output) = &paths[0];
    let (first_file, first_span) = output_span(first.task, first_output);
    let (second_file, second_span) = output_span(second.task, second_output);
    let same_declaration = first.identity.0 == second.identity.0 && first.task.id == second.task.id;
    let mut diagnostic = Diagnostic::new(
        "dag::output_conflict_across_dags",
        format!(
            "DAGs `{}` and `{}` both write {shown}, differently",
            first.dag.name, second.dag.name
        ),
    )
    .at(&second_file, second_span)
    .label(format!(
        "`{path}` in `{}` (task `{}`)",
        second.dag.name, second.task.id
    ));
    if !same_declaration {
        diagnostic = diagnostic.also_at(
            &first_file,
            first_span,
            format!(
                "`{path}` in `{}` (task `{}`)",
                first.dag.name, first.task.id
            ),
        );
    }
    for (name, a, b) in differing_params(first, second) {
        diagnostic = diagnostic.help(format!(
            "`params.{name}` is {a} in `{}` but {b} in `{}`",
            first.dag.name, second.dag.name
        ));
    }
    diagnostic.help(
        "a path has one producer across the DAG directory: template the outputs on a param \
         (e.g. `{{ params.data_dir }}/interim/clean.parquet`) and give it another value in one \
         of the DAGs; see \"Reusing stage files\" in docs/dag-format.md",
    )
}

/// The file and span of a task's output entry `name`, else of its `outputs`.
fn output_span(task: &Task, name: &str) -> (Arc<SourceFile>, Span) {
    let outputs = entry(&task.origin.body, "outputs");
    let span = outputs
        .and_then(|node| entry(node, name))
        .map(|node| node.span)
        .or_else(|| task.origin.fields.get("outputs").copied())
        .unwrap_or(task.origin.key);
    (Arc::clone(&task.origin.file), span)
}

fn entry<'a>(node: &'a Node, key: &str) -> Option<&'a Node> {
    match &node.value {
        NodeValue::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.scalar_text() == key)
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Params the two tasks' templates use whose defaults differ between the DAGs.
fn differing_params(first: &Producer<'_>, second: &Producer<'_>) -> Vec<(String, Value, Value)> {
    let mut used = BTreeSet::new();
    for task in [first.task, second.task] {
        let mut texts: Vec<&str> = task.inputs.values().map(String::as_str).collect();
        texts.extend(task.outputs.values().map(String::as_str));
        let mut strings = Vec::new();
        collect_strings(&task.params, &mut strings);
        texts.extend(strings);
        for text in texts {
            if let Ok(template) = Template::parse(text) {
                for (reference, _) in template.references() {
                    if let Reference::Param(name) = reference {
                        used.insert(name.clone());
                    }
                }
            }
        }
    }
    used.into_iter()
        .filter_map(|name| {
            let a = first.dag.params.get(&name)?;
            let b = second.dag.params.get(&name)?;
            (a != b).then(|| (name, a.clone(), b.clone()))
        })
        .collect()
}

fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Loads every file, then checks ownership across the DAGs that loaded: a
/// DAG in a conflict fails to load with the conflict's diagnostic (both
/// DAGs of a pair do, so neither runs and overwrites the other's artifacts).
pub fn load_dag_directory(
    files: &[PathBuf],
    registry: &Registry,
) -> Vec<Result<Dag, Vec<Diagnostic>>> {
    let mut loaded: Vec<Result<Dag, Vec<Diagnostic>>> = files
        .iter()
        .map(|file| load_dag_file(file, registry))
        .collect();
    apply_ownership(&mut loaded);
    loaded
}

/// Turns every loaded DAG that writes a path another loaded DAG also
/// writes into a load error naming both declarations.
pub fn apply_ownership(loaded: &mut [Result<Dag, Vec<Diagnostic>>]) {
    let conflicts = {
        let dags: Vec<&Dag> = loaded.iter().filter_map(|r| r.as_ref().ok()).collect();
        check_ownership(&dags)
    };
    for slot in loaded.iter_mut() {
        let Ok(dag) = slot else { continue };
        let involved: Vec<Diagnostic> = conflicts
            .iter()
            .filter(|c| c.dags.contains(&dag.name))
            .map(|c| c.diagnostic.clone())
            .collect();
        if !involved.is_empty() {
            *slot = Err(involved);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::parse::load_dag;

    const STAGE: &str = "name: stage\nparams: { raw: data/raw.csv, dir: data }\ntasks:\n  clean:\n    operator: noop\n    inputs: { raw: \"{{ params.raw }}\" }\n    outputs: { data: \"{{ params.dir }}/clean.csv\" }\n";

    /// Loads each named DAG from in-memory files.
    fn load(files: &[(&str, &str)], names: &[&str]) -> Vec<Dag> {
        let files: BTreeMap<PathBuf, String> = files
            .iter()
            .map(|(name, text)| (Path::new("dags").join(name), (*text).to_string()))
            .collect();
        let registry = crate::ops::registry();
        names
            .iter()
            .map(|name| {
                let mut read = |path: &Path| {
                    files.get(path).cloned().ok_or_else(|| {
                        crate::parse::ReadError::Io(std::io::Error::from(
                            std::io::ErrorKind::NotFound,
                        ))
                    })
                };
                match load_dag(&Path::new("dags").join(name), &mut read, &registry) {
                    Ok(dag) => dag,
                    Err(diagnostics) => panic!("{name}: {diagnostics:?}"),
                }
            })
            .collect()
    }

    fn check(dags: &[Dag]) -> Vec<Conflict> {
        check_ownership(&dags.iter().collect::<Vec<_>>())
    }

    #[test]
    fn a_stage_included_with_the_same_params_is_one_producer() {
        let including = "name: all\ninclude: [stage.yaml]\n";
        let dags = load(
            &[("stage.yaml", STAGE), ("all.yaml", including)],
            &["stage.yaml", "all.yaml"],
        );
        assert!(check(&dags).is_empty());
    }

    #[test]
    fn a_stage_included_with_other_inputs_but_the_same_output_conflicts_and_says_which_param() {
        let retraining = "name: retrain\nparams: { raw: data/new.csv }\ninclude: [stage.yaml]\n";
        let dags = load(
            &[("stage.yaml", STAGE), ("retrain.yaml", retraining)],
            &["stage.yaml", "retrain.yaml"],
        );
        let conflicts = check(&dags);
        assert_eq!(conflicts.len(), 1);
        assert_eq!(
            conflicts[0].dags,
            ["retrain".to_string(), "stage".to_string()]
        );
        assert_eq!(conflicts[0].paths, ["data/clean.csv"]);
        let rendered = conflicts[0].diagnostic.render(false);
        assert!(
            rendered.starts_with(
                "error[dag::output_conflict_across_dags]: DAGs `retrain` and `stage` both write `data/clean.csv`, differently\n --> dags/stage.yaml:7:22"
            ),
            "{rendered}"
        );
        assert!(
            rendered.contains("help: `params.raw` is \"data/new.csv\" in `retrain` but \"data/raw.csv\" in `stage`"),
            "{rendered}"
        );

        let namespaced = "name: retrain\nparams: { raw: data/new.csv, dir: data/retraining }\ninclude: [stage.yaml]\n";
        let dags = load(
            &[("stage.yaml", STAGE), ("retrain.yaml", namespaced)],
            &["stage.yaml", "retrain.yaml"],
        );
        assert!(check(&dags).is_empty());
    }

    #[test]
    fn two_tasks_writing_one_path_are_both_pointed_at() {
        let other = "name: other\ntasks:\n  make:\n    operator: noop\n    outputs: { out: ./data/../data/clean.csv }\n";
        let dags = load(
            &[("stage.yaml", STAGE), ("other.yaml", other)],
            &["stage.yaml", "other.yaml"],
        );
        let conflicts = check(&dags);
        assert_eq!(conflicts.len(), 1);
        let diagnostic = &conflicts[0].diagnostic;
        let json = diagnostic.to_json();
        assert_eq!(
            (json.file.as_deref(), json.line),
            (Some("dags/stage.yaml"), Some(7))
        );
        assert_eq!(json.related.len(), 1);
        assert_eq!(
            (json.related[0].file.as_str(), json.related[0].line),
            ("dags/other.yaml", 5)
        );
        assert_eq!(
            json.related[0].label,
            "`data/clean.csv` in `other` (task `make`)"
        );
    }

    #[test]
    fn paths_known_only_at_run_time_are_not_compared() {
        let a = "name: a\ntasks:\n  t:\n    operator: noop\n    outputs: { out: \"runs/{{ run.id }}.csv\" }\n";
        let b = "name: b\ntasks:\n  u:\n    operator: noop\n    outputs: { out: \"runs/{{ run.id }}.csv\" }\n";
        let dags = load(&[("a.yaml", a), ("b.yaml", b)], &["a.yaml", "b.yaml"]);
        assert!(check(&dags).is_empty());
    }

    #[test]
    fn loading_a_directory_fails_both_dags_of_a_conflict_and_no_other() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("stage.yaml"), STAGE)?;
        std::fs::write(
            dir.path().join("retrain.yaml"),
            "name: retrain\nparams: { raw: data/new.csv }\ninclude: [stage.yaml]\n",
        )?;
        std::fs::write(
            dir.path().join("alone.yaml"),
            "name: alone\ntasks:\n  t:\n    operator: noop\n",
        )?;
        let files: Vec<PathBuf> = ["alone.yaml", "retrain.yaml", "stage.yaml"]
            .iter()
            .map(|f| dir.path().join(f))
            .collect();
        let loaded = load_dag_directory(&files, &crate::ops::registry());
        assert!(loaded[0].is_ok());
        for failed in &loaded[1..] {
            let Err(diagnostics) = failed else {
                panic!("a DAG in a conflict must not load");
            };
            assert_eq!(diagnostics[0].code, "dag::output_conflict_across_dags");
        }
        Ok(())
    }
}
