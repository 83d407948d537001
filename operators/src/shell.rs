//! `shell`: runs a command in its own process group.

use crate::{BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec};

pub struct Shell;

impl Operator for Shell {
    fn name(&self) -> &'static str {
        "shell"
    }

    fn description(&self) -> &'static str {
        "runs `command` with `sh -c`, or `argv` directly, in its own process group"
    }

    fn check(&self, _spec: &TaskSpec<'_>) -> Vec<Problem> {
        Vec::new()
    }

    fn execute<'a>(&'a self, _ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        Box::pin(async move { Err(OperatorError::failed("shell is not available yet")) })
    }
}
