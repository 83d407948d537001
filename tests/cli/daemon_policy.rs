//! The daemon's run policy seen from outside: `max_active_runs` lets that
//! many runs of a DAG go at once and queues the rest until one ends; a
//! queued run can be cancelled before it starts, and a running one ends
//! `cancelled` (a user's decision), not `interrupted` (a crash or shutdown);
//! on SIGTERM a task that ends within `--grace` is recorded as it ended.

use serde_json::Value;

use super::daemon_support::{Daemon, runs, wait_for};
use super::support::Project;

/// Each run waits for the file `go`; the schedule never fires by itself
/// in a test (1 January, midnight).
const PAIR: &str = r#"name: pair
schedule: { cron: "0 0 1 1 *", max_active_runs: 2 }
tasks:
  t:
    operator: shell
    params: { command: "while [ ! -f go ]; do sleep 0.05; done" }
"#;

fn trigger(project: &Project) -> Value {
    let output = project.dag(&["trigger", "pair", "--json"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("trigger prints JSON")
}

fn status_of(project: &Project, run_id: &str) -> String {
    let (_, run) = project.json(&["runs", "show", run_id, "--json"]);
    run["status"].as_str().unwrap_or_default().to_string()
}

#[test]
fn with_max_active_runs_2_two_runs_go_at_once_and_a_third_waits_until_one_ends() {
    let project = Project::new();
    project.write("dags/pair.yaml", PAIR);
    let _daemon = Daemon::start(&project, &[]);

    let fired: Vec<Value> = (0..3).map(|_| trigger(&project)).collect();
    let states: Vec<&str> = fired
        .iter()
        .map(|f| f["state"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(states, ["started", "started", "queued"], "{fired:?}");
    let ids: Vec<String> = fired
        .iter()
        .map(|f| f["run_id"].as_str().unwrap_or_default().to_string())
        .collect();

    // Both started runs reach their task while the third still waits.
    wait_for("two runs running at once", || {
        let running = runs(&project)
            .iter()
            .filter(|r| r["status"] == "running")
            .count();
        (running == 2).then_some(())
    });
    assert_eq!(status_of(&project, &ids[2]), "queued");

    project.write("go", "");
    wait_for("all three runs to succeed", || {
        ids.iter()
            .all(|id| status_of(&project, id) == "succeeded")
            .then_some(())
    });
    // The queued run started only once one of the first two had ended.
    let (_, third) = project.json(&["runs", "show", &ids[2], "--json"]);
    let first_end = ids[..2]
        .iter()
        .filter_map(|id| {
            let (_, run) = project.json(&["runs", "show", id, "--json"]);
            run["finished_at"].as_str().map(str::to_string)
        })
        .min()
        .expect("the first runs finished");
    let third_start = third["started_at"].as_str().unwrap_or_default();
    assert!(
        third_start >= first_end.as_str(),
        "the third run started at {third_start}, before either of the first two ended ({first_end})"
    );
}

#[test]
fn a_cancelled_queued_run_is_recorded_with_its_reason_and_gc_goes_through_the_daemon() {
    let project = Project::new();
    project.write(
        "dags/slow.yaml",
        "name: slow\ntasks:\n  t:\n    operator: shell\n    params: { command: \"while [ ! -f go ]; do sleep 0.05; done\" }\n",
    );
    let _daemon = Daemon::start(&project, &[]);
    let trigger = |project: &Project| -> Value {
        let output = project.dag(&["trigger", "slow", "--json"]);
        serde_json::from_slice(&output.stdout).expect("json")
    };
    let first = trigger(&project);
    let second = trigger(&project);
    assert_eq!(second["state"], "queued", "{second}");
    let queued_id = second["run_id"].as_str().unwrap_or_default().to_string();
    let cancel = project.dag(&["cancel", &queued_id]);
    assert_eq!(cancel.status.code(), Some(0));
    project.write("go", "");
    let first_id = first["run_id"].as_str().unwrap_or_default().to_string();
    wait_for("the first run to finish", || {
        let (_, run) = project.json(&["runs", "show", &first_id, "--json"]);
        (run["status"] == "succeeded").then_some(())
    });
    let (_, run) = project.json(&["runs", "show", &queued_id, "--json"]);
    assert_eq!(run["status"], "cancelled", "{run:#}");
    let shown = project.dag(&["runs", "show", &queued_id]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("reason    cancelled before it started"),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );
    let gc = project.dag(&["gc", "--keep-runs", "0", "--json"]);
    assert_eq!(
        gc.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    let summary: Value = serde_json::from_slice(&gc.stdout).expect("gc json");
    assert_eq!(summary["dry_run"], false);
}

#[test]
fn a_user_cancel_of_a_running_run_records_it_cancelled_not_interrupted() {
    let project = Project::new();
    project.write(
        "dags/pair.yaml",
        &PAIR.replace("command: \"while", "command: \"touch started; while"),
    );
    let _daemon = Daemon::start(&project, &[]);
    let fired = trigger(&project);
    let run_id = fired["run_id"].as_str().unwrap_or_default().to_string();
    let started = project.path().join("started");
    wait_for("the run's task to start", || started.exists().then_some(()));
    // `latest` names the newest run, resolved through the daemon.
    let cancel = project.dag(&["cancel", "latest"]);
    assert_eq!(
        cancel.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&cancel.stderr)
    );
    wait_for("the run to end", || {
        let status = status_of(&project, &run_id);
        (status != "running").then_some(())
    });
    let (_, run) = project.json(&["runs", "show", &run_id, "--json"]);
    assert_eq!(run["status"], "cancelled", "{run:#}");
    let task = run["tasks"].as_array().and_then(|t| t.first().cloned());
    assert_eq!(
        task.map(|t| t["status"].clone()),
        Some(Value::from("cancelled"))
    );
}

#[test]
fn on_sigterm_a_task_that_ends_within_the_grace_period_is_recorded_succeeded() {
    let project = Project::new();
    project.write(
        "dags/pair.yaml",
        &PAIR.replace("command: \"while", "command: \"touch started; while"),
    );
    let mut daemon = Daemon::start(&project, &["--grace", "60s"]);
    let fired = trigger(&project);
    let run_id = fired["run_id"].as_str().unwrap_or_default().to_string();
    let started = project.path().join("started");
    wait_for("the run's task to start", || started.exists().then_some(()));
    daemon.signal("-TERM");
    // The task is released only once the daemon is draining, so it ends
    // inside the grace period, not before the signal.
    wait_for("the daemon to drain", || {
        daemon
            .log()
            .contains("signal received: draining")
            .then_some(())
    });
    project.write("go", "");
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
    let (_, run) = project.json(&["runs", "show", &run_id, "--json"]);
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let task = run["tasks"].as_array().and_then(|t| t.first().cloned());
    assert_eq!(
        task.map(|t| t["status"].clone()),
        Some(Value::from("succeeded"))
    );
}

#[test]
fn daemon_stop_drains_the_daemon_and_says_so_when_none_runs() {
    let project = Project::new();
    project.write("dags/pair.yaml", PAIR);
    let mut daemon = Daemon::start(&project, &[]);
    // `dag daemon stop` waits for the daemon to go: bounded here, so a
    // stop that never happens fails the test instead of hanging it.
    let mut command = project.command(&["daemon", "stop"]);
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start dag daemon stop");
    wait_for("dag daemon stop to return", || {
        child.try_wait().expect("wait for dag daemon stop")
    });
    let stop = child.wait_with_output().expect("output of dag daemon stop");
    assert_eq!(stop.status.code(), Some(0), "{stop:?}");
    assert_eq!(String::from_utf8_lossy(&stop.stdout), "daemon stopped\n");
    // It returned once the daemon was gone, and the daemon exited cleanly.
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
    assert!(daemon.log().contains("signal received: draining"));
    assert!(!project.path().join(".dag/daemon.json").exists());

    let again = project.dag(&["daemon", "stop"]);
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("nothing to stop"),
        "{again:?}"
    );
}
