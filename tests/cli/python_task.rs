//! `operator: python` through the engine: a function's args and context, its
//! returned dict as values downstream and metrics in the record, caching
//! with the code file as an input, an exception named in the run, a
//! timeout that stops the interpreter, and mistakes caught by `dag validate`.

use crate::python_env::python;
use crate::support::{Project, task};

const TRAINERS: &str = r#"
import csv, time

def count(context, column, minimum=0):
    with open(context.inputs["rows"], newline="") as f:
        values = [float(r[column]) for r in csv.DictReader(f)]
    kept = [v for v in values if v >= minimum]
    with open(context.outputs["kept"], "w") as f:
        f.write("\n".join(str(v) for v in kept))
    return {"rows": len(values), "kept": len(kept), "column": column, "run": context.run_id}

def fails(context):
    raise RuntimeError(f"no model for {context.task_id}")

def sleeps():
    time.sleep(120)
"#;

fn dag(python: &str) -> String {
    format!(
        r#"
name: py
params: {{ minimum: 2 }}
tasks:
  count:
    operator: python
    inputs: {{ rows: data/rows.csv, code: src/trainers.py }}
    outputs: {{ kept: out/kept.txt }}
    params:
      function: trainers:count
      path: [src]
      python: {python}
      args: {{ column: x, minimum: "{{{{ params.minimum }}}}" }}
    values: [rows, kept, column, run]
  report:
    operator: shell
    needs: [count]
    params: {{ command: "echo kept {{{{ tasks.count.outputs.kept }}}} of {{{{ tasks.count.outputs.rows }}}} in {{{{ tasks.count.outputs.column }}}}" }}
"#
    )
}

fn project() -> Project {
    let project = Project::new();
    project.write("src/trainers.py", TRAINERS);
    project.write("data/rows.csv", "x\n1\n2\n3\n4\n");
    project.write("dags/py.yaml", &dag(&python().display().to_string()));
    project
}

#[test]
fn a_python_function_returns_values_and_metrics_and_is_cached_until_its_code_changes() {
    let project = project();
    let (code, run) = project.json(&["run", "py", "--json"]);
    assert_eq!(code, 0, "{run:#}");
    let count = task(&run, "count");
    assert_eq!(count["status"], "succeeded", "{run:#}");
    assert_eq!(count["metrics"]["rows"], 4.0);
    assert_eq!(count["metrics"]["kept"], 3.0);
    assert!(count["metrics"].get("column").is_none(), "{count:#}");
    let kept = std::fs::read_to_string(project.path().join("out/kept.txt")).expect("output");
    assert_eq!(kept, "2.0\n3.0\n4.0");
    let run_id = run["run_id"].as_str().expect("run id");
    let log = project.dag(&["logs", run_id, "report"]);
    assert!(
        String::from_utf8_lossy(&log.stdout).contains("kept 3 of 4 in x"),
        "{log:?}"
    );

    // Unchanged: skipped. A param the function receives: rerun.
    let (_, again) = project.json(&["run", "py", "--json"]);
    assert_eq!(task(&again, "count")["status"], "up_to_date", "{again:#}");
    let (_, other) = project.json(&["run", "py", "--json", "--param", "minimum=4"]);
    assert_eq!(task(&other, "count")["status"], "succeeded", "{other:#}");
    assert_eq!(task(&other, "count")["metrics"]["kept"], 1.0);

    // Editing the code (an input) reruns it.
    project.write(
        "src/trainers.py",
        &TRAINERS.replace("v >= minimum", "v > minimum"),
    );
    let (_, edited) = project.json(&["run", "py", "--json", "--param", "minimum=4"]);
    assert_eq!(task(&edited, "count")["status"], "succeeded", "{edited:#}");
    assert_eq!(task(&edited, "count")["metrics"]["kept"], 0.0);
}

#[test]
fn an_exception_and_a_timeout_fail_the_task_by_name() {
    let project = project();
    let python = python().display().to_string();
    project.write(
        "dags/bad.yaml",
        &format!(
            "name: bad\ntasks:\n  fails:\n    operator: python\n    params: {{ function: src/trainers.py:fails, python: {python} }}\n  sleeps:\n    operator: python\n    timeout: 1s\n    params: {{ function: src/trainers.py:sleeps, python: {python} }}\n"
        ),
    );
    let started = std::time::Instant::now();
    let (code, run) = project.json(&["run", "bad", "--json"]);
    assert_eq!(code, 1, "{run:#}");
    let fails = task(&run, "fails");
    assert_eq!(fails["status"], "failed");
    let reason = fails["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("`src/trainers.py:fails` raised RuntimeError: no model for fails"),
        "{reason}"
    );
    let sleeps = task(&run, "sleeps");
    assert_eq!(sleeps["status"], "failed", "{run:#}");
    assert_eq!(sleeps["reason"], "timed out after 1.0s", "{run:#}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the sleeping interpreter outlived its timeout"
    );
    let run_id = run["run_id"].as_str().expect("run id");
    let log = project.dag(&["logs", run_id, "fails"]);
    assert!(
        String::from_utf8_lossy(&log.stdout).contains("Traceback"),
        "{log:?}"
    );
}

#[test]
fn validate_names_python_mistakes_before_anything_runs() {
    let project = Project::new();
    project.write(
        "dags/wrong.yaml",
        "name: wrong\ntasks:\n  a:\n    operator: python\n    params: { function: trainers.count }\n  b:\n    operator: python\n    params: { function: 'm:f', python: python3, venv: .venv, args: { n-trees: 3 } }\n",
    );
    let output = project.dag(&["validate", "dags/wrong.yaml"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("`trainers.count` does not name a function"),
        "{text}"
    );
    assert!(text.contains("give `python` or `venv`, not both"), "{text}");
    assert!(
        text.contains("`n-trees` is not a Python identifier"),
        "{text}"
    );
    assert!(text.contains("wrong.yaml:5"), "a line number: {text}");
}
