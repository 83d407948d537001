//! The schema side of `data.clean`: checking that the expected columns are
//! present, giving each column its declared kind, and the quality report
//! those steps (and the later rules) fill in.
//!
//! It does not deduplicate or apply range and imputation rules; `clean.rs`
//! does, in that order, after this.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use polars::prelude::*;
use serde::Serialize;

use super::clean::Params;
use super::column::ColumnKind;
use super::numeric_rule::{CoerceInvalid, RangeCounts, coerce_numbers};
use crate::OperatorError;

/// The quality report written to the `report` output.
#[derive(Debug, Default, Serialize)]
pub(super) struct Report {
    pub(super) input: String,
    pub(super) rows_in: usize,
    pub(super) rows_out: usize,
    pub(super) duplicates_dropped: usize,
    /// Of those, rows that were not equal to an earlier row as read, only
    /// after null tokens and spelling rewrites.
    pub(super) duplicates_after_normalisation: usize,
    pub(super) rows_dropped_out_of_range: usize,
    pub(super) rows_dropped_null: usize,
    /// Columns removed by `unlisted: drop`: how many, and their names.
    pub(super) columns_dropped: usize,
    pub(super) dropped_columns: Vec<String>,
    pub(super) columns: BTreeMap<String, ColumnReport>,
}

#[derive(Debug, Default, Serialize)]
pub(super) struct ColumnReport {
    pub(super) kind: Option<ColumnKind>,
    /// Nulls after reading and coercion, before deduplication and imputation
    /// (including those read from null tokens).
    pub(super) nulls: usize,
    /// Values that were one of the `null_tokens` and became null.
    pub(super) nulls_from_tokens: usize,
    /// Category values whose spelling `case` or `canonical` rewrote.
    pub(super) rewritten: usize,
    /// Category values matching no `canonical` spelling (made null under
    /// `on_unknown: "null"`).
    pub(super) unknown: usize,
    /// Text values in a numeric column read as null (`coerce_invalid: null`).
    pub(super) invalid: usize,
    #[serde(flatten)]
    pub(super) out_of_range: RangeCounts,
    pub(super) imputed: usize,
}

pub(super) fn polars_failure(file: &Path, error: &PolarsError) -> OperatorError {
    OperatorError::failed(format!("cannot clean `{}`: {error}", file.display()))
}

pub(super) fn require_columns(
    frame: &DataFrame,
    params: &Params,
    file: &Path,
) -> Result<(), OperatorError> {
    let present: Vec<&str> = frame
        .get_column_names()
        .into_iter()
        .map(|n| n.as_str())
        .collect();
    let named: BTreeSet<&String> = params
        .columns
        .keys()
        .chain(params.numeric.keys())
        .chain(params.category.keys())
        .collect();
    let missing: Vec<String> = named
        .into_iter()
        .filter(|name| !present.contains(&name.as_str()))
        .map(|name| format!("`{name}`"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(OperatorError::failed(format!(
        "`{}` is missing column{} {} (columns: {})",
        file.display(),
        if missing.len() == 1 { "" } else { "s" },
        missing.join(", "),
        present.join(", ")
    )))
}

/// Gives every column named in `columns` or `numeric` its kind, and records
/// per-column null counts. A column named nowhere that was text only
/// because of null tokens (`token_nulls`, per column) becomes numeric when
/// all its other values are numbers, as the reader would have typed it.
pub(super) fn coerce(
    frame: &mut DataFrame,
    params: &Params,
    token_nulls: &BTreeMap<String, usize>,
    file: &Path,
    report: &mut Report,
) -> Result<(), OperatorError> {
    let names: Vec<String> = frame
        .get_column_names()
        .into_iter()
        .map(|n| n.to_string())
        .collect();
    for name in names {
        let wanted = params.columns.get(&name).copied().or_else(|| {
            if params.numeric.contains_key(&name) {
                Some(ColumnKind::Number)
            } else {
                params
                    .category
                    .contains_key(&name)
                    .then_some(ColumnKind::Category)
            }
        });
        let entry = report.columns.entry(name.clone()).or_default();
        entry.nulls_from_tokens = token_nulls.get(&name).copied().unwrap_or(0);
        let column = frame.column(&name).map_err(|e| polars_failure(file, &e))?;
        let replacement = match wanted {
            Some(ColumnKind::Number) => {
                let invalid = params
                    .numeric
                    .get(&name)
                    .map(|r| r.coerce_invalid)
                    .unwrap_or_default();
                let (values, invalid_count) = coerce_numbers(column, invalid, file)?;
                entry.invalid = invalid_count;
                Some(values.into_column())
            }
            Some(ColumnKind::Category) if column.dtype() != &DataType::String => Some(
                column
                    .cast(&DataType::String)
                    .map_err(|e| polars_failure(file, &e))?,
            ),
            None if entry.nulls_from_tokens > 0 && column.dtype() == &DataType::String => {
                let (values, invalid) = coerce_numbers(column, CoerceInvalid::Null, file)?;
                (invalid == 0 && values.null_count() < values.len()).then(|| values.into_column())
            }
            _ => None,
        };
        if let Some(replacement) = replacement {
            frame
                .with_column(replacement)
                .map_err(|e| polars_failure(file, &e))?;
        }
        let column = frame.column(&name).map_err(|e| polars_failure(file, &e))?;
        entry.kind = Some(ColumnKind::of(column));
        entry.nulls = column.null_count();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use super::*;

    fn params(json: serde_json::Value) -> Params {
        crate::parse_params(&json).unwrap()
    }

    #[test]
    fn declared_kinds_are_applied_and_nulls_counted() {
        let mut frame = df!("a" => [Some("1"), None], "b" => [1.0, 2.0]).unwrap();
        let mut report = Report::default();
        let params = params(serde_json::json!({"columns": {"a": "number", "b": "category"}}));
        coerce(
            &mut frame,
            &params,
            &BTreeMap::new(),
            Path::new("t.csv"),
            &mut report,
        )
        .unwrap();
        assert_eq!(frame.column("a").unwrap().dtype(), &DataType::Float64);
        assert_eq!(frame.column("b").unwrap().dtype(), &DataType::String);
        assert_eq!(report.columns["a"].nulls, 1);
        assert_eq!(report.columns["b"].kind, Some(ColumnKind::Category));
    }

    #[test]
    fn every_missing_column_is_named_at_once() {
        let frame = df!("a" => [1.0]).unwrap();
        let params = params(serde_json::json!({"columns": {"x": "number", "y": "category"}}));
        let message = require_columns(&frame, &params, Path::new("t.csv"))
            .unwrap_err()
            .to_string();
        assert_eq!(message, "`t.csv` is missing columns `x`, `y` (columns: a)");
    }
}
