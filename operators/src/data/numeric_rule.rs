//! [`NumericRule`]: what `data.clean` does to one numeric column — turn text
//! into numbers, handle values outside `[min, max]`, and fill nulls.
//!
//! Each step is a pure function on one column's values, so it is tested
//! without files. The operator in `clean.rs` decides the order and applies
//! row removals to the whole table.

use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::column::sorted_values;
use crate::OperatorError;

/// The `numeric.<column>` block of `data.clean` params.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NumericRule {
    /// The smallest plausible value.
    pub min: Option<f64>,
    /// The largest plausible value.
    pub max: Option<f64>,
    /// What happens to a value outside `[min, max]`.
    #[serde(default)]
    pub on_out_of_range: OutOfRange,
    /// How nulls are filled; none unless set.
    pub impute: Option<Impute>,
    /// What happens to text that is not a number.
    #[serde(default)]
    pub coerce_invalid: CoerceInvalid,
}

/// What to do with a value outside `[min, max]`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OutOfRange {
    /// Replace it by the nearest bound.
    Clip,
    /// Remove the row.
    Drop,
    /// Keep it and count it in the quality report.
    #[default]
    Flag,
}

/// How to fill a null value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Impute {
    Median,
    Mean,
    /// The most frequent value; the smallest one on a tie.
    Mode,
    /// Remove the row.
    Drop,
}

/// What to do with a value that does not fit a column: text that is not a
/// number in a numeric column, or a category that matches none of its
/// `canonical` spellings.
///
/// `null` may be written quoted (`"null"`) or bare: YAML reads a bare
/// `null` as the null value, which means the same here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CoerceInvalid {
    /// Fail the task, naming the file, column, row and value.
    #[default]
    Error,
    /// Read it as null (and count it).
    Null,
}

impl schemars::JsonSchema for CoerceInvalid {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CoerceInvalid".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`error` fails the task naming the value; `null` (quoted or bare) reads it as null and counts it",
            "enum": ["error", "null"],
            "default": "error",
        })
    }
}

impl<'de> Deserialize<'de> for CoerceInvalid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(deserializer)?.as_deref() {
            None | Some("null") => Ok(Self::Null),
            Some("error") => Ok(Self::Error),
            Some(other) => Err(serde::de::Error::unknown_variant(other, &["error", "null"])),
        }
    }
}

/// The text values of a numeric column that are not numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvalidText {
    pub count: usize,
    /// The first one: its 1-based data row and its text.
    pub first: Option<(usize, String)>,
}

/// A column as numbers, with every text value that is not a finite number
/// read as null and described in the returned [`InvalidText`]; the caller
/// decides whether that is an error (`coerce_invalid`).
pub fn coerce_numbers(
    column: &Column,
    file: &Path,
) -> Result<(Float64Chunked, InvalidText), OperatorError> {
    let name = column.name().clone();
    let failed = |e: PolarsError| {
        OperatorError::failed(format!(
            "cannot read column `{name}` of `{}` as numbers: {e}",
            file.display()
        ))
    };
    if column.dtype().is_primitive_numeric() {
        let cast = column.cast(&DataType::Float64).map_err(failed)?;
        return Ok((cast.f64().map_err(failed)?.clone(), InvalidText::default()));
    }
    let text = column.cast(&DataType::String).map_err(failed)?;
    let mut invalid = InvalidText::default();
    let mut values = Vec::with_capacity(text.len());
    for (row, value) in text.str().map_err(failed)?.iter().enumerate() {
        let parsed = value.and_then(|value| {
            let number = value.trim().parse::<f64>().ok().filter(|v| v.is_finite());
            if number.is_none() {
                invalid.count += 1;
                invalid
                    .first
                    .get_or_insert_with(|| (row + 1, value.to_string()));
            }
            number
        });
        values.push(parsed);
    }
    Ok((
        Float64Chunked::from_iter_options(name, values.into_iter()),
        invalid,
    ))
}

/// Counts of values outside the rule's bounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RangeCounts {
    pub below_min: usize,
    pub above_max: usize,
}

impl NumericRule {
    fn outside(&self, value: f64) -> Option<bool> {
        match (self.min, self.max) {
            (Some(min), _) if value < min => Some(false),
            (_, Some(max)) if value > max => Some(true),
            _ => None,
        }
    }

    /// Applies the range part of the rule. Returns the new values, the rows
    /// to keep (all `true` unless `on_out_of_range: drop`) and the counts.
    pub fn apply_range(&self, values: &Float64Chunked) -> (Float64Chunked, Vec<bool>, RangeCounts) {
        let mut counts = RangeCounts::default();
        let mut keep = vec![true; values.len()];
        let mut out = Vec::with_capacity(values.len());
        for (row, value) in values.iter().enumerate() {
            let side = value.and_then(|v| self.outside(v));
            match side {
                Some(false) => counts.below_min += 1,
                Some(true) => counts.above_max += 1,
                None => {}
            }
            out.push(match (side, self.on_out_of_range) {
                (Some(false), OutOfRange::Clip) => self.min,
                (Some(true), OutOfRange::Clip) => self.max,
                (Some(_), OutOfRange::Drop) => {
                    keep[row] = false;
                    value
                }
                _ => value,
            });
        }
        (
            Float64Chunked::from_iter_options(values.name().clone(), out.into_iter()),
            keep,
            counts,
        )
    }
}

/// Fills nulls by `method`. Returns the new values, the rows to keep (all
/// `true` unless `drop`) and how many values were filled or dropped.
pub fn impute(
    values: &Float64Chunked,
    method: Impute,
    file: &Path,
) -> Result<(Float64Chunked, Vec<bool>, usize), OperatorError> {
    let nulls = values.null_count();
    if method == Impute::Drop {
        let keep = values.iter().map(|v| v.is_some()).collect();
        return Ok((values.clone(), keep, nulls));
    }
    if nulls == 0 {
        return Ok((values.clone(), vec![true; values.len()], 0));
    }
    let sorted = sorted_values(values);
    let fill = fill_value(&sorted, method).ok_or_else(|| {
        OperatorError::failed(format!(
            "cannot impute column `{}` of `{}` by `{}`: it has no non-null values",
            values.name(),
            file.display(),
            serde_json::to_value(method)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ))
    })?;
    let filled = values.iter().map(|v| Some(v.unwrap_or(fill)));
    Ok((
        Float64Chunked::from_iter_options(values.name().clone(), filled),
        vec![true; values.len()],
        nulls,
    ))
}

/// The value `method` fills with, from the sorted non-null values.
fn fill_value(sorted: &[f64], method: Impute) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    Some(match method {
        Impute::Median if n % 2 == 1 => sorted[n / 2],
        Impute::Median => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        Impute::Mean => sorted.iter().sum::<f64>() / n as f64,
        Impute::Mode => {
            let (mut best, mut best_run, mut run) = (sorted[0], 0, 0);
            for (i, value) in sorted.iter().enumerate() {
                run = if i > 0 && sorted[i - 1] == *value {
                    run + 1
                } else {
                    1
                };
                // Strictly greater keeps the smallest value on a tie.
                if run > best_run {
                    (best, best_run) = (*value, run);
                }
            }
            best
        }
        Impute::Drop => return None,
    })
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use super::*;

    fn chunk(values: &[Option<f64>]) -> Float64Chunked {
        Float64Chunked::from_iter_options("x".into(), values.iter().copied())
    }

    fn rule(on: OutOfRange) -> NumericRule {
        NumericRule {
            min: Some(0.0),
            max: Some(10.0),
            on_out_of_range: on,
            ..Default::default()
        }
    }

    #[test]
    fn clip_replaces_values_by_the_nearest_bound() {
        let (values, keep, counts) =
            rule(OutOfRange::Clip).apply_range(&chunk(&[Some(-1.0), Some(5.0), Some(11.0), None]));
        assert_eq!(
            values.iter().collect::<Vec<_>>(),
            [Some(0.0), Some(5.0), Some(10.0), None]
        );
        assert_eq!(keep, [true; 4]);
        assert_eq!(
            counts,
            RangeCounts {
                below_min: 1,
                above_max: 1
            }
        );
    }

    #[test]
    fn drop_marks_out_of_range_rows_and_flag_keeps_them() {
        let input = chunk(&[Some(-1.0), Some(5.0), Some(11.0)]);
        let (_, keep, _) = rule(OutOfRange::Drop).apply_range(&input);
        assert_eq!(keep, [false, true, false]);
        let (values, keep, counts) = rule(OutOfRange::Flag).apply_range(&input);
        assert_eq!(keep, [true; 3]);
        assert_eq!(
            values.iter().collect::<Vec<_>>(),
            input.iter().collect::<Vec<_>>()
        );
        assert_eq!(counts.below_min + counts.above_max, 2);
    }

    #[test]
    fn median_mean_and_mode_fill_nulls() {
        let input = chunk(&[Some(1.0), Some(2.0), Some(2.0), Some(7.0), None]);
        let fill = |method| impute(&input, method, Path::new("t")).unwrap().0.get(4);
        assert_eq!(fill(Impute::Median), Some(2.0));
        assert_eq!(fill(Impute::Mean), Some(3.0));
        assert_eq!(fill(Impute::Mode), Some(2.0));
        let (_, keep, dropped) = impute(&input, Impute::Drop, Path::new("t")).unwrap();
        assert_eq!((keep, dropped), (vec![true, true, true, true, false], 1));
    }

    #[test]
    fn mode_prefers_the_smallest_value_on_a_tie() {
        assert_eq!(fill_value(&[1.0, 1.0, 3.0, 3.0], Impute::Mode), Some(1.0));
    }

    #[test]
    fn imputing_an_all_null_column_is_an_error() {
        let error = impute(&chunk(&[None, None]), Impute::Median, Path::new("t.csv")).unwrap_err();
        assert!(error.to_string().contains("no non-null values"), "{error}");
    }

    #[test]
    fn text_that_is_not_a_number_is_counted_with_its_first_row() {
        let column = Column::new("Age".into(), [Some("21"), Some("abc"), None, Some("x")]);
        let (values, invalid) = coerce_numbers(&column, Path::new("raw.csv")).unwrap();
        assert_eq!(
            values.iter().collect::<Vec<_>>(),
            [Some(21.0), None, None, None]
        );
        assert_eq!(
            invalid,
            InvalidText {
                count: 2,
                first: Some((2, "abc".to_string()))
            }
        );
    }

    #[test]
    fn coerce_invalid_reads_null_quoted_or_bare() {
        let parse = |v: serde_json::Value| serde_json::from_value::<CoerceInvalid>(v);
        assert_eq!(
            parse(serde_json::json!("null")).unwrap(),
            CoerceInvalid::Null
        );
        assert_eq!(parse(serde_json::Value::Null).unwrap(), CoerceInvalid::Null);
        assert_eq!(
            parse(serde_json::json!("error")).unwrap(),
            CoerceInvalid::Error
        );
        let error = parse(serde_json::json!("skip")).unwrap_err().to_string();
        assert_eq!(error, "unknown variant `skip`, expected `error` or `null`");
    }
}
