//! Tests of `data.clean`: each option on small tables, reports and hints.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails at the line of an unexpected error"
)]

use serde_json::json;

use super::*;
use crate::data::testing::{check, context, run, write_file};
use crate::table::{read_table, take_source_rows};

const RAW: &str =
    "name,age,city\r\nAnn,21,Oslo\r\nBob,,Rome\r\nAnn,21,Oslo\r\nCid,130,Oslo\r\nDan,-3, Rome \r\n";

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

fn source_rows(dir: &tempfile::TempDir, file: &str) -> Vec<Option<u64>> {
    let mut frame = read_table(&dir.path().join(file)).unwrap();
    take_source_rows(&mut frame).unwrap()
}

#[test]
fn each_row_keeps_its_row_in_the_file_read_through_duplicates_and_drops() {
    // RAW rows: 1 Ann, 2 Bob (no age), 3 Ann again, 4 Cid 130, 5 Dan -3.
    let params = json!({"numeric": {"age": {"min": 0, "max": 120, "on_out_of_range": "drop", "impute": "drop"}}});
    let (dir, outcome) = clean_file(RAW, params);
    outcome.unwrap();
    assert_eq!(source_rows(&dir, "clean.parquet"), [Some(1)]);
    let (dir, outcome) = clean_file(RAW, json!({}));
    outcome.unwrap();
    assert_eq!(
        source_rows(&dir, "clean.parquet"),
        [Some(1), Some(2), Some(4), Some(5)]
    );
    // The duplicate check does not see the row numbers (else no row would
    // repeat), and cleaning a cleaned table keeps the first file's rows.
    write_file(
        dir.path(),
        "again.csv",
        "name,age,_source_row\nAnn,21,7\nAnn,21,9\nBob,3,11\n",
    );
    let ctx = context(
        dir.path(),
        json!({}),
        &[("raw", &dir.path().join("again.csv"))],
        &[("data", "again.parquet"), ("report", "q.json")],
    );
    let outcome = run(&Clean, &ctx).unwrap();
    assert_eq!(outcome.metrics["duplicates_dropped"], 1.0);
    assert_eq!(source_rows(&dir, "again.parquet"), [Some(7), Some(11)]);
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

const TOKENS: &str = "name,age,city\nAnn,21,Oslo\nBob,NA,nan\nCid,null,Rome\nDan,30,N/A\nEve,?,\n";

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
    let params =
        json!({"category": {"Gender": {"canonical": ["Female", "Male"], "on_unknown": "null"}}});
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
    assert_eq!(names, ["name", "age", SOURCE_ROW]);
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
        // Four columns and the source rows.
        assert_eq!(frame.width(), 5);
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
    let raw = "Gender,Age,Height,junk,Age\nMale,21,1.7,x,1\nmle,abc,1.8,y,2\nFemale,22,tall,z,3\n";
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
