//! Cross-task checks on a merged DAG: dependencies, cycles, operators and
//! their params, templates and conditions, conflicting outputs.

use std::collections::BTreeMap;
use std::sync::Arc;

use dag_operators::{Registry, TaskSpec};

use super::node::{Node, Value as NodeValue};
use super::{Diagnostic, SourceFile, Span, did_you_mean};
use crate::model::{Dag, Reference, Task, Template, TemplateError};
use crate::plan::build_plan;
use crate::render::{Scope, render_value};

/// Checks `dag`; returns the plan built for its default params to find
/// cycles, when there are none.
pub fn check(
    dag: &Dag,
    registry: &Registry,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<crate::plan::Plan> {
    // Hashed: a 100,000-task DAG looks up 300,000 needs. Suggestions come
    // from the sorted map, so they do not depend on hash order.
    let ids: std::collections::HashSet<&str> = dag.tasks.keys().map(String::as_str).collect();
    let names = Names::of(dag);
    for task in dag.tasks.values() {
        check_needs(dag, task, &ids, diagnostics);
        check_templates(dag, task, registry, &names, diagnostics);
        check_operator(dag, task, registry, diagnostics);
    }
    check_output_conflicts(dag, diagnostics);
    match build_plan(dag, &dag.params) {
        Ok(plan) => Some(plan),
        Err(cycles) => {
            // A task needing itself is reported as `self_dependency` above.
            for cycle in cycles.iter().filter(|c| c.len() > 2) {
                diagnostics.push(cycle_diagnostic(dag, cycle));
            }
            None
        }
    }
}

fn check_needs(
    dag: &Dag,
    task: &Task,
    ids: &std::collections::HashSet<&str>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for (need, span) in task.needs.iter().zip(&task.origin.needs) {
        if *need == task.id {
            diagnostics.push(
                Diagnostic::new(
                    "dag::self_dependency",
                    format!("task `{}` needs itself", task.id),
                )
                .at(&task.origin.file, *span)
                .label("a task cannot depend on itself"),
            );
        } else if !ids.contains(need.as_str()) {
            diagnostics.push(
                Diagnostic::new(
                    "dag::unknown_dependency",
                    format!("task `{}` needs unknown task `{need}`", task.id),
                )
                .at(&task.origin.file, *span)
                .label("no task has this id")
                .maybe_help(did_you_mean(need, dag.tasks.keys().map(String::as_str))),
            );
        }
    }
}

fn check_operator(dag: &Dag, task: &Task, registry: &Registry, diagnostics: &mut Vec<Diagnostic>) {
    let file = &task.origin.file;
    let operator_span = task.origin.span_of("operator");
    if task.operator.is_empty() {
        return;
    }
    let Some(operator) = registry.get(&task.operator) else {
        diagnostics.push(
            Diagnostic::new(
                "dag::unknown_operator",
                format!(
                    "task `{}` uses unknown operator `{}`",
                    task.id, task.operator
                ),
            )
            .at(file, operator_span)
            .label("not a registered operator")
            .maybe_help(did_you_mean(&task.operator, registry.names()))
            .help(format!(
                "available: {}",
                registry.names().collect::<Vec<_>>().join(", ")
            )),
        );
        return;
    };
    if task.values.is_some() && !operator.open_values() {
        let span = task.origin.span_of("values");
        diagnostics.push(
            Diagnostic::new(
                "dag::values_not_open",
                format!(
                    "task `{}` declares `values`, but `{}` writes only its own: {}",
                    task.id,
                    task.operator,
                    operator.value_names().join(", ")
                ),
            )
            .at(file, span)
            .help("remove `values:`; it is for `shell` and `python` tasks, which write values of their choosing"),
        );
    }
    check_operator_params(task, operator.as_ref(), &dag.params, diagnostics);
}

/// The operators' checks of every task with `params` (a run's, defaults
/// merged with overrides) in place of the DAG's defaults, which the load
/// checked: what a run with these params would fail on.
pub fn check_params_for_run(
    dag: &Dag,
    params: &BTreeMap<String, serde_json::Value>,
    registry: &Registry,
) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    // Only a task whose params name a param can render otherwise.
    for task in dag.tasks.values().filter(|t| names_a_param(&t.params)) {
        if let Some(operator) = registry.get(&task.operator) {
            check_operator_params(task, operator.as_ref(), params, &mut diagnostics);
        }
    }
    diagnostics
}

/// Whether the param a problem is about (`params.test_size`,
/// `params.criteria[1]`) is a template of another task's value, the run or
/// a secret: its value, and so the problem, exists only in a run.
fn known_at_run_time(params: &serde_json::Value, at: &str) -> bool {
    let Some(path) = at.strip_prefix("params.") else {
        return false;
    };
    let mut value = params;
    for (name, index) in path_steps(path) {
        let Some(next) = value.get(name) else {
            return false;
        };
        value = match index {
            Some(index) => match next.get(index) {
                Some(item) => item,
                None => return false,
            },
            None => next,
        };
        if value.is_string() {
            break;
        }
    }
    // Parsed, not searched: `{{ params.dir }}/run.csv` names only a param.
    value
        .as_str()
        .and_then(|text| Template::parse(text).ok())
        .is_some_and(|template| {
            template
                .references()
                .any(|(reference, _)| !matches!(reference, Reference::Param(_) | Reference::Map(_)))
        })
}

/// Whether a string in `value` may hold a template naming a param.
fn names_a_param(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains("params."),
        serde_json::Value::Array(items) => items.iter().any(names_a_param),
        serde_json::Value::Object(entries) => entries.values().any(names_a_param),
        _ => false,
    }
}

/// The operator's own check of `task`'s params rendered with `params`.
fn check_operator_params(
    task: &Task,
    operator: &dyn dag_operators::Operator,
    params: &BTreeMap<String, serde_json::Value>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let file = &task.origin.file;
    let scope = Scope {
        params,
        run: None,
        outputs: None,
        secrets: None,
    };
    let Ok(params) = render_value(&task.params, &scope) else {
        return;
    };
    let spec = TaskSpec {
        params: &params,
        inputs: &task.inputs,
        outputs: &task.outputs,
    };
    for problem in operator.check(&spec) {
        if known_at_run_time(&task.params, &problem.at) {
            // Checked when the run renders it (and not retried if refused).
            continue;
        }
        let span = problem_span(task, &problem.at);
        diagnostics.push(
            Diagnostic::new(
                "dag::operator_params",
                format!(
                    "task `{}` (`{}`): {}",
                    task.id, task.operator, problem.message
                ),
            )
            .at(file, span)
            .maybe_help(problem.help),
        );
    }
}

/// Maps an operator problem's location (`params.n_trees`, `inputs.train`,
/// `params.criteria[1]`) to the closest span in the task.
/// The steps of a problem's location below its head: `grid.n_trees` or
/// `criteria[1]`, as (key, index into the key's list).
fn path_steps(path: &str) -> impl Iterator<Item = (&str, Option<usize>)> {
    path.split('.').filter(|part| !part.is_empty()).map(|part| {
        match part.strip_suffix(']').and_then(|p| p.split_once('[')) {
            Some((name, index)) => (name, index.parse::<usize>().ok()),
            None => (part, None),
        }
    })
}

fn problem_span(task: &Task, at: &str) -> Span {
    let (head, rest) = at.split_once('.').unwrap_or((at, ""));
    let mut node = match find_key(&task.origin.body, head) {
        Some((key, value)) => {
            let mut best = (key.span, value);
            for (name, index) in path_steps(rest) {
                match find_key(best.1, name) {
                    Some((key, value)) => best = (key.span, value),
                    None => break,
                }
                if let Some(index) = index
                    && let NodeValue::Seq(items) = &best.1.value
                    && let Some(item) = items.get(index)
                {
                    best = (item.span, item);
                }
            }
            best.0
        }
        None => task.origin.key,
    };
    if node.len == 0 {
        node.len = 1;
    }
    node
}

fn find_key<'a>(node: &'a Node, name: &str) -> Option<(&'a Node, &'a Node)> {
    match &node.value {
        NodeValue::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.scalar_text() == name)
            .map(|(k, v)| (k, v)),
        _ => None,
    }
}

/// What a template may name, built once per DAG so that a file with
/// thousands of unknown references costs one list, not one per reference.
struct Names {
    /// `params.<name>` for every param.
    params: Vec<String>,
    /// Every variable a template may use outside `tasks.`.
    variables: Vec<String>,
}

impl Names {
    fn of(dag: &Dag) -> Self {
        let params: Vec<String> = dag.params.keys().map(|p| format!("params.{p}")).collect();
        let variables = params
            .iter()
            .cloned()
            .chain(["run.id", "run.logical_date", "run.dag"].map(String::from))
            .collect();
        Self { params, variables }
    }
}

/// Walks every string in the task body and checks its template references.
fn check_templates(
    dag: &Dag,
    task: &Task,
    registry: &Registry,
    names: &Names,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let file = &task.origin.file;
    let mut strings = Vec::new();
    for key in ["params", "inputs", "outputs"] {
        if let Some((_, value)) = find_key(&task.origin.body, key) {
            collect_strings(value, &mut strings);
        }
    }
    for node in strings {
        let Some(text) = node.as_str() else { continue };
        if !text.contains("{{") {
            continue;
        }
        match Template::parse(text) {
            Ok(template) => {
                for (reference, offset) in template.references() {
                    let span = node.content_span(offset, reference.to_string().len());
                    let at = (file, span);
                    check_reference(dag, task, registry, names, reference, at, diagnostics);
                }
            }
            Err((error, offset)) => diagnostics.push(template_error(
                file,
                node.content_span(offset, 2),
                &error,
                names,
            )),
        }
    }
    // `map: { KEY: { from: tasks.UP.outputs.NAME } }` names an output as a
    // template does.
    if let Some(from) = task.map.as_ref().and_then(|m| m.from.as_ref()) {
        let span = task.origin.span_of("map");
        let reference = Reference::TaskOutput {
            task: from.task.clone(),
            name: from.output.clone(),
        };
        check_reference(
            dag,
            task,
            registry,
            names,
            &reference,
            (file, span),
            diagnostics,
        );
    }
    if let Some(condition) = &task.when {
        let span = task.origin.span_of("when");
        for reference in condition.references() {
            let at = (file, span);
            check_reference(dag, task, registry, names, reference, at, diagnostics);
        }
    }
}

fn collect_strings<'a>(node: &'a Node, out: &mut Vec<&'a Node>) {
    match &node.value {
        NodeValue::Str(_) => out.push(node),
        NodeValue::Seq(items) => items.iter().for_each(|n| collect_strings(n, out)),
        NodeValue::Map(entries) => entries.iter().for_each(|(_, v)| collect_strings(v, out)),
        _ => {}
    }
}

fn template_error(
    file: &Arc<SourceFile>,
    span: Span,
    error: &TemplateError,
    names: &Names,
) -> Diagnostic {
    let diagnostic =
        Diagnostic::new("dag::unknown_template_variable", error.to_string()).at(file, span);
    match error {
        TemplateError::UnknownVariable(path) => {
            diagnostic
                .maybe_help(did_you_mean(path, names.variables.iter().map(String::as_str)))
                .help("variables: `params.<name>`, `secrets.<name>`, `run.id`, `run.logical_date`, `run.dag`, `tasks.<id>.outputs.<name>`")
        }
        _ => Diagnostic {
            code: "dag::template_syntax",
            ..diagnostic
        },
    }
}

fn check_reference(
    dag: &Dag,
    task: &Task,
    registry: &Registry,
    names: &Names,
    reference: &Reference,
    (file, span): (&Arc<SourceFile>, Span),
    diagnostics: &mut Vec<Diagnostic>,
) {
    match reference {
        Reference::Param(name) if !dag.params.contains_key(name) => diagnostics.push(
            Diagnostic::new(
                "dag::unknown_template_variable",
                format!("unknown template variable `params.{name}`"),
            )
            .at(file, span)
            .label("no such param")
            .maybe_help(did_you_mean(
                &format!("params.{name}"),
                names.params.iter().map(String::as_str),
            ))
            .help("declare it under `params:` with a default value"),
        ),
        Reference::Map(key) if task.map.as_ref().is_none_or(|m| m.key != *key) => diagnostics.push(
            Diagnostic::new(
                "dag::unknown_template_variable",
                format!("unknown template variable `map.{key}`"),
            )
            .at(file, span)
            .label(match &task.map {
                Some(map) => format!("this task maps over `{}`", map.key),
                None => "this task has no `map`".to_string(),
            })
            .help("`{{ map.KEY }}` is the value of a task with `map: { KEY: [...] }`"),
        ),
        Reference::Secret(name) if !dag.secrets.contains_key(name) => diagnostics.push(
            Diagnostic::new(
                "dag::unknown_template_variable",
                format!("unknown template variable `secrets.{name}`"),
            )
            .at(file, span)
            .label("no such secret")
            .maybe_help(did_you_mean(name, dag.secrets.keys().map(String::as_str)))
            .help("declare it under `secrets:` as `{ env: VAR }` or `{ file: path }`"),
        ),
        Reference::TaskOutput {
            task: upstream,
            name,
        } => {
            // A mapped task's id stands for its instances, which all declare
            // the same outputs: check against the first.
            let producer = dag.tasks.get(upstream).or_else(|| {
                dag.mapped
                    .get(upstream)
                    .and_then(|ids| ids.first())
                    .and_then(|id| dag.tasks.get(id))
            });
            // A glob that matched no files maps to no instances: their
            // gathered values are an empty list.
            if dag.mapped.get(upstream).is_some_and(Vec::is_empty) {
                return;
            }
            let Some(producer) = producer else {
                diagnostics.push(
                    Diagnostic::new(
                        "dag::unknown_template_variable",
                        format!(
                            "unknown template variable `{reference}`: there is no task `{upstream}`"
                        ),
                    )
                    .at(file, span)
                    .maybe_help(did_you_mean(upstream, dag.tasks.keys().map(String::as_str))),
                );
                return;
            };
            if producer.id == task.id
                || dag
                    .mapped
                    .get(upstream)
                    .is_some_and(|ids| ids.contains(&task.id))
            {
                diagnostics.push(
                    Diagnostic::new(
                        "dag::self_dependency",
                        format!("task `{}` references its own outputs", task.id),
                    )
                    .at(file, span),
                );
                return;
            }
            let Some(operator) = registry.get(&producer.operator) else {
                // An unknown operator is reported on its own; don't pile on.
                return;
            };
            let builtin = operator.value_names();
            let declared = producer.values.as_deref().unwrap_or(&[]);
            let known_name = producer.outputs.contains_key(name)
                || builtin.contains(&name.as_str())
                || declared.contains(name);
            if !known_name {
                let known: Vec<&str> = producer
                    .outputs
                    .keys()
                    .map(String::as_str)
                    .chain(builtin.iter().copied())
                    .chain(declared.iter().map(String::as_str))
                    .collect();
                let mut diagnostic = Diagnostic::new(
                    "dag::unknown_template_variable",
                    format!("unknown template variable `{reference}`: task `{upstream}` has no output `{name}`"),
                )
                .at(file, span)
                .maybe_help(did_you_mean(name, known.iter().copied()))
                .help(format!("outputs of `{upstream}`: {}", known.join(", ")));
                if operator.open_values() {
                    diagnostic = diagnostic.help(format!(
                        "if `{upstream}` writes `{name}` itself (to `DAG_OUTCOME`, or in its returned dict), declare it on the task: `values: [{}]`",
                        declared
                            .iter()
                            .map(String::as_str)
                            .chain([name.as_str()])
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                diagnostics.push(diagnostic);
            }
        }
        _ => {}
    }
}

fn check_output_conflicts(dag: &Dag, diagnostics: &mut Vec<Diagnostic>) {
    let mut writers: BTreeMap<String, &str> = BTreeMap::new();
    for task in dag.tasks.values() {
        for path in task.outputs.values() {
            let normalized = crate::plan::normalize(path);
            if let Some(other) = writers.insert(normalized, &task.id) {
                let span = task.origin.span_of("outputs");
                diagnostics.push(
                    Diagnostic::new(
                        "dag::output_conflict",
                        format!("tasks `{other}` and `{}` both write `{path}`", task.id),
                    )
                    .at(&task.origin.file, span)
                    .help("each artifact path must have exactly one producing task"),
                );
            }
        }
    }
}

fn cycle_diagnostic(dag: &Dag, cycle: &[String]) -> Diagnostic {
    let path = cycle.join(" -> ");
    let diagnostic = Diagnostic::new("dag::cycle", format!("dependency cycle: {path}"))
        .help("remove one of these dependencies (`needs`, a shared artifact path, or a `tasks.<id>` reference)");
    // `a -> b` means `b` depends on `a`: point at `b`'s `needs` entry for `a`.
    let (Some(upstream), Some(task)) =
        (cycle.first(), cycle.get(1).and_then(|id| dag.tasks.get(id)))
    else {
        return diagnostic;
    };
    let span = task
        .needs
        .iter()
        .position(|n| n == upstream)
        .and_then(|i| task.origin.needs.get(i).copied())
        .unwrap_or(task.origin.key);
    diagnostic.at(&task.origin.file, span)
}

#[cfg(test)]
mod tests {
    use super::known_at_run_time;

    #[test]
    fn only_a_value_templated_from_a_task_the_run_or_a_secret_waits_for_the_run() {
        let params = serde_json::json!({
            "share": "{{ tasks.pick.outputs.share }}",
            "token": "{{ secrets.key }}",
            "stamp": "{{ run.logical_date }}",
            "path": "{{ params.dir }}/run.csv",
            "plain": "tasks.csv",
            "grid": { "n_trees": ["{{ tasks.pick.outputs.n }}", 5] },
        });
        for at in [
            "params.share",
            "params.token",
            "params.stamp",
            "params.grid.n_trees[0]",
        ] {
            assert!(known_at_run_time(&params, at), "{at}");
        }
        for at in [
            "params.path",
            "params.plain",
            "params.grid.n_trees[1]",
            "params.missing",
            "params",
            "inputs.share",
        ] {
            assert!(!known_at_run_time(&params, at), "{at}");
        }
    }
}
