//! How [`read_table`](super::read_table) types what it reads: string
//! values trimmed, empty strings read as null, and a CSV column typed as a
//! number (`Float64`) exactly when every non-null value parses as a finite
//! number, unless it is named as a text column.
//!
//! It does not coerce against a declared schema or report bad rows; that is
//! `data.clean`.

use polars::prelude::*;

/// Trims every string column and reads empty strings as null.
pub(super) fn trim_strings(frame: DataFrame) -> PolarsResult<DataFrame> {
    let height = frame.height();
    let columns = frame
        .into_columns()
        .into_iter()
        .map(|column| match column.dtype() {
            DataType::String if needs_trimming(column.str()?) => {
                Ok(trimmed(&column)?.into_column())
            }
            _ => Ok(column),
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(height, columns)
}

/// Whether any value has surrounding whitespace or is empty; a scan is much
/// cheaper than rebuilding a column that is already clean.
fn needs_trimming(values: &StringChunked) -> bool {
    values
        .iter()
        .flatten()
        .any(|value| value.is_empty() || value.trim().len() != value.len())
}

fn trimmed(column: &Column) -> PolarsResult<StringChunked> {
    let values = column.str()?;
    let trimmed: StringChunked = values
        .iter()
        .map(|value| value.map(str::trim).filter(|value| !value.is_empty()))
        .collect();
    Ok(trimmed.with_name(column.name().clone()))
}

/// Trims a text-only frame and turns each all-numeric column, except the
/// `text_columns`, into `Float64`.
pub(super) fn type_columns(frame: DataFrame, text_columns: &[String]) -> PolarsResult<DataFrame> {
    let height = frame.height();
    let columns = frame
        .into_columns()
        .into_iter()
        .map(|column| {
            let text = trimmed(&column)?;
            if text_columns
                .iter()
                .any(|name| name == column.name().as_str())
            {
                return Ok(text.into_column());
            }
            Ok(match parse_numbers(&text) {
                Some(numbers) => numbers.into_column(),
                None => text.into_column(),
            })
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(height, columns)
}

/// The column as numbers, or `None` when a non-null value is not a finite
/// number (or every value is null: such a column stays text).
fn parse_numbers(text: &StringChunked) -> Option<Float64Chunked> {
    if text.null_count() == text.len() {
        return None;
    }
    let mut numbers = Vec::with_capacity(text.len());
    for value in text.iter() {
        numbers.push(match value {
            None => None,
            Some(value) => Some(value.parse::<f64>().ok().filter(|n| n.is_finite())?),
        });
    }
    Some(Float64Chunked::from_iter_options(
        text.name().clone(),
        numbers.into_iter(),
    ))
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use super::*;

    fn text(values: &[Option<&str>]) -> DataFrame {
        let column: StringChunked = values.iter().copied().collect();
        DataFrame::new(
            values.len(),
            vec![column.with_name("x".into()).into_column()],
        )
        .unwrap()
    }

    #[test]
    fn a_column_of_numbers_becomes_float_and_blanks_become_null() {
        let frame = type_columns(text(&[Some(" 1.5"), Some(" "), Some("2")]), &[]).unwrap();
        let values: Vec<Option<f64>> = frame.column("x").unwrap().f64().unwrap().iter().collect();
        assert_eq!(values, [Some(1.5), None, Some(2.0)]);
    }

    #[test]
    fn one_word_keeps_a_column_text() {
        let frame = type_columns(text(&[Some("1"), Some("abc")]), &[]).unwrap();
        assert_eq!(frame.column("x").unwrap().dtype(), &DataType::String);
    }

    #[test]
    fn infinite_and_nan_spellings_keep_a_column_text() {
        let frame = type_columns(text(&[Some("1"), Some("inf"), Some("NaN")]), &[]).unwrap();
        assert_eq!(frame.column("x").unwrap().dtype(), &DataType::String);
    }

    #[test]
    fn named_text_columns_stay_text() {
        let frame = type_columns(text(&[Some("007")]), &["x".to_string()]).unwrap();
        assert_eq!(
            frame.column("x").unwrap().str().unwrap().get(0),
            Some("007")
        );
    }

    #[test]
    fn clean_string_columns_are_left_as_they_are() {
        let values: StringChunked = [Some("a"), Some("b")].into_iter().collect();
        assert!(!needs_trimming(&values));
        let values: StringChunked = [Some("a "), Some("b")].into_iter().collect();
        assert!(needs_trimming(&values));
    }
}
