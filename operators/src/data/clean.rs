//! `data.clean`: turns a raw table into a typed, deduplicated one and writes
//! a JSON quality report of what it changed.
//!
//! Steps, in order:
//! 1. read (text trimmed, empty cells null);
//! 2. check the input, collecting every problem before any row changes: a
//!    CSV header naming a column twice (name and positions), missing
//!    columns, columns the params do not name (`unlisted`: `error` by
//!    default when `columns` is given, `drop`, `keep`), text in numeric
//!    columns, categories matching no `canonical` spelling. They fail the
//!    task together, with the params that would let it go on as YAML to
//!    paste;
//! 3. read `null_tokens` (`NA`, `nan`, `null`, …) as null in every column;
//! 4. coerce columns to their kind;
//! 5. bring each category column's spellings together (`category.<column>`:
//!    `case`, or `canonical` spellings matched ignoring case and whitespace);
//! 6. drop duplicate rows, first occurrence kept; rows that differed as read
//!    only by a null token or a spelling are duplicates too, counted apart;
//! 7. each numeric column's range rule;
//! 8. fill nulls: numeric imputation, then category imputation
//!    (`most_frequent`, a `constant`, or `drop`).
//!
//! The report counts each of these per column. It does not judge whether
//! the result is good enough; that is `data.validate`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use polars::prelude::*;
use serde::Deserialize;

use super::category_rule::{CategoryRule, impute_categories};
use super::clean_schema::{Problems, Report, coerce, missing_columns, polars_failure, yaml_key};
use super::column::ColumnKind;
use super::csv_header::{describe, duplicated, header_names};
use super::null_tokens::{default_null_tokens, null_tokens};
use super::numeric_rule::{CoerceInvalid, NumericRule, coerce_numbers, impute};
use super::row_hash::{repeated_rows, row_fingerprints};
use crate::table::{
    ReadOptions, SOURCE_ROW, read_table_with, take_source_rows, write_json, write_table,
};
use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    require_names, run_blocking,
};

pub struct Clean;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Params {
    /// Expected columns and their kinds; every one must be present.
    #[serde(default)]
    pub(super) columns: BTreeMap<String, ColumnKind>,
    /// What to do with a column named neither in `columns` nor in a
    /// `numeric` or `category` rule. Default: `error` when `columns` is
    /// given (an undeclared column would reach the model as a feature
    /// unnoticed), else `keep`.
    #[serde(default, rename = "unlisted")]
    unlisted_mode: Option<Unlisted>,
    /// Drop rows equal to an earlier row (after null tokens and spelling
    /// rewrites); the first is kept.
    #[serde(default = "yes")]
    pub(super) drop_duplicates: bool,
    /// Rules per numeric column.
    #[serde(default)]
    pub(super) numeric: BTreeMap<String, NumericRule>,
    /// Rules per category column (spelling normalisation); a column named
    /// here is a category.
    #[serde(default)]
    pub(super) category: BTreeMap<String, CategoryRule>,
    /// CSV field delimiter, one ASCII character.
    #[serde(default = "comma")]
    delimiter: char,
    /// Cell values read as null in every column, matched exactly after
    /// trimming (list each spelling; `[]` turns them off).
    #[serde(default = "default_null_tokens")]
    pub(super) null_tokens: Vec<String>,
}

/// What `data.clean` does with a column its params do not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum Unlisted {
    /// Keep it, typed as the reader typed it.
    Keep,
    /// Remove it, and name it in the report.
    Drop,
    /// Fail, naming every such column.
    Error,
}

impl Params {
    /// `unlisted`, or its default: `error` when `columns` lists the
    /// expected schema (a column nobody declared would otherwise reach the
    /// model as a feature unnoticed, and dropping it silently would hide a
    /// renamed or new column upstream), `keep` when there is no schema to
    /// compare with.
    pub(super) fn unlisted(&self) -> Unlisted {
        self.unlisted_mode.unwrap_or(if self.columns.is_empty() {
            Unlisted::Keep
        } else {
            Unlisted::Error
        })
    }

    /// Whether the params name `column` (in `columns`, `numeric` or
    /// `category`).
    pub(super) fn names(&self, column: &str) -> bool {
        self.columns.contains_key(column)
            || self.numeric.contains_key(column)
            || self.category.contains_key(column)
    }
}

fn yes() -> bool {
    true
}

pub(crate) fn comma() -> char {
    ','
}

/// The delimiter as a byte, or a problem when it is not one ASCII character.
pub(crate) fn delimiter_byte(delimiter: char) -> Result<u8, String> {
    u8::try_from(delimiter)
        .ok()
        .filter(u8::is_ascii)
        .ok_or_else(|| format!("`delimiter` must be one ASCII character, not `{delimiter}`"))
}

impl Operator for Clean {
    fn name(&self) -> &'static str {
        "data.clean"
    }

    fn description(&self) -> &'static str {
        "types, deduplicates, range-checks and imputes a table; writes Parquet and a JSON quality report"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<Params>())
    }

    fn ports(&self) -> crate::Ports {
        const PORTS: crate::Ports = crate::Ports {
            inputs: &[crate::Port::required(
                "raw",
                "the CSV (or Parquet) to clean",
            )],
            outputs: &[
                crate::Port::required(
                    "data",
                    "the cleaned table (Parquet), with `_source_row`: each row's 1-based row in `raw`",
                ),
                crate::Port::required(
                    "report",
                    "JSON: every fix counted per column, rows in and out",
                ),
            ],
            ..crate::Ports::NONE
        };
        PORTS
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("inputs", spec.inputs, &["raw"]);
        problems.extend(require_names("outputs", spec.outputs, &["data", "report"]));
        match parse_params::<Params>(spec.params) {
            Err(problem) => problems.push(problem),
            Ok(params) => problems.extend(check_params(&params)),
        }
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| clean(&ctx))
    }
}

fn check_params(params: &Params) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Err(message) = delimiter_byte(params.delimiter) {
        problems.push(Problem::new("params.delimiter", message));
    }
    for (name, rule) in &params.numeric {
        let at = format!("params.numeric.{name}");
        if let (Some(min), Some(max)) = (rule.min, rule.max)
            && min > max
        {
            problems.push(Problem::new(
                &at,
                format!("`min` {min} is greater than `max` {max}"),
            ));
        }
        if params.columns.get(name) == Some(&ColumnKind::Category) {
            problems.push(Problem::new(
                &at,
                format!("column `{name}` is declared a `category` in `columns`"),
            ));
        }
    }
    for (name, rule) in &params.category {
        let at = format!("params.category.{name}");
        for message in rule.problems() {
            problems.push(Problem::new(&at, message));
        }
        if params.columns.get(name) == Some(&ColumnKind::Number) {
            problems.push(Problem::new(
                &at,
                format!("column `{name}` is declared a `number` in `columns`"),
            ));
        }
        if params.numeric.contains_key(name) {
            problems.push(Problem::new(
                &at,
                format!("column `{name}` also has a `numeric` rule"),
            ));
        }
    }
    problems
}

fn clean(ctx: &Context) -> Result<Outcome, OperatorError> {
    let params: Params = parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
    let delimiter = delimiter_byte(params.delimiter).map_err(OperatorError::Params)?;
    let raw = ctx.input("raw")?;
    let text_columns = params
        .columns
        .iter()
        .filter(|(_, kind)| **kind == ColumnKind::Category)
        .map(|(name, _)| name.clone())
        .chain(params.category.keys().cloned())
        .collect();
    let header = duplicated_header(raw, delimiter);
    let mut frame = read_table_with(
        raw,
        &ReadOptions {
            delimiter,
            text_columns,
        },
    )?;
    // Rows keep their place in the file read (or the one it came from) for
    // errors later in the pipeline; the column is out of every check below.
    let carried = take_source_rows(&mut frame);
    let mut report = Report {
        input: raw
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        rows_in: frame.height(),
        ..Report::default()
    };
    // Problems are collected up to the first change to a row, so one run
    // names every bad column.
    let mut problems = Problems::default();
    for (name, positions) in &header {
        problems.push(format!(
            "{} (rename or remove the repeated column)",
            describe(name, positions)
        ));
    }
    if let Some(missing) = missing_columns(&frame, &params) {
        problems.push(missing);
    }
    // The reader renamed the later occurrences of a repeated name; they are
    // reported above, not as unlisted columns.
    let renamed: BTreeSet<usize> = header
        .iter()
        .flat_map(|(_, positions)| positions[1..].iter().map(|p| p - 1))
        .collect();
    unlisted_columns(
        &mut frame,
        &params,
        &renamed,
        raw,
        &mut report,
        &mut problems,
    )?;
    // Which rows repeat an earlier one as read, to tell the duplicates that
    // only null tokens and spelling rewrites revealed.
    let repeated_as_read = if params.drop_duplicates {
        repeated(&frame).map_err(|e| polars_failure(raw, &e))?
    } else {
        Vec::new()
    };
    let token_nulls =
        null_tokens(&mut frame, &params.null_tokens).map_err(|e| polars_failure(raw, &e))?;
    coerce(
        &mut frame,
        &params,
        &token_nulls,
        raw,
        &mut report,
        &mut problems,
    )?;
    normalise_categories(&mut frame, &params, raw, &mut report, &mut problems)?;
    problems.into_result(raw)?;
    let rows = carried.unwrap_or_else(|| (1..=frame.height() as u64).map(Some).collect());
    let source_rows = UInt64Chunked::from_iter_options(SOURCE_ROW.into(), rows.into_iter());
    frame
        .with_column(source_rows.into_series().into_column())
        .map_err(|e| polars_failure(raw, &e))?;
    if params.drop_duplicates {
        let repeated_now = repeated(&frame).map_err(|e| polars_failure(raw, &e))?;
        report.duplicates_after_normalisation = repeated_now
            .iter()
            .zip(&repeated_as_read)
            .filter(|(now, before)| **now && !**before)
            .count();
        let keep: BooleanChunked = repeated_now.into_iter().map(|r| !r).collect();
        let before = frame.height();
        frame = frame.filter(&keep).map_err(|e| polars_failure(raw, &e))?;
        report.duplicates_dropped = before - frame.height();
    }
    apply_rules(&mut frame, &params, raw, &mut report)?;
    report.rows_out = frame.height();
    if report.rows_out == 0 {
        return Err(OperatorError::failed(format!(
            "no rows of `{}` are left after cleaning",
            raw.display()
        )));
    }
    write_table(&mut frame, ctx.output("data")?)?;
    write_json(&report, ctx.output("report")?)?;
    let summary = format!(
        "{} rows in, {} out ({} duplicates dropped)",
        report.rows_in, report.rows_out, report.duplicates_dropped
    );
    ctx.log.line(&summary);
    Ok(Outcome::default()
        .metric("rows_in", report.rows_in as f64)
        .metric("rows_out", report.rows_out as f64)
        .metric("duplicates_dropped", report.duplicates_dropped as f64)
        .summary(summary))
}

/// The names a CSV file's header repeats, with their 1-based positions;
/// none for other files, and when the header cannot be read (reading the
/// table then reports why).
fn duplicated_header(file: &Path, delimiter: u8) -> Vec<(String, Vec<usize>)> {
    let is_csv = file
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if !is_csv {
        return Vec::new();
    }
    header_names(file, delimiter)
        .map(|names| duplicated(&names))
        .unwrap_or_default()
}

/// Applies `unlisted` to the columns the params do not name (but for the
/// `renamed` column indices).
fn unlisted_columns(
    frame: &mut DataFrame,
    params: &Params,
    renamed: &BTreeSet<usize>,
    file: &Path,
    report: &mut Report,
    problems: &mut Problems,
) -> Result<(), OperatorError> {
    let unlisted: Vec<String> = frame
        .get_column_names()
        .into_iter()
        .enumerate()
        .filter(|(i, name)| !renamed.contains(i) && !params.names(name))
        .map(|(_, name)| name.to_string())
        .collect();
    if unlisted.is_empty() {
        return Ok(());
    }
    match params.unlisted() {
        Unlisted::Keep => {}
        Unlisted::Drop => {
            for name in &unlisted {
                frame
                    .drop_in_place(name)
                    .map_err(|e| polars_failure(file, &e))?;
            }
            report.columns_dropped = unlisted.len();
            report.dropped_columns = unlisted;
        }
        Unlisted::Error => {
            let kinds: Vec<String> = unlisted
                .iter()
                .map(|name| {
                    let kind = frame
                        .column(name)
                        .map_or(ColumnKind::Category, ColumnKind::of);
                    format!("{}: {}", yaml_key(name), kind.as_str())
                })
                .collect();
            let listed: Vec<String> = unlisted.iter().map(|n| format!("`{n}`")).collect();
            problems.push_with_fix(
                format!(
                    "column{} {} {} not listed in `columns` (to keep {} instead of \
                     dropping {}, list {}: `columns: {{{}}}`)",
                    if unlisted.len() == 1 { "" } else { "s" },
                    listed.join(", "),
                    if unlisted.len() == 1 { "is" } else { "are" },
                    if unlisted.len() == 1 { "it" } else { "them" },
                    if unlisted.len() == 1 { "it" } else { "them" },
                    if unlisted.len() == 1 { "it" } else { "them" },
                    kinds.join(", ")
                ),
                &["unlisted"],
                "drop".into(),
            );
        }
    }
    Ok(())
}

/// `true` for every row equal to an earlier row in all columns.
fn repeated(frame: &DataFrame) -> PolarsResult<Vec<bool>> {
    let columns: Vec<&Column> = frame
        .columns()
        .iter()
        .filter(|c| c.name().as_str() != SOURCE_ROW)
        .collect();
    Ok(repeated_rows(&row_fingerprints(frame, &columns)?))
}

/// Rewrites the spellings of each category column with a rule, and counts
/// the rewrites and the values matching no `canonical` spelling.
fn normalise_categories(
    frame: &mut DataFrame,
    params: &Params,
    file: &Path,
    report: &mut Report,
    problems: &mut Problems,
) -> Result<(), OperatorError> {
    for (name, rule) in &params.category {
        // A missing column is already a problem.
        let Ok(column) = frame.column(name) else {
            continue;
        };
        let (values, normalised) =
            rule.normalise(column.str().map_err(|e| polars_failure(file, &e))?);
        if let Some(problem) = rule
            .canonical
            .as_deref()
            .filter(|_| rule.on_unknown == CoerceInvalid::Error)
            .and_then(|canonical| normalised.unknown_problem(name, canonical))
        {
            problems.push_with_fix(
                format!("{problem} (or add them to `canonical`)"),
                &["category", name, "on_unknown"],
                "null".into(),
            );
        }
        let entry = report.columns.entry(name.clone()).or_default();
        entry.rewritten = normalised.rewritten;
        entry.unknown = normalised.unknown_count();
        if normalised.rewritten + entry.unknown > 0 {
            entry.nulls = values.null_count();
            frame
                .with_column(values.into_column())
                .map_err(|e| polars_failure(file, &e))?;
        }
    }
    Ok(())
}

/// Applies each numeric rule (range first, then imputation), then each
/// category imputation.
fn apply_rules(
    frame: &mut DataFrame,
    params: &Params,
    file: &Path,
    report: &mut Report,
) -> Result<(), OperatorError> {
    for (name, rule) in &params.numeric {
        let values = coerce_numbers(
            frame.column(name).map_err(|e| polars_failure(file, &e))?,
            file,
        )?
        .0;
        let (values, keep, counts) = rule.apply_range(&values);
        let entry = report.columns.entry(name.clone()).or_default();
        entry.out_of_range = counts;
        frame
            .with_column(values.into_column())
            .map_err(|e| polars_failure(file, &e))?;
        report.rows_dropped_out_of_range += drop_rows(frame, keep, file)?;
    }
    for (name, rule) in &params.numeric {
        let Some(method) = rule.impute else { continue };
        let values = coerce_numbers(
            frame.column(name).map_err(|e| polars_failure(file, &e))?,
            file,
        )?
        .0;
        let (values, keep, count) = impute(&values, method, file)?;
        report.columns.entry(name.clone()).or_default().imputed =
            if keep.iter().all(|k| *k) { count } else { 0 };
        frame
            .with_column(values.into_column())
            .map_err(|e| polars_failure(file, &e))?;
        report.rows_dropped_null += drop_rows(frame, keep, file)?;
    }
    for (name, rule) in &params.category {
        let Some(method) = &rule.impute else { continue };
        let column = frame.column(name).map_err(|e| polars_failure(file, &e))?;
        let values = column.str().map_err(|e| polars_failure(file, &e))?;
        let (values, keep, count) = impute_categories(values, method, file)?;
        report.columns.entry(name.clone()).or_default().imputed =
            if keep.iter().all(|k| *k) { count } else { 0 };
        if count > 0 {
            frame
                .with_column(values.into_column())
                .map_err(|e| polars_failure(file, &e))?;
        }
        report.rows_dropped_null += drop_rows(frame, keep, file)?;
    }
    Ok(())
}

/// Keeps the rows marked `true`; returns how many were removed.
fn drop_rows(frame: &mut DataFrame, keep: Vec<bool>, file: &Path) -> Result<usize, OperatorError> {
    if keep.iter().all(|k| *k) {
        return Ok(0);
    }
    let before = frame.height();
    let mask: BooleanChunked = keep.into_iter().collect();
    *frame = frame.filter(&mask).map_err(|e| polars_failure(file, &e))?;
    Ok(before - frame.height())
}

#[cfg(test)]
#[path = "clean_tests.rs"]
mod tests;
