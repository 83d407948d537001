//! Helpers for typed operator params checked at load time.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Problem;

/// Deserializes an operator's params into its typed struct. Use
/// `#[serde(deny_unknown_fields)]` on the struct so typos are caught.
/// A missing `params` block is treated as an empty mapping.
pub fn parse_params<P: DeserializeOwned>(params: &Value) -> Result<P, Problem> {
    let empty = Value::Object(Default::default());
    // Read through a reference: the params are not copied.
    let value = if params.is_null() { &empty } else { params };
    P::deserialize(value).map_err(|error| {
        let message = error.to_string();
        match named_field(&message) {
            Some(field) => Problem::new(format!("params.{field}"), message),
            // serde names no field in a type error (`invalid value:
            // integer `-5`, expected usize`): find the one at fault.
            None => match field_at_fault::<P>(value) {
                Some(field) => {
                    Problem::new(format!("params.{field}"), format!("`{field}`: {message}"))
                }
                None => Problem::new("params", message),
            },
        }
    })
}

/// The field serde names in backticks in an unknown, missing or duplicate
/// field error.
fn named_field(message: &str) -> Option<&str> {
    if !["unknown field", "missing field", "duplicate field"]
        .iter()
        .any(|kind| message.starts_with(kind))
    {
        return None;
    }
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// The first key of `params` that fails on its own: a mapping holding only
/// that key fails with something other than a missing field.
fn field_at_fault<P: DeserializeOwned>(params: &Value) -> Option<String> {
    let Value::Object(entries) = params else {
        return None;
    };
    entries.iter().find_map(|(key, value)| {
        let alone = Value::Object([(key.clone(), value.clone())].into_iter().collect());
        match P::deserialize(&alone) {
            Err(error) if !error.to_string().starts_with("missing field") => Some(key.clone()),
            _ => None,
        }
    })
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
        let Err(problem) = parse_params::<P>(&serde_json::json!({"n": 1, "m": 2})) else {
            panic!("an unknown field must be rejected");
        };
        assert_eq!(problem.at, "params.m");
        assert!(
            problem.message.contains("unknown field"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_reported_at_its_field() {
        let Err(problem) = parse_params::<P>(&serde_json::json!({"n": -5})) else {
            panic!("a negative count must be rejected");
        };
        assert_eq!(problem.at, "params.n");
        assert_eq!(
            problem.message,
            "`n`: invalid value: integer `-5`, expected u32"
        );
        let Err(problem) = parse_params::<P>(&serde_json::json!({"n": "three"})) else {
            panic!("a string count must be rejected");
        };
        assert_eq!(problem.at, "params.n");
        assert!(
            problem.message.starts_with("`n`: invalid type"),
            "{}",
            problem.message
        );
        let Err(problem) = parse_params::<P>(&serde_json::json!("all")) else {
            panic!("a string is not a mapping");
        };
        assert_eq!(problem.at, "params");
    }

    #[test]
    fn missing_required_input_is_reported_by_name() {
        let declared = BTreeMap::from([("a".to_string(), "x.csv".to_string())]);
        let problems = require_names("inputs", &declared, &["a", "b"]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].message, "missing inputs `b`");
    }
}
