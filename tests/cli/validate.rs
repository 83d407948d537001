//! `dag validate`: diagnostics with codes and positions.

use super::support::{Project, repo_root};

/// Each fixture's first line says what it must produce:
/// `# expect: <code> <line>:<col>`.
#[test]
fn every_invalid_fixture_reports_its_code_at_its_position() {
    let dir = repo_root().join("tests/fixtures/invalid");
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    fixtures.sort();
    assert!(
        fixtures.len() >= 15,
        "expected a fixture per failure mode, found {}",
        fixtures.len()
    );
    let project = Project::new();
    for fixture in fixtures {
        let text = std::fs::read_to_string(&fixture).expect("read fixture");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("an expect line");
        let (code, position) = expect.split_once(' ').expect("code and position");
        let (line, column) = position.split_once(':').expect("line:col");
        let (exit, json) =
            project.json(&["validate", "--json", fixture.to_str().expect("utf-8 path")]);
        assert_eq!(exit, 2, "{} must be invalid", fixture.display());
        let found = json["diagnostics"]
            .as_array()
            .expect("diagnostics")
            .iter()
            .any(|d| {
                d["code"] == code
                    && d["line"].as_u64().map(|n| n.to_string()).as_deref() == Some(line)
                    && d["column"].as_u64().map(|n| n.to_string()).as_deref() == Some(column)
            });
        assert!(
            found,
            "{}: no `{code}` at {line}:{column} in {:#}",
            fixture.display(),
            json["diagnostics"]
        );
    }
}

#[test]
fn all_problems_in_a_file_are_reported_at_once_with_hints() {
    let project = Project::new();
    project.write(
        "dags/many.yaml",
        "name: many\nparams:\n  seed: 1\ntasks:\n  clean:\n    operator: shel\n  train:\n    operator: noop\n    needs: [clen]\n    retries: many\n",
    );
    let output = project.dag(&["validate", "dags/many.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in [
        "error[dag::unknown_operator]: task `clean` uses unknown operator `shel`",
        "--> dags/many.yaml:6:15",
        "help: did you mean `shell`?",
        "error[dag::unknown_dependency]: task `train` needs unknown task `clen`",
        "help: did you mean `clean`?",
        "error[dag::wrong_type]",
        "3 problems found",
    ] {
        assert!(stderr.contains(needle), "missing `{needle}` in:\n{stderr}");
    }
}

#[test]
fn every_shipped_dag_validates() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dag"))
        .args(["validate", "dags"])
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .output()
        .expect("run dag validate");
    assert!(
        output.status.success(),
        "dags/ does not validate:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("ok "), "no DAG was validated:\n{stdout}");
}

#[test]
fn two_dags_writing_one_path_differently_fail_validation_pointing_at_both() {
    let project = Project::new();
    let stage = std::fs::read_to_string(repo_root().join("dags/obesity_data.yaml"))
        .expect("read the data stage");
    project.write("dags/obesity_data.yaml", &stage);
    // Reuses the data stage on other raw data but keeps its paths: running
    // it would overwrite `obesity_data`'s artifacts.
    project.write(
        "dags/clash.yaml",
        "name: clash\nparams:\n  raw_data: data/incoming/batch.csv\ninclude: [obesity_data.yaml]\n",
    );
    let (exit, json) = project.json(&["validate", "--json"]);
    assert_eq!(exit, 2, "{json:#}");
    let conflicts: Vec<&serde_json::Value> = json["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["code"] == "dag::output_conflict_across_dags")
        .collect();
    assert_eq!(conflicts.len(), 1, "{json:#}");
    let conflict = conflicts[0];
    assert!(
        conflict["message"].as_str().is_some_and(|m| m.starts_with(
            "DAGs `clash` and `obesity_data` both write `data/interim/clean.parquet`, `data/reports/quality.json`"
        )),
        "{conflict:#}"
    );
    assert_eq!(conflict["file"], "dags/obesity_data.yaml");
    assert!(
        conflict["help"][0].as_str().is_some_and(
            |h| h.starts_with("`params.raw_data` is \"data/incoming/batch.csv\" in `clash`")
        ),
        "{conflict:#}"
    );
    // Giving the reuse its own paths resolves it.
    project.write(
        "dags/clash.yaml",
        "name: clash\nparams:\n  raw_data: data/incoming/batch.csv\n  data_dir: data/clash\ninclude: [obesity_data.yaml]\n",
    );
    let output = project.dag(&["validate"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn schema_lists_task_keys() {
    let project = Project::new();
    let (exit, schema) = project.json(&["schema"]);
    assert_eq!(exit, 0);
    assert!(
        schema["$defs"]["TaskEntry"]["properties"]["trigger_rule"].is_object(),
        "{schema:#}"
    );
}

/// A typo in a reference to a shell task's output names the outputs it has
/// and how to declare a value the command writes itself; the declared value
/// is then accepted.
#[test]
fn references_to_shell_values_are_checked_against_declared_values() {
    let project = Project::new();
    let fixture = repo_root().join("tests/fixtures/invalid/shell_value_undeclared.yaml");
    let (exit, json) = project.json(&["validate", "--json", fixture.to_str().expect("utf-8")]);
    assert_eq!(exit, 2, "{json:#}");
    let diagnostic = &json["diagnostics"][0];
    let help = diagnostic["help"].to_string();
    assert!(help.contains("did you mean `raw`"), "{diagnostic:#}");
    assert!(
        help.contains("declare it on the task: `values: [rwa]`"),
        "{diagnostic:#}"
    );

    let text = std::fs::read_to_string(&fixture).expect("fixture");
    let declared = text.replace(
        "    outputs: { raw: data/raw.txt }\n",
        "    outputs: { raw: data/raw.txt }\n    values: [rwa]\n",
    );
    project.write("dags/declared.yaml", &declared);
    let output = project.dag(&["validate", "dags/declared.yaml"]);
    assert!(output.status.success(), "{output:?}");
}

/// `dag schema` checks each operator's params: a branch per operator whose
/// `params` schema names its params, and every reference resolves.
#[test]
fn schema_includes_each_operators_params() {
    let project = Project::new();
    let (code, schema) = project.json(&["schema"]);
    assert_eq!(code, 0);
    let branches = schema["$defs"]["TaskEntry"]["allOf"]
        .as_array()
        .expect("branches");
    let train = branches
        .iter()
        .find(|b| b["if"]["properties"]["operator"]["const"] == "ml.train")
        .expect("an ml.train branch");
    let params = &train["then"]["properties"]["params"]["properties"];
    for name in ["model", "n_trees", "cv_folds", "grid", "seed"] {
        assert!(
            params.get(name).is_some(),
            "ml.train params lack `{name}`: {params:#}"
        );
    }
    fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, inner) in map {
                    match inner.as_str() {
                        Some(target) if key == "$ref" => out.push(target.to_string()),
                        _ => refs(inner, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    refs(&schema, &mut found);
    assert!(
        found.iter().any(|r| r == "#/$defs/data.clean.NumericRule"),
        "{found:?}"
    );
    for target in found {
        let name = target.strip_prefix("#/$defs/").expect("a local reference");
        assert!(
            schema["$defs"].get(name).is_some(),
            "`{target}` resolves to nothing"
        );
    }
}

#[test]
fn operators_name_prints_every_param_and_an_unknown_name_is_refused() {
    let project = Project::new();
    let output = project.dag(&["operators", "ml.gate"]);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "| `criteria` |",
        "| `min_rows` | integer | `30` |",
        "### ChampionRule",
        "- `verdict`:",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
    let (code, json) = project.json(&["operators", "python", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json["open_values"], true);
    assert!(
        json["params"]
            .as_array()
            .expect("params")
            .iter()
            .any(|p| p["name"] == "venv")
    );
    let unknown = project.dag(&["operators", "ml.trian"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("`ml.train`"),
        "{unknown:?}"
    );
}

/// An expectations file that exists when the DAG is loaded is checked by
/// `dag validate`, with its own `file:line:col`.
#[test]
fn validate_checks_an_expectations_file_at_its_line() {
    let project = Project::new();
    project.write(
        "checks/expectations.yaml",
        "expectations:\n  - kind: range\n    column: a\n    min: 0\n  - kind: rnage\n    column: b\n",
    );
    project.write(
        "dags/checked.yaml",
        "name: checked\ntasks:\n  check:\n    operator: data.validate\n    inputs: { data: data/t.csv }\n    outputs: { report: out/report.json }\n    params: { expectations_file: checks/expectations.yaml }\n",
    );
    let output = project.dag(&["validate", "dags/checked.yaml"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("invalid expectations file checks/expectations.yaml:5:11: expectations[1].kind: unknown variant `rnage`"),
        "{text}"
    );
    assert!(text.contains("dags/checked.yaml:7:"), "{text}");
    project.write(
        "checks/expectations.yaml",
        "expectations:\n  - kind: range\n    column: a\n    min: 0\n",
    );
    let fixed = project.dag(&["validate", "dags/checked.yaml"]);
    assert!(fixed.status.success(), "{fixed:?}");
}
