//! `data.transform`: applies a fitted [`Transformer`](crate::ml::Transformer)
//! to a table and writes the feature matrix as CSV (feature names as header,
//! the target's text labels as the last column when the table has it), plus
//! the sorted class names as a JSON list.
//!
//! This is how a model trained outside the engine (a Python task) gets the
//! same features `ml.train` sees, so preprocessing is defined once, in
//! `data.features`, for training and serving alike.

use std::fmt::Write as _;

use crate::ml::MlError;
use crate::ml::atomic::write_atomic;
use crate::ml::dataset::Table;
use crate::ml::train_op::read_transformer;
use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, require_names,
    run_blocking,
};

pub struct Transform;

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn transform(ctx: &Context) -> Result<Outcome, OperatorError> {
    let transformer = read_transformer(ctx.input("transformer")?)?;
    let table = Table::read(ctx.input("data")?)?;
    let x = transformer.transform(&table)?;
    let labels = if table
        .columns
        .iter()
        .any(|(name, _)| *name == transformer.target)
    {
        Some(transformer.labels(&table)?)
    } else {
        None
    };
    let mut text = String::new();
    let mut header: Vec<String> = transformer
        .feature_names
        .iter()
        .map(String::as_str)
        .map(csv_field)
        .collect();
    if labels.is_some() {
        header.push(csv_field(&transformer.target));
    }
    text.push_str(&header.join(","));
    text.push('\n');
    for (row, values) in x.rows().into_iter().enumerate() {
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let _ = write!(text, "{value}");
        }
        if let Some(labels) = &labels {
            text.push(',');
            text.push_str(&csv_field(&labels[row]));
        }
        text.push('\n');
    }
    write_atomic(ctx.output("matrix")?, text.as_bytes())?;
    let mut outcome = Outcome::default()
        .value("rows", x.nrows())
        .value("features", x.ncols());
    if let Some(path) = ctx.outputs.get("classes") {
        let Some(labels) = &labels else {
            return Err(OperatorError::failed(format!(
                "output `classes` needs the target column `{}`, which the table lacks",
                transformer.target
            )));
        };
        let mut classes = labels.clone();
        classes.sort();
        classes.dedup();
        let bytes = serde_json::to_vec(&classes).map_err(|source| MlError::Encode {
            what: "classes",
            source,
        })?;
        write_atomic(path, &bytes)?;
        outcome = outcome.value("classes", classes.len());
    }
    Ok(outcome.summary(format!("{} rows × {} features", x.nrows(), x.ncols())))
}

impl Operator for Transform {
    fn name(&self) -> &'static str {
        "data.transform"
    }

    fn description(&self) -> &'static str {
        "applies a fitted `transformer` to `data`; writes the feature `matrix` as CSV (with the labels when present) and optionally the sorted `classes`"
    }

    fn ports(&self) -> crate::Ports {
        const PORTS: crate::Ports = crate::Ports {
            inputs: &[
                crate::Port::required("data", "the rows to transform"),
                crate::Port::required("transformer", "a fitted `data.features` transformer"),
            ],
            outputs: &[
                crate::Port::required(
                    "matrix",
                    "CSV: the feature columns by name, then the labels when `data` has the target",
                ),
                crate::Port::optional("classes", "JSON: the sorted class names"),
            ],
            ..crate::Ports::NONE
        };
        PORTS
    }

    fn value_names(&self) -> &'static [&'static str] {
        &["rows", "features", "classes"]
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("inputs", spec.inputs, &["data", "transformer"]);
        problems.extend(require_names("outputs", spec.outputs, &["matrix"]));
        if !spec
            .params
            .as_object()
            .is_none_or(serde_json::Map::is_empty)
        {
            problems.push(Problem::new("params", "`data.transform` takes no params"));
        }
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| transform(&ctx))
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
    use crate::ml::{FeatureConfig, Transformer};

    #[test]
    fn writes_the_matrix_with_names_and_labels_and_the_sorted_classes() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("t.csv");
        std::fs::write(&data, "g,x,y\na,1,hi\nb,3,lo\na,2,hi\n").unwrap();
        let config: FeatureConfig =
            serde_json::from_value(json!({"target": "y", "scaling": "none"})).unwrap();
        let transformer = Transformer::fit(&config, &Table::read(&data).unwrap()).unwrap();
        let transformer_path = dir.path().join("transformer.json");
        std::fs::write(&transformer_path, serde_json::to_vec(&transformer).unwrap()).unwrap();
        let mut ctx = Context::detached(dir.path(), json!({}));
        ctx.inputs.insert("data".into(), data);
        ctx.inputs.insert("transformer".into(), transformer_path);
        ctx.outputs
            .insert("matrix".into(), dir.path().join("m.csv"));
        ctx.outputs
            .insert("classes".into(), dir.path().join("c.json"));
        let outcome = transform(&ctx).unwrap();
        assert_eq!(outcome.values["rows"], json!(3));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("m.csv")).unwrap(),
            "g=a,g=b,x,y\n1,0,1,hi\n0,1,3,lo\n1,0,2,hi\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("c.json")).unwrap(),
            r#"["hi","lo"]"#
        );
    }
}
