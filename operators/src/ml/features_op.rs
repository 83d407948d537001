//! `data.features`: fits a [`Transformer`] on the training split and writes
//! it as JSON for `ml.train`, which embeds it in the model file.
//!
//! It never looks at the test split: statistics come from `train` only.

use crate::ml::MlError;
use crate::ml::atomic::write_atomic;
use crate::ml::dataset::Table;
use crate::ml::features::{FeatureConfig, Transformer};
use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    require_names, run_blocking,
};

pub struct Features;

impl Operator for Features {
    fn name(&self) -> &'static str {
        "data.features"
    }

    fn description(&self) -> &'static str {
        "fits one-hot encoding, scaling and derived columns on `train`; writes the `transformer`"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<crate::ml::FeatureConfig>())
    }

    fn ports(&self) -> crate::Ports {
        const PORTS: crate::Ports = crate::Ports {
            inputs: &[crate::Port::required(
                "train",
                "the training rows: categories, scaling statistics and derived columns are learned from them only",
            )],
            outputs: &[crate::Port::required(
                "transformer",
                "the fitted transformer (JSON), embedded in every model trained with it",
            )],
            ..crate::Ports::NONE
        };
        PORTS
    }

    fn value_names(&self) -> &'static [&'static str] {
        &["features"]
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("inputs", spec.inputs, &["train"]);
        problems.extend(require_names("outputs", spec.outputs, &["transformer"]));
        match parse_params::<FeatureConfig>(spec.params) {
            Err(problem) => problems.push(problem),
            Ok(config) => {
                for (i, d) in config.derive.iter().enumerate() {
                    if d.name == config.target {
                        problems.push(Problem::new(
                            format!("params.derive[{i}]"),
                            "a derived column cannot replace the target",
                        ));
                    }
                }
            }
        }
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| {
            let config: FeatureConfig =
                parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
            let table = Table::read(ctx.input("train")?)?;
            let transformer = Transformer::fit(&config, &table)?;
            let bytes =
                serde_json::to_vec_pretty(&transformer).map_err(|source| MlError::Encode {
                    what: "transformer",
                    source,
                })?;
            write_atomic(ctx.output("transformer")?, &bytes)?;
            let n = transformer.n_features();
            Ok(Outcome::default()
                .value("features", n)
                .metric("features", n as f64)
                .summary(format!(
                    "{n} features from {} fields",
                    transformer.fields.len()
                )))
        })
    }
}
