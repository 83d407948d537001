//! How each [`Expectation`] is checked on a table.
//!
//! Every check runs on whole columns (polars comparisons and counts, or one
//! pass over a typed array), never on boxed per-row values, so a million
//! rows take well under a second in a release build. This module does not
//! read files or decide whether a failure fails the task.

use std::collections::BTreeSet;
use std::path::Path;

use polars::prelude::*;
use serde_json::json;

use super::column::{ColumnKind, categories, category_counts, column, numbers};
use super::expectation::{Expectation, Finding};
use super::row_hash::{repeated_rows, row_fingerprints};
use crate::OperatorError;

impl Expectation {
    /// Checks the rule on `frame`. A column the rule names but the table
    /// lacks is a failed finding, not an error.
    pub fn evaluate(&self, frame: &DataFrame, file: &Path) -> Result<Finding, OperatorError> {
        let named = self.column_name();
        if let Some(name) = named
            && frame.column(name).is_err()
        {
            return Ok(self.finding(false, 0, json!(null), format!("column `{name}` is missing")));
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
                let kind = ColumnKind::of(column(frame, name, file)?);
                if kind != ColumnKind::Number {
                    let detail = format!("column `{name}` holds categories, not numbers");
                    return Ok(self.finding(false, rows, json!(kind), detail));
                }
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
                let mut unexpected = category_counts(&text);
                unexpected.retain(|value, _| !allowed.contains(value.as_str()));
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
}

fn class_balance(
    rule: &Expectation,
    labels: &StringChunked,
    min_share: Option<f64>,
    max_ratio: Option<f64>,
) -> Finding {
    let counts = category_counts(labels);
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
        .map(|(k, c)| (k.as_str(), *c))
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
    fn a_range_on_a_category_column_is_a_failed_finding() {
        let finding = evaluate("{kind: range, column: label, min: 0}");
        assert!(!finding.passed);
        assert_eq!(
            finding.detail,
            "column `label` holds categories, not numbers"
        );
    }

    #[test]
    fn a_missing_column_is_a_failed_finding() {
        let finding = evaluate("{kind: range, column: weight, min: 0}");
        assert!(!finding.passed);
        assert_eq!(finding.detail, "column `weight` is missing");
    }
}
