//! `models.register`: stores a trained model file as the next version of a
//! named model and points the given aliases (e.g. `challenger`) at it.
//!
//! It does not judge the model; gates decide what gets promoted.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::ml::TrainedModel;
use crate::models::{ModelRegistry, RegisterInfo};
use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    require_names, run_blocking,
};

pub struct Register;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
}

/// Top-level numeric keys of a metrics JSON file.
fn read_metrics(path: &std::path::Path) -> Result<BTreeMap<String, f64>, OperatorError> {
    let bytes = std::fs::read(path).map_err(|e| OperatorError::io("read metrics", path, e))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        OperatorError::failed(format!("metrics `{}` is not JSON: {e}", path.display()))
    })?;
    Ok(value
        .as_object()
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v)))
                .collect()
        })
        .unwrap_or_default())
}

impl Operator for Register {
    fn name(&self) -> &'static str {
        "models.register"
    }

    fn description(&self) -> &'static str {
        "registers `model` as the next version of `name`, with metrics from `metrics` and `aliases`"
    }

    fn value_names(&self) -> &'static [&'static str] {
        &["version", "digest"]
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("inputs", spec.inputs, &["model"]);
        if let Err(problem) = parse_params::<Params>(spec.params) {
            problems.push(problem);
        }
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| {
            let params: Params =
                parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
            let model_path = ctx.input("model")?;
            let model = TrainedModel::load(model_path)?;
            let metrics = match ctx.inputs.get("metrics") {
                Some(path) => read_metrics(path)?,
                None => BTreeMap::new(),
            };
            let mut data_digests = BTreeMap::new();
            for (name, path) in &ctx.inputs {
                if name != "model" && name != "metrics" {
                    let bytes =
                        std::fs::read(path).map_err(|e| OperatorError::io("read", path, e))?;
                    data_digests.insert(name.clone(), blake3::hash(&bytes).to_hex().to_string());
                }
            }
            let info = RegisterInfo {
                metrics,
                params: model.params().clone(),
                data_digests,
                run_id: Some(ctx.run_id.clone()),
                task_id: Some(ctx.task_id.clone()),
            };
            let registry = ModelRegistry::open(&ctx.state_dir)?;
            let version = registry.register(&params.name, model_path, info)?;
            for alias in &params.aliases {
                registry.set_alias(&params.name, alias, version.version)?;
            }
            let aliases = if params.aliases.is_empty() {
                String::new()
            } else {
                format!(" ({})", params.aliases.join(", "))
            };
            Ok(Outcome::default()
                .value("version", version.version)
                .value("digest", version.digest.clone())
                .summary(format!(
                    "registered {} v{}{aliases}",
                    params.name, version.version
                )))
        })
    }
}
