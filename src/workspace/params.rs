//! `--param key=value` overrides, typed as YAML types them.

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
    fn a_pair_without_equals_is_refused() {
        let error = parse_param_overrides(&["seed".into()]).expect_err("no `=`");
        assert_eq!(
            error.to_string(),
            "`--param seed` must look like `key=value`"
        );
    }
}
