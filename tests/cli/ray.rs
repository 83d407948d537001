//! The Ray executor against a real local Ray head (`ray_support`): tasks
//! that name a `kind: ray` executor run as Ray jobs, mixed with local
//! tasks, with the same lineage and cache; failures retry as new jobs;
//! timeouts and cancellation stop the job; a resumed run takes over the
//! job a killed `dag run` left; a head that goes away fails the attempt
//! with an error naming it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use dag::execute::ray::{JobsApi, submission_id};

use super::ray_support::{RayHead, serial, shared};
use super::support::{Project, task};

/// A project whose DAG `name` declares the executor `cluster` at `address`.
fn project(name: &str, address: &str, tasks: &str) -> Project {
    let project = Project::new();
    project.write(
        &format!("dags/{name}.yaml"),
        &format!(
            "name: {name}\nexecutors:\n  cluster: {{ kind: ray, address: \"{address}\", num_cpus: 0, poll_interval: 50ms }}\ntasks:\n{tasks}"
        ),
    );
    project
}

/// The job ids the head knows that start with `prefix`.
fn jobs_with_prefix(api: &JobsApi, prefix: &str) -> Vec<(String, String)> {
    api.jobs()
        .expect("list the head's jobs")
        .into_iter()
        .filter_map(|job| {
            let id = job.submission_id?;
            id.starts_with(prefix).then_some((id, job.status))
        })
        .collect()
}

fn wait_until<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status_of(api: &JobsApi, id: &str) -> Option<String> {
    api.job(id).ok().flatten().map(|job| job.status)
}

#[test]
fn local_and_ray_tasks_mix_with_the_same_lineage_and_cache() {
    let _serial = serial();
    let head = shared();
    let project = project(
        "mixed",
        &head.address,
        r#"  left:
    operator: shell
    outputs: { table: data/left.csv }
    params: { command: "printf 'x,y\n1,2\n' > data/left.csv" }
  right:
    operator: shell
    executor: cluster
    outputs: { table: data/right.csv }
    params: { command: "echo on-ray $DAG_TASK_ID $GREETING; printf 'x,y\n3,4\n' > data/right.csv", env: { GREETING: hello } }
  both:
    operator: data.concat
    executor: cluster
    inputs: { a: data/left.csv, b: data/right.csv }
    outputs: { data: data/both.csv }
  report:
    operator: shell
    inputs: { both: data/both.csv }
    outputs: { lines: data/lines.txt }
    params: { command: "wc -l < data/both.csv > data/lines.txt" }
"#,
    );
    let (exit, run) = project.json(&["run", "mixed", "--json"]);
    assert_eq!(exit, 0, "{run:#}");
    let both = std::fs::read_to_string(project.path().join("data/both.csv")).expect("both.csv");
    assert!(
        both.contains("1.0,2.0") && both.contains("3.0,4.0"),
        "{both}"
    );
    let lines = std::fs::read_to_string(project.path().join("data/lines.txt")).expect("lines");
    assert_eq!(lines.trim(), "3");
    let run_id = run["run_id"].as_str().expect("run id").to_string();

    // The record shows where each attempt ran; local tasks show nothing.
    let (_, shown) = project.json(&["runs", "show", &run_id, "--json"]);
    for id in ["right", "both"] {
        let placements = task(&shown, id)["placements"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(placements.len(), 1, "{id}: {shown:#}");
        assert_eq!(placements[0]["executor"], "cluster");
        assert_eq!(placements[0]["kind"], "ray");
        assert_eq!(placements[0]["job_id"], submission_id(&run_id, id, 1));
        assert!(
            placements[0]["node"]
                .as_str()
                .is_some_and(|n| !n.is_empty()),
            "{shown:#}"
        );
        assert_eq!(
            status_of(&head.api(), &submission_id(&run_id, id, 1)).as_deref(),
            Some("SUCCEEDED")
        );
    }
    assert!(
        task(&shown, "left").get("placements").is_none(),
        "{shown:#}"
    );
    let text = project.dag(&["runs", "show", &run_id]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("attempt 1 on `cluster` (ray job"), "{text}");

    // The remote task's output reached its log, env vars included.
    let log = project.dag(&["logs", &run_id, "right"]);
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(log.contains("on-ray right hello"), "{log}");

    // Lineage: the remote output's digest is the file's, as locally.
    let both_out = &task(&shown, "both")["outputs"][0];
    let (digest, _) = dag::execute::hash_file(&project.path().join("data/both.csv")).expect("hash");
    assert_eq!(both_out["digest"].as_str(), Some(digest.as_str()));

    // Cache: nothing changed, so nothing runs, and no job is submitted.
    let (exit, again) = project.json(&["run", "mixed", "--json"]);
    assert_eq!(exit, 0, "{again:#}");
    for id in ["left", "right", "both", "report"] {
        assert_eq!(task(&again, id)["status"], "up_to_date", "{id}: {again:#}");
    }
    let again_id = again["run_id"].as_str().expect("run id");
    assert!(jobs_with_prefix(&head.api(), again_id).is_empty());

    // Switched off, the same file runs everything locally, with the same
    // cache keys: the results stand.
    let output = project
        .command(&["run", "mixed", "--json", "--force"])
        .env("DAG_EXECUTOR_OVERRIDE", "local")
        .output()
        .expect("run dag");
    let local: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(output.status.code(), Some(0), "{local:#}");
    let local_id = local["run_id"].as_str().expect("run id");
    assert!(jobs_with_prefix(&head.api(), local_id).is_empty());
    let (_, local_shown) = project.json(&["runs", "show", local_id, "--json"]);
    assert!(task(&local_shown, "right").get("placements").is_none());
}

#[test]
fn a_failing_job_is_retried_as_a_new_job() {
    let _serial = serial();
    let head = shared();
    let project = project(
        "flaky",
        &head.address,
        r#"  flaky:
    operator: shell
    executor: cluster
    retries: 1
    retry_delay: 10ms
    params: { command: "if [ -f once ]; then echo second; else touch once; echo first; exit 3; fi" }
"#,
    );
    let (exit, run) = project.json(&["run", "flaky", "--json"]);
    assert_eq!(exit, 0, "{run:#}");
    let run_id = run["run_id"].as_str().expect("run id");
    assert_eq!(task(&run, "flaky")["attempts"], 2);
    let api = head.api();
    let first = submission_id(run_id, "flaky", 1);
    let second = submission_id(run_id, "flaky", 2);
    assert_eq!(status_of(&api, &first).as_deref(), Some("FAILED"));
    assert_eq!(status_of(&api, &second).as_deref(), Some("SUCCEEDED"));
    let (_, shown) = project.json(&["runs", "show", run_id, "--json"]);
    let jobs: Vec<&str> = task(&shown, "flaky")["placements"]
        .as_array()
        .expect("placements")
        .iter()
        .filter_map(|p| p["job_id"].as_str())
        .collect();
    assert_eq!(jobs, [first.as_str(), second.as_str()]);
    let log = project.dag(&["logs", run_id, "flaky", "--attempt", "1"]);
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(log.contains("first") && log.contains("exit"), "{log}");
}

#[test]
fn a_timeout_stops_the_job() {
    let _serial = serial();
    let head = shared();
    let project = project(
        "slow",
        &head.address,
        r#"  slow:
    operator: shell
    executor: cluster
    timeout: 2s
    params: { command: "sleep 60" }
"#,
    );
    let started = Instant::now();
    let (exit, run) = project.json(&["run", "slow", "--json"]);
    assert_eq!(exit, 1, "{run:#}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let run_id = run["run_id"].as_str().expect("run id");
    assert!(
        task(&run, "slow")["reason"]
            .as_str()
            .is_some_and(|r| r.contains("timed out")),
        "{run:#}"
    );
    let api = head.api();
    let job = submission_id(run_id, "slow", 1);
    wait_until(
        "the timed-out job to be stopped",
        Duration::from_secs(15),
        || (status_of(&api, &job).as_deref() == Some("STOPPED")).then_some(()),
    );
}

#[test]
fn cancelling_the_run_stops_the_job() {
    let _serial = serial();
    let head = shared();
    let project = project(
        "cancelled",
        &head.address,
        r#"  long:
    operator: shell
    executor: cluster
    params: { command: "sleep 60" }
"#,
    );
    let mut child = project
        .command(&["run", "cancelled"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dag run");
    let api = head.api();
    let job = wait_until("the job to run", Duration::from_secs(30), || {
        jobs_with_prefix(&api, "")
            .into_iter()
            .find(|(id, status)| id.ends_with("-long-1") && status == "RUNNING")
            .map(|(id, _)| id)
    });
    // Ctrl-C: the run stops (recorded interrupted) and so does its job.
    // SAFETY: signals the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().expect("dag run exits");
    assert_ne!(status.code(), Some(0));
    wait_until(
        "the cancelled job to be stopped",
        Duration::from_secs(15),
        || (status_of(&api, &job).as_deref() == Some("STOPPED")).then_some(()),
    );
}

#[test]
fn a_resumed_run_takes_over_the_job_a_killed_engine_left() {
    let _serial = serial();
    let head = shared();
    let project = project(
        "crashy",
        &head.address,
        r#"  work:
    operator: shell
    executor: cluster
    outputs: { done: data/done.txt }
    params: { command: "while [ ! -f go ]; do sleep 0.1; done; echo finished > data/done.txt" }
  after:
    operator: shell
    needs: [work]
    params: { command: "cat data/done.txt" }
"#,
    );
    let mut child = project
        .command(&["run", "crashy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dag run");
    let api = head.api();
    let job = wait_until("the job to run", Duration::from_secs(30), || {
        jobs_with_prefix(&api, "")
            .into_iter()
            .find(|(id, status)| id.ends_with("-work-1") && status == "RUNNING")
            .map(|(id, _)| id)
    });
    child.kill().expect("SIGKILL dag run");
    let _ = child.wait();
    let crashed = job
        .strip_suffix("-work-1")
        .expect("the job id ends with the task")
        .to_string();
    // The job outlives the engine; let it finish while nothing watches.
    assert_eq!(status_of(&api, &job).as_deref(), Some("RUNNING"));
    project.write("go", "");
    let (exit, resumed) = project.json(&["run", "crashy", "--resume", &crashed, "--json"]);
    assert_eq!(exit, 0, "{resumed:#}");
    assert_eq!(task(&resumed, "work")["status"], "succeeded");
    assert_eq!(task(&resumed, "after")["status"], "succeeded");
    let resumed_id = resumed["run_id"].as_str().expect("run id");
    // Exactly one job ever ran the task: the resumed run submitted none.
    assert_eq!(jobs_with_prefix(&api, &format!("{crashed}-work-")).len(), 1);
    assert!(jobs_with_prefix(&api, resumed_id).is_empty());
    let (_, shown) = project.json(&["runs", "show", resumed_id, "--json"]);
    let placement = &task(&shown, "work")["placements"][0];
    assert_eq!(placement["job_id"], job.as_str());
    assert_eq!(placement["attached"], true);
    assert_eq!(
        std::fs::read_to_string(project.path().join("data/done.txt"))
            .expect("done")
            .trim(),
        "finished"
    );
}

#[test]
fn a_head_that_goes_away_fails_the_attempt_naming_it_and_retries_apply() {
    let _serial = serial();
    // A head of this test's own: it is the one killed, never the shared one.
    let mut doomed = RayHead::start();
    let address = doomed.address.clone();
    let project = project(
        "orphaned",
        "http://127.0.0.1:1",
        r#"  stranded:
    operator: shell
    executor: cluster
    retries: 1
    retry_delay: 10ms
    params: { command: "sleep 60" }
"#,
    );
    // DAG_RAY_ADDRESS overrides the address in the file.
    let child = project
        .command(&["run", "orphaned", "--json"])
        .env("DAG_RAY_ADDRESS", &address)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dag run");
    let api = doomed.api();
    wait_until("the job to run", Duration::from_secs(30), || {
        jobs_with_prefix(&api, "")
            .into_iter()
            .any(|(id, status)| id.ends_with("-stranded-1") && status == "RUNNING")
            .then_some(())
    });
    doomed.kill();
    let output = child.wait_with_output().expect("dag run exits");
    assert_eq!(output.status.code(), Some(1));
    let run: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let stranded = task(&run, "stranded");
    assert_eq!(stranded["attempts"], 2, "{run:#}");
    let reason = stranded["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("cannot reach the Ray head at {address}")),
        "{run:#}"
    );
}
