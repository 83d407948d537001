//! Mapped tasks: `map: { KEY: [...] }` makes one task per value, each with
//! its own attempts, cache key and logs; `needs` on the mapped id waits for
//! all of them and `{{ tasks.ID.outputs.NAME }}` gathers their values in
//! map order. The shipped sweep trains, evaluates, picks, registers and
//! gates.

use crate::daemon_support::{Daemon, http, runs, wait_for};
use crate::onnx::project_after_obesity;
use crate::python_env::python;
use crate::support::{Project, task};

fn dag(values: &str) -> String {
    format!(
        r#"
name: fan
tasks:
  make:
    operator: shell
    map: {{ n: {values} }}
    outputs: {{ out: "out/{{{{ map.n }}}}.txt" }}
    params: {{ command: "mkdir -p out && echo {{{{ map.n }}}} > out/{{{{ map.n }}}}.txt" }}
  gather:
    operator: shell
    needs: [make]
    cache: false
    params: {{ command: "echo '{{{{ tasks.make.outputs.out }}}}' > out/all.json" }}
"#
    )
}

#[test]
fn a_mapped_task_fans_out_caches_per_instance_and_gathers_in_map_order() {
    let project = Project::new();
    project.write("dags/fan.yaml", &dag("[3, 1, 2]"));
    let (code, run) = project.json(&["run", "fan", "--json"]);
    assert_eq!(code, 0, "{run:#}");
    for id in ["make[n=3]", "make[n=1]", "make[n=2]", "gather"] {
        assert_eq!(task(&run, id)["status"], "succeeded", "{id}: {run:#}");
    }
    assert!(
        run["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .all(|t| t["id"] != "make")
    );
    let all = std::fs::read_to_string(project.path().join("out/all.json")).expect("gathered");
    assert_eq!(
        all.trim(),
        r#"["out/3.txt","out/1.txt","out/2.txt"]"#,
        "map order"
    );
    let three = std::fs::read_to_string(project.path().join("out/3.txt")).expect("instance");
    assert_eq!(three.trim(), "3");

    let run_id = run["run_id"].as_str().expect("run id");
    let logs = project.dag(&["logs", run_id, "make[n=3]"]);
    assert!(logs.status.success(), "{logs:?}");

    // One value changed: only its instance runs; the others are up to date.
    project.write("dags/fan.yaml", &dag("[3, 1, 4]"));
    let (code, again) = project.json(&["run", "fan", "--json"]);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(task(&again, "make[n=3]")["status"], "up_to_date");
    assert_eq!(task(&again, "make[n=1]")["status"], "up_to_date");
    assert_eq!(task(&again, "make[n=4]")["status"], "succeeded");
    let all = std::fs::read_to_string(project.path().join("out/all.json")).expect("gathered");
    assert_eq!(all.trim(), r#"["out/3.txt","out/1.txt","out/4.txt"]"#);

    // The plan and the graph show instances.
    let plan = project.dag(&["plan", "fan"]);
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("make[n=4]"),
        "{plan:?}"
    );
    let graph = project.dag(&["graph", "fan", "--format", "mermaid"]);
    let text = String::from_utf8_lossy(&graph.stdout);
    assert!(text.contains("[\"make[n=3]<br/>"), "{text}");
    assert!(
        !text.contains("  make[n=3]["),
        "instance ids are not Mermaid node ids: {text}"
    );
}

const SHARDS: &str = r#"
name: shards
tasks:
  copy:
    operator: shell
    map: { file: { glob: "data/shards/*.csv" } }
    inputs: { shard: "{{ map.file }}" }
    outputs: { copy: "out/{{ map.file }}.copy" }
    params: { command: "cp {{ map.file }} out/{{ map.file }}.copy" }
  count:
    operator: shell
    needs: [copy]
    cache: false
    params: { command: "mkdir -p out && echo '{{ tasks.copy.outputs.copy }}' > out/copies.json" }
"#;

#[test]
fn a_glob_maps_over_the_files_it_matches_when_the_dag_is_loaded() {
    let project = Project::new();
    project.write("dags/shards.yaml", SHARDS);
    // No files yet: an empty fan-out, and the gathered list is empty.
    let (code, empty) = project.json(&["run", "shards", "--json"]);
    assert_eq!(code, 0, "{empty:#}");
    let copies = std::fs::read_to_string(project.path().join("out/copies.json")).expect("copies");
    assert_eq!(copies.trim(), "[]");

    project.write("data/shards/part-1.csv", "x\n1\n");
    project.write("data/shards/part-2.csv", "x\n2\n");
    let (code, run) = project.json(&["run", "shards", "--json"]);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(
        task(&run, "copy[file=part-1.csv]")["status"],
        "succeeded",
        "{run:#}"
    );
    assert_eq!(task(&run, "copy[file=part-2.csv]")["status"], "succeeded");
    let copied = std::fs::read_to_string(project.path().join("out/data/shards/part-2.csv.copy"))
        .expect("copied");
    assert_eq!(copied, "x\n2\n");

    // A new file: only its instance runs.
    project.write("data/shards/part-3.csv", "x\n3\n");
    let (_, more) = project.json(&["run", "shards", "--json"]);
    assert_eq!(
        task(&more, "copy[file=part-1.csv]")["status"],
        "up_to_date",
        "{more:#}"
    );
    assert_eq!(task(&more, "copy[file=part-3.csv]")["status"], "succeeded");
    let copies = std::fs::read_to_string(project.path().join("out/copies.json")).expect("copies");
    assert_eq!(
        copies.trim(),
        r#"["out/data/shards/part-1.csv.copy","out/data/shards/part-2.csv.copy","out/data/shards/part-3.csv.copy"]"#
    );
}

#[test]
fn a_task_mapped_over_a_param_expands_with_the_runs_value() {
    let project = Project::new();
    let param_dag =
        dag("{ param: sizes }").replace("name: fan\n", "name: fan\nparams: { sizes: [3, 1] }\n");
    project.write("dags/fan.yaml", &param_dag);
    let (code, run) = project.json(&["run", "fan", "--json"]);
    assert_eq!(code, 0, "{run:#}");
    let ids: Vec<&str> = run["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    for id in ["make[n=3]", "make[n=1]", "gather"] {
        assert_eq!(task(&run, id)["status"], "succeeded", "{id}: {run:#}");
    }
    let all = std::fs::read_to_string(project.path().join("out/all.json")).expect("gathered");
    assert_eq!(all.trim(), r#"["out/3.txt","out/1.txt"]"#);

    // Another list for one run: its instances, the shared one up to date,
    // and the run records the value it expanded.
    let (code, other) = project.json(&["run", "fan", "--param", "sizes=[1, 4, 5]", "--json"]);
    assert_eq!(code, 0, "{other:#}");
    let ids: Vec<&str> = other["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(task(&other, "make[n=1]")["status"], "up_to_date");
    assert_eq!(task(&other, "make[n=4]")["status"], "succeeded");
    assert_eq!(task(&other, "make[n=5]")["status"], "succeeded");
    let all = std::fs::read_to_string(project.path().join("out/all.json")).expect("gathered");
    assert_eq!(all.trim(), r#"["out/1.txt","out/4.txt","out/5.txt"]"#);
    // The progress lines count this run's tasks, not the default's.
    let again = project.dag(&["run", "fan", "--param", "sizes=[1, 4, 5]"]);
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{again:?}");
    assert!(text.contains("[4/4]") && !text.contains("/3]"), "{text}");
    let run_id = other["run_id"].as_str().expect("run id");
    let (_, shown) = project.json(&["runs", "show", run_id, "--json"]);
    assert_eq!(
        shown["params"]["sizes"],
        serde_json::json!([1, 4, 5]),
        "{shown:#}"
    );

    // The prediction of a run and the plan use the same value.
    let why = project.dag(&["run", "fan", "--param", "sizes=[6]", "--dry-run"]);
    let text = String::from_utf8_lossy(&why.stdout);
    assert!(why.status.success(), "{why:?}");
    assert!(
        text.contains("make[n=6]") && !text.contains("make[n=3]"),
        "{text}"
    );
    let (code, plan) = project.json(&["plan", "fan", "--param", "sizes=[7, 8]", "--json"]);
    assert_eq!(code, 0, "{plan:#}");
    assert_eq!(
        plan["levels"][0],
        serde_json::json!(["make[n=7]", "make[n=8]"]),
        "{plan:#}"
    );

    // A value that is not a list, or an empty one, is refused before any task runs.
    for (value, expected) in [
        (
            "sizes=7",
            "maps over param `sizes`, which is `7`, not a list",
        ),
        ("sizes=[]", "`map.n` of task `make` has 0 values"),
    ] {
        let refused = project.dag(&["run", "fan", "--param", value]);
        assert_eq!(refused.status.code(), Some(2), "{refused:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
    let (_, runs) = project.json(&["runs", "--json"]);
    assert_eq!(runs.as_array().map(Vec::len), Some(3), "{runs:#}");

    // The template spelling reads the same param.
    project.write(
        "dags/fan.yaml",
        &param_dag.replace("{ param: sizes }", "\"{{ params.sizes }}\""),
    );
    let (code, again) = project.json(&["run", "fan", "--json"]);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(
        task(&again, "make[n=3]")["status"],
        "up_to_date",
        "{again:#}"
    );
}

#[test]
fn through_the_daemon_a_param_map_expands_per_run_and_a_bad_list_is_a_422() {
    let project = Project::new();
    project.write(
        "dags/fanp.yaml",
        "name: fanp\nparams: { sizes: [1, 2] }\ntasks:\n  a:\n    operator: noop\n    map: { n: { param: sizes } }\n",
    );
    let daemon = Daemon::start(&project, &[]);
    let addr = &daemon.addr;
    let fanp: serde_json::Value = wait_for("the mapped DAG to load and run", || {
        let output = project.dag(&["run", "fanp", "--param", "sizes=[3]", "--json"]);
        (output.status.code() == Some(0))
            .then(|| serde_json::from_slice(&output.stdout).ok())
            .flatten()
    });
    let ids: Vec<&str> = fanp["tasks"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["a[n=3]"], "{fanp:#}");
    let (status, body) = http(
        addr,
        "POST",
        "/api/runs",
        br#"{"dag":"fanp","params":{"sizes":{"a":1}}}"#,
        &[],
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("not a list"), "{body}");
    // Refused up front: the one run above is all there is.
    assert_eq!(runs(&project).len(), 1);
}

#[test]
fn map_mistakes_are_load_time_errors() {
    let project = Project::new();
    let many: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
    project.write(
        "dags/escape.yaml",
        "name: escape\ntasks:\n  a:\n    operator: noop\n    map: { f: { glob: \"../*.csv\" } }\n",
    );
    let escape = project.dag(&["validate", "dags/escape.yaml"]);
    assert_eq!(escape.status.code(), Some(2), "{escape:?}");
    assert!(
        String::from_utf8_lossy(&escape.stderr).contains("`map.f.glob`"),
        "{escape:?}"
    );
    project.write(
        "dags/bad.yaml",
        &format!(
            "name: bad\ntasks:\n  empty:\n    operator: noop\n    map: {{ n: [] }}\n  nested:\n    operator: noop\n    map: {{ n: [1, [2]] }}\n  huge:\n    operator: noop\n    map: {{ n: [{}] }}\n  stray:\n    operator: noop\n    params: {{ x: \"{{{{ map.n }}}}\" }}\n  two:\n    operator: noop\n    map: {{ a: [1], b: [2] }}\n",
            many.join(", ")
        ),
    );
    let output = project.dag(&["validate", "dags/bad.yaml"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("`map.n` of task `empty` has 0 values"),
        "{text}"
    );
    assert!(
        text.contains("`map.n` of task `nested` holds `[2]`"),
        "{text}"
    );
    assert!(
        text.contains("`map.n` of task `huge` has 1001 values; a mapped task has 1 to 1000"),
        "{text}"
    );
    assert!(text.contains("unknown template variable `map.n`"), "{text}");
    assert!(text.contains("`map` takes one key"), "{text}");

    project.write(
        "dags/params.yaml",
        "name: params\nparams: { sizes: [1, 2], one: 5 }\ntasks:\n  typo:\n    operator: noop\n    map: { n: { param: size } }\n  scalar:\n    operator: noop\n    map: { n: { param: one } }\n",
    );
    let output = project.dag(&["validate", "dags/params.yaml"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("`map.n` of task `typo` maps over `size`, which is not a param of this DAG")
            && text.contains("did you mean `sizes`?"),
        "{text}"
    );
    assert!(
        text.contains("`map.n` of task `scalar` maps over param `one`, which is `5`, not a list"),
        "{text}"
    );
}

#[test]
fn the_shipped_sweep_trains_each_size_and_gates_the_best() {
    let project = project_after_obesity();
    let python = python().display().to_string();
    let (code, run) = project.json(&[
        "run",
        "obesity_sweep",
        "--param",
        &format!("python={python}"),
        "--json",
    ]);
    assert_eq!(code, 0, "{run:#}");
    for size in [25, 50, 100] {
        assert_eq!(
            task(&run, &format!("train[n_trees={size}]"))["status"],
            "succeeded"
        );
        assert_eq!(
            task(&run, &format!("evaluate[n_trees={size}]"))["status"],
            "succeeded"
        );
    }
    let pick = task(&run, "pick");
    assert_eq!(pick["metrics"]["candidates"], 3.0, "{pick:#}");
    // Deterministic: the largest forest scores best on the held-out rows.
    assert_eq!(pick["metrics"]["n_trees"], 100.0, "{pick:#}");
    let best = pick["metrics"]["f1_macro"].as_f64().expect("score");
    let scores: Vec<f64> = [25, 50, 100]
        .iter()
        .map(|s| {
            task(&run, &format!("evaluate[n_trees={s}]"))["metrics"]["f1_macro"]
                .as_f64()
                .expect("score")
        })
        .collect();
    assert_eq!(scores.iter().copied().fold(f64::MIN, f64::max), best);
    assert_eq!(task(&run, "gate")["status"], "succeeded");
    let (_, sweep) = project.json(&["models", "show", "obesity@sweep", "--json"]);
    assert_eq!(sweep["params"]["n_trees"], 100, "{sweep:#}");
}
