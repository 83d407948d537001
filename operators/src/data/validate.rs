//! `data.validate`: checks a table against a list of expectations, writes a
//! JSON report listing every expectation with pass or fail, and fails the
//! task when any expectation fails.
//!
//! Expectations come inline (`expectations:`), from a YAML file named by
//! `expectations_file` (relative to the project root), or from a YAML file
//! declared as the input `expectations` — the last makes a change to the
//! file invalidate cached results like any other input. This operator never
//! changes the data.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::expectation::{Expectation, Finding};
use crate::table::{read_table, without_source_rows, write_json};
use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    require_names, run_blocking,
};

pub struct Validate;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The rules, each selected by `kind`.
    expectations: Option<Vec<Expectation>>,
    /// A YAML file with `expectations:`, relative to the project root, instead.
    expectations_file: Option<String>,
}

/// The shape of an expectations file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectationsFile {
    expectations: Vec<Expectation>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    input: String,
    rows: usize,
    passed: bool,
    failed: usize,
    expectations: &'a [Finding],
}

impl Operator for Validate {
    fn name(&self) -> &'static str {
        "data.validate"
    }

    fn description(&self) -> &'static str {
        "checks a table against expectations (schema, nulls, ranges, values, uniqueness, class balance)"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<Params>())
    }

    fn ports(&self) -> crate::Ports {
        const PORTS: crate::Ports = crate::Ports {
            inputs: &[
                crate::Port::required("data", "the table to check"),
                crate::Port::optional(
                    "expectations",
                    "a YAML file of expectations, instead of the param",
                ),
            ],
            outputs: &[crate::Port::required(
                "report",
                "JSON: each expectation's outcome, with counts and examples",
            )],
            ..crate::Ports::NONE
        };
        PORTS
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("inputs", spec.inputs, &["data"]);
        problems.extend(require_names("outputs", spec.outputs, &["report"]));
        let params = match parse_params::<Params>(spec.params) {
            Ok(params) => params,
            Err(problem) => {
                problems.push(problem);
                return problems;
            }
        };
        let sources = usize::from(params.expectations.is_some())
            + usize::from(params.expectations_file.is_some())
            + usize::from(spec.inputs.contains_key("expectations"));
        if sources != 1 {
            problems.push(
                Problem::new("params", "give expectations exactly one way")
                    .with_help("use `expectations: [...]`, `expectations_file: <path>`, or the input `expectations`"),
            );
        }
        // A file that exists at load time is checked now; one an upstream
        // task writes is checked when the task runs.
        let file = params
            .expectations_file
            .as_deref()
            .or(spec.inputs.get("expectations").map(String::as_str))
            .filter(|f| !f.contains("{{"));
        if let Some(file) = file
            && let Ok(text) = std::fs::read_to_string(file)
            && let Err(message) = parse_expectations(Path::new(file), &text)
        {
            let at = if params.expectations_file.is_some() {
                "params.expectations_file"
            } else {
                "inputs.expectations"
            };
            problems.push(Problem::new(at, message));
        }
        for (index, rule) in params.expectations.iter().flatten().enumerate() {
            if let Some(message) = rule.problem() {
                problems.push(Problem::new(
                    format!("params.expectations[{index}]"),
                    message,
                ));
            }
        }
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| validate(&ctx))
    }
}

fn load_expectations(ctx: &Context, params: Params) -> Result<Vec<Expectation>, OperatorError> {
    let file: PathBuf = match (
        params.expectations,
        params.expectations_file,
        ctx.inputs.get("expectations"),
    ) {
        (Some(inline), None, None) => return Ok(inline),
        (None, Some(file), None) => ctx.workdir.join(file),
        (None, None, Some(input)) => input.clone(),
        _ => {
            return Err(OperatorError::Params(
                "give expectations exactly one way: `expectations`, `expectations_file` or the input `expectations`".into(),
            ));
        }
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|source| OperatorError::io("read", &file, source))?;
    parse_expectations(&file, &text).map_err(OperatorError::failed)
}

/// The expectations of a file's `text`, or what is wrong, starting with
/// `FILE:LINE:COL` when the YAML says where.
fn parse_expectations(file: &Path, text: &str) -> Result<Vec<Expectation>, String> {
    let parsed: ExpectationsFile = serde_yaml::from_str(text).map_err(|error| {
        let at = error
            .location()
            .map(|l| format!("{}:{}:{}", file.display(), l.line(), l.column()))
            .unwrap_or_else(|| file.display().to_string());
        let message = error.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(before, _)| before);
        format!("invalid expectations file {at}: {message}")
    })?;
    for (index, rule) in parsed.expectations.iter().enumerate() {
        if let Some(message) = rule.problem() {
            return Err(format!(
                "invalid expectations file `{}`: expectation {} (`{}`): {message}",
                file.display(),
                index + 1,
                rule.kind()
            ));
        }
    }
    Ok(parsed.expectations)
}

fn validate(ctx: &Context) -> Result<Outcome, OperatorError> {
    let params: Params = parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
    let expectations = load_expectations(ctx, params)?;
    let input = ctx.input("data")?;
    let frame = without_source_rows(read_table(input)?);
    let findings = evaluate_all(&expectations, &frame, input, ctx)?;
    let failures: Vec<&Finding> = findings.iter().filter(|f| !f.passed).collect();
    let report = Report {
        input: input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        rows: frame.height(),
        passed: failures.is_empty(),
        failed: failures.len(),
        expectations: &findings,
    };
    write_json(&report, ctx.output("report")?)?;
    for finding in &findings {
        let verdict = if finding.passed { "pass" } else { "FAIL" };
        ctx.log.line(format!(
            "{verdict} {}: {}",
            describe(finding),
            finding.detail
        ));
    }
    if !failures.is_empty() {
        let lines: Vec<String> = failures
            .iter()
            .map(|f| format!("{}: {}", describe(f), f.detail))
            .collect();
        return Err(OperatorError::failed(format!(
            "{} of {} expectations failed on `{}`: {}",
            failures.len(),
            findings.len(),
            input.display(),
            lines.join("; ")
        )));
    }
    Ok(Outcome::default()
        .metric("expectations_passed", findings.len() as f64)
        .metric("expectations_failed", 0.0)
        .metric("rows", frame.height() as f64)
        .summary(format!(
            "{} expectations passed on {} rows",
            findings.len(),
            frame.height()
        )))
}

fn evaluate_all(
    expectations: &[Expectation],
    frame: &polars::prelude::DataFrame,
    input: &Path,
    ctx: &Context,
) -> Result<Vec<Finding>, OperatorError> {
    let mut findings = Vec::with_capacity(expectations.len());
    for (done, rule) in expectations.iter().enumerate() {
        if ctx.cancel.is_cancelled() {
            return Err(OperatorError::Cancelled);
        }
        findings.push(rule.evaluate(frame, input)?);
        ctx.progress
            .report(done as u64 + 1, expectations.len() as u64, "expectations");
    }
    Ok(findings)
}

fn describe(finding: &Finding) -> String {
    match &finding.column {
        Some(column) => format!("expectation `{}` on column `{column}`", finding.expectation),
        None => format!("expectation `{}`", finding.expectation),
    }
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

    const DATA: &str = "age,label\n20,a\n30,b\n95,a\n";

    fn validate_with(
        params: serde_json::Value,
        extra: &[(&str, &str)],
    ) -> (tempfile::TempDir, Result<Outcome, OperatorError>) {
        let dir = tempfile::tempdir().unwrap();
        let data = write_file(dir.path(), "data.csv", DATA);
        let extra: Vec<(&str, PathBuf)> = extra
            .iter()
            .map(|(name, text)| (*name, write_file(dir.path(), "rules.yaml", text)))
            .collect();
        let mut inputs: Vec<(&str, &Path)> = vec![("data", data.as_path())];
        inputs.extend(extra.iter().map(|(name, path)| (*name, path.as_path())));
        let ctx = context(dir.path(), params, &inputs, &[("report", "report.json")]);
        let outcome = run(&Validate, &ctx);
        (dir, outcome)
    }

    #[test]
    fn a_failing_expectation_fails_the_task_naming_column_rule_and_rows() {
        let params = json!({"expectations": [
            {"kind": "row_count", "min": 1},
            {"kind": "range", "column": "age", "min": 10, "max": 80}
        ]});
        let (dir, outcome) = validate_with(params, &[]);
        let message = outcome.unwrap_err().to_string();
        assert!(message.contains("1 of 2 expectations failed"), "{message}");
        assert!(
            message.contains("expectation `range` on column `age`: 1 rows outside [10, 80]"),
            "{message}"
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
                .unwrap();
        assert_eq!(report["passed"], false);
        assert_eq!(report["expectations"][0]["passed"], true);
        assert_eq!(report["expectations"][1]["offending_rows"], 1);
    }

    #[test]
    fn expectations_can_come_from_a_file_input() {
        let rules =
            "expectations:\n  - kind: allowed_values\n    column: label\n    values: [a, b]\n";
        let (_, outcome) = validate_with(json!({}), &[("expectations", rules)]);
        assert_eq!(outcome.unwrap().metrics["expectations_passed"], 1.0);
    }

    #[test]
    fn an_invalid_expectations_file_is_an_error_naming_it() {
        let (_, outcome) = validate_with(
            json!({}),
            &[("expectations", "expectations:\n  - kind: sparkle\n")],
        );
        let message = outcome.unwrap_err().to_string();
        assert!(
            message.contains("rules.yaml") && message.contains("sparkle"),
            "{message}"
        );
    }

    #[test]
    fn check_requires_exactly_one_source_of_expectations() {
        let problems = check(&Validate, json!({}), &["data"], &["report"]);
        assert_eq!(problems.len(), 1);
        let both = json!({"expectations": [], "expectations_file": "x.yaml"});
        assert_eq!(check(&Validate, both, &["data"], &["report"]).len(), 1);
    }

    #[test]
    fn check_reports_contradictory_rules_by_index() {
        let params = json!({"expectations": [{"kind": "row_count", "min": 1}, {"kind": "row_count", "min": 9, "max": 2}]});
        let problems = check(&Validate, params, &["data"], &["report"]);
        assert_eq!(problems[0].at, "params.expectations[1]");
    }
}
