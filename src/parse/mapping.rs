//! Mapped tasks: a task with `map: { KEY: [v1, v2, ...] }` (or `{ KEY: {
//! glob: PATTERN } }`, the files it matches, or `{ KEY: { param: NAME } }`,
//! a param's list) becomes one task per value, `ID[KEY=v1]`, `ID[KEY=v2]`,
//! ..., each with its own attempts,
//! cache key, lineage and logs, and with `{{ map.KEY }}` replaced by its
//! value in its params, inputs, outputs and description (a string that is
//! only `{{ map.KEY }}` keeps the value's type).
//!
//! Downstream, the mapped task's id stands for all of its instances: `needs:
//! [ID]` waits for every one, and `{{ tasks.ID.outputs.NAME }}` is the list of
//! their values, in the order of `map`. Expansion happens when the file is
//! loaded, so the graph, the plan, `--why` and `--json` show instances; a
//! task mapping over a param is expanded again when a run starts, with the
//! run's value of the param ([`crate::parse::expand_for_run`]).
//!
//! A task with `map: { KEY: { from: tasks.UP.outputs.NAME } }` maps over a
//! list that `UP` produces. It is one task in the graph and the plan until
//! `UP` has finished in a run; the run then expands it with that list and
//! carries on with the grown plan (see `execute::run_loop`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::Diagnostic;
use crate::model::{Dag, Task};

/// The most instances one mapped task may have.
pub const MAX_INSTANCES: usize = 1000;

/// The instance id of `base` for `value` of `key`.
pub fn instance_id(base: &str, key: &str, value: &Value) -> String {
    format!("{base}[{key}={}]", plain(value))
}

/// A value as it appears in an id or inside a longer string.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Replaces every mapped task of `dag` by its instances and points what
/// needs a mapped task at all of them; a task mapping over a param takes
/// its list from `params`. Problems (too many values, values that are not
/// scalars, ids that collide, a param that is not a list) become
/// diagnostics.
///
/// A task mapping over an upstream output takes its list from `resolved`
/// (by the mapped task's id); until its list is there it stays one task,
/// which needs the task its list comes from.
pub fn expand(
    dag: &mut Dag,
    params: &BTreeMap<String, Value>,
    resolved: &BTreeMap<String, Vec<Value>>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mapped: Vec<String> = dag
        .tasks
        .values()
        .filter(|t| t.map.is_some())
        .map(|t| t.id.clone())
        .collect();
    if mapped.is_empty() {
        return;
    }
    let any_map = |wanted: fn(&crate::model::TaskMap) -> bool| {
        mapped
            .iter()
            .any(|id| dag.tasks[id].map.as_deref().is_some_and(wanted))
    };
    let per_run = any_map(|m| m.param.is_some() || m.from.is_some());
    if per_run && dag.unexpanded.is_none() {
        dag.unexpanded = Some(Arc::new(dag.tasks.clone()));
    }
    // The ids as declared, for the needs of tasks mapping over an upstream
    // list (taken only when there is one: a DAG may have 100,000 tasks).
    let from_upstream = any_map(|m| m.from.is_some());
    let declared: std::collections::BTreeSet<String> = if from_upstream {
        dag.tasks.keys().cloned().collect()
    } else {
        Default::default()
    };
    for base in mapped {
        let Some(mut task) = dag.tasks.remove(&base) else {
            continue;
        };
        let Some(mut map) = task.map.clone() else {
            continue;
        };
        if let Some(from) = &map.from {
            if declared.contains(&from.task) && !task.needs.contains(&from.task) {
                let span = task.origin.span_of("map");
                task.needs.push(from.task.clone());
                task.origin.needs.push(span);
            }
            match resolved.get(&base) {
                Some(values) => map.values = values.clone(),
                None => {
                    dag.tasks.insert(base, task);
                    continue;
                }
            }
        }
        // A glob maps over the files it matches now, relative to the
        // project root; none is an empty fan-out, not an error, since the
        // files may come from an earlier run.
        if let Some(pattern) = &map.glob {
            let root = std::env::current_dir().unwrap_or_default();
            map.values = crate::workspace::glob::matching_files(&root, pattern)
                .unwrap_or_default()
                .iter()
                .map(|path| Value::String(path.to_string_lossy().into_owned()))
                .collect();
        }
        let at = |message: String| {
            let span = task.origin.span_of("map");
            Diagnostic::new("dag::bad_map", message).at(&task.origin.file, span)
        };
        if let Some(param) = &map.param {
            match params.get(param) {
                Some(Value::Array(values)) => map.values = values.clone(),
                Some(other) => {
                    diagnostics.push(
                        at(format!(
                            "`map.{}` of task `{base}` maps over param `{param}`, which is `{other}`, not a list",
                            map.key
                        ))
                        .help(format!("give `{param}` a list, e.g. `--param '{param}=[1, 2]'`")),
                    );
                    continue;
                }
                None => {
                    let known: Vec<&str> = params.keys().map(String::as_str).collect();
                    diagnostics.push(
                        at(format!(
                            "`map.{}` of task `{base}` maps over `{param}`, which is not a param of this DAG",
                            map.key
                        ))
                        .maybe_help(dag_operators::did_you_mean(param, known)),
                    );
                    continue;
                }
            }
        }
        // A glob or an upstream list may be empty: no instances, and the
        // gathered values are an empty list.
        let may_be_empty = map.glob.is_some() || map.from.is_some();
        let too_few = map.values.is_empty() && !may_be_empty;
        if too_few || map.values.len() > MAX_INSTANCES {
            let source = match &map.from {
                Some(from) => format!(" (from `{from}`)"),
                None => String::new(),
            };
            diagnostics.push(
                at(format!(
                    "`map.{}` of task `{base}` has {} values{source}; a mapped task has {} to {MAX_INSTANCES}",
                    map.key,
                    map.values.len(),
                    usize::from(!may_be_empty),
                ))
                .help("split the work into fewer, larger instances"),
            );
            continue;
        }
        let mut ids = Vec::with_capacity(map.values.len());
        for value in &map.values {
            if value.is_array() || value.is_object() || value.is_null() {
                diagnostics.push(at(format!(
                    "`map.{}` of task `{base}` holds `{value}`; values are strings, numbers or booleans",
                    map.key
                )));
                ids.clear();
                break;
            }
            // A file is named in the id by its file name.
            let label = match (&map.glob, value) {
                (Some(_), Value::String(path)) => Value::String(
                    std::path::Path::new(path)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| path.clone()),
                ),
                _ => value.clone(),
            };
            let id = instance_id(&base, &map.key, &label);
            if plain(&label).contains('/') || dag.tasks.contains_key(&id) || ids.contains(&id) {
                diagnostics.push(at(format!(
                    "`map.{}` of task `{base}` gives the instance id `{id}` twice, or one with `/`",
                    map.key
                )));
                ids.clear();
                break;
            }
            let mut instance = substitute_task(&task, &map.key, value);
            instance.id = id.clone();
            // An instance keeps its key and value, so `{{ map.KEY }}` in
            // its (shared) source checks as known.
            instance.map = Some(Box::new(crate::model::TaskMap {
                key: map.key.clone(),
                values: vec![value.clone()],
                glob: None,
                param: None,
                from: None,
            }));
            dag.tasks.insert(id.clone(), instance);
            ids.push(id);
        }
        if !ids.is_empty() || (may_be_empty && map.values.is_empty()) {
            dag.mapped.insert(base, ids);
        }
    }
    if dag.mapped.is_empty() {
        return;
    }
    let mapped = dag.mapped.clone();
    for task in dag.tasks.values_mut() {
        if !task.needs.iter().any(|n| mapped.contains_key(n)) {
            continue;
        }
        let mut needs = Vec::new();
        let mut spans = Vec::new();
        for (index, need) in task.needs.iter().enumerate() {
            let span = task
                .origin
                .needs
                .get(index)
                .copied()
                .unwrap_or(task.origin.key);
            match mapped.get(need) {
                Some(instances) => {
                    needs.extend(instances.iter().cloned());
                    spans.extend(instances.iter().map(|_| span));
                }
                None => {
                    needs.push(need.clone());
                    spans.push(span);
                }
            }
        }
        task.needs = needs;
        task.origin.needs = spans;
    }
}

/// [`crate::parse::expand_for_run`] without the operators' checks: what a request can be
/// refused for before it is queued.
pub fn expand_for(
    dag: &Dag,
    params: &BTreeMap<String, Value>,
) -> Result<Option<Dag>, Vec<Diagnostic>> {
    expand_with(dag, params, &BTreeMap::new())
}

pub(super) fn expand_with(
    dag: &Dag,
    params: &BTreeMap<String, Value>,
    resolved: &BTreeMap<String, Vec<Value>>,
) -> Result<Option<Dag>, Vec<Diagnostic>> {
    let Some(unexpanded) = &dag.unexpanded else {
        return Ok(None);
    };
    let mut expanded = dag.clone();
    expanded.tasks = (**unexpanded).clone();
    expanded.mapped.clear();
    expanded.checked_plan = None;
    let mut diagnostics = Vec::new();
    expand(&mut expanded, params, resolved, &mut diagnostics);
    if diagnostics.is_empty() {
        Ok(Some(expanded))
    } else {
        Err(diagnostics)
    }
}

fn substitute_task(task: &Task, key: &str, value: &Value) -> Task {
    let mut instance = task.clone();
    instance.params = substitute(&task.params, key, value);
    for paths in [&mut instance.inputs, &mut instance.outputs] {
        for path in paths.values_mut() {
            *path = substitute_str(path, key, value);
        }
    }
    instance.description = task
        .description
        .as_ref()
        .map(|d| substitute_str(d, key, value));
    instance
}

/// `{{ map.KEY }}` (with any spacing) replaced in every string of `json`.
fn substitute(json: &Value, key: &str, value: &Value) -> Value {
    match json {
        Value::String(text) => {
            let inner = text
                .trim()
                .strip_prefix("{{")
                .and_then(|t| t.strip_suffix("}}"))
                .map(str::trim);
            if inner == Some(format!("map.{key}").as_str()) {
                value.clone()
            } else {
                Value::String(substitute_str(text, key, value))
            }
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| substitute(v, key, value)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, key, value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn substitute_str(text: &str, key: &str, value: &Value) -> String {
    if !text.contains("map.") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open..].find("}}") else {
            break;
        };
        let inner = rest[open + 2..open + close].trim();
        out.push_str(&rest[..open]);
        if inner == format!("map.{key}") {
            out.push_str(&plain(value));
        } else {
            out.push_str(&rest[open..open + close + 2]);
        }
        rest = &rest[open + close + 2..];
    }
    out.push_str(rest);
    out
}

/// `{{ tasks.ID.outputs.NAME }}` of a mapped task: the instances' values in
/// map order, or `None` while one is missing.
pub fn gather(
    mapped: &BTreeMap<String, Vec<String>>,
    task: &str,
    name: &str,
    lookup: impl Fn(&str, &str) -> Option<Value>,
) -> Option<Value> {
    let instances = mapped.get(task)?;
    instances
        .iter()
        .map(|id| lookup(id, name))
        .collect::<Option<Vec<Value>>>()
        .map(Value::Array)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_whole_string_reference_keeps_the_type_and_others_are_spliced() {
        let params = json!({"n_trees": "{{ map.n }}", "out": "data/forest_{{map.n}}.json", "other": "{{ params.x }}"});
        let done = substitute(&params, "n", &json!(100));
        assert_eq!(
            done,
            json!({"n_trees": 100, "out": "data/forest_100.json", "other": "{{ params.x }}"})
        );
        assert_eq!(instance_id("train", "n", &json!("a b")), "train[n=a b]");
    }

    #[test]
    fn gathering_waits_for_every_instance() {
        let mapped = BTreeMap::from([(
            "t".to_string(),
            vec!["t[n=1]".to_string(), "t[n=2]".to_string()],
        )]);
        let all = gather(&mapped, "t", "v", |id, _| Some(json!(id)));
        assert_eq!(all, Some(json!(["t[n=1]", "t[n=2]"])));
        let partial = gather(&mapped, "t", "v", |id, _| {
            (id == "t[n=1]").then(|| json!(1))
        });
        assert_eq!(partial, None);
        assert_eq!(gather(&mapped, "other", "v", |_, _| Some(json!(1))), None);
    }
}
