//! Rendering templates: `{{ params.x }}` and friends → values.
//!
//! A string that is exactly one reference renders to the referenced value
//! with its type; any other string renders to a string. Rendering is pure:
//! a [`Scope`] supplies every value.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::{Reference, Segment, Template};

/// `(task, name)` → the value task `task` produced as `name`.
pub type OutputLookup<'a> = dyn Fn(&str, &str) -> Option<Value> + 'a;

/// Values a template may reference.
pub struct Scope<'a> {
    pub params: &'a BTreeMap<String, Value>,
    /// `None` while checking a DAG: run variables render as placeholders.
    pub run: Option<&'a RunVars>,
    /// Output values of finished tasks; `None` renders placeholders.
    pub outputs: Option<&'a OutputLookup<'a>>,
    /// Secret values; `None` renders `<secrets.NAME>`, which is also the
    /// form recorded and hashed into cache keys.
    pub secrets: Option<&'a Secrets>,
}

/// Secrets by name: the value, or why it could not be read.
pub type Secrets = BTreeMap<String, Result<String, String>>;

#[derive(Debug, Clone)]
pub struct RunVars {
    pub id: String,
    pub dag: String,
    pub logical_date: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("template in `{text}`: {message}")]
    Template { text: String, message: String },
    #[error("secret `{name}` has no value: {why}")]
    Secret { name: String, why: String },
    #[error("`{reference}` has no value (is the task upstream, and did it produce `{name}`?)")]
    Missing { reference: String, name: String },
}

impl Scope<'_> {
    pub fn resolve(&self, reference: &Reference) -> Result<Value, RenderError> {
        let missing = |name: &str| RenderError::Missing {
            reference: reference.to_string(),
            name: name.to_string(),
        };
        let placeholder = || Value::String(format!("<{reference}>"));
        match reference {
            Reference::Param(name) => self.params.get(name).cloned().ok_or_else(|| missing(name)),
            Reference::RunId => Ok(self.run.map_or_else(placeholder, |r| r.id.clone().into())),
            Reference::RunDag => Ok(self.run.map_or_else(placeholder, |r| r.dag.clone().into())),
            Reference::RunLogicalDate => Ok(self
                .run
                .map_or_else(placeholder, |r| r.logical_date.clone().into())),
            Reference::Secret(name) => match self.secrets.map(|s| s.get(name)) {
                None => Ok(placeholder()),
                Some(Some(Ok(value))) => Ok(Value::String(value.clone())),
                Some(Some(Err(why))) => Err(RenderError::Secret {
                    name: name.clone(),
                    why: why.clone(),
                }),
                Some(None) => Err(missing(name)),
            },
            // Replaced when the file is loaded; one left is outside a mapped task.
            Reference::Map(key) => Err(missing(key)),
            Reference::TaskOutput { task, name } => match self.outputs {
                Some(outputs) => outputs(task, name).ok_or_else(|| missing(name)),
                None => Ok(placeholder()),
            },
        }
    }
}

/// Renders one string.
pub fn render_str(text: &str, scope: &Scope<'_>) -> Result<Value, RenderError> {
    if !text.contains("{{") {
        return Ok(Value::String(text.to_string()));
    }
    let template = Template::parse(text).map_err(|(error, _)| RenderError::Template {
        text: text.to_string(),
        message: error.to_string(),
    })?;
    if let Some(reference) = template.single_reference() {
        return scope.resolve(reference);
    }
    let mut out = String::new();
    for segment in &template.segments {
        match segment {
            Segment::Text(text) => out.push_str(text),
            Segment::Reference(reference, _) => match scope.resolve(reference)? {
                Value::String(s) => out.push_str(&s),
                other => out.push_str(&other.to_string()),
            },
        }
    }
    Ok(Value::String(out))
}

/// Renders a string that must stay a string (paths).
pub fn render_string(text: &str, scope: &Scope<'_>) -> Result<String, RenderError> {
    Ok(match render_str(text, scope)? {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

/// Renders every string inside a JSON value.
pub fn render_value(value: &Value, scope: &Scope<'_>) -> Result<Value, RenderError> {
    Ok(match value {
        Value::String(text) => render_str(text, scope)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(v, scope))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(v, scope)?)))
                .collect::<Result<_, RenderError>>()?,
        ),
        other => other.clone(),
    })
}

/// Every task-output reference in a JSON value's strings.
pub fn task_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) if text.contains("{{") => {
            if let Ok(template) = Template::parse(text) {
                for (reference, _) in template.references() {
                    if let Reference::TaskOutput { task, .. } = reference {
                        out.push(task.clone());
                    }
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| task_references(v, out)),
        Value::Object(map) => map.values().for_each(|v| task_references(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn single_reference_keeps_its_type_and_mixed_text_becomes_a_string() {
        let params = BTreeMap::from([("n".to_string(), json!(300))]);
        let scope = Scope {
            params: &params,
            run: None,
            outputs: None,
            secrets: None,
        };
        assert_eq!(render_str("{{ params.n }}", &scope), Ok(json!(300)));
        assert_eq!(render_str("n={{ params.n }}", &scope), Ok(json!("n=300")));
        assert_eq!(render_str("{{ run.id }}", &scope), Ok(json!("<run.id>")));
    }

    #[test]
    fn missing_task_output_is_an_error_at_run_time() {
        let params = BTreeMap::new();
        let lookup = |_: &str, _: &str| None;
        let scope = Scope {
            params: &params,
            run: None,
            outputs: Some(&lookup),
            secrets: None,
        };
        assert!(render_str("{{ tasks.a.outputs.x }}", &scope).is_err());
    }
}
