//! Helpers for typed operator params checked at load time.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Problem;

/// Deserializes an operator's params into its typed struct. Use
/// `#[serde(deny_unknown_fields)]` on the struct so typos are caught.
/// A missing `params` block is treated as an empty mapping.
pub fn parse_params<P: DeserializeOwned>(params: &Value) -> Result<P, Problem> {
    let value = if params.is_null() {
        Value::Object(Default::default())
    } else {
        params.clone()
    };
    serde_json::from_value(value).map_err(|error| {
        let message = error.to_string();
        let at = field_of(&message).map_or_else(|| "params".to_string(), |f| format!("params.{f}"));
        Problem::new(at, message)
    })
}

/// Extracts the field name serde names in backticks, if any.
fn field_of(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// Checks that every name in `required` is declared under `kind`
/// (`inputs` or `outputs`).
pub fn require_names(
    kind: &str,
    declared: &BTreeMap<String, String>,
    required: &[&str],
) -> Vec<Problem> {
    required
        .iter()
        .filter(|name| !declared.contains_key(**name))
        .map(|name| {
            Problem::new(kind, format!("missing {kind} `{name}`"))
                .with_help(format!("declare it: `{kind}: {{ {name}: <path> }}`"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only deserialization is under test")]
    struct P {
        n: u32,
    }

    #[test]
    fn unknown_field_points_at_the_field() {
        let problem = parse_params::<P>(&serde_json::json!({"n": 1, "m": 2})).unwrap_err();
        assert_eq!(problem.at, "params.m");
        assert!(
            problem.message.contains("unknown field"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn missing_required_input_is_reported_by_name() {
        let declared = BTreeMap::from([("a".to_string(), "x.csv".to_string())]);
        let problems = require_names("inputs", &declared, &["a", "b"]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].message, "missing inputs `b`");
    }
}
