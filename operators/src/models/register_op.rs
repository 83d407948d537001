//! `models.register`: stores a trained model file as the next version of a
//! named model, keeps a copy of every data input (the training and test
//! splits) with it, and points the given aliases (e.g. `challenger`) at it.
//!
//! Registering the same model bytes with the same data again finds the
//! version already there instead of adding a duplicate. It counts as up to
//! date only while that version is still in the registry and each alias
//! still points at it or at a later version. It does not judge the model;
//! gates decide what gets promoted.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::ml::{FeatureImportance, TrainedModel, onnx_model_file, read_classes};
use crate::models::{Actor, ModelRegistry, RegisterInfo, RegistryError};
use crate::{
    BoxFuture, Context, Earlier, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    require_names, run_blocking,
};

pub struct Register;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The model name; each registration is its next version.
    name: String,
    /// Aliases pointed at the new version (`challenger`, ...).
    #[serde(default)]
    aliases: Vec<String>,
    /// Class names of an ONNX `model`'s probability columns, in order
    /// (or an input `classes`: a JSON list).
    #[serde(default)]
    classes: Option<Vec<String>>,
    /// Per-class labels served with each prediction: annotation name →
    /// class → label (`risk: { Normal_Weight: low }`).
    #[serde(default)]
    annotations: BTreeMap<String, BTreeMap<String, String>>,
}

/// Keys of a prediction that an annotation may not take.
const ANSWER_KEYS: [&str; 5] = ["class", "confidence", "flagged", "model", "probabilities"];

/// Problems with annotation names: each a lowercase identifier that is not
/// already a key of the server's answers.
fn annotation_name_problems(params: &Params) -> Vec<Problem> {
    params
        .annotations
        .keys()
        .filter_map(|name| {
            let identifier = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !identifier {
                Some(Problem::new(
                    "params.annotations",
                    format!("`{name}` is not a lowercase name (letters, digits, `_`)"),
                ))
            } else if ANSWER_KEYS.contains(&name.as_str()) {
                Some(Problem::new(
                    "params.annotations",
                    format!(
                        "`{name}` is already a key of every prediction ({})",
                        ANSWER_KEYS.join(", ")
                    ),
                ))
            } else {
                None
            }
        })
        .collect()
}

/// Every annotated class is one of the model's.
fn check_annotated_classes(params: &Params, classes: &[String]) -> Result<(), OperatorError> {
    for (name, labels) in &params.annotations {
        if let Some(unknown) = labels.keys().find(|c| !classes.contains(c)) {
            return Err(OperatorError::Params(format!(
                "annotation `{name}` labels class `{unknown}`, which the model does not have (its classes: {})",
                classes.join(", ")
            )));
        }
    }
    Ok(())
}

/// Inputs that describe the model rather than data it was trained or tested on.
const MODEL_INPUTS: [&str; 4] = ["model", "metrics", "transformer", "classes"];

/// The model file's bytes: the input itself for a native model; for an ONNX
/// graph (given with a `transformer` input) a model file wrapping it.
fn model_bytes(ctx: &Context, params: &Params) -> Result<Vec<u8>, OperatorError> {
    let model_path = ctx.input("model")?;
    let Some(transformer) = ctx.inputs.get("transformer") else {
        return std::fs::read(model_path)
            .map_err(|e| OperatorError::io("read model", model_path, e));
    };
    let classes = match (&params.classes, ctx.inputs.get("classes")) {
        (Some(classes), None) => classes.clone(),
        (None, Some(path)) => read_classes(path)?,
        _ => {
            return Err(OperatorError::Params(
                "an ONNX model needs its class names: `params.classes` or an input `classes`, not both".into(),
            ));
        }
    };
    Ok(onnx_model_file(model_path, transformer, classes)?)
}

/// Top-level numeric keys of a metrics JSON file.
/// The numeric top-level entries of a metrics file, and the permutation
/// importance `ml.evaluate` writes into it (empty when absent).
fn read_metrics(
    path: &std::path::Path,
) -> Result<(BTreeMap<String, f64>, Vec<FeatureImportance>), OperatorError> {
    let bytes = std::fs::read(path).map_err(|e| OperatorError::io("read metrics", path, e))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        OperatorError::failed(format!("metrics `{}` is not JSON: {e}", path.display()))
    })?;
    let metrics = value
        .as_object()
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v)))
                .collect()
        })
        .unwrap_or_default();
    let importance = match value.pointer("/permutation_importance/features") {
        Some(features) => serde_json::from_value(features.clone()).map_err(|e| {
            OperatorError::failed(format!(
                "metrics `{}`: `permutation_importance.features` is not a list of {{feature, mean, std}}: {e}",
                path.display()
            ))
        })?,
        None => Vec::new(),
    };
    Ok((metrics, importance))
}

fn register(ctx: &Context) -> Result<Outcome, OperatorError> {
    let params: Params = parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
    let model_path = ctx.input("model")?;
    let bytes = model_bytes(ctx, &params)?;
    let model = TrainedModel::from_bytes(model_path, &bytes)?;
    check_annotated_classes(&params, model.classes())?;
    let (metrics, importance) = match ctx.inputs.get("metrics") {
        Some(path) => read_metrics(path)?,
        None => (BTreeMap::new(), Vec::new()),
    };
    let registry = ModelRegistry::open(&ctx.state_dir)?;
    let mut info = RegisterInfo {
        metrics,
        params: model.params().clone(),
        run_id: Some(ctx.run_id.clone()),
        task_id: Some(ctx.task_id.clone()),
        annotations: params.annotations.clone(),
        importance,
        ..RegisterInfo::default()
    };
    for (name, path) in &ctx.inputs {
        if !MODEL_INPUTS.contains(&name.as_str()) {
            let (digest, blob) = registry.store_data(path)?;
            info.data_digests.insert(name.clone(), digest);
            info.data_blobs.insert(name.clone(), blob);
        }
    }
    // The same bytes and data with other annotations are a new version.
    let existing = registry
        .find_registered(&params.name, model.digest(), &info.data_digests)?
        .filter(|found| found.annotations == info.annotations);
    let (version, again) = match existing {
        Some(version) => (version, true),
        None => (
            registry.register_bytes(&params.name, model_path, &bytes, info)?,
            false,
        ),
    };
    let actor = Actor::of_context(ctx);
    for alias in &params.aliases {
        registry.set_alias_by(&params.name, alias, version.version, &actor)?;
    }
    let aliases = if params.aliases.is_empty() {
        String::new()
    } else {
        format!(" ({})", params.aliases.join(", "))
    };
    let verb = if again {
        "found these bytes and data already registered as"
    } else {
        "registered"
    };
    Ok(Outcome::default()
        .value("version", version.version)
        .value("digest", version.digest.clone())
        .summary(format!(
            "{verb} {} v{}{aliases}",
            params.name, version.version
        )))
}

/// Whether what an earlier registration did is still so: its version is in
/// the registry with the same model file, and each alias points at it or at
/// a later version (a later registration superseded it; that is not undone).
fn registration_holds(earlier: &Earlier<'_>) -> Result<(), String> {
    let params: Params = parse_params(earlier.params).map_err(|p| p.message)?;
    let (Some(version), Some(digest)) = (
        earlier.values.get("version").and_then(Value::as_u64),
        earlier.values.get("digest").and_then(Value::as_str),
    ) else {
        return Err("the earlier registration recorded no version".into());
    };
    let version =
        u32::try_from(version).map_err(|_| format!("version {version} is out of range"))?;
    let registry = ModelRegistry::open(earlier.state_dir).map_err(|e| crate::error_chain(&e))?;
    match registry.get(&params.name, version) {
        Ok(found) if found.digest == digest => {}
        Ok(found) => {
            return Err(format!(
                "{} v{version} now has model digest {}, not {}",
                params.name,
                &found.digest[..12.min(found.digest.len())],
                &digest[..12.min(digest.len())]
            ));
        }
        Err(RegistryError::UnknownModel { .. } | RegistryError::UnknownVersion { .. }) => {
            return Err(format!(
                "{} v{version} is no longer in the registry",
                params.name
            ));
        }
        Err(other) => return Err(crate::error_chain(&other)),
    }
    for alias in &params.aliases {
        match registry.alias_target(&params.name, alias) {
            Ok(Some(current)) if current >= version => {}
            Ok(Some(current)) => {
                return Err(format!(
                    "alias `{alias}` points at v{current}, an earlier version than v{version}, which this task registered"
                ));
            }
            Ok(None) => return Err(format!("alias `{alias}` no longer exists")),
            Err(error) => return Err(crate::error_chain(&error)),
        }
    }
    Ok(())
}

impl Operator for Register {
    fn name(&self) -> &'static str {
        "models.register"
    }

    /// 2: data inputs are kept in the registry; registering again is idempotent.
    fn version(&self) -> &'static str {
        "2"
    }

    fn description(&self) -> &'static str {
        "registers `model` as the next version of `name`, with metrics from `metrics`, a copy of every other input, and `aliases`; an ONNX `model` comes with the `transformer` whose features it takes and its `classes`"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<Params>())
    }

    fn ports(&self) -> crate::Ports {
        const PORTS: crate::Ports = crate::Ports {
            inputs: &[
                crate::Port::required("model", "a model file from `ml.train`, or an ONNX graph"),
                crate::Port::optional(
                    "metrics",
                    "JSON metrics (e.g. from `ml.evaluate`): numeric entries and the importance ranking are stored with the version",
                ),
                crate::Port::optional(
                    "transformer",
                    "with an ONNX `model`: the `data.features` transformer whose output it takes",
                ),
                crate::Port::optional(
                    "classes",
                    "with an ONNX `model`: a JSON list of class names, in probability-column order",
                ),
            ],
            outputs: &[],
            any_inputs: Some(
                "any other input (`train`, `test`, ...) is data the version was made from: copied into the registry and named in its lineage",
            ),
            ..crate::Ports::NONE
        };
        PORTS
    }

    fn value_names(&self) -> &'static [&'static str] {
        &["version", "digest"]
    }

    fn effect_holds(&self, earlier: &Earlier<'_>) -> Result<(), String> {
        registration_holds(earlier)
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("inputs", spec.inputs, &["model"]);
        match parse_params::<Params>(spec.params) {
            Err(problem) => problems.push(problem),
            Ok(params) => {
                problems.extend(annotation_name_problems(&params));
                let onnx = spec.inputs.contains_key("transformer");
                let listed = spec.inputs.contains_key("classes");
                if !onnx && (params.classes.is_some() || listed) {
                    problems.push(Problem::new(
                        "params.classes",
                        "class names are for an ONNX model, which also needs an input `transformer`",
                    ));
                } else if onnx && params.classes.is_some() == listed {
                    problems.push(Problem::new(
                        "params.classes",
                        "an ONNX model needs its class names: `params.classes` or an input `classes`, not both",
                    ));
                }
            }
        }
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| register(&ctx))
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ml::test_fixtures::tiny_model;

    fn context(dir: &std::path::Path) -> Context {
        let mut ctx = Context::detached(dir, json!({"name": "m", "aliases": ["challenger"]}));
        ctx.inputs.insert("model".into(), tiny_model(dir, 1));
        let train = dir.join("train.csv");
        std::fs::write(&train, "x\n1\n").unwrap();
        ctx.inputs.insert("train".into(), train);
        ctx
    }

    fn holds(ctx: &Context, outcome: &Outcome) -> Result<(), String> {
        Register.effect_holds(&Earlier {
            params: &ctx.params,
            values: &outcome.values,
            state_dir: &ctx.state_dir,
        })
    }

    #[test]
    fn annotations_are_recorded_checked_against_the_classes_and_part_of_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = context(dir.path());
        let with =
            |labels: serde_json::Value| json!({"name": "m", "annotations": {"level": labels}});
        ctx.params = with(json!({"low": "fine", "high": "act"}));
        let first = register(&ctx).unwrap();
        let registry = ModelRegistry::open(&ctx.state_dir).unwrap();
        let v1 = registry.get("m", 1).unwrap();
        assert_eq!(v1.annotations["level"]["high"], "act");
        assert_eq!(first.values["version"], json!(1));
        // The same annotations again: the same version.
        assert_eq!(register(&ctx).unwrap().values["version"], json!(1));
        // Other labels for the same bytes: a new version.
        ctx.params = with(json!({"low": "fine", "high": "call"}));
        assert_eq!(register(&ctx).unwrap().values["version"], json!(2));
        // A class the model lacks is refused, naming the model's classes.
        ctx.params = with(json!({"huge": "act"}));
        let error = register(&ctx).unwrap_err().to_string();
        assert!(
            error.contains("class `huge`") && error.contains("high"),
            "{error}"
        );
        // Names that are not identifiers or that answers already use.
        let inputs = BTreeMap::from([("model".to_string(), "m.json".to_string())]);
        let outputs = BTreeMap::new();
        for name in ["class", "Risk", "2x"] {
            let params = json!({"name": "m", "annotations": {name: {"low": "x"}}});
            let spec = TaskSpec {
                params: &params,
                inputs: &inputs,
                outputs: &outputs,
            };
            assert_eq!(Register.check(&spec).len(), 1, "{name}");
        }
    }

    #[test]
    fn registering_the_same_bytes_again_finds_the_version_and_moves_nothing_new() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        let first = register(&ctx).unwrap();
        let again = register(&ctx).unwrap();
        assert_eq!(first.values["version"], json!(1));
        assert_eq!(again.values["version"], json!(1));
        assert!(
            again
                .summary
                .as_deref()
                .unwrap()
                .starts_with("found these bytes"),
            "{again:?}"
        );
        let registry = ModelRegistry::open(&ctx.state_dir).unwrap();
        assert_eq!(registry.list(Some("m")).unwrap().len(), 1);
        assert_eq!(registry.history("m").unwrap().len(), 1);
        let version = registry.get("m", 1).unwrap();
        let stored = registry.data_file(&version, "train").unwrap();
        assert_eq!(std::fs::read_to_string(stored).unwrap(), "x\n1\n");
    }

    #[test]
    fn a_registration_holds_until_its_alias_moves_back_or_its_version_goes() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        let first = register(&ctx).unwrap();
        assert_eq!(holds(&ctx, &first), Ok(()));
        let registry = ModelRegistry::open(&ctx.state_dir).unwrap();
        let other = tiny_model(dir.path(), 2);
        registry
            .register("m", &other, RegisterInfo::default())
            .unwrap();
        registry.set_alias("m", "challenger", 2).unwrap();
        assert_eq!(holds(&ctx, &first), Ok(()), "a later version supersedes");
        let mut later = first.clone();
        later.values.insert("version".into(), json!(2));
        later
            .values
            .insert("digest".into(), json!(registry.get("m", 2).unwrap().digest));
        registry.rollback("m", "challenger").unwrap();
        assert_eq!(
            holds(&ctx, &later).unwrap_err(),
            "alias `challenger` points at v1, an earlier version than v2, which this task registered"
        );
        std::fs::remove_dir_all(ctx.state_dir.join("models")).unwrap();
        assert_eq!(
            holds(&ctx, &first).unwrap_err(),
            "m v1 is no longer in the registry"
        );
    }
}
