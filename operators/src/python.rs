//! `python`: calls a Python function (`module:function`, or
//! `path/to/file.py:function`) or runs a script, with a declared interpreter
//! or virtual environment.
//!
//! It is the subprocess protocol of [`shell`](crate::Shell) with a small
//! bootstrap on the Python side, so logs, timeouts, cancellation, retries
//! and the kill of the whole process tree are the same. The function is
//! called with the task's `args` as keyword arguments, and with the task
//! context as `context` when it declares a parameter of that name (or
//! `**kwargs`). What it returns becomes the task's values: a dict, each
//! entry a value (`{{ tasks.ID.outputs.KEY }}` downstream), and each number
//! also a metric. An exception fails the attempt with its type and message,
//! and the traceback goes to the log.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::shell::{Process, run_process, scalar_strings, scratch_file};
use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
};

pub struct Python;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// `module:function` (imported from `path` or the project root) or
    /// `path/to/file.py:function`.
    function: Option<String>,
    /// A script run as `__main__`, relative to the project root.
    script: Option<String>,
    /// The interpreter: a name on `PATH` or a path relative to the project
    /// root. Default `python3`.
    python: Option<String>,
    /// A virtual environment directory; its `bin/python` is the interpreter.
    venv: Option<String>,
    /// Keyword arguments of the function.
    #[serde(default)]
    args: Map<String, Value>,
    /// Directories put first on `sys.path`, relative to the project root.
    #[serde(default)]
    path: Vec<String>,
    /// Extra environment variables (strings, numbers or booleans).
    #[serde(default, deserialize_with = "scalar_strings")]
    #[schemars(with = "BTreeMap<String, Value>")]
    env: BTreeMap<String, String>,
    /// Working directory, relative to the project root.
    cwd: Option<String>,
}

impl Params {
    fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        match (&self.function, &self.script) {
            (Some(_), Some(_)) => problems.push(Problem::new(
                "params",
                "give `function` or `script`, not both",
            )),
            (None, None) => problems.push(
                Problem::new("params", "missing `function` or `script`").with_help(
                    "add `function: my_module:train` (or `function: src/train.py:train`), or `script: src/train.py`",
                ),
            ),
            (Some(function), None) => {
                if let Err(message) = split_function(function) {
                    problems.push(Problem::new("params.function", message).with_help(
                        "write `module:function` (`trainers.forest:fit`) or `path/to/file.py:function`",
                    ));
                }
            }
            (None, Some(script)) if script.trim().is_empty() => {
                problems.push(Problem::new("params.script", "`script` is empty"));
            }
            (None, Some(_)) => {
                if !self.args.is_empty() {
                    problems.push(Problem::new(
                        "params.args",
                        "`args` are keyword arguments of a `function`; a `script` reads its context from `DAG_CONTEXT`",
                    ));
                }
            }
        }
        if self.path.iter().any(|p| p.trim().is_empty()) {
            problems.push(Problem::new("params.path", "an entry of `path` is empty"));
        }
        if self.python.is_some() && self.venv.is_some() {
            problems.push(Problem::new("params", "give `python` or `venv`, not both"));
        }
        for name in self.args.keys() {
            if !is_identifier(name) {
                problems.push(Problem::new(
                    format!("params.args.{name}"),
                    format!(
                        "`{name}` is not a Python identifier, so it cannot be a keyword argument"
                    ),
                ));
            } else if name == "context" {
                problems.push(Problem::new(
                    "params.args.context",
                    "`context` is the task context the function receives; name the argument differently",
                ));
            }
        }
        problems
    }

    /// The interpreter to start, relative names resolved against `workdir`.
    fn interpreter(&self, workdir: &Path) -> String {
        let resolve = |path: &str| {
            if Path::new(path).is_absolute() {
                path.to_string()
            } else {
                workdir.join(path).display().to_string()
            }
        };
        match (&self.venv, &self.python) {
            (Some(venv), _) => resolve(&format!("{}/bin/python", venv.trim_end_matches('/'))),
            (None, Some(python)) if python.contains('/') => resolve(python),
            (None, Some(python)) => python.clone(),
            (None, None) => "python3".into(),
        }
    }
}

/// `module:function` → (module, function); the module may be a `.py` path.
fn split_function(text: &str) -> Result<(&str, &str), String> {
    let Some((module, function)) = text.rsplit_once(':') else {
        return Err(format!("`{text}` does not name a function: no `:`"));
    };
    if module.trim().is_empty() {
        return Err(format!("`{text}` has no module before `:`"));
    }
    if !is_identifier(function) {
        return Err(format!("`{function}` is not a Python function name"));
    }
    if !module.ends_with(".py") && !module.split('.').all(is_identifier) {
        return Err(format!(
            "`{module}` is neither a module name (`package.module`) nor a `.py` file"
        ));
    }
    Ok((module, function))
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

impl Operator for Python {
    fn name(&self) -> &'static str {
        "python"
    }

    fn description(&self) -> &'static str {
        "calls a Python `module:function` (or runs a script) with a declared interpreter or venv; the returned dict becomes values and metrics"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<Params>())
    }

    fn ports(&self) -> crate::Ports {
        const PORTS: crate::Ports = crate::Ports {
            inputs: &[],
            outputs: &[],
            any_inputs: Some(
                "any files the function reads; list its code file too, so an edit reruns the task",
            ),
            any_outputs: Some(
                "any files the function writes (absolute paths in `context.outputs`)",
            ),
        };
        PORTS
    }

    fn open_values(&self) -> bool {
        true
    }

    fn cacheable(&self) -> bool {
        false
    }

    fn starts_processes(&self) -> bool {
        true
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        match parse_params::<Params>(spec.params) {
            Ok(params) => params.problems(),
            Err(problem) => vec![problem],
        }
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        Box::pin(run(ctx))
    }
}

async fn run(ctx: &Context) -> Result<Outcome, OperatorError> {
    let params: Params = parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
    if let Some(problem) = params.problems().into_iter().next() {
        return Err(OperatorError::Params(problem.message));
    }
    let interpreter = params.interpreter(&ctx.workdir);
    if interpreter.contains('/') && !Path::new(&interpreter).exists() {
        let hint = match &params.venv {
            Some(venv) => format!("; create it with `python3 -m venv {venv}`"),
            None => String::new(),
        };
        return Err(OperatorError::failed(format!(
            "the Python interpreter `{interpreter}` does not exist{hint}"
        )));
    }
    let error_file = scratch_file(ctx, "python-error.txt");
    let _ = std::fs::remove_file(&error_file);
    let mut env = params.env.clone();
    env.insert("PYTHONUNBUFFERED".into(), "1".into());
    env.insert("DAG_PYTHON_ERROR".into(), error_file.display().to_string());
    let program = [interpreter.as_str(), "-c", BOOTSTRAP];
    let process = Process {
        program: &program,
        env: &env,
        cwd: params.cwd.as_deref(),
    };
    let target = params
        .function
        .as_deref()
        .or(params.script.as_deref())
        .unwrap_or_default();
    let result = run_process(ctx, &process, |failure| {
        match std::fs::read_to_string(&error_file) {
            Ok(error) if !error.trim().is_empty() => {
                format!("`{target}` raised {}{}", error.trim(), failure.log)
            }
            _ => format!(
                "`{interpreter}` running `{target}` failed with {}{}",
                failure.how, failure.log
            ),
        }
    })
    .await;
    let _ = std::fs::remove_file(&error_file);
    result
}

/// The Python side: reads the context, imports and calls the function (or
/// runs the script), and writes what it returned to `DAG_OUTCOME`. Runs
/// with `python -c`, so nothing is installed into the environment.
const BOOTSTRAP: &str = r#"
import importlib, importlib.util, inspect, json, math, os, runpy, sys, traceback, types

class Refused(Exception):
    """The task's own refusal: written as the error, no traceback."""

def fail(message):
    raise Refused(message)

def stop(message):
    path = os.environ.get("DAG_PYTHON_ERROR")
    if path:
        with open(path, "w") as f:
            f.write(message)
    sys.exit(1)

def plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")

def outcome(result):
    if result is None:
        return {}
    if not isinstance(result, dict):
        fail(f"TypeError: the function returned a {type(result).__name__}; return a dict of values (numbers are also metrics) or None")
    values, metrics = {}, {}
    for key, value in result.items():
        if not isinstance(key, str):
            fail(f"TypeError: the returned dict has a key {key!r} that is not a string")
        try:
            value = json.loads(json.dumps(value, default=plain, allow_nan=False))
        except (TypeError, ValueError) as e:
            fail(f"TypeError: the returned value `{key}` cannot be recorded: {e}")
        values[key] = value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[key] = float(value)
    return {"values": values, "metrics": metrics}

def load(module_name):
    if module_name.endswith(".py"):
        path = os.path.join(workdir, module_name)
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or not os.path.isfile(path):
            fail(f"FileNotFoundError: no Python file `{module_name}`")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(module_name)

def main():
    global workdir
    with open(os.environ["DAG_CONTEXT"]) as f:
        raw = json.load(f)
    params = raw.get("params") or {}
    workdir = raw.get("workdir") or os.getcwd()
    for entry in reversed([workdir] + [os.path.join(workdir, p) for p in params.get("path") or []]):
        sys.path.insert(0, entry)
    context = types.SimpleNamespace(
        dag=raw.get("dag"), run_id=raw.get("run_id"), task_id=raw.get("task_id"),
        attempt=raw.get("attempt"), logical_date=raw.get("logical_date"),
        params=params, inputs=raw.get("inputs") or {}, outputs=raw.get("outputs") or {},
        workdir=workdir,
    )
    try:
        if params.get("script"):
            sys.argv = [params["script"]]
            runpy.run_path(os.path.join(workdir, params["script"]), run_name="__main__")
            result = None
        else:
            module_name, _, function_name = params["function"].rpartition(":")
            module = load(module_name)
            function = getattr(module, function_name, None)
            if not callable(function):
                fail(f"AttributeError: `{module_name}` has no function `{function_name}`")
            kwargs = dict(params.get("args") or {})
            try:
                signature = inspect.signature(function).parameters.values()
            except (TypeError, ValueError):
                signature = []
            if any(p.name == "context" or p.kind == p.VAR_KEYWORD for p in signature):
                kwargs["context"] = context
            result = function(**kwargs)
    except Refused:
        raise
    except SystemExit as e:
        if e.code not in (0, None):
            fail(f"SystemExit: exit code {e.code}")
        result = None
    except BaseException as e:
        traceback.print_exc()
        message = str(e).strip().splitlines()
        fail(type(e).__name__ + (": " + message[0] if message else ""))
    sys.stdout.flush()
    written = outcome(result)
    path = os.environ.get("DAG_OUTCOME")
    if path and written:
        with open(path, "w") as f:
            json.dump(written, f)

workdir = os.getcwd()
try:
    main()
except Refused as e:
    stop(str(e))
"#;

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::LogSink;
    use serde_json::json;

    /// A project directory with `trainers.py` and a context whose log is `task.log`.
    fn project(params: Value) -> (tempfile::TempDir, Context) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("trainers.py"), TRAINERS).expect("write module");
        let mut ctx = Context::detached(dir.path(), params);
        ctx.log = LogSink::at(dir.path().join("task.log"));
        ctx.outputs
            .insert("report".into(), dir.path().join("report.txt"));
        (dir, ctx)
    }

    const TRAINERS: &str = r#"
import sys, time

def fit(context, n_trees, label="forest"):
    print(f"fitting {n_trees} trees for {context.task_id}")
    print("a warning", file=sys.stderr)
    with open(context.outputs["report"], "w") as f:
        f.write(f"{label}:{n_trees}")
    return {"accuracy": 0.5 + n_trees / 1000, "label": label, "trees": n_trees, "ok": True}

def plain(n):
    return None

def boom():
    raise ValueError("the matrix has no rows\nsecond line")

def wrong():
    return [1, 2]

def nan():
    return {"loss": float("nan")}

def slow():
    time.sleep(60)
"#;

    #[tokio::test]
    async fn a_function_gets_its_args_and_context_and_returns_values_and_metrics() {
        let (dir, ctx) = project(json!({"function": "trainers:fit", "args": {"n_trees": 300}}));
        let outcome = Python.execute(&ctx).await.expect("the function succeeds");
        assert_eq!(outcome.values.get("label"), Some(&json!("forest")));
        assert_eq!(outcome.values.get("trees"), Some(&json!(300)));
        assert_eq!(outcome.values.get("ok"), Some(&json!(true)));
        assert_eq!(outcome.metrics.get("accuracy"), Some(&0.8));
        assert_eq!(outcome.metrics.get("trees"), Some(&300.0));
        assert!(
            !outcome.metrics.contains_key("ok"),
            "a boolean is not a metric"
        );
        assert!(!outcome.metrics.contains_key("label"));
        let report =
            std::fs::read_to_string(dir.path().join("report.txt")).expect("output written");
        assert_eq!(report, "forest:300");
        let log = std::fs::read_to_string(dir.path().join("task.log")).expect("log");
        assert!(
            log.contains("fitting 300 trees for task") && log.contains("a warning"),
            "{log}"
        );
    }

    #[tokio::test]
    async fn a_file_path_function_and_a_none_result_work() {
        let (_dir, ctx) = project(json!({"function": "trainers.py:plain", "args": {"n": 1}}));
        let outcome = Python.execute(&ctx).await.expect("the function succeeds");
        assert!(
            outcome.values.is_empty() && outcome.metrics.is_empty(),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn an_exception_fails_with_its_type_and_message_and_the_traceback_is_logged() {
        let (dir, ctx) = project(json!({"function": "trainers:boom"}));
        let error = Python.execute(&ctx).await.expect_err("boom raises");
        let message = error.to_string();
        assert!(
            message.contains("`trainers:boom` raised ValueError: the matrix has no rows"),
            "{message}"
        );
        assert!(!message.contains("second line"), "{message}");
        let log = std::fs::read_to_string(dir.path().join("task.log")).expect("log");
        assert!(log.contains("Traceback") && log.contains("line"), "{log}");
    }

    #[tokio::test]
    async fn results_that_cannot_be_values_fail_clearly() {
        let (_dir, ctx) = project(json!({"function": "trainers:wrong"}));
        let error = Python.execute(&ctx).await.expect_err("a list is refused");
        assert!(error.to_string().contains("returned a list"), "{error}");
        let (_dir, ctx) = project(json!({"function": "trainers:nan"}));
        let error = Python.execute(&ctx).await.expect_err("NaN is refused");
        assert!(
            error.to_string().contains("`loss` cannot be recorded"),
            "{error}"
        );
        let (_dir, ctx) = project(json!({"function": "trainers:missing"}));
        let error = Python.execute(&ctx).await.expect_err("no such function");
        assert!(
            error.to_string().contains("has no function `missing`"),
            "{error}"
        );
        let (_dir, ctx) = project(json!({"function": "nomodule:f"}));
        let error = Python.execute(&ctx).await.expect_err("no such module");
        assert!(error.to_string().contains("ModuleNotFoundError"), "{error}");
        let (_dir, ctx) = project(json!({"function": "trainers:fit", "venv": "missing-venv"}));
        let error = Python.execute(&ctx).await.expect_err("no interpreter");
        assert!(
            error.to_string().contains("python3 -m venv missing-venv"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn cancelling_stops_the_interpreter_at_once() {
        let (_dir, ctx) = project(json!({"function": "trainers:slow"}));
        let cancel = ctx.cancel.clone();
        let started = Instant::now();
        let task = tokio::spawn(async move { Python.execute(&ctx).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
        let result = task.await.expect("task joins");
        assert!(
            matches!(result, Err(OperatorError::Cancelled)),
            "{result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the sleep was not cut short"
        );
    }

    #[tokio::test]
    async fn a_script_runs_as_main_and_may_write_its_own_outcome() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("job.py"),
            "import json, os\nif __name__ == '__main__':\n    ctx = json.load(open(os.environ['DAG_CONTEXT']))\n    json.dump({'values': {'task': ctx['task_id']}}, open(os.environ['DAG_OUTCOME'], 'w'))\n",
        )
        .expect("write script");
        let ctx = Context::detached(dir.path(), json!({"script": "job.py"}));
        let outcome = Python.execute(&ctx).await.expect("the script succeeds");
        assert_eq!(outcome.values.get("task"), Some(&json!("task")));
    }

    fn problems(params: Value) -> Vec<String> {
        let empty = BTreeMap::new();
        Python
            .check(&TaskSpec {
                params: &params,
                inputs: &empty,
                outputs: &empty,
            })
            .into_iter()
            .map(|p| format!("{}: {}", p.at, p.message))
            .collect()
    }

    #[test]
    fn a_function_or_a_script_is_required_and_named_correctly() {
        assert_eq!(
            problems(json!({"function": "trainers.forest:fit"})),
            Vec::<String>::new()
        );
        assert_eq!(
            problems(json!({"function": "src/train.py:fit"})),
            Vec::<String>::new()
        );
        assert_eq!(
            problems(json!({"script": "src/train.py"})),
            Vec::<String>::new()
        );
        assert_eq!(problems(json!({})).len(), 1);
        assert_eq!(
            problems(json!({"function": "a:b", "script": "c.py"})).len(),
            1
        );
        let no_colon = problems(json!({"function": "trainers.fit"}));
        assert!(no_colon[0].starts_with("params.function: "), "{no_colon:?}");
        assert!(problems(json!({"function": "a:1x"}))[0].contains("not a Python function name"));
        assert!(problems(json!({"function": "my-mod:f"}))[0].contains("neither a module name"));
    }

    #[test]
    fn args_must_be_keyword_arguments_and_interpreters_exclusive() {
        let bad = problems(json!({"function": "m:f", "args": {"n-trees": 3, "context": 1}}));
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad[0].starts_with("params.args.context") || bad[1].starts_with("params.args.context")
        );
        let both = problems(json!({"function": "m:f", "python": "python3", "venv": ".venv"}));
        assert_eq!(
            both,
            vec!["params: give `python` or `venv`, not both".to_string()]
        );
        let script_args = problems(json!({"script": "s.py", "args": {"a": 1}}));
        assert_eq!(script_args.len(), 1, "{script_args:?}");
        let typo = problems(json!({"function": "m:f", "argz": {}}));
        assert!(typo[0].starts_with("params.argz"), "{typo:?}");
    }

    #[test]
    fn the_interpreter_is_resolved_against_the_project_root() {
        let params = |p: Value| -> Params { serde_json::from_value(p).expect("params") };
        let root = Path::new("/project");
        assert_eq!(
            params(json!({"function": "m:f"})).interpreter(root),
            "python3"
        );
        assert_eq!(
            params(json!({"function": "m:f", "venv": ".venv/"})).interpreter(root),
            "/project/.venv/bin/python"
        );
        assert_eq!(
            params(json!({"function": "m:f", "python": "env/bin/python3"})).interpreter(root),
            "/project/env/bin/python3"
        );
        assert_eq!(
            params(json!({"function": "m:f", "python": "python3.12"})).interpreter(root),
            "python3.12"
        );
        assert_eq!(
            params(json!({"function": "m:f", "python": "/usr/bin/python3"})).interpreter(root),
            "/usr/bin/python3"
        );
    }
}
