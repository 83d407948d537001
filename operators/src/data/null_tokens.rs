//! Null tokens: the cell values `data.clean` reads as missing (`NA`, `nan`,
//! `null`, …), in every text column, before any column is typed.
//!
//! Matching is exact on the trimmed value (the reader has already trimmed
//! it), so `NA` and `na` are different tokens; the default list spells the
//! common variants. It does not decide what happens to the nulls: the
//! numeric and category rules impute them or drop their rows.

use std::collections::{BTreeMap, HashSet};

use polars::prelude::*;

/// The default `null_tokens`: the empty cell and the spellings of "missing"
/// that spreadsheets, R, pandas and databases write.
pub(super) fn default_null_tokens() -> Vec<String> {
    [
        "", "NA", "N/A", "n/a", "na", "nan", "NaN", "NAN", "null", "NULL", "Null", "None", "none",
        "?",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// Replaces every value of a text column that is one of `tokens` by null.
/// Returns, per column, how many values became null; a column without a
/// token is left as it is (same buffers, same bytes when written).
pub(super) fn null_tokens(
    frame: &mut DataFrame,
    tokens: &[String],
) -> PolarsResult<BTreeMap<String, usize>> {
    let tokens: HashSet<&str> = tokens.iter().map(|t| t.trim()).collect();
    let mut counts = BTreeMap::new();
    let names: Vec<PlSmallStr> = frame.get_column_names().into_iter().cloned().collect();
    for name in names {
        let column = frame.column(&name)?;
        if column.dtype() != &DataType::String {
            continue;
        }
        let values = column.str()?;
        let count = values
            .iter()
            .flatten()
            .filter(|value| tokens.contains(value.trim()))
            .count();
        if count == 0 {
            continue;
        }
        let replaced: StringChunked = values
            .iter()
            .map(|value| value.filter(|value| !tokens.contains(value.trim())))
            .collect();
        frame.with_column(replaced.with_name(name.clone()).into_column())?;
        counts.insert(name.to_string(), count);
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use super::*;

    #[test]
    fn tokens_become_null_and_are_counted_per_column() {
        let mut frame = df!(
            "a" => [Some("x"), Some("NA"), Some("nan"), None, Some("n/a")],
            "b" => [Some("1"), Some("null"), Some("2"), Some("3"), Some("?")],
            "c" => [1.0, 2.0, 3.0, 4.0, 5.0]
        )
        .unwrap();
        let counts = null_tokens(&mut frame, &default_null_tokens()).unwrap();
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            [("a".to_string(), 3), ("b".to_string(), 2)]
        );
        let a: Vec<Option<&str>> = frame.column("a").unwrap().str().unwrap().iter().collect();
        assert_eq!(a, [Some("x"), None, None, None, None]);
        let b: Vec<Option<&str>> = frame.column("b").unwrap().str().unwrap().iter().collect();
        assert_eq!(b, [Some("1"), None, Some("2"), Some("3"), None]);
    }

    #[test]
    fn matching_is_exact_and_the_list_is_configurable() {
        let mut frame = df!("a" => ["Na", "NA", "missing", "NA "]).unwrap();
        let counts = null_tokens(&mut frame, &["missing".to_string()]).unwrap();
        assert_eq!(counts["a"], 1);
        let a: Vec<Option<&str>> = frame.column("a").unwrap().str().unwrap().iter().collect();
        assert_eq!(a, [Some("Na"), Some("NA"), None, Some("NA ")]);
        let counts = null_tokens(&mut frame, &[]).unwrap();
        assert!(counts.is_empty());
    }
}
