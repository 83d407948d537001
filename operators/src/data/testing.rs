//! Test support: contexts over temporary directories and a way to run an
//! operator to completion from a synchronous test.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails at the line of an unexpected error"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Context, Operator, OperatorError, Outcome, Problem, TaskSpec};

/// A detached context whose outputs live under `dir`.
pub fn context(
    dir: &Path,
    params: Value,
    inputs: &[(&str, &Path)],
    outputs: &[(&str, &str)],
) -> Context {
    let mut ctx = Context::detached(dir, params);
    ctx.inputs = inputs
        .iter()
        .map(|(name, path)| ((*name).to_string(), path.to_path_buf()))
        .collect();
    ctx.outputs = outputs
        .iter()
        .map(|(name, file)| ((*name).to_string(), dir.join(file)))
        .collect();
    ctx
}

/// Runs one attempt on a fresh current-thread runtime.
pub fn run<O: Operator + ?Sized>(operator: &O, ctx: &Context) -> Result<Outcome, OperatorError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(operator.execute(ctx))
}

/// Runs `check` with the given params and declared input and output names.
pub fn check(
    operator: &impl Operator,
    params: Value,
    inputs: &[&str],
    outputs: &[&str],
) -> Vec<Problem> {
    let names = |names: &[&str]| -> BTreeMap<String, String> {
        names
            .iter()
            .map(|name| ((*name).to_string(), format!("{name}.parquet")))
            .collect()
    };
    let (inputs, outputs) = (names(inputs), names(outputs));
    operator.check(&TaskSpec {
        params: &params,
        inputs: &inputs,
        outputs: &outputs,
    })
}

/// Writes `contents` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}
