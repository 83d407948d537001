//! `noop`: does nothing and succeeds; for tests, benchmarks and joins.

use serde::Deserialize;

use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
};

pub struct Noop;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Fail instead of succeeding, to exercise retries and trigger rules.
    #[serde(default)]
    fail: bool,
    /// Sleep this many milliseconds first.
    #[serde(default)]
    sleep_ms: u64,
}

impl Operator for Noop {
    fn name(&self) -> &'static str {
        "noop"
    }

    fn description(&self) -> &'static str {
        "does nothing; params `fail` and `sleep_ms` exercise the engine"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<Params>())
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        parse_params::<Params>(spec.params)
            .err()
            .into_iter()
            .collect()
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        Box::pin(async move {
            let params: Params =
                parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
            if params.sleep_ms > 0 {
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_millis(params.sleep_ms)) => {}
                    () = ctx.cancel.cancelled() => return Err(OperatorError::Cancelled),
                }
            }
            if params.fail {
                return Err(OperatorError::failed("failed on purpose (`fail: true`)"));
            }
            Ok(Outcome::default())
        })
    }
}
