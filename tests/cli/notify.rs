//! Notifications: `on_failure`, `on_success`, `on_retry` and `on_sla_miss`
//! hooks delivered to a real webhook receiver and to a command, retried
//! when the receiver fails, recorded in the run, and never failing the run.

use std::time::Duration;

use serde_json::Value;

use super::daemon_support::{Daemon, wait_for};
use super::notify_support::{Receiver, closed_port};
use super::support::Project;

fn notifications(project: &Project, run_id: &str) -> Vec<Value> {
    let (_, run) = project.json(&["runs", "show", run_id, "--json"]);
    run["notifications"].as_array().cloned().unwrap_or_default()
}

fn last_run_id(project: &Project) -> String {
    let (_, runs) = project.json(&["runs", "--json"]);
    runs[0]["run_id"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_failing_task_notifies_its_hooks_with_the_log_and_the_run_records_each_delivery() {
    let receiver = Receiver::start(0);
    let project = Project::new();
    project.write(
        "dags/nightly.yaml",
        &format!(
            r#"name: nightly
on_failure:
  - command: "cat > run-failure.json"
on_success:
  - command: "touch never"
tasks:
  extract:
    operator: noop
  load:
    operator: shell
    needs: [extract]
    params: {{ command: "echo 'connection refused by warehouse'; exit 3" }}
    retries: 1
    retry_delay: 10ms
    on_retry: {{ webhook: "{url}" }}
    on_failure:
      - webhook: "{url}"
"#,
            url = receiver.url("/alerts?token=s3cret")
        ),
    );
    let run = project.dag(&["run", "nightly"]);
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let bodies = receiver.wait_for(2, Duration::from_secs(10));
    let events: Vec<&str> = bodies
        .iter()
        .map(|b| b["event"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(events, ["on_retry", "on_failure"], "{bodies:#?}");
    let retry = &bodies[0];
    assert_eq!(retry["task"], "load");
    assert_eq!(retry["attempt"], 1);
    assert_eq!(retry["status"], "retrying");
    let failure = &bodies[1];
    assert_eq!(failure["dag"], "nightly");
    assert_eq!(failure["task"], "load");
    assert_eq!(failure["status"], "failed");
    assert_eq!(failure["attempt"], 2);
    assert_eq!(failure["trigger"], "cli");
    assert!(
        failure["log_excerpt"]
            .as_str()
            .is_some_and(|l| l.contains("connection refused by warehouse")),
        "{failure:#}"
    );
    let run_id = last_run_id(&project);
    assert_eq!(failure["run_id"], Value::from(run_id.clone()));

    // The DAG's on_failure ran its command with the JSON on stdin.
    let text = std::fs::read_to_string(project.path().join("run-failure.json")).unwrap_or_default();
    let whole: Value = serde_json::from_str(&text).unwrap_or_default();
    assert_eq!(whole["event"], "on_failure", "{text}");
    assert_eq!(whole["task"], Value::Null, "a run-level event");
    assert!(
        whole["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("task `load` failed")),
        "{whole:#}"
    );
    assert!(
        !project.path().join("never").exists(),
        "on_success fired for a failed run"
    );

    // Each delivery is on record; the webhook's token is not.
    let recorded = notifications(&project, &run_id);
    assert_eq!(recorded.len(), 3, "{recorded:#?}");
    assert!(
        recorded
            .iter()
            .all(|n| n["delivered"] == true && n["tries"] == 1),
        "{recorded:#?}"
    );
    let shown = project.dag(&["runs", "show", &run_id]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("notified  on_failure of `load` → webhook http://"),
        "{shown}"
    );
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[test]
fn an_unreachable_webhook_is_retried_then_recorded_as_undelivered_and_the_run_still_succeeds() {
    let receiver = Receiver::start(1);
    let project = Project::new();
    project.write(
        "dags/quiet.yaml",
        &format!(
            r#"name: quiet
on_success:
  - webhook: "http://127.0.0.1:{port}/nobody"
  - webhook: "{url}"
    format: slack
tasks:
  a:
    operator: noop
"#,
            port = closed_port(),
            url = receiver.url("/slack")
        ),
    );
    let run = project.dag(&["run", "quiet"]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The receiver refused the first try with a 500: the second got through.
    let bodies = receiver.wait_for(1, Duration::from_secs(10));
    let text = bodies
        .first()
        .and_then(|b| b["text"].as_str())
        .unwrap_or_default();
    assert!(
        text.starts_with("dag: run of `quiet` succeeded"),
        "{bodies:#?}"
    );

    let recorded = notifications(&project, &last_run_id(&project));
    let by_target = |part: &str| {
        recorded
            .iter()
            .find(|n| n["target"].as_str().is_some_and(|t| t.contains(part)))
            .cloned()
            .unwrap_or_default()
    };
    let nobody = by_target(&closed_port_marker(&recorded, &receiver));
    assert_eq!(nobody["delivered"], false, "{recorded:#?}");
    assert_eq!(nobody["tries"], 3);
    assert!(
        nobody["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot connect")),
        "{nobody:#}"
    );
    let slack = by_target(&receiver.addr.to_string());
    assert_eq!(slack["delivered"], true, "{recorded:#?}");
    assert_eq!(slack["tries"], 2);
}

/// The target of the delivery that is not the receiver's.
fn closed_port_marker(recorded: &[Value], receiver: &Receiver) -> String {
    recorded
        .iter()
        .filter_map(|n| n["target"].as_str())
        .find(|t| !t.contains(&receiver.addr.to_string()))
        .unwrap_or("none")
        .to_string()
}

#[test]
fn a_run_past_its_sla_fires_on_sla_miss_once_and_a_prompt_task_never_does() {
    let receiver = Receiver::start(0);
    let project = Project::new();
    project.write(
        "dags/late.yaml",
        &format!(
            r#"name: late
sla: 300ms
on_sla_miss: {{ webhook: "{url}" }}
tasks:
  quick:
    operator: noop
    sla: 10s
    on_sla_miss: {{ command: "touch quick-late" }}
  slow:
    operator: shell
    needs: [quick]
    params: {{ command: "sleep 1.5" }}
"#,
            url = receiver.url("/sla")
        ),
    );
    let run = project.dag(&["run", "late"]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bodies = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(bodies.len(), 1, "{bodies:#?}");
    assert_eq!(bodies[0]["event"], "on_sla_miss");
    assert_eq!(bodies[0]["status"], "late");
    assert!(
        bodies[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("sla of 300ms")),
        "{bodies:#?}"
    );
    assert!(!project.path().join("quick-late").exists());
    // Nothing more arrives: the run's timer fired once.
    assert_eq!(receiver.wait_for(2, Duration::from_millis(300)).len(), 1);
}

#[test]
fn the_daemon_notifies_a_failed_run_within_a_second_and_logs_its_start_and_end() {
    let receiver = Receiver::start(0);
    let project = Project::new();
    project.write(
        "dags/broken.yaml",
        &format!(
            "name: broken\non_failure: {{ webhook: \"{}\" }}\ntasks:\n  t:\n    operator: shell\n    params: {{ command: \"exit 1\" }}\n",
            receiver.url("/hook")
        ),
    );
    let daemon = Daemon::start(&project, &[]);
    let trigger = project.dag(&["trigger", "broken", "--json"]);
    assert_eq!(
        trigger.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&trigger.stderr)
    );
    let accepted: Value = serde_json::from_slice(&trigger.stdout).unwrap_or_default();
    let run_id = accepted["run_id"].as_str().unwrap_or_default().to_string();
    let bodies = receiver.wait_for(1, Duration::from_secs(10));
    let body = bodies.first().cloned().expect("the failure was notified");
    assert_eq!(body["run_id"], Value::from(run_id.clone()));
    assert_eq!(body["status"], "failed");
    let link = body["link"].as_str().unwrap_or_default();
    assert!(link.ends_with(&format!("/runs/{run_id}")), "{body:#}");
    // The link opens the run's page in the daemon's web UI.
    assert!(link.starts_with("http://127.0.0.1:"), "{link}");
    let (_, run) = project.json(&["runs", "show", &run_id, "--json"]);
    let finished = run["finished_at"].as_str().unwrap_or_default().to_string();
    let delivered_at = run["notifications"][0]["at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!finished.is_empty() && delivered_at >= finished, "{run:#}");
    let latency = millis_between(&finished, &delivered_at);
    assert!(latency < 1000, "notified {latency} ms after the run ended");
    wait_for("the daemon to log the run's end", || {
        let log = daemon.log();
        (log.contains("run started")
            && log.contains("run finished")
            && log.contains("status=failed"))
        .then_some(())
    });
}

/// Milliseconds from one RFC 3339 time to another (same format, UTC).
fn millis_between(from: &str, to: &str) -> i64 {
    let parse = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .unwrap_or(0)
    };
    parse(to) - parse(from)
}

#[test]
fn a_flood_of_failing_tasks_is_notified_without_holding_up_the_run() {
    let receiver = Receiver::start(0);
    let project = Project::new();
    let mut dag = String::from("name: flood\nmax_parallel: 16\ntasks:\n");
    for i in 0..60 {
        dag.push_str(&format!(
            "  t{i}:\n    operator: shell\n    params: {{ command: \"exit 1\" }}\n    on_failure: {{ webhook: \"{}\" }}\n",
            receiver.url("/flood")
        ));
    }
    project.write("dags/flood.yaml", &dag);
    let run = project.dag(&["run", "flood"]);
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(receiver.wait_for(60, Duration::from_secs(20)).len(), 60);
    let recorded = notifications(&project, &last_run_id(&project));
    assert_eq!(recorded.len(), 60);
    assert!(recorded.iter().all(|n| n["delivered"] == true));
}
