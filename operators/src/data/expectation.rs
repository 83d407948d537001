//! [`Expectation`]: one rule `data.validate` checks a table against, and
//! [`Finding`]: what checking it observed.
//!
//! This module holds the rules and their load-time sanity checks; how each
//! rule is checked on a table lives in `expectation_check.rs`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::column::ColumnKind;

/// One rule, as written under `expectations:`; `kind` selects the variant.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Expectation {
    ColumnsPresent {
        columns: Vec<String>,
    },
    Dtype {
        column: String,
        dtype: ColumnKind,
    },
    /// At least `min_ratio` (default 1) of the values are non-null.
    NotNull {
        column: String,
        #[serde(default = "one")]
        min_ratio: f64,
    },
    /// Values lie in `[min, max]`; up to `max_outside_share` (default 0) may not.
    Range {
        column: String,
        min: Option<f64>,
        max: Option<f64>,
        #[serde(default)]
        max_outside_share: f64,
    },
    AllowedValues {
        column: String,
        values: Vec<String>,
    },
    /// No two rows share the same values in `columns`.
    Unique {
        columns: Vec<String>,
    },
    RowCount {
        min: Option<u64>,
        max: Option<u64>,
    },
    /// Every class has at least `min_share` of the rows, and the largest
    /// class is at most `max_ratio` times the smallest.
    ClassBalance {
        column: String,
        min_share: Option<f64>,
        max_ratio: Option<f64>,
    },
}

fn one() -> f64 {
    1.0
}

/// The outcome of one expectation, as listed in the validation report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub expectation: &'static str,
    pub column: Option<String>,
    pub passed: bool,
    /// Rows that break the rule (0 for table-level rules).
    pub offending_rows: u64,
    pub observed: Value,
    /// One line: what was expected and what was seen.
    pub detail: String,
}

impl Expectation {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ColumnsPresent { .. } => "columns_present",
            Self::Dtype { .. } => "dtype",
            Self::NotNull { .. } => "not_null",
            Self::Range { .. } => "range",
            Self::AllowedValues { .. } => "allowed_values",
            Self::Unique { .. } => "unique",
            Self::RowCount { .. } => "row_count",
            Self::ClassBalance { .. } => "class_balance",
        }
    }

    /// A problem with the rule itself, found before any data is read.
    pub fn problem(&self) -> Option<String> {
        let share = |name: &str, value: f64| {
            (!(0.0..=1.0).contains(&value))
                .then(|| format!("`{name}` must be between 0 and 1, not {value}"))
        };
        match self {
            Self::NotNull { min_ratio, .. } => share("min_ratio", *min_ratio),
            Self::Range {
                min: Some(min),
                max: Some(max),
                ..
            } if min > max => Some(format!("`min` {min} is greater than `max` {max}")),
            Self::Range {
                max_outside_share, ..
            } => share("max_outside_share", *max_outside_share),
            Self::RowCount {
                min: Some(min),
                max: Some(max),
            } if min > max => Some(format!("`min` {min} is greater than `max` {max}")),
            Self::ClassBalance {
                min_share: None,
                max_ratio: None,
                ..
            } => Some("`class_balance` needs `min_share`, `max_ratio` or both".into()),
            Self::ClassBalance {
                min_share: Some(min_share),
                ..
            } => share("min_share", *min_share),
            Self::ColumnsPresent { columns } | Self::Unique { columns } if columns.is_empty() => {
                Some("`columns` is empty".into())
            }
            _ => None,
        }
    }

    pub(super) fn column_name(&self) -> Option<&str> {
        match self {
            Self::Dtype { column, .. }
            | Self::NotNull { column, .. }
            | Self::Range { column, .. }
            | Self::AllowedValues { column, .. }
            | Self::ClassBalance { column, .. } => Some(column),
            _ => None,
        }
    }

    pub(super) fn finding(
        &self,
        passed: bool,
        offending_rows: u64,
        observed: Value,
        detail: String,
    ) -> Finding {
        Finding {
            expectation: self.kind(),
            column: self.column_name().map(String::from),
            passed,
            offending_rows,
            observed,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use super::*;

    #[test]
    fn contradictory_rules_are_problems() {
        let rule: Expectation =
            serde_yaml::from_str("{kind: range, column: a, min: 5, max: 1}").unwrap();
        assert!(rule.problem().is_some());
        let rule: Expectation = serde_yaml::from_str("{kind: class_balance, column: a}").unwrap();
        assert!(rule.problem().is_some());
    }
}
