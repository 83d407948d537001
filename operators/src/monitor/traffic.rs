//! The traffic section of a drift report over a prediction log: how many
//! logged requests were answered, flagged or rejected, by the log's status
//! column — so out-of-range traffic is counted, not just compared.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

use crate::OperatorError;
use crate::data::column::{categories, category_counts};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Traffic {
    pub column: String,
    /// Rows per status value (`answered`, `flagged`, `rejected`).
    pub counts: BTreeMap<String, u64>,
    /// Share of rows that were not answered as asked (flagged or rejected).
    pub refused_share: f64,
}

/// Counts `column`'s values in `current`; `None` when it has no such column
/// (a labelled batch rather than a prediction log).
pub fn count(
    current: &DataFrame,
    column: &str,
    file: &std::path::Path,
) -> Result<Option<Traffic>, OperatorError> {
    if current.column(column).is_err() {
        return Ok(None);
    }
    let values = categories(current, column, file)?;
    let counts = category_counts(&values);
    let total: u64 = counts.values().sum();
    let answered = counts.get("answered").copied().unwrap_or(0);
    Ok(Some(Traffic {
        column: column.to_string(),
        refused_share: if total == 0 {
            0.0
        } else {
            (total - answered) as f64 / total as f64
        },
        counts,
    }))
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use super::*;

    #[test]
    fn statuses_are_counted_and_a_missing_column_is_no_traffic() {
        let log = df!("Age" => [20.0, 300.0, 25.0, 30.0], "status" => ["answered", "rejected", "flagged", "answered"]).unwrap();
        let file = std::path::Path::new("current.csv");
        let traffic = count(&log, "status", file).unwrap().unwrap();
        assert_eq!(traffic.counts["rejected"], 1);
        assert_eq!(traffic.counts["answered"], 2);
        assert_eq!(traffic.refused_share, 0.5);
        assert!(count(&log, "state", file).unwrap().is_none());
    }
}
