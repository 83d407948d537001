//! `models.promote`: moves aliases (e.g. `champion`, `production`) to a
//! version given by number or by another alias.
//!
//! Rolling back is `ModelRegistry::rollback`, exposed by the CLI.

use serde::Deserialize;
use serde_json::Value;

use crate::models::ModelRegistry;
use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    run_blocking,
};

pub struct Promote;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    name: String,
    /// A version number (or its string form, as templates render it).
    #[serde(default)]
    version: Option<Value>,
    #[serde(default)]
    from_alias: Option<String>,
    aliases: Vec<String>,
}

impl Params {
    fn reference(&self) -> Result<String, String> {
        match (&self.version, &self.from_alias) {
            (Some(Value::Number(n)), None) if n.as_u64().is_some() => Ok(n.to_string()),
            (Some(Value::String(s)), None) => Ok(s.clone()),
            (None, Some(alias)) => Ok(alias.clone()),
            (Some(other), None) => {
                Err(format!("`version` must be a version number, got `{other}`"))
            }
            (Some(_), Some(_)) => Err("give either `version` or `from_alias`, not both".into()),
            (None, None) => Err("give `version` or `from_alias`".into()),
        }
    }
}

impl Operator for Promote {
    fn name(&self) -> &'static str {
        "models.promote"
    }

    fn description(&self) -> &'static str {
        "points `aliases` of model `name` at `version` (or at what `from_alias` points to)"
    }

    fn value_names(&self) -> &'static [&'static str] {
        &["moves", "version"]
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        match parse_params::<Params>(spec.params) {
            Err(problem) => vec![problem],
            Ok(params) => {
                let mut problems = Vec::new();
                if let Err(message) = params.reference() {
                    problems.push(Problem::new("params", message));
                }
                if params.aliases.is_empty() {
                    problems.push(Problem::new(
                        "params.aliases",
                        "name at least one alias to move",
                    ));
                }
                problems
            }
        }
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| {
            let params: Params =
                parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
            let reference = params.reference().map_err(OperatorError::Params)?;
            let registry = ModelRegistry::open(&ctx.state_dir)?;
            let target = registry.resolve(&params.name, &reference)?;
            let mut moves = Vec::new();
            for alias in &params.aliases {
                moves.push(registry.set_alias(&params.name, alias, target.version)?);
            }
            let summary = moves
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let moves_value =
                serde_json::to_value(&moves).map_err(|e| OperatorError::failed(e.to_string()))?;
            Ok(Outcome::default()
                .value("moves", moves_value)
                .value("version", target.version)
                .summary(summary))
        })
    }
}
