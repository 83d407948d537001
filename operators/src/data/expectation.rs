//! [`Expectation`]: one rule `data.validate` checks a table against, and
//! [`Finding`]: what checking it observed.
//!
//! Every check runs on whole columns (polars comparisons and counts, or one
//! pass over a typed array), never on boxed per-row values, so a million
//! rows take milliseconds. This module does not read files or decide whether
//! a failure fails the task.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::column::{ColumnKind, categories, column, numbers};
use super::row_hash::{repeated_rows, row_fingerprints};
use crate::OperatorError;

/// One rule, as written under `expectations:`; `kind` selects the variant.
#[derive(Debug, Clone, Deserialize)]
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

    /// Checks the rule on `frame`. A column the rule names but the table
    /// lacks is a failed finding, not an error.
    pub fn evaluate(&self, frame: &DataFrame, file: &Path) -> Result<Finding, OperatorError> {
        let named = self.column_name();
        if let Some(name) = named {
            if frame.column(name).is_err() {
                return Ok(self.finding(
                    false,
                    0,
                    json!(null),
                    format!("column `{name}` is missing"),
                ));
            }
        }
        let rows = frame.height() as u64;
        Ok(match self {
            Self::ColumnsPresent { columns } => {
                let missing: Vec<&String> = columns
                    .iter()
                    .filter(|c| frame.column(c).is_err())
                    .collect();
                let detail = if missing.is_empty() {
                    format!("all {} columns present", columns.len())
                } else {
                    format!(
                        "missing {}",
                        missing
                            .iter()
                            .map(|c| format!("`{c}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                self.finding(missing.is_empty(), 0, json!(missing), detail)
            }
            Self::Dtype {
                column: name,
                dtype,
            } => {
                let found = ColumnKind::of(column(frame, name, file)?);
                let detail = format!("expected `{}`, found `{}`", dtype.as_str(), found.as_str());
                self.finding(
                    found == *dtype,
                    if found == *dtype { 0 } else { rows },
                    json!(found),
                    detail,
                )
            }
            Self::NotNull {
                column: name,
                min_ratio,
            } => {
                let nulls = column(frame, name, file)?.null_count() as u64;
                let ratio = if rows == 0 {
                    1.0
                } else {
                    1.0 - nulls as f64 / rows as f64
                };
                let detail =
                    format!("non-null ratio {ratio:.4} (minimum {min_ratio}), {nulls} null rows");
                self.finding(ratio >= *min_ratio, nulls, json!(ratio), detail)
            }
            Self::Range {
                column: name,
                min,
                max,
                max_outside_share,
            } => {
                let values = numbers(frame, name, file)?;
                let below = min.map_or(0, |min| count_true(&values.lt(min)));
                let above = max.map_or(0, |max| count_true(&values.gt(max)));
                let outside = below + above;
                let share = if rows == 0 {
                    0.0
                } else {
                    outside as f64 / rows as f64
                };
                let (low, high) = (values.min(), values.max());
                let detail = format!(
                    "{outside} rows outside [{}, {}] (share {share:.4}, allowed {max_outside_share}); observed min {}, max {}",
                    show(*min),
                    show(*max),
                    show(low),
                    show(high)
                );
                self.finding(
                    share <= *max_outside_share,
                    outside,
                    json!({"min": low, "max": high, "outside_share": share}),
                    detail,
                )
            }
            Self::AllowedValues {
                column: name,
                values,
            } => {
                let allowed: BTreeSet<&str> = values.iter().map(String::as_str).collect();
                let text = categories(frame, name, file)?;
                let mut unexpected: BTreeMap<&str, u64> = BTreeMap::new();
                for value in text.iter().flatten() {
                    if !allowed.contains(value) {
                        *unexpected.entry(value).or_default() += 1;
                    }
                }
                let offending: u64 = unexpected.values().sum();
                let shown: Vec<String> = unexpected
                    .keys()
                    .take(5)
                    .map(|v| format!("`{v}`"))
                    .collect();
                let detail = format!(
                    "{offending} rows with values not allowed: {}",
                    shown.join(", ")
                );
                self.finding(offending == 0, offending, json!(unexpected), detail)
            }
            Self::Unique { columns } => {
                let mut selected = Vec::with_capacity(columns.len());
                for name in columns {
                    selected.push(column(frame, name, file)?);
                }
                let fingerprints = row_fingerprints(frame, &selected).map_err(|e| {
                    OperatorError::failed(format!(
                        "cannot check `unique` on `{}`: {e}",
                        file.display()
                    ))
                })?;
                let repeated = repeated_rows(&fingerprints)
                    .into_iter()
                    .filter(|r| *r)
                    .count() as u64;
                let detail = format!("{repeated} rows repeat an earlier row's values");
                self.finding(repeated == 0, repeated, json!(repeated), detail)
            }
            Self::RowCount { min, max } => {
                let ok = min.is_none_or(|min| rows >= min) && max.is_none_or(|max| rows <= max);
                let detail = format!(
                    "{rows} rows (expected {}..{})",
                    show(min.map(|m| m as f64)),
                    show(max.map(|m| m as f64))
                );
                self.finding(ok, 0, json!(rows), detail)
            }
            Self::ClassBalance {
                column: name,
                min_share,
                max_ratio,
            } => class_balance(
                self,
                &categories(frame, name, file)?,
                *min_share,
                *max_ratio,
            ),
        })
    }

    fn column_name(&self) -> Option<&str> {
        match self {
            Self::Dtype { column, .. }
            | Self::NotNull { column, .. }
            | Self::Range { column, .. }
            | Self::AllowedValues { column, .. }
            | Self::ClassBalance { column, .. } => Some(column),
            _ => None,
        }
    }

    fn finding(
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

fn class_balance(
    rule: &Expectation,
    labels: &StringChunked,
    min_share: Option<f64>,
    max_ratio: Option<f64>,
) -> Finding {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for label in labels.iter().flatten() {
        *counts.entry(label).or_default() += 1;
    }
    let total: u64 = counts.values().sum();
    let smallest = counts.values().copied().min().unwrap_or(0);
    let largest = counts.values().copied().max().unwrap_or(0);
    let share = |count: u64| {
        if total == 0 {
            0.0
        } else {
            count as f64 / total as f64
        }
    };
    let rare: Vec<(&str, u64)> = counts
        .iter()
        .filter(|(_, c)| min_share.is_some_and(|m| share(**c) < m))
        .map(|(k, c)| (*k, *c))
        .collect();
    let ratio = if smallest == 0 {
        f64::INFINITY
    } else {
        largest as f64 / smallest as f64
    };
    let ratio_ok = max_ratio.is_none_or(|m| ratio <= m);
    let detail = format!(
        "{} classes, smallest share {:.4} (minimum {}), largest/smallest {ratio:.2} (maximum {}){}",
        counts.len(),
        share(smallest),
        show(min_share),
        show(max_ratio),
        if rare.is_empty() {
            String::new()
        } else {
            format!(
                "; below minimum: {}",
                rare.iter()
                    .map(|(k, _)| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let offending = rare.iter().map(|(_, c)| c).sum();
    let observed = json!({"counts": counts, "largest_to_smallest": if ratio.is_finite() { json!(ratio) } else { json!(null) }});
    rule.finding(
        rare.is_empty() && ratio_ok && total > 0,
        offending,
        observed,
        detail,
    )
}

fn count_true(mask: &BooleanChunked) -> u64 {
    u64::from(mask.sum().unwrap_or(0))
}

fn show(value: Option<f64>) -> String {
    value.map_or_else(|| "none".into(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use super::*;

    fn frame() -> DataFrame {
        df!(
            "age" => [Some(20.0), Some(35.0), None, Some(95.0)],
            "label" => ["a", "a", "b", "c"],
            "id" => [1.0, 2.0, 2.0, 3.0]
        )
        .unwrap()
    }

    fn evaluate(yaml: &str) -> Finding {
        let rule: Expectation = serde_yaml::from_str(yaml).unwrap();
        rule.evaluate(&frame(), Path::new("t.parquet")).unwrap()
    }

    #[test]
    fn range_counts_rows_outside_and_reports_min_and_max() {
        let finding = evaluate("{kind: range, column: age, min: 10, max: 80}");
        assert!(!finding.passed);
        assert_eq!(finding.offending_rows, 1);
        assert!(
            finding.detail.contains("observed min 20, max 95"),
            "{}",
            finding.detail
        );
        assert!(
            evaluate("{kind: range, column: age, min: 10, max: 80, max_outside_share: 0.25}")
                .passed
        );
    }

    #[test]
    fn not_null_compares_the_non_null_ratio() {
        assert!(!evaluate("{kind: not_null, column: age}").passed);
        assert!(evaluate("{kind: not_null, column: age, min_ratio: 0.75}").passed);
    }

    #[test]
    fn allowed_values_names_the_unexpected_ones() {
        let finding = evaluate("{kind: allowed_values, column: label, values: [a, b]}");
        assert_eq!((finding.passed, finding.offending_rows), (false, 1));
        assert!(finding.detail.contains("`c`"));
    }

    #[test]
    fn unique_counts_repeated_keys() {
        assert_eq!(evaluate("{kind: unique, columns: [id]}").offending_rows, 1);
        assert!(evaluate("{kind: unique, columns: [id, label]}").passed);
    }

    #[test]
    fn class_balance_checks_share_and_ratio() {
        assert!(!evaluate("{kind: class_balance, column: label, min_share: 0.3}").passed);
        assert!(evaluate("{kind: class_balance, column: label, max_ratio: 2}").passed);
        assert!(!evaluate("{kind: class_balance, column: label, max_ratio: 1.5}").passed);
    }

    #[test]
    fn table_level_rules_check_columns_types_and_counts() {
        assert!(evaluate("{kind: columns_present, columns: [age, label]}").passed);
        assert!(!evaluate("{kind: columns_present, columns: [age, weight]}").passed);
        assert!(evaluate("{kind: dtype, column: label, dtype: category}").passed);
        assert!(!evaluate("{kind: dtype, column: label, dtype: number}").passed);
        assert!(evaluate("{kind: row_count, min: 4, max: 4}").passed);
        assert!(!evaluate("{kind: row_count, min: 5}").passed);
    }

    #[test]
    fn a_missing_column_is_a_failed_finding() {
        let finding = evaluate("{kind: range, column: weight, min: 0}");
        assert!(!finding.passed);
        assert_eq!(finding.detail, "column `weight` is missing");
    }

    #[test]
    fn contradictory_rules_are_problems() {
        let rule: Expectation =
            serde_yaml::from_str("{kind: range, column: a, min: 5, max: 1}").unwrap();
        assert!(rule.problem().is_some());
        let rule: Expectation = serde_yaml::from_str("{kind: class_balance, column: a}").unwrap();
        assert!(rule.problem().is_some());
    }
}
