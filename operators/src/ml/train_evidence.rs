//! Minimum evidence for `ml.train`: the params that set it (`min_rows`,
//! `min_rows_per_class`) and the check that refuses labels too few to learn
//! from, with the count and the threshold in the message.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Problem;
use crate::ml::MlError;
use crate::ml::dataset::Table;
use crate::ml::train_op::TrainParams;

/// A count param: absent is `default`, anything but a whole number >= 1 is a problem.
pub fn count_param(
    map: &mut serde_json::Map<String, Value>,
    name: &str,
    default: usize,
    problems: &mut Vec<Problem>,
) -> usize {
    match map.remove(name) {
        None | Some(Value::Null) => default,
        Some(value) => match value.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n >= 1 => n,
            _ => {
                problems.push(Problem::new(
                    format!("params.{name}"),
                    format!("`{name}` must be a whole number >= 1, got `{value}`"),
                ));
                default
            }
        },
    }
}

/// Refuses labels too few to learn from, naming the count and the threshold.
pub fn enough_evidence(
    params: &TrainParams,
    table: &Table,
    labels: &[String],
) -> Result<(), MlError> {
    let source = table.source.display();
    if labels.len() < params.min_rows {
        return Err(MlError::invalid(format!(
            "`{source}` has {} training rows; at least {} needed (`min_rows`)",
            labels.len(),
            params.min_rows
        )));
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for label in labels {
        *counts.entry(label.as_str()).or_default() += 1;
    }
    if let [(only, _)] = counts.iter().collect::<Vec<_>>()[..] {
        return Err(MlError::invalid(format!(
            "`{source}` has one class only (`{only}`); a classifier needs at least 2"
        )));
    }
    if let Some((class, count)) = counts
        .iter()
        .min_by_key(|(class, count)| (**count, **class))
        .filter(|(_, count)| **count < params.min_rows_per_class)
    {
        return Err(MlError::invalid(format!(
            "class `{class}` has {count} training rows in `{source}`; at least {} needed (`min_rows_per_class`)",
            params.min_rows_per_class
        )));
    }
    Ok(())
}
