//! `data.concat`: stacks tables with the same columns into one, in the order
//! of their input names — how the retraining loop adds a newly labelled batch
//! to the reference data. Numeric columns that differ only in width (an
//! integer column in one file, a float column in another) are widened to
//! 64-bit floats; any other mismatch is an error naming the file and column.
//! It does not deduplicate (that is `data.clean`'s job). The source-row
//! column of `data.clean` is kept when every input has it, dropped otherwise.

use polars::prelude::*;

use crate::table::{SOURCE_ROW, read_table, take_source_rows, write_table};
use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    require_names, run_blocking,
};

pub struct Concat;

#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {}

impl Operator for Concat {
    fn name(&self) -> &'static str {
        "data.concat"
    }

    fn description(&self) -> &'static str {
        "stacks every input table (same columns) into `data`, in input-name order"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<Params>())
    }

    fn ports(&self) -> crate::Ports {
        const PORTS: crate::Ports = crate::Ports {
            inputs: &[],
            outputs: &[crate::Port::required(
                "data",
                "the stacked table (Parquet or CSV by extension)",
            )],
            any_inputs: Some(
                "two or more tables with the same columns, stacked in input-name order",
            ),
            ..crate::Ports::NONE
        };
        PORTS
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("outputs", spec.outputs, &["data"]);
        if spec.inputs.len() < 2 {
            problems.push(
                Problem::new("inputs", "`data.concat` needs at least two inputs").with_help(
                    "declare them, e.g. `inputs: { a: data/raw/a.csv, b: data/incoming/b.csv }`",
                ),
            );
        }
        problems.extend(parse_params::<Params>(spec.params).err());
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| concat(&ctx))
    }
}

fn concat(ctx: &Context) -> Result<Outcome, OperatorError> {
    let mut stacked: Option<DataFrame> = None;
    let mut first_path = None;
    let mut frames = Vec::with_capacity(ctx.inputs.len());
    for (name, path) in &ctx.inputs {
        frames.push((name, path, read_table(path)?));
    }
    // Source rows are kept only when every input has them: a table without
    // them cannot say where its rows came from.
    if !frames
        .iter()
        .all(|(_, _, frame)| frame.column(SOURCE_ROW).is_ok())
    {
        for (_, _, frame) in &mut frames {
            take_source_rows(frame);
        }
    }
    for (name, path, frame) in frames {
        let Some(base) = stacked.as_mut() else {
            first_path = Some(path.clone());
            stacked = Some(frame);
            continue;
        };
        let base_path = first_path.as_deref().unwrap_or(path);
        let aligned = align(&frame, base, path, base_path)?;
        base.vstack_mut(&aligned).map_err(|e| {
            OperatorError::failed(format!(
                "cannot append input `{name}` (`{}`): {e}",
                path.display()
            ))
        })?;
        ctx.log.line(format_args!(
            "appended {} rows from `{}`",
            frame.height(),
            path.display()
        ));
    }
    let mut frame =
        stacked.ok_or_else(|| OperatorError::Params("no inputs to concatenate".into()))?;
    let rows = frame.height();
    write_table(&mut frame, ctx.output("data")?)?;
    Ok(Outcome::default()
        .metric("rows", rows as f64)
        .summary(format!("{rows} rows from {} tables", ctx.inputs.len())))
}

/// `frame`'s columns in `base`'s order and types; widens numerics to f64
/// (in `base` too) when the two disagree.
fn align(
    frame: &DataFrame,
    base: &mut DataFrame,
    path: &std::path::Path,
    base_path: &std::path::Path,
) -> Result<DataFrame, OperatorError> {
    let mismatch = |message: String| OperatorError::failed(message);
    if frame.width() != base.width() {
        return Err(mismatch(format!(
            "`{}` has {} columns but `{}` has {}",
            path.display(),
            frame.width(),
            base_path.display(),
            base.width()
        )));
    }
    let mut columns = Vec::with_capacity(base.width());
    for index in 0..base.width() {
        let wanted = base.columns()[index].clone();
        let name = wanted.name().clone();
        let column = frame.column(&name).map_err(|_| {
            mismatch(format!(
                "`{}` has no column `{name}` (it is in `{}`)",
                path.display(),
                base_path.display()
            ))
        })?;
        if column.dtype() == wanted.dtype() {
            columns.push(column.clone());
        } else if column.dtype().is_primitive_numeric() && wanted.dtype().is_primitive_numeric() {
            let widened = |c: &Column| c.cast(&DataType::Float64);
            let cast_error =
                |e: PolarsError| mismatch(format!("cannot widen column `{name}`: {e}"));
            base.replace(&name, widened(&wanted).map_err(cast_error)?)
                .map_err(cast_error)?;
            columns.push(widened(column).map_err(cast_error)?);
        } else {
            return Err(mismatch(format!(
                "column `{name}` is {} in `{}` but {} in `{}`",
                column.dtype(),
                path.display(),
                wanted.dtype(),
                base_path.display()
            )));
        }
    }
    DataFrame::new(frame.height(), columns)
        .map_err(|e| mismatch(format!("cannot align `{}`: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn context(dir: &std::path::Path, inputs: &[(&str, &str)]) -> Context {
        let mut ctx = Context::detached(dir, serde_json::json!({}));
        ctx.inputs = inputs
            .iter()
            .map(|(n, f)| (n.to_string(), dir.join(f)))
            .collect::<BTreeMap<_, _>>();
        ctx.outputs.insert("data".into(), dir.join("out.csv"));
        ctx
    }

    #[test]
    fn stacks_in_input_name_order_and_widens_integers() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.csv"), "x,y\n1,a\n2,b\n").expect("write a");
        std::fs::write(dir.path().join("b.csv"), "y,x\nc,3.5\n").expect("write b");
        let outcome =
            concat(&context(dir.path(), &[("a", "a.csv"), ("b", "b.csv")])).expect("concat");
        assert_eq!(outcome.metrics.get("rows"), Some(&3.0));
        let text = std::fs::read_to_string(dir.path().join("out.csv")).expect("output");
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            vec!["x,y", "1.0,a", "2.0,b", "3.5,c"]
        );
    }

    #[test]
    fn source_rows_are_kept_only_when_every_input_has_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.csv"), "x,_source_row\n1,4\n2,9\n").expect("write a");
        std::fs::write(dir.path().join("b.csv"), "x,_source_row\n3,2\n").expect("write b");
        std::fs::write(dir.path().join("c.csv"), "x\n5\n").expect("write c");
        concat(&context(dir.path(), &[("a", "a.csv"), ("b", "b.csv")])).expect("concat");
        let text = std::fs::read_to_string(dir.path().join("out.csv")).expect("output");
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            vec!["x,_source_row", "1.0,4.0", "2.0,9.0", "3.0,2.0"]
        );
        concat(&context(dir.path(), &[("a", "a.csv"), ("c", "c.csv")])).expect("concat");
        let text = std::fs::read_to_string(dir.path().join("out.csv")).expect("output");
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            vec!["x", "1.0", "2.0", "5.0"]
        );
    }

    #[test]
    fn a_missing_column_names_the_file_and_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.csv"), "x,y\n1,a\n").expect("write a");
        std::fs::write(dir.path().join("b.csv"), "x,z\n2,b\n").expect("write b");
        let error =
            concat(&context(dir.path(), &[("a", "a.csv"), ("b", "b.csv")])).expect_err("mismatch");
        let message = error.to_string();
        assert!(
            message.contains("b.csv") && message.contains("`y`"),
            "{message}"
        );
    }
}
