//! `--param key=value` overrides, typed as YAML types them and checked
//! against the type of each param's default.

use std::collections::BTreeMap;

use crate::parse::parse_yaml;

/// A `--param` that is not `key=value`.
#[derive(Debug, thiserror::Error)]
#[error("`--param {0}` must look like `key=value`")]
pub struct BadParam(pub String);

/// `key=value` pairs; values typed as YAML would type them (`7` is a number,
/// `true` a boolean, anything that does not parse stays a string).
pub fn parse_param_overrides(
    pairs: &[String],
) -> Result<BTreeMap<String, serde_json::Value>, BadParam> {
    pairs
        .iter()
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(|| BadParam(pair.clone()))?;
            let typed = parse_yaml(value)
                .map_or_else(|_| serde_json::Value::String(value.into()), |n| n.to_json());
            Ok((key.trim().to_string(), typed))
        })
        .collect()
}

/// The type a param's default gives it; an override must have the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    Integer,
    /// Any number; an integer is a number too.
    Number,
    Boolean,
    /// Any scalar: `--param path=7` keeps meaning the text `7` to the DAG.
    Text,
    /// A list, a mapping or null: anything goes.
    Any,
}

impl ParamKind {
    pub fn of(default: &serde_json::Value) -> Self {
        use serde_json::Value;
        match default {
            Value::Number(n) if n.is_i64() || n.is_u64() => Self::Integer,
            Value::Number(_) => Self::Number,
            Value::Bool(_) => Self::Boolean,
            Value::String(_) => Self::Text,
            Value::Null | Value::Array(_) | Value::Object(_) => Self::Any,
        }
    }

    /// Whether an override typed as `value` fits.
    pub fn accepts(self, value: &serde_json::Value) -> bool {
        use serde_json::Value;
        match self {
            Self::Integer => value.is_i64() || value.is_u64(),
            Self::Number => value.is_number(),
            Self::Boolean => value.is_boolean(),
            Self::Text => !matches!(value, Value::Array(_) | Value::Object(_)),
            Self::Any => true,
        }
    }

    fn article_and_name(self) -> &'static str {
        match self {
            Self::Integer => "an integer",
            Self::Number => "a number",
            Self::Boolean => "`true` or `false`",
            Self::Text => "a single value",
            Self::Any => "any value",
        }
    }
}

/// An override whose type does not match its param's default.
#[derive(Debug, thiserror::Error)]
#[error("param `{name}` takes {} (its default is `{default}`), not `{value}`", .kind.article_and_name())]
pub struct ParamTypeError {
    pub name: String,
    pub kind: ParamKind,
    pub default: serde_json::Value,
    pub value: serde_json::Value,
}

/// Checks each override against the type of its param's default. Names
/// the DAG does not declare are left to the run's own check, which says
/// `unknown param` with a suggestion.
pub fn check_param_types(
    defaults: &BTreeMap<String, serde_json::Value>,
    overrides: &BTreeMap<String, serde_json::Value>,
) -> Result<(), ParamTypeError> {
    for (name, value) in overrides {
        let Some(default) = defaults.get(name) else {
            continue;
        };
        let kind = ParamKind::of(default);
        if !kind.accepts(value) {
            return Err(ParamTypeError {
                name: name.clone(),
                kind,
                default: default.clone(),
                value: value.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_typed_as_yaml_types_them() {
        let params = parse_param_overrides(&[
            "n=7".into(),
            "flag=true".into(),
            "name=forest".into(),
            "ratio=0.5".into(),
        ])
        .expect("well-formed pairs");
        assert_eq!(params["n"], serde_json::json!(7));
        assert_eq!(params["flag"], serde_json::json!(true));
        assert_eq!(params["name"], serde_json::json!("forest"));
        assert_eq!(params["ratio"], serde_json::json!(0.5));
    }

    #[test]
    fn overrides_must_have_their_default_type() -> Result<(), BadParam> {
        let defaults: BTreeMap<String, serde_json::Value> = [
            ("n", serde_json::json!(300)),
            ("ratio", serde_json::json!(0.3)),
            ("flag", serde_json::json!(false)),
            ("path", serde_json::json!("data/x.csv")),
            ("list", serde_json::json!([1, 2])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let fine = parse_param_overrides(&[
            "n=7".into(),
            "ratio=1".into(),
            "flag=true".into(),
            "path=7".into(),
            "list=x".into(),
            "unknown=1".into(),
        ])?;
        assert!(check_param_types(&defaults, &fine).is_ok());
        for (pair, kind) in [
            ("n=abc", "an integer"),
            ("n=1.5", "an integer"),
            ("ratio=x", "a number"),
            ("flag=1", "`true` or `false`"),
            ("path=[1]", "a single value"),
        ] {
            let overrides = parse_param_overrides(&[pair.to_string()])?;
            let error = check_param_types(&defaults, &overrides)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains(kind), "{pair}: {error}");
        }
        let overrides = parse_param_overrides(&["n=abc".into()])?;
        assert_eq!(
            check_param_types(&defaults, &overrides)
                .err()
                .map(|e| e.to_string()),
            Some("param `n` takes an integer (its default is `300`), not `\"abc\"`".into())
        );
        Ok(())
    }

    #[test]
    fn a_pair_without_equals_is_refused() {
        let error = parse_param_overrides(&["seed".into()]).expect_err("no `=`");
        assert_eq!(
            error.to_string(),
            "`--param seed` must look like `key=value`"
        );
    }
}
