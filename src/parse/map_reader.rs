//! Reading `map:` from a task's YAML: a list of values, `{ glob: PATTERN }`,
//! `{ param: NAME }` or `{ from: tasks.ID.outputs.NAME }` (or the template
//! forms of the last two). What a map expands to is `mapping`'s.

use std::sync::Arc;

use serde_json::Value;

use super::{Diagnostic, Node, SourceFile};

static EMPTY: Vec<Value> = Vec::new();

/// `map: { KEY: [v1, v2, ...] }`: one key, a list of values.
pub(super) fn read_map(
    source: &Arc<SourceFile>,
    node: &Node,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<crate::model::TaskMap> {
    let bad = |message: &str| {
        Diagnostic::new("dag::bad_map", message.to_string())
            .at(source, node.span)
            .help("write `map: { n_trees: [100, 300] }` and use `{{ map.n_trees }}` in the task")
    };
    let json = node.to_json();
    let Some(object) = json.as_object().filter(|o| o.len() == 1) else {
        diagnostics.push(bad("`map` takes one key and its list of values"));
        return None;
    };
    let (key, values) = object.iter().next()?;
    let single = |name: &str| {
        values
            .get(name)
            .filter(|_| values.as_object().is_some_and(|o| o.len() == 1))
            .and_then(Value::as_str)
    };
    let template = values
        .as_str()
        .and_then(|t| t.trim().strip_prefix("{{"))
        .and_then(|t| t.strip_suffix("}}"))
        .map(str::trim);
    // `{ param: NAME }` or `"{{ params.NAME }}"`: the list is a param's.
    let param = single("param")
        .or_else(|| template.and_then(|t| t.strip_prefix("params.")))
        .map(str::to_string);
    // `{ from: tasks.UP.outputs.NAME }` or `"{{ tasks.UP.outputs.NAME }}"`:
    // the list an upstream task produces.
    let from_text = single("from").or_else(|| template.filter(|t| t.starts_with("tasks.")));
    let from = match from_text.map(|text| (text, parse_from(text))) {
        Some((_, Some(from))) => Some(from),
        Some((text, None)) => {
            diagnostics.push(bad(&format!(
                "`map.{key}` maps over `{text}`; an upstream list is written `tasks.ID.outputs.NAME`"
            )));
            return None;
        }
        None => None,
    };
    let glob = values
        .get("glob")
        .filter(|_| values.as_object().is_some_and(|o| o.len() == 1))
        .and_then(Value::as_str);
    if let Some(pattern) = glob
        && let Err(error) = crate::workspace::glob::Glob::parse(pattern)
    {
        diagnostics.push(bad(&format!("`map.{key}.glob`: {error}")));
        return None;
    }
    let dynamic = glob.is_some() || param.is_some() || from.is_some();
    let Some(values) = values.as_array().or(dynamic.then_some(&EMPTY)) else {
        diagnostics.push(bad(&format!(
            "`map.{key}` must be a list of values, `{{ glob: PATTERN }}`, `{{ param: NAME }}` or `{{ from: tasks.ID.outputs.NAME }}`"
        )));
        return None;
    };
    let identifier = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !key.is_empty();
    if !identifier {
        diagnostics.push(bad(&format!(
            "`{key}` is not a map key (letters, digits, `_`)"
        )));
        return None;
    }
    Some(crate::model::TaskMap {
        key: key.clone(),
        values: values.clone(),
        glob: glob.map(String::from),
        param,
        from,
    })
}

/// `tasks.ID.outputs.NAME` (spaces around it allowed).
fn parse_from(text: &str) -> Option<crate::model::MapFrom> {
    let rest = text.trim().strip_prefix("tasks.")?;
    let (task, output) = rest.rsplit_once(".outputs.")?;
    let name_ok = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    (name_ok(task) && name_ok(output) && !output.contains('.')).then(|| crate::model::MapFrom {
        task: task.to_string(),
        output: output.to_string(),
    })
}
