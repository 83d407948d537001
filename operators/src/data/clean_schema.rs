//! The schema side of `data.clean`: checking that the expected columns are
//! present, giving each column its declared kind, collecting every problem
//! with the input into one error with pasteable fixes, and the quality
//! report those steps (and the later rules) fill in.
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

/// Everything wrong with the input that `data.clean` finds before it
/// changes any row — a repeated header name, missing or unlisted columns,
/// text in numeric columns, unknown categories — so one run names them all.
/// A problem that a param would let through carries that param as a fix;
/// the fixes are merged and shown as YAML to paste into the task's params.
#[derive(Debug, Default)]
pub(super) struct Problems {
    messages: Vec<String>,
    fixes: serde_json::Map<String, serde_json::Value>,
}

impl Problems {
    pub(super) fn push(&mut self, message: impl Into<String>) {
        self.messages.push(message.into());
    }

    /// A problem that setting `params.<path>` to `value` would let through.
    pub(super) fn push_with_fix(
        &mut self,
        message: impl Into<String>,
        path: &[&str],
        value: serde_json::Value,
    ) {
        self.push(message);
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut map = &mut self.fixes;
        for key in parents {
            let entry = map
                .entry((*key).to_string())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if !entry.is_object() {
                *entry = serde_json::Value::Object(serde_json::Map::new());
            }
            let serde_json::Value::Object(inner) = entry else {
                return;
            };
            map = inner;
        }
        map.insert((*last).to_string(), value);
    }

    /// `Ok` when there is no problem, else one error naming them all.
    pub(super) fn into_result(self, file: &Path) -> Result<(), OperatorError> {
        let mut text = format!("cannot clean `{}`: ", file.display());
        match self.messages.as_slice() {
            [] => return Ok(()),
            [only] => text.push_str(only),
            all => {
                text.push_str(&format!("{} problems:", all.len()));
                for message in all {
                    text.push_str(&format!("\n  - {message}"));
                }
            }
        }
        if !self.fixes.is_empty() {
            text.push_str(
                "\nto go on anyway, add to the task's params \
                 (merging with any block of the same name):",
            );
            for (key, value) in &self.fixes {
                text.push_str(&format!("\n  {}: {}", yaml_key(key), flow_yaml(value)));
            }
        }
        Err(OperatorError::failed(text))
    }
}

/// A string as YAML: bare when that reads back as the same string,
/// double-quoted otherwise (`null`, `no`, `1st`, `note x`).
pub(super) fn yaml_key(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !matches!(
            name.to_ascii_lowercase().as_str(),
            "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        name.to_string()
    } else {
        serde_json::Value::from(name).to_string()
    }
}

/// A JSON value as one line of YAML flow style.
fn flow_yaml(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => yaml_key(text),
        serde_json::Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(key, value)| format!("{}: {}", yaml_key(key), flow_yaml(value)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(flow_yaml).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// The columns named in the params but absent from the table, as one
/// problem naming them all.
pub(super) fn missing_columns(frame: &DataFrame, params: &Params) -> Option<String> {
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
        return None;
    }
    Some(format!(
        "missing column{} {} (columns: {})",
        if missing.len() == 1 { "" } else { "s" },
        missing.join(", "),
        present.join(", ")
    ))
}

/// Gives every column named in `columns`, `numeric` or `category` its
/// kind, and records per-column null counts. Text in a numeric column is a
/// problem naming the column, the first such row and value, unless its
/// rule says `coerce_invalid: "null"`. A column named nowhere that was text
/// only because of null tokens (`token_nulls`, per column) becomes numeric
/// when all its other values are numbers, as the reader would have typed it.
pub(super) fn coerce(
    frame: &mut DataFrame,
    params: &Params,
    token_nulls: &BTreeMap<String, usize>,
    file: &Path,
    report: &mut Report,
    problems: &mut Problems,
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
                let mode = params
                    .numeric
                    .get(&name)
                    .map(|r| r.coerce_invalid)
                    .unwrap_or_default();
                let (values, invalid) = coerce_numbers(column, file)?;
                match (mode, &invalid.first) {
                    (CoerceInvalid::Error, Some((row, value))) => problems.push_with_fix(
                        not_numbers(&name, invalid.count, *row, value),
                        &["numeric", &name, "coerce_invalid"],
                        "null".into(),
                    ),
                    _ => entry.invalid = invalid.count,
                }
                Some(values.into_column())
            }
            Some(ColumnKind::Category) if column.dtype() != &DataType::String => Some(
                column
                    .cast(&DataType::String)
                    .map_err(|e| polars_failure(file, &e))?,
            ),
            None if entry.nulls_from_tokens > 0 && column.dtype() == &DataType::String => {
                let (values, invalid) = coerce_numbers(column, file)?;
                (invalid.count == 0 && values.null_count() < values.len())
                    .then(|| values.into_column())
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

fn not_numbers(name: &str, count: usize, row: usize, value: &str) -> String {
    if count == 1 {
        format!("column `{name}`, row {row}: `{value}` is not a number")
    } else {
        format!(
            "column `{name}`: {count} values are not numbers, the first at row {row}: `{value}`"
        )
    }
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
        let mut problems = Problems::default();
        let params = params(serde_json::json!({"columns": {"a": "number", "b": "category"}}));
        coerce(
            &mut frame,
            &params,
            &BTreeMap::new(),
            Path::new("t.csv"),
            &mut report,
            &mut problems,
        )
        .unwrap();
        problems.into_result(Path::new("t.csv")).unwrap();
        assert_eq!(frame.column("a").unwrap().dtype(), &DataType::Float64);
        assert_eq!(frame.column("b").unwrap().dtype(), &DataType::String);
        assert_eq!(report.columns["a"].nulls, 1);
        assert_eq!(report.columns["b"].kind, Some(ColumnKind::Category));
    }

    #[test]
    fn every_missing_column_is_named_at_once() {
        let frame = df!("a" => [1.0]).unwrap();
        let params = params(
            serde_json::json!({"columns": {"x": "number", "y": "category"}, "numeric": {"x": {}}}),
        );
        assert_eq!(
            missing_columns(&frame, &params).as_deref(),
            Some("missing columns `x`, `y` (columns: a)")
        );
    }

    #[test]
    fn text_in_every_numeric_column_is_one_problem_per_column_with_one_merged_fix() {
        let mut frame = df!(
            "a" => ["1", "x", "y"],
            "b" => ["2", "3", "?!"],
            "c" => ["4", "5", "z"]
        )
        .unwrap();
        let params = params(serde_json::json!({
            "columns": {"a": "number", "b": "number"},
            "numeric": {"a": {"min": 0}, "c": {"coerce_invalid": "null"}}
        }));
        let mut report = Report::default();
        let mut problems = Problems::default();
        coerce(
            &mut frame,
            &params,
            &BTreeMap::new(),
            Path::new("t.csv"),
            &mut report,
            &mut problems,
        )
        .unwrap();
        assert_eq!(report.columns["c"].invalid, 1);
        let message = problems
            .into_result(Path::new("t.csv"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "cannot clean `t.csv`: 2 problems:\n  \
             - column `a`: 2 values are not numbers, the first at row 2: `x`\n  \
             - column `b`, row 3: `?!` is not a number\n\
             to go on anyway, add to the task's params (merging with any block of the same name):\n  \
             numeric: {a: {coerce_invalid: \"null\"}, b: {coerce_invalid: \"null\"}}"
        );
    }

    #[test]
    fn strings_are_quoted_in_yaml_only_when_needed() {
        let keys: Vec<String> = [
            "Age",
            "family_history",
            "note x",
            "no",
            "Null",
            "1st",
            "a:b",
        ]
        .into_iter()
        .map(yaml_key)
        .collect();
        assert_eq!(
            keys,
            [
                "Age",
                "family_history",
                "\"note x\"",
                "\"no\"",
                "\"Null\"",
                "\"1st\"",
                "\"a:b\""
            ]
        );
        for (key, original) in keys.iter().zip([
            "Age",
            "family_history",
            "note x",
            "no",
            "Null",
            "1st",
            "a:b",
        ]) {
            let parsed: serde_json::Value =
                serde_yaml::from_str(&format!("{{{key}: {key}}}")).unwrap();
            let mut expected = serde_json::Map::new();
            expected.insert(original.to_string(), original.into());
            assert_eq!(parsed, serde_json::Value::Object(expected), "{key}");
        }
    }
}
