//! `models.data`: writes the data a registered version was trained and
//! tested on, from the registry's own copy, to declared outputs — so a DAG
//! can build on what the `production` model learned from even after the
//! files it came from were overwritten.
//!
//! Each output name is the data name the version recorded (`train`,
//! `test`); the copy is checked against the recorded digest. It counts as
//! up to date only while the alias still points at the same version.

use serde::Deserialize;
use serde_json::Value;

use crate::ml::write_atomic;
use crate::models::ModelRegistry;
use crate::{
    BoxFuture, Context, Earlier, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    run_blocking,
};

pub struct Data;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The registered model.
    name: String,
    /// The alias whose version's data is written.
    #[serde(default = "production")]
    alias: String,
}

fn production() -> String {
    "production".into()
}

fn extension(name: &str) -> Option<String> {
    std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

fn copy_data(ctx: &Context) -> Result<Outcome, OperatorError> {
    let params: Params = parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
    let registry = ModelRegistry::open(&ctx.state_dir)?;
    let version = registry.resolve(&params.name, &params.alias)?;
    let mut digests = serde_json::Map::new();
    for (data, target) in &ctx.outputs {
        let source = registry.data_file(&version, data)?;
        let (from, to) = (
            extension(&source.to_string_lossy()),
            extension(&target.to_string_lossy()),
        );
        if from != to {
            return Err(OperatorError::failed(format!(
                "output `{data}` is `{}`, but {} v{} keeps `{data}` as a `.{}` file; give the output that extension",
                target.display(),
                params.name,
                version.version,
                from.unwrap_or_default()
            )));
        }
        let bytes = std::fs::read(&source).map_err(|e| OperatorError::io("read", &source, e))?;
        write_atomic(target, &bytes)?;
        if let Some(digest) = version.data_digests.get(data) {
            digests.insert(data.clone(), Value::from(digest.clone()));
        }
    }
    Ok(Outcome::default()
        .value("version", version.version)
        .value("digests", Value::Object(digests))
        .summary(format!(
            "{} of {}@{} (v{})",
            ctx.outputs
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(" and "),
            params.name,
            params.alias,
            version.version
        )))
}

impl Operator for Data {
    fn name(&self) -> &'static str {
        "models.data"
    }

    fn description(&self) -> &'static str {
        "writes the data `alias` of model `name` was trained and tested on (outputs named `train`, `test`) from the registry"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<Params>())
    }

    fn ports(&self) -> crate::Ports {
        const PORTS: crate::Ports = crate::Ports {
            inputs: &[],
            outputs: &[],
            any_outputs: Some(
                "named after the data stored with the version (`train`, `test`, ...): each is written from the registry's copy",
            ),
            ..crate::Ports::NONE
        };
        PORTS
    }

    fn value_names(&self) -> &'static [&'static str] {
        &["version", "digests"]
    }

    fn effect_holds(&self, earlier: &Earlier<'_>) -> Result<(), String> {
        let params: Params = parse_params(earlier.params).map_err(|p| p.message)?;
        let before = earlier.values.get("version").and_then(Value::as_u64);
        let registry =
            ModelRegistry::open(earlier.state_dir).map_err(|e| crate::error_chain(&e))?;
        let now = registry
            .alias_target(&params.name, &params.alias)
            .map_err(|e| crate::error_chain(&e))?;
        if now.map(u64::from) == before {
            Ok(())
        } else {
            Err(format!(
                "`{}` points at {}, not v{} whose data this is",
                params.alias,
                now.map_or_else(|| "nothing".into(), |v| format!("v{v}")),
                before.unwrap_or_default()
            ))
        }
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems: Vec<Problem> = parse_params::<Params>(spec.params)
            .err()
            .into_iter()
            .collect();
        if spec.outputs.is_empty() {
            problems.push(
                Problem::new(
                    "outputs",
                    "declare the data to write, e.g. `train` and `test`",
                )
                .with_help("`outputs: { train: data/x/train.parquet, test: data/x/test.parquet }`"),
            );
        }
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| copy_data(&ctx))
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::ml::test_fixtures::tiny_model;
    use crate::models::RegisterInfo;

    #[test]
    fn writes_the_production_versions_data_and_goes_stale_when_production_moves() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = Context::detached(dir.path(), json!({"name": "m"}));
        let registry = ModelRegistry::open(&ctx.state_dir).unwrap();
        let train = dir.path().join("split.parquet");
        for (seed, text) in [(1, "first"), (2, "second")] {
            std::fs::write(&train, text).unwrap();
            let (digest, blob) = registry.store_data(&train).unwrap();
            let info = RegisterInfo {
                data_digests: BTreeMap::from([("train".into(), digest)]),
                data_blobs: BTreeMap::from([("train".into(), blob)]),
                ..RegisterInfo::default()
            };
            registry
                .register("m", &tiny_model(dir.path(), seed), info)
                .unwrap();
        }
        registry.set_alias("m", "production", 1).unwrap();
        let out = dir.path().join("out/train.parquet");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        ctx.outputs.insert("train".into(), out.clone());
        let outcome = copy_data(&ctx).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "first");
        let earlier = Earlier {
            params: &ctx.params,
            values: &outcome.values,
            state_dir: &ctx.state_dir,
        };
        assert_eq!(Data.effect_holds(&earlier), Ok(()));
        registry.set_alias("m", "production", 2).unwrap();
        assert_eq!(
            Data.effect_holds(&earlier).unwrap_err(),
            "`production` points at v2, not v1 whose data this is"
        );
        ctx.outputs
            .insert("train".into(), dir.path().join("out/train.csv"));
        let error = copy_data(&ctx).unwrap_err().to_string();
        assert!(error.contains("give the output that extension"), "{error}");
    }
}
