//! Mapping over a list an upstream task produces: `map: { KEY: { from:
//! tasks.UP.outputs.NAME } }` is one task until `UP` has run in a run, then
//! one instance per value, with the run carrying on over the grown plan.

use std::time::{Duration, Instant};

use crate::support::{Project, task};

/// `list` writes `parts` (the param, a list) as a value and a marker file;
/// `shard` maps over it; `slow` runs beside it until `shard`'s first instance
/// has written its file, so it is running while the plan grows, and its
/// index moves then (the instances sort before it); `total` gathers
/// `shard`'s outputs.
const FAN: &str = r#"
name: fan
params:
  parts: [c, a, b]
tasks:
  list:
    operator: shell
    values: [parts]
    outputs: { marker: out/list.txt }
    params:
      command: "mkdir -p out && echo '{{ params.parts }}' > out/list.txt && echo '{\"values\": {\"parts\": {{ params.parts }}}}' > $DAG_OUTCOME"
  slow:
    operator: shell
    cache: false
    params:
      command: "for i in $(seq 400); do [ -e out/shard-c.txt ] && break; sleep 0.05; done; test -e out/shard-c.txt"
  shard:
    map:
      part: { from: tasks.list.outputs.parts }
    operator: shell
    outputs: { out: "out/shard-{{ map.part }}.txt" }
    params:
      command: "echo {{ map.part }} >> out/ran-{{ map.part }}.txt && echo {{ map.part }} > out/shard-{{ map.part }}.txt"
  total:
    needs: [shard, slow]
    operator: shell
    cache: false
    params:
      command: "echo '{{ tasks.shard.outputs.out }}' > out/total.json"
"#;

/// [`FAN`] with `slow` done at once, for runs that never get to `c`.
fn fan_without_waiting() -> String {
    FAN.replace(
        "for i in $(seq 400); do [ -e out/shard-c.txt ] && break; sleep 0.05; done; test -e out/shard-c.txt",
        "true",
    )
}

fn ids(run: &serde_json::Value) -> Vec<String> {
    let mut ids: Vec<String> = run["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    ids
}

fn read(project: &Project, file: &str) -> String {
    std::fs::read_to_string(project.path().join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn a_task_mapped_over_an_upstream_list_expands_when_the_list_exists() {
    let project = Project::new();
    project.write("dags/fan.yaml", FAN);

    // Before a run the task is one node, and `--why` says why.
    let (code, why) = project.json(&["run", "fan", "--dry-run", "--json"]);
    assert_eq!(code, 0, "{why:#}");
    let reasons = task(&why, "shard")["reasons"].to_string();
    assert!(
        reasons.contains("maps over `tasks.list.outputs.parts`"),
        "{why:#}"
    );

    let plan = project.dag(&["plan", "fan"]);
    assert!(
        String::from_utf8_lossy(&plan.stdout)
            .contains("level 1: shard (shell, one per tasks.list.outputs.parts)"),
        "{plan:?}"
    );
    let (_, plan) = project.json(&["plan", "fan", "--json"]);
    assert_eq!(
        task(&plan, "shard")["maps_over"],
        "tasks.list.outputs.parts"
    );

    let output = project.dag(&["run", "fan"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    // Progress counts the instances instead of the mapped task: 4 declared,
    // 6 once `shard` is three.
    let last = stdout.lines().rfind(|l| l.starts_with('['));
    assert!(last.is_some_and(|l| l.starts_with("[6/6]")), "{stdout}");

    let (code, run) = project.json(&["runs", "show", "latest", "--json"]);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(
        ids(&run),
        [
            "list",
            "shard[part=a]",
            "shard[part=b]",
            "shard[part=c]",
            "slow",
            "total"
        ]
    );
    for id in ids(&run) {
        assert_eq!(task(&run, &id)["status"], "succeeded", "{id}: {run:#}");
    }
    assert_eq!(
        run["expansions"],
        serde_json::json!([{
            "task": "shard",
            "from": "tasks.list.outputs.parts",
            "instances": ["shard[part=c]", "shard[part=a]", "shard[part=b]"],
        }])
    );
    let shown = project.dag(&["runs", "show", "latest"]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains(
            "expanded  shard over `tasks.list.outputs.parts`: shard[part=c], shard[part=a], shard[part=b]"
        ),
        "{shown:?}"
    );
    // `slow` was running while the plan grew, and is recorded under its id.
    assert_eq!(task(&run, "slow")["attempts"], 1);
    // Gathered in the order of the list, not of the ids.
    assert_eq!(
        read(&project, "out/total.json"),
        r#"["out/shard-c.txt","out/shard-a.txt","out/shard-b.txt"]"#
    );

    // Again: every instance has its own cache key and is up to date.
    let (code, again) = project.json(&["run", "fan", "--json"]);
    assert_eq!(code, 0, "{again:#}");
    for id in ["list", "shard[part=a]", "shard[part=b]", "shard[part=c]"] {
        assert_eq!(task(&again, id)["status"], "up_to_date", "{id}: {again:#}");
    }
    assert_eq!(read(&project, "out/ran-a.txt"), "a", "ran once");

    // Another list: the instances follow it.
    let (code, other) = project.json(&["run", "fan", "--param", "parts=[c, d]", "--json"]);
    assert_eq!(code, 0, "{other:#}");
    assert_eq!(
        ids(&other),
        ["list", "shard[part=c]", "shard[part=d]", "slow", "total"]
    );
    assert_eq!(task(&other, "shard[part=d]")["status"], "succeeded");
    assert_eq!(
        read(&project, "out/total.json"),
        r#"["out/shard-c.txt","out/shard-d.txt"]"#
    );
}

#[test]
fn a_list_that_cannot_be_mapped_fails_the_task_by_name_and_an_empty_one_skips_it() {
    let project = Project::new();
    project.write("dags/fan.yaml", &fan_without_waiting());
    let run = |parts: &str| {
        let param = format!("parts={parts}");
        project.json(&["run", "fan", "--param", &param, "--json"])
    };

    for (parts, why) in [
        ("5", "`tasks.list.outputs.parts` is `5`, not a list"),
        ("[a, a]", "gives the instance id `shard[part=a]` twice"),
        (
            "[[1]]",
            "holds `[1]`; values are strings, numbers or booleans",
        ),
    ] {
        let (code, failed) = run(parts);
        assert_eq!(code, 1, "{parts}: {failed:#}");
        let shard = task(&failed, "shard");
        assert_eq!(shard["status"], "failed", "{parts}: {failed:#}");
        let reason = shard["reason"].as_str().expect("reason");
        assert!(reason.starts_with("cannot expand the map: "), "{reason}");
        assert!(reason.contains(why), "{parts}: {reason}");
        assert_eq!(task(&failed, "total")["status"], "upstream_failed");
        assert_eq!(task(&failed, "list")["status"], "succeeded");
    }

    // More values than a mapped task may have.
    let many = format!(
        "[{}]",
        (0..1001)
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (code, failed) = run(&many);
    assert_eq!(code, 1);
    let reason = task(&failed, "shard")["reason"].as_str().expect("reason");
    assert!(
        reason.contains(
            "has 1001 values (from `tasks.list.outputs.parts`); a mapped task has 0 to 1000"
        ),
        "{reason}"
    );
    assert!(!project.path().join("out/shard-0.txt").exists());

    // An empty list: no instances, the task is skipped with the reason, and
    // what gathers it gets an empty list.
    let (code, empty) = run("[]");
    assert_eq!(code, 0, "{empty:#}");
    assert_eq!(ids(&empty), ["list", "shard", "slow", "total"]);
    assert_eq!(task(&empty, "shard")["status"], "skipped");
    assert_eq!(
        task(&empty, "shard")["reason"],
        "`tasks.list.outputs.parts` is an empty list: no instances"
    );
    assert_eq!(task(&empty, "total")["status"], "succeeded");
    assert_eq!(read(&project, "out/total.json"), "[]");
}

#[test]
fn from_mistakes_are_load_time_errors_at_the_map() {
    let project = Project::new();
    let cases = [
        (
            "{ from: tasks.lst.outputs.parts }",
            "there is no task `lst`",
            "did you mean `list`",
        ),
        (
            "{ from: tasks.list.outputs.prts }",
            "task `list` has no output `prts`",
            "did you mean `parts`",
        ),
        (
            "{ from: list.parts }",
            "an upstream list is written `tasks.ID.outputs.NAME`",
            "",
        ),
        (
            "{ from: tasks.shard.outputs.out }",
            "task `shard` references its own outputs",
            "",
        ),
    ];
    for (map, message, help) in cases {
        let text = FAN.replace("{ from: tasks.list.outputs.parts }", map);
        project.write("dags/fan.yaml", &text);
        let output = project.dag(&["validate"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{map}: {stderr}");
        assert!(stderr.contains(message), "{map}: {stderr}");
        assert!(stderr.contains(help), "{map}: {stderr}");
        // Pointed at the `map:` line of the file.
        let line = text.lines().position(|l| l.contains(map)).expect("line") + 1;
        assert!(
            stderr.contains(&format!("fan.yaml:{line}:")),
            "{map} at line {line}: {stderr}"
        );
    }
}

#[test]
fn after_kill_9_a_resumed_run_expands_again_and_takes_over_finished_instances() {
    let project = Project::new();
    // One at a time; the instance for 2 blocks until `out/unblock` exists.
    let text = fan_without_waiting()
        .replace("name: fan\n", "name: fan\nmax_parallel: 1\n")
        .replace("parts: [c, a, b]", "parts: [1, 2]")
        .replace(
            "echo {{ map.part }} >> out/ran-",
            "touch out/started-{{ map.part }}; if [ {{ map.part }} = 2 ]; then while [ ! -e out/unblock ]; do sleep 0.05; done; fi; echo {{ map.part }} >> out/ran-",
        );
    project.write("dags/fan.yaml", &text);
    let mut child = project
        .command(&["run", "fan"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start dag run");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !project.path().join("out/started-2").exists() {
        assert!(Instant::now() < deadline, "instance 2 never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL dag run");
    child.wait().expect("reap dag run");
    project.write("out/unblock", "");

    let (code, resumed) = project.json(&["run", "fan", "--resume", "latest", "--json"]);
    assert_eq!(code, 0, "{resumed:#}");
    assert_eq!(
        ids(&resumed),
        ["list", "shard[part=1]", "shard[part=2]", "slow", "total"]
    );
    // Instance 1 finished before the kill: taken over (or found up to date),
    // not run again.
    assert_eq!(task(&resumed, "shard[part=1]")["status"], "up_to_date");
    assert_eq!(read(&project, "out/ran-1.txt"), "1");
    assert_eq!(task(&resumed, "shard[part=2]")["status"], "succeeded");
    assert_eq!(read(&project, "out/ran-2.txt"), "2");
    assert_eq!(
        read(&project, "out/total.json"),
        r#"["out/shard-1.txt","out/shard-2.txt"]"#
    );
}

#[test]
fn a_map_over_the_values_gathered_from_an_expanded_task_expands_in_turn() {
    let project = Project::new();
    project.write(
        "dags/chain.yaml",
        r#"
name: chain
tasks:
  list:
    operator: shell
    values: [parts]
    params: { command: "echo '{\"values\": {\"parts\": [1, 2]}}' > $DAG_OUTCOME" }
  x:
    operator: shell
    values: [v]
    map: { n: { from: tasks.list.outputs.parts } }
    params: { command: "echo '{\"values\": {\"v\": \"x{{ map.n }}\"}}' > $DAG_OUTCOME" }
  y:
    operator: shell
    map: { m: "{{ tasks.x.outputs.v }}" }
    params: { command: "echo {{ map.m }}" }
"#,
    );
    let (code, run) = project.json(&["run", "chain", "--json"]);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(
        ids(&run),
        ["list", "x[n=1]", "x[n=2]", "y[m=x1]", "y[m=x2]"]
    );
    let (_, shown) = project.json(&["runs", "show", "latest", "--json"]);
    assert_eq!(
        shown["expansions"],
        serde_json::json!([
            {"task": "x", "from": "tasks.list.outputs.parts", "instances": ["x[n=1]", "x[n=2]"]},
            {"task": "y", "from": "tasks.x.outputs.v", "instances": ["y[m=x1]", "y[m=x2]"]},
        ])
    );
}
