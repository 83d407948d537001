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
use crate::table::{ReadOptions, read_table_with, write_json, write_table};
use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    require_names, run_blocking,
};

pub struct Clean;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Params {
    /// Expected columns and their kinds; every one must be present.
    #[serde(default)]
    pub(super) columns: BTreeMap<String, ColumnKind>,
    /// What to do with a column named neither in `columns` nor in a
    /// `numeric` or `category` rule; see [`Params::unlisted`].
    #[serde(default, rename = "unlisted")]
    unlisted_mode: Option<Unlisted>,
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
    /// trimming; see [`default_null_tokens`].
    #[serde(default = "default_null_tokens")]
    pub(super) null_tokens: Vec<String>,
}

/// What `data.clean` does with a column its params do not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
    let columns: Vec<&Column> = frame.columns().iter().collect();
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
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use serde_json::json;

    use super::*;
    use crate::data::testing::{check, context, run, write_file};
    use crate::table::read_table;

    const RAW: &str = "name,age,city\r\nAnn,21,Oslo\r\nBob,,Rome\r\nAnn,21,Oslo\r\nCid,130,Oslo\r\nDan,-3, Rome \r\n";

    fn clean_file(
        raw: &str,
        params: serde_json::Value,
    ) -> (tempfile::TempDir, Result<Outcome, OperatorError>) {
        let dir = tempfile::tempdir().unwrap();
        let input = write_file(dir.path(), "raw.csv", raw);
        let ctx = context(
            dir.path(),
            params,
            &[("raw", &input)],
            &[("data", "clean.parquet"), ("report", "q.json")],
        );
        let outcome = run(&Clean, &ctx);
        (dir, outcome)
    }

    fn report(dir: &tempfile::TempDir) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("q.json")).unwrap()).unwrap()
    }

    #[test]
    fn duplicates_are_dropped_and_counted() {
        let (dir, outcome) = clean_file(RAW, json!({}));
        let outcome = outcome.unwrap();
        assert_eq!(outcome.metrics["rows_in"], 5.0);
        assert_eq!(outcome.metrics["duplicates_dropped"], 1.0);
        assert_eq!(
            outcome.summary.as_deref(),
            Some("5 rows in, 4 out (1 duplicates dropped)")
        );
        let frame = read_table(&dir.path().join("clean.parquet")).unwrap();
        assert_eq!(frame.height(), 4);
        assert_eq!(report(&dir)["columns"]["age"]["nulls"], 1);
    }

    #[test]
    fn range_clip_and_median_imputation_are_applied_and_reported() {
        let params = json!({"numeric": {"age": {"min": 0, "max": 120, "on_out_of_range": "clip", "impute": "median"}}});
        let (dir, outcome) = clean_file(RAW, params);
        outcome.unwrap();
        let frame = read_table(&dir.path().join("clean.parquet")).unwrap();
        let ages: Vec<Option<f64>> = frame.column("age").unwrap().f64().unwrap().iter().collect();
        // Rows after dedup: Ann 21, Bob null, Cid 130→120, Dan -3→0; median of [0, 21, 120] = 21.
        assert_eq!(ages, [Some(21.0), Some(21.0), Some(120.0), Some(0.0)]);
        let age = &report(&dir)["columns"]["age"];
        assert_eq!(
            (
                age["below_min"].as_u64(),
                age["above_max"].as_u64(),
                age["imputed"].as_u64()
            ),
            (Some(1), Some(1), Some(1))
        );
    }

    #[test]
    fn range_drop_removes_rows() {
        let params = json!({"numeric": {"age": {"min": 0, "max": 120, "on_out_of_range": "drop", "impute": "drop"}}});
        let (_, outcome) = clean_file(RAW, params);
        assert_eq!(outcome.unwrap().metrics["rows_out"], 1.0);
    }

    #[test]
    fn missing_expected_column_is_an_error_naming_it() {
        let (_, outcome) = clean_file(
            RAW,
            json!({"columns": {"height": "number", "age": "number"}}),
        );
        let message = outcome.unwrap_err().to_string();
        assert!(
            message.contains("raw.csv") && message.contains("missing column `height`"),
            "{message}"
        );
    }

    #[test]
    fn non_numeric_value_names_column_row_and_value() {
        let raw = "name,age\nAnn,21\nBob,twenty\n";
        let params = json!({"columns": {"name": "category", "age": "number"}});
        let (_, outcome) = clean_file(raw, params);
        let message = outcome.unwrap_err().to_string();
        assert!(
            message.contains("column `age`")
                && message.contains("row 2")
                && message.contains("`twenty`"),
            "{message}"
        );
    }

    #[test]
    fn non_numeric_value_can_be_read_as_null() {
        let raw = "name,age\nAnn,21\nBob,twenty\n";
        let params = json!({"numeric": {"age": {"coerce_invalid": "null"}}});
        let (dir, outcome) = clean_file(raw, params);
        outcome.unwrap();
        assert_eq!(report(&dir)["columns"]["age"]["invalid"], 1);
    }

    const TOKENS: &str =
        "name,age,city\nAnn,21,Oslo\nBob,NA,nan\nCid,null,Rome\nDan,30,N/A\nEve,?,\n";

    fn texts(frame: &DataFrame, name: &str) -> Vec<Option<String>> {
        frame
            .column(name)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(String::from))
            .collect()
    }

    #[test]
    fn null_tokens_are_null_in_category_and_number_columns_and_counted() {
        let params = json!({"columns": {"name": "category", "age": "number", "city": "category"}});
        let (dir, outcome) = clean_file(TOKENS, params);
        outcome.unwrap();
        let frame = read_table(&dir.path().join("clean.parquet")).unwrap();
        let ages: Vec<Option<f64>> = frame.column("age").unwrap().f64().unwrap().iter().collect();
        assert_eq!(ages, [Some(21.0), None, None, Some(30.0), None]);
        assert_eq!(
            texts(&frame, "city"),
            [
                Some("Oslo".to_string()),
                None,
                Some("Rome".to_string()),
                None,
                None
            ]
        );
        let report = report(&dir);
        let counts = |column: &str| {
            let c = &report["columns"][column];
            (c["nulls_from_tokens"].as_u64(), c["nulls"].as_u64())
        };
        // `Eve,?,` has an empty city: null when read, not from a token.
        assert_eq!(counts("age"), (Some(3), Some(3)));
        assert_eq!(counts("city"), (Some(2), Some(3)));
        assert_eq!(counts("name"), (Some(0), Some(0)));
    }

    #[test]
    fn an_undeclared_column_that_is_numbers_but_for_tokens_is_numeric() {
        let (dir, outcome) = clean_file(TOKENS, json!({}));
        outcome.unwrap();
        let frame = read_table(&dir.path().join("clean.parquet")).unwrap();
        assert_eq!(frame.column("age").unwrap().dtype(), &DataType::Float64);
        assert_eq!(frame.column("city").unwrap().dtype(), &DataType::String);
    }

    #[test]
    fn null_tokens_can_be_replaced() {
        let raw = "name,age\nAnn,-\nBob,NA\n";
        let (dir, outcome) = clean_file(raw, json!({"null_tokens": ["-"]}));
        outcome.unwrap();
        let frame = read_table(&dir.path().join("clean.parquet")).unwrap();
        // `NA` is no longer a token, so `age` is text with one null.
        assert_eq!(texts(&frame, "age"), [None, Some("NA".to_string())]);
        assert_eq!(report(&dir)["columns"]["age"]["nulls_from_tokens"], 1);
    }

    const GENDERS: &str = "Gender,n\nmale,1\n FEMALE ,2\nMale,3\nfemale,4\nMALE,5\n";

    #[test]
    fn canonical_spellings_replace_case_and_whitespace_variants() {
        let params = json!({"category": {"Gender": {"canonical": ["Female", "Male"]}}});
        let (dir, outcome) = clean_file(GENDERS, params);
        outcome.unwrap();
        let frame = read_table(&dir.path().join("clean.parquet")).unwrap();
        let expected = ["Male", "Female", "Male", "Female", "Male"].map(|s| Some(s.to_string()));
        assert_eq!(texts(&frame, "Gender"), expected);
        let gender = &report(&dir)["columns"]["Gender"];
        assert_eq!(
            (gender["rewritten"].as_u64(), gender["unknown"].as_u64()),
            (Some(4), Some(0))
        );
        assert_eq!(gender["kind"], "category");
    }

    #[test]
    fn case_rule_lowers_every_value() {
        let params = json!({"category": {"Gender": {"case": "lower"}}});
        let (dir, outcome) = clean_file(GENDERS, params);
        outcome.unwrap();
        let frame = read_table(&dir.path().join("clean.parquet")).unwrap();
        let expected = ["male", "female", "male", "female", "male"].map(|s| Some(s.to_string()));
        assert_eq!(texts(&frame, "Gender"), expected);
        assert_eq!(report(&dir)["columns"]["Gender"]["rewritten"], 3);
    }

    #[test]
    fn a_value_matching_no_canonical_spelling_fails_or_becomes_null() {
        let raw = "Gender,n\nMale,1\nMle,2\nFemale,3\nmle,4\n";
        let (_, outcome) = clean_file(
            raw,
            json!({"category": {"Gender": {"canonical": ["Female", "Male"]}}}),
        );
        let message = outcome.unwrap_err().to_string();
        assert!(
            message.contains("raw.csv")
                && message.contains("column `Gender`: 2 values match none")
                && message.contains("`Mle` ×1 (first at row 2), `mle` ×1 (first at row 4)"),
            "{message}"
        );
        let params = json!({"category": {"Gender": {"canonical": ["Female", "Male"], "on_unknown": "null"}}});
        let (dir, outcome) = clean_file(raw, params);
        outcome.unwrap();
        let frame = read_table(&dir.path().join("clean.parquet")).unwrap();
        assert_eq!(
            texts(&frame, "Gender"),
            [
                Some("Male".to_string()),
                None,
                Some("Female".to_string()),
                None
            ]
        );
        let gender = &report(&dir)["columns"]["Gender"];
        assert_eq!(
            (gender["unknown"].as_u64(), gender["nulls"].as_u64()),
            (Some(2), Some(2))
        );
    }

    #[test]
    fn check_rejects_contradictory_category_rules() {
        let params = json!({
            "columns": {"a": "number"},
            "numeric": {"b": {}},
            "category": {"a": {}, "b": {"canonical": ["x", "X"]}}
        });
        let problems = check(&Clean, params, &["raw"], &["data", "report"]);
        let found: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.at.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "params.category.a",
                    "column `a` is declared a `number` in `columns`"
                ),
                (
                    "params.category.b",
                    "`canonical` spellings `x` and `X` are the same ignoring case and whitespace"
                ),
                ("params.category.b", "column `b` also has a `numeric` rule"),
            ]
        );
    }

    #[test]
    fn rows_differing_only_in_spelling_or_null_token_are_duplicates() {
        // Rows 2 and 3 repeat row 1 after normalisation; row 4 repeats row 1
        // exactly as read (whitespace is trimmed when reading); row 6
        // repeats row 5 once `NA` and `nan` are both null.
        let raw = "Gender,Age,city\nMale,21,Oslo\nmale,21,Oslo\n MALE ,21,Oslo\nMale , 21,Oslo\nFemale,NA,Rome\nFemale,nan,Rome\nFemale,22,Rome\n";
        let params = json!({"category": {"Gender": {"canonical": ["Female", "Male"]}}});
        let (dir, outcome) = clean_file(raw, params);
        let outcome = outcome.unwrap();
        assert_eq!(outcome.metrics["duplicates_dropped"], 4.0);
        let report = report(&dir);
        assert_eq!(report["duplicates_dropped"], 4);
        assert_eq!(report["duplicates_after_normalisation"], 3);
        let frame = read_table(&dir.path().join("clean.parquet")).unwrap();
        assert_eq!(
            texts(&frame, "Gender"),
            ["Male", "Female", "Female"].map(|s| Some(s.to_string()))
        );
    }

    #[test]
    fn without_a_rule_case_variants_stay_distinct_rows() {
        let raw = "Gender,Age\nMale,21\nmale,21\n";
        let (dir, outcome) = clean_file(raw, json!({}));
        assert_eq!(outcome.unwrap().metrics["duplicates_dropped"], 0.0);
        assert_eq!(report(&dir)["duplicates_after_normalisation"], 0);
    }

    #[test]
    fn empty_and_token_category_cells_are_imputed_and_counted() {
        let raw = "Gender,CALC,n\nMale,no,1\nnan,,2\nFemale,Sometimes,3\nMale,NA,4\n,no,5\n";
        let params = json!({"category": {
            "Gender": {"impute": "most_frequent"},
            "CALC": {"impute": {"constant": "unknown"}}
        }});
        let (dir, outcome) = clean_file(raw, params);
        outcome.unwrap();
        let frame = read_table(&dir.path().join("clean.parquet")).unwrap();
        assert_eq!(
            texts(&frame, "Gender"),
            ["Male", "Male", "Female", "Male", "Male"].map(|s| Some(s.to_string()))
        );
        assert_eq!(
            texts(&frame, "CALC"),
            ["no", "unknown", "Sometimes", "unknown", "no"].map(|s| Some(s.to_string()))
        );
        let report = report(&dir);
        let counts = |column: &str| {
            let c = &report["columns"][column];
            (
                c["nulls"].as_u64(),
                c["nulls_from_tokens"].as_u64(),
                c["imputed"].as_u64(),
            )
        };
        assert_eq!(counts("Gender"), (Some(2), Some(1), Some(2)));
        assert_eq!(counts("CALC"), (Some(2), Some(1), Some(2)));
    }

    #[test]
    fn category_imputation_by_drop_removes_the_rows() {
        let raw = "Gender,n\nMale,1\nNA,2\nFemale,3\n";
        let params = json!({"category": {"Gender": {"impute": "drop"}}});
        let (dir, outcome) = clean_file(raw, params);
        assert_eq!(outcome.unwrap().metrics["rows_out"], 2.0);
        assert_eq!(report(&dir)["rows_dropped_null"], 1);
    }

    #[test]
    fn a_duplicated_header_is_an_error_naming_the_column_and_both_positions() {
        let raw = "Gender,alcohol,Age,alcohol\nMale,no,21,yes\n";
        let (_, outcome) = clean_file(raw, json!({}));
        let message = outcome.unwrap_err().to_string();
        assert!(
            message.ends_with(
                "raw.csv`: column `alcohol` appears at positions 2 and 4 of the header \
                 (rename or remove the repeated column)"
            ),
            "{message}"
        );
    }

    const JUNK: &str = "name,age,junk,note x\nAnn,21,0.31,a\nBob,22,0.77,b\n";

    #[test]
    fn unlisted_columns_are_an_error_by_default_when_columns_are_listed() {
        let (_, outcome) = clean_file(
            JUNK,
            json!({"columns": {"name": "category", "age": "number"}}),
        );
        let message = outcome.unwrap_err().to_string();
        assert_eq!(
            message.split_once("raw.csv`: ").unwrap().1,
            "columns `junk`, `note x` are not listed in `columns` (to keep them instead of \
             dropping them, list them: `columns: {junk: number, \"note x\": category}`)\n\
             to go on anyway, add to the task's params (merging with any block of the same name):\n  \
             unlisted: drop"
        );
    }

    #[test]
    fn unlisted_columns_can_be_dropped_and_are_named_in_the_report() {
        let params =
            json!({"columns": {"name": "category"}, "numeric": {"age": {}}, "unlisted": "drop"});
        let (dir, outcome) = clean_file(JUNK, params);
        outcome.unwrap();
        let frame = read_table(&dir.path().join("clean.parquet")).unwrap();
        let names: Vec<&str> = frame
            .get_column_names()
            .into_iter()
            .map(|n| n.as_str())
            .collect();
        assert_eq!(names, ["name", "age"]);
        let report = report(&dir);
        assert_eq!(report["columns_dropped"], 2);
        assert_eq!(report["dropped_columns"], json!(["junk", "note x"]));
        assert!(report["columns"].get("junk").is_none());
    }

    #[test]
    fn unlisted_columns_are_kept_when_asked_or_when_no_columns_are_listed() {
        for params in [
            json!({"columns": {"name": "category"}, "unlisted": "keep"}),
            json!({"numeric": {"age": {}}}),
        ] {
            let (dir, outcome) = clean_file(JUNK, params);
            outcome.unwrap();
            let frame = read_table(&dir.path().join("clean.parquet")).unwrap();
            assert_eq!(frame.width(), 4);
            assert_eq!(report(&dir)["columns_dropped"], 0);
        }
    }

    fn dirty_params() -> serde_json::Value {
        json!({
            "columns": {"Gender": "category", "Age": "number", "Height": "number"},
            "category": {"Gender": {"canonical": ["Female", "Male"]}}
        })
    }

    #[test]
    fn every_bad_column_is_reported_at_once() {
        let raw =
            "Gender,Age,Height,junk,Age\nMale,21,1.7,x,1\nmle,abc,1.8,y,2\nFemale,22,tall,z,3\n";
        let mut params = dirty_params();
        params["columns"]["Weight"] = json!("number");
        let (_, outcome) = clean_file(raw, params);
        let message = outcome.unwrap_err().to_string();
        assert_eq!(
            message.split_once("raw.csv`: ").unwrap().1,
            "6 problems:\n  \
             - column `Age` appears at positions 2 and 5 of the header (rename or remove the repeated column)\n  \
             - missing column `Weight` (columns: Gender, Age, Height, junk, Age_duplicated_0)\n  \
             - column `junk` is not listed in `columns` (to keep it instead of dropping it, list it: `columns: {junk: category}`)\n  \
             - column `Age`, row 2: `abc` is not a number\n  \
             - column `Height`, row 3: `tall` is not a number\n  \
             - column `Gender`: 1 value matches none of its `canonical` spellings (`Female`, `Male`): \
             `mle` ×1 (first at row 2) (or add them to `canonical`)\n\
             to go on anyway, add to the task's params (merging with any block of the same name):\n  \
             category: {Gender: {on_unknown: \"null\"}}\n  \
             numeric: {Age: {coerce_invalid: \"null\"}, Height: {coerce_invalid: \"null\"}}\n  \
             unlisted: drop"
        );
    }

    /// Merges `patch` into `target`, mapping by mapping.
    fn merge(target: &mut serde_json::Value, patch: serde_json::Value) {
        match (target, patch) {
            (serde_json::Value::Object(target), serde_json::Value::Object(patch)) => {
                for (key, value) in patch {
                    merge(target.entry(key).or_insert(serde_json::Value::Null), value);
                }
            }
            (target, patch) => *target = patch,
        }
    }

    #[test]
    fn the_fix_an_error_prints_is_yaml_that_lets_the_run_go_on() {
        let raw = "Gender,Age,Height,junk\nMale,21,1.7,x\nmle,abc,1.8,y\nFemale,22,tall,z\n";
        let (_, outcome) = clean_file(raw, dirty_params());
        let message = outcome.unwrap_err().to_string();
        let (_, fix) = message
            .split_once("(merging with any block of the same name):\n")
            .unwrap();
        let fix: String = fix
            .lines()
            .map(|line| line.strip_prefix("  ").unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        let patch: serde_json::Value = serde_yaml::from_str(&fix).unwrap();
        let mut params = dirty_params();
        merge(&mut params, patch);
        let (dir, outcome) = clean_file(raw, params);
        assert_eq!(outcome.unwrap().metrics["rows_out"], 3.0);
        let report = report(&dir);
        assert_eq!(report["dropped_columns"], json!(["junk"]));
        let columns = &report["columns"];
        assert_eq!(
            (
                columns["Age"]["invalid"].as_u64(),
                columns["Height"]["invalid"].as_u64(),
                columns["Gender"]["unknown"].as_u64(),
            ),
            (Some(1), Some(1), Some(1))
        );
    }

    #[test]
    fn a_bare_yaml_null_means_the_null_choice() {
        let params: serde_json::Value = serde_yaml::from_str(
            "numeric: {age: {coerce_invalid: null}}\ncategory: {g: {canonical: [a], on_unknown: null}}",
        )
        .unwrap();
        let (dir, outcome) = clean_file("g,age\na,21\nb,x\n", params);
        outcome.unwrap();
        let columns = &report(&dir)["columns"];
        assert_eq!(
            (
                columns["age"]["invalid"].as_u64(),
                columns["g"]["unknown"].as_u64()
            ),
            (Some(1), Some(1))
        );
    }

    #[test]
    fn empty_and_header_only_files_are_errors_naming_the_file() {
        for (raw, expected) in [("", "is empty"), ("name,age\r\n", "no data rows")] {
            let (_, outcome) = clean_file(raw, json!({}));
            let message = outcome.unwrap_err().to_string();
            assert!(
                message.contains("raw.csv") && message.contains(expected),
                "{message}"
            );
        }
    }

    #[test]
    fn corrupt_parquet_input_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("raw.parquet");
        std::fs::write(
            &input,
            [
                0x50, 0x41, 0x52, 0x31, 0xde, 0xad, 0xbe, 0xef, 0x50, 0x41, 0x52, 0x31,
            ],
        )
        .unwrap();
        let ctx = context(
            dir.path(),
            json!({}),
            &[("raw", &input)],
            &[("data", "clean.parquet"), ("report", "q.json")],
        );
        let message = run(&Clean, &ctx).unwrap_err().to_string();
        assert!(message.contains("raw.parquet"), "{message}");
        assert!(!dir.path().join("clean.parquet").exists());
    }

    #[test]
    fn a_category_of_digits_keeps_its_spelling() {
        let (dir, outcome) = clean_file(
            "zip,n\n0150,1\n0150,2\n",
            json!({"columns": {"zip": "category", "n": "number"}}),
        );
        outcome.unwrap();
        let frame = read_table(&dir.path().join("clean.parquet")).unwrap();
        assert_eq!(
            frame.column("zip").unwrap().str().unwrap().get(0),
            Some("0150")
        );
    }

    #[test]
    fn semicolon_file_is_an_error_not_a_panic() {
        let (_, outcome) = clean_file("a;b\n1;2\n", json!({}));
        assert!(outcome.unwrap_err().to_string().contains("`;`-delimited"));
    }

    #[test]
    fn check_reports_every_problem() {
        let params = json!({"delimiter": "ü", "numeric": {"x": {"min": 5, "max": 1}}});
        let problems = check(&Clean, params, &[], &["data"]);
        let at: Vec<&str> = problems.iter().map(|p| p.at.as_str()).collect();
        assert_eq!(
            at,
            ["inputs", "outputs", "params.delimiter", "params.numeric.x"]
        );
    }

    #[test]
    fn check_rejects_unknown_params_and_bad_enum_values() {
        let problems = check(
            &Clean,
            json!({"numeric": {"x": {"on_out_of_range": "explode"}}}),
            &["raw"],
            &["data", "report"],
        );
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.contains("explode"),
            "{}",
            problems[0].message
        );
    }
}
