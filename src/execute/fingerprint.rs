//! [`Fingerprint`]: what a task's result depends on, and its cache key.
//!
//! A task's key is the blake3 of its operator, operator version, rendered
//! params, input digests, declared output paths and the keys of its upstream
//! tasks. Equal keys mean the earlier result can stand, provided its outputs
//! are still on disk with the recorded digests. The fingerprint itself is
//! recorded too, so the next run can say *what* changed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub operator: String,
    pub version: String,
    pub params: Value,
    /// Input name → blake3 digest.
    pub inputs: BTreeMap<String, String>,
    /// Output name → path.
    pub outputs: BTreeMap<String, String>,
    /// Upstream task id → its cache key.
    pub upstream: BTreeMap<String, String>,
}

impl Fingerprint {
    /// blake3 of the canonical JSON (object keys are sorted).
    pub fn key(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        blake3::hash(&bytes).to_hex().to_string()
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    pub fn from_value(value: &Value) -> Option<Self> {
        serde_json::from_value(value.clone()).ok()
    }

    /// Why `self` differs from an earlier fingerprint `before`, one reason
    /// per difference, most fundamental first.
    pub fn changes_since(&self, before: &Fingerprint) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.operator != before.operator {
            reasons.push(format!(
                "operator changed: `{}` → `{}`",
                before.operator, self.operator
            ));
        } else if self.version != before.version {
            reasons.push(format!(
                "operator `{}` version changed: {} → {}",
                self.operator, before.version, self.version
            ));
        }
        diff_maps(
            "input",
            &before.inputs,
            &self.inputs,
            short_digest,
            &mut reasons,
        );
        diff_params(&before.params, &self.params, "", &mut reasons);
        diff_maps(
            "output path",
            &before.outputs,
            &self.outputs,
            |s| s.to_string(),
            &mut reasons,
        );
        for (id, key) in &self.upstream {
            match before.upstream.get(id) {
                Some(old) if old == key => {}
                _ => reasons.push(format!("upstream `{id}` changed")),
            }
        }
        for id in before
            .upstream
            .keys()
            .filter(|id| !self.upstream.contains_key(*id))
        {
            reasons.push(format!("upstream `{id}` removed"));
        }
        reasons
    }
}

fn short_digest(digest: &str) -> String {
    digest.get(..12).unwrap_or(digest).to_string()
}

fn diff_maps(
    what: &str,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    show: impl Fn(&str) -> String,
    reasons: &mut Vec<String>,
) {
    for (name, value) in after {
        match before.get(name) {
            Some(old) if old == value => {}
            Some(old) => reasons.push(format!(
                "{what} `{name}` changed: {} → {}",
                show(old),
                show(value)
            )),
            None => reasons.push(format!("{what} `{name}` added")),
        }
    }
    for name in before.keys().filter(|n| !after.contains_key(*n)) {
        reasons.push(format!("{what} `{name}` removed"));
    }
}

fn diff_params(before: &Value, after: &Value, path: &str, reasons: &mut Vec<String>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Object(old), Value::Object(new)) => {
            let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                diff_params(
                    old.get(key).unwrap_or(&Value::Null),
                    new.get(key).unwrap_or(&Value::Null),
                    &child,
                    reasons,
                );
            }
        }
        _ => {
            let name = if path.is_empty() {
                "params".to_string()
            } else {
                format!("params.{path}")
            };
            reasons.push(format!("param `{name}` changed: {before} → {after}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fingerprint() -> Fingerprint {
        Fingerprint {
            operator: "ml.train".into(),
            version: "1".into(),
            params: json!({"n_trees": 300, "seed": 42}),
            inputs: BTreeMap::from([("train".into(), "aaaaaaaaaaaaaaaa".into())]),
            outputs: BTreeMap::from([("model".into(), "data/models/forest.json".into())]),
            upstream: BTreeMap::from([("split".into(), "k1".into())]),
        }
    }

    #[test]
    fn equal_fingerprints_have_equal_keys_and_no_changes() {
        assert_eq!(fingerprint().key(), fingerprint().key());
        assert!(fingerprint().changes_since(&fingerprint()).is_empty());
    }

    #[test]
    fn each_kind_of_change_is_named_with_old_and_new() {
        let before = fingerprint();
        let mut after = fingerprint();
        after.params = json!({"n_trees": 100, "seed": 42});
        after
            .inputs
            .insert("train".into(), "bbbbbbbbbbbbbbbb".into());
        after.version = "2".into();
        after.upstream.insert("split".into(), "k2".into());
        assert_ne!(before.key(), after.key());
        assert_eq!(
            after.changes_since(&before),
            vec![
                "operator `ml.train` version changed: 1 → 2",
                "input `train` changed: aaaaaaaaaaaa → bbbbbbbbbbbb",
                "param `params.n_trees` changed: 300 → 100",
                "upstream `split` changed",
            ]
        );
    }
}
