//! The data-quality section of a drift report: schema compliance of the
//! current table against the reference, completeness per column, and the
//! share of current numeric values outside the reference's range.
//!
//! It measures and reports; it does not decide whether drift happened.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;
use serde::Serialize;

use crate::OperatorError;
use crate::data::column::{ColumnKind, numbers};

#[derive(Debug, Default, Serialize)]
pub struct Quality {
    /// Columns of the reference the current table lacks.
    pub missing_columns: Vec<String>,
    /// Columns of the current table the reference lacks.
    pub extra_columns: Vec<String>,
    /// Shared columns whose kind differs: name → `{reference, current}`.
    pub dtype_mismatches: BTreeMap<String, KindChange>,
    /// Non-null share of every current column.
    pub completeness: BTreeMap<String, f64>,
    /// Share of current values outside the reference `[min, max]`, per
    /// shared numeric column.
    pub out_of_range: BTreeMap<String, f64>,
}

#[derive(Debug, Serialize)]
pub struct KindChange {
    pub reference: ColumnKind,
    pub current: ColumnKind,
}

fn names(frame: &DataFrame) -> Vec<String> {
    frame
        .get_column_names()
        .into_iter()
        .map(|n| n.to_string())
        .collect()
}

pub fn assess(
    reference: &DataFrame,
    current: &DataFrame,
    files: (&Path, &Path),
) -> Result<Quality, OperatorError> {
    let (reference_names, current_names) = (names(reference), names(current));
    let mut quality = Quality {
        missing_columns: reference_names
            .iter()
            .filter(|n| !current_names.contains(n))
            .cloned()
            .collect(),
        extra_columns: current_names
            .iter()
            .filter(|n| !reference_names.contains(n))
            .cloned()
            .collect(),
        ..Quality::default()
    };
    let rows = current.height().max(1) as f64;
    for column in current.columns() {
        quality.completeness.insert(
            column.name().to_string(),
            1.0 - column.null_count() as f64 / rows,
        );
    }
    for name in reference_names.iter().filter(|n| current_names.contains(n)) {
        let (Ok(before), Ok(after)) = (reference.column(name), current.column(name)) else {
            continue;
        };
        let (before_kind, after_kind) = (ColumnKind::of(before), ColumnKind::of(after));
        if before_kind != after_kind {
            quality.dtype_mismatches.insert(
                name.clone(),
                KindChange {
                    reference: before_kind,
                    current: after_kind,
                },
            );
            continue;
        }
        if before_kind == ColumnKind::Number {
            let before = numbers(reference, name, files.0)?;
            let after = numbers(current, name, files.1)?;
            let (Some(low), Some(high)) = (before.min(), before.max()) else {
                continue;
            };
            let outside = after.lt(low).sum().unwrap_or(0) + after.gt(high).sum().unwrap_or(0);
            let present = (after.len() - after.null_count()).max(1) as f64;
            quality
                .out_of_range
                .insert(name.clone(), f64::from(outside) / present);
        }
    }
    Ok(quality)
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use super::*;

    #[test]
    fn schema_changes_completeness_and_out_of_range_are_measured() {
        let reference = df!("a" => [1.0, 2.0, 3.0, 4.0], "b" => ["x", "y", "x", "y"], "gone" => [1.0, 1.0, 1.0, 1.0]).unwrap();
        let current = df!("a" => [Some(0.0), Some(2.0), None, Some(9.0)], "b" => [1.0, 2.0, 3.0, 4.0], "new" => [1, 2, 3, 4]).unwrap();
        let quality = assess(&reference, &current, (Path::new("r"), Path::new("c"))).unwrap();
        assert_eq!(quality.missing_columns, ["gone"]);
        assert_eq!(quality.extra_columns, ["new"]);
        assert!(quality.dtype_mismatches.contains_key("b"));
        assert_eq!(quality.completeness["a"], 0.75);
        // 0.0 and 9.0 lie outside [1, 4]; the null does not count.
        assert!((quality.out_of_range["a"] - 2.0 / 3.0).abs() < 1e-12);
    }
}
