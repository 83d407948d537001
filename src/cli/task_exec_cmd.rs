//! `dag task-exec CONTEXT.json`: one task attempt on a Ray worker (see
//! `execute::ray::task_exec`). Exit 0 when the operator succeeded, 1 when it
//! failed (the outcome file says why), 3 when nothing could be run.

use super::args::TaskExecArgs;
use super::exit::{CliResult, Exit, Failure};
use crate::execute::ray::task_exec as run_one;

pub fn task_exec(args: &TaskExecArgs) -> CliResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the runtime: {e}")))?;
    let registry = crate::ops::registry();
    let result = runtime.block_on(run_one(&args.context, &registry));
    runtime.shutdown_background();
    match result {
        Ok(true) => Ok(Exit::Success),
        Ok(false) => Err(Failure::new(
            Exit::TaskFailed,
            "the task failed; its outcome and log say why",
        )),
        Err(message) => Err(Failure::internal(message)),
    }
}
