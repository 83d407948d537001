//! Column access shared by the data and monitoring operators: the two kinds
//! of column they understand (numbers and categories) and typed views of a
//! column with errors that name the file and the column.
//!
//! This module does not coerce text to numbers row by row with error
//! reporting; `data.clean` does that.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::OperatorError;

/// What a column holds, as DAG files spell it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    Number,
    Category,
}

impl ColumnKind {
    pub fn of(column: &Column) -> Self {
        if column.dtype().is_primitive_numeric() {
            Self::Number
        } else {
            Self::Category
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Number => "number",
            Self::Category => "category",
        }
    }
}

/// The column named `name`, or an error listing the columns there are.
pub fn column<'a>(
    frame: &'a DataFrame,
    name: &str,
    file: &Path,
) -> Result<&'a Column, OperatorError> {
    frame.column(name).map_err(|_| {
        let present: Vec<&str> = frame
            .get_column_names()
            .into_iter()
            .map(|n| n.as_str())
            .collect();
        OperatorError::failed(format!(
            "`{}` has no column `{name}` (columns: {})",
            file.display(),
            present.join(", ")
        ))
    })
}

/// A numeric column as `f64` values.
pub fn numbers(
    frame: &DataFrame,
    name: &str,
    file: &Path,
) -> Result<Float64Chunked, OperatorError> {
    let column = column(frame, name, file)?;
    if ColumnKind::of(column) != ColumnKind::Number {
        return Err(OperatorError::failed(format!(
            "column `{name}` in `{}` holds `{}` values, not numbers",
            file.display(),
            column.dtype()
        )));
    }
    let cast = column
        .cast(&DataType::Float64)
        .map_err(|e| cast_error(name, file, &e))?;
    cast.f64().cloned().map_err(|e| cast_error(name, file, &e))
}

/// Any column as text: numbers are formatted, nulls stay null.
pub fn categories(
    frame: &DataFrame,
    name: &str,
    file: &Path,
) -> Result<StringChunked, OperatorError> {
    let column = column(frame, name, file)?;
    let cast = column
        .cast(&DataType::String)
        .map_err(|e| cast_error(name, file, &e))?;
    cast.str().cloned().map_err(|e| cast_error(name, file, &e))
}

fn cast_error(name: &str, file: &Path, error: &PolarsError) -> OperatorError {
    OperatorError::failed(format!(
        "cannot read column `{name}` of `{}`: {error}",
        file.display()
    ))
}

/// How often each non-null value occurs, in sorted order. Counting goes
/// through a hash map (fast for few distinct values over many rows); only
/// the sorted result is ever iterated, so the order is deterministic.
pub fn category_counts(values: &StringChunked) -> BTreeMap<String, u64> {
    let mut counts: HashMap<&str, u64, BuildHasherDefault<Fnv1a>> = HashMap::default();
    for value in values.iter().flatten() {
        *counts.entry(value).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(value, count)| (value.to_string(), count))
        .collect()
}

/// FNV-1a: a fast hash for short category strings. Collisions only cost
/// speed here, never correctness, and nothing iterates the hash map.
#[derive(Debug)]
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xCBF2_9CE4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01B3);
        }
    }
}

/// The non-null, non-NaN values of a numeric column, sorted ascending.
pub fn sorted_values(values: &Float64Chunked) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().flatten().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use super::*;

    #[test]
    fn missing_column_error_lists_the_present_columns() {
        let frame = df!("a" => [1.0], "b" => ["x"]).unwrap();
        let message = column(&frame, "c", Path::new("in.csv"))
            .unwrap_err()
            .to_string();
        assert_eq!(message, "`in.csv` has no column `c` (columns: a, b)");
    }

    #[test]
    fn numbers_of_a_text_column_is_an_error_naming_it() {
        let frame = df!("b" => ["x"]).unwrap();
        let message = numbers(&frame, "b", Path::new("in.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("column `b`") && message.contains("not numbers"),
            "{message}"
        );
    }

    #[test]
    fn category_counts_are_sorted_by_value() {
        let values: StringChunked = [Some("b"), Some("a"), None, Some("b")]
            .into_iter()
            .collect();
        let counts: Vec<(String, u64)> = category_counts(&values).into_iter().collect();
        assert_eq!(counts, [("a".to_string(), 1), ("b".to_string(), 2)]);
    }

    #[test]
    fn integer_columns_count_as_numbers() {
        let frame = df!("n" => [1i64, 2]).unwrap();
        assert_eq!(
            ColumnKind::of(frame.column("n").unwrap()),
            ColumnKind::Number
        );
        assert_eq!(
            numbers(&frame, "n", Path::new("t")).unwrap().get(1),
            Some(2.0)
        );
    }
}
