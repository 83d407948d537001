//! `dag backfill`: the schedule's logical dates in a range, each run once
//! with trigger `backfill`, dates that already succeeded skipped, with and
//! without a daemon.

use serde_json::Value;

use super::daemon_support::{Daemon, runs, wait_for};
use super::support::Project;

/// Daily at 06:00 in Madrid; each run writes its logical date to a file
/// named after it, and fails for the date listed in `fail-on`.
const DAILY: &str = r#"name: daily
schedule: { cron: "0 6 * * *", timezone: Europe/Madrid, max_active_runs: 2 }
tasks:
  stamp:
    operator: shell
    params:
      command: "d='{{ run.logical_date }}'; test \"$(cat fail-on 2>/dev/null)\" != \"$d\" && mkdir -p out && echo \"$d\" > \"out/$d\""
"#;

fn backfill(project: &Project, args: &[&str]) -> (i32, Vec<Value>) {
    let mut all = vec!["backfill", "daily"];
    all.extend_from_slice(args);
    all.push("--json");
    let (exit, json) = project.json(&all);
    (exit, json.as_array().cloned().unwrap_or_default())
}

fn statuses(dates: &[Value]) -> Vec<(String, String)> {
    dates
        .iter()
        .map(|d| {
            (
                d["logical_date"].as_str().unwrap_or_default().to_string(),
                d["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn backfill_runs_each_scheduled_date_once_and_skips_what_already_succeeded() {
    let project = Project::new();
    project.write("dags/daily.yaml", DAILY);
    // 06:00 in Madrid is 05:00 UTC in winter (CET), 04:00 in summer (CEST);
    // the clocks went forward on 29 March 2026.
    let (exit, planned) = backfill(
        &project,
        &["--from", "2026-03-28", "--to", "2026-03-30", "--dry-run"],
    );
    assert_eq!(exit, 0);
    assert_eq!(
        statuses(&planned),
        [
            ("2026-03-28T05:00:00Z".to_string(), "planned".to_string()),
            ("2026-03-29T04:00:00Z".to_string(), "planned".to_string()),
            ("2026-03-30T04:00:00Z".to_string(), "planned".to_string()),
        ]
    );
    assert!(
        !project.path().join("out").exists(),
        "a dry run runs nothing"
    );

    project.write("fail-on", "2026-03-29T04:00:00Z");
    let (exit, first) = backfill(&project, &["--from", "2026-03-28", "--to", "2026-03-30"]);
    assert_eq!(exit, 1, "one date failed: {first:#?}");
    let first = statuses(&first);
    assert_eq!(first[0].1, "succeeded");
    assert_eq!(first[1].1, "failed");
    assert_eq!(first[2].1, "succeeded");
    for date in ["2026-03-28T05:00:00Z", "2026-03-30T04:00:00Z"] {
        assert!(project.path().join("out").join(date).exists(), "{date}");
    }

    // Again: only the failed date runs.
    std::fs::remove_file(project.path().join("fail-on")).unwrap_or_default();
    let (exit, second) = backfill(&project, &["--from", "2026-03-28", "--to", "2026-03-30"]);
    assert_eq!(exit, 0);
    let second_statuses = statuses(&second);
    assert_eq!(
        second_statuses
            .iter()
            .map(|(_, s)| s.as_str())
            .collect::<Vec<_>>(),
        ["skipped", "succeeded", "skipped"]
    );
    // Every run is on record with trigger `backfill` and its logical date.
    let (_, listed) = project.json(&["runs", "--json", "--limit", "10"]);
    let listed = listed.as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 4);
    assert!(
        listed.iter().all(|r| r["trigger"] == "backfill"),
        "{listed:#?}"
    );
    let run_id = second[1]["run_id"].as_str().unwrap_or_default();
    let (_, run) = project.json(&["runs", "show", run_id, "--json"]);
    assert_eq!(run["trigger"]["kind"], "backfill");
    assert!(
        listed
            .iter()
            .any(|r| r["run_id"] == run_id && r["logical_date"] == "2026-03-29T04:00:00Z"),
        "{listed:#?}"
    );

    // `--rerun` runs the succeeded dates too.
    let (exit, rerun) = backfill(
        &project,
        &["--from", "2026-03-30", "--to", "2026-03-30", "--rerun"],
    );
    assert_eq!(exit, 0);
    assert_eq!(statuses(&rerun)[0].1, "succeeded");
}

#[test]
fn backfill_refuses_a_dag_without_schedule_a_reversed_range_and_a_huge_one() {
    let project = Project::new();
    project.write("dags/daily.yaml", DAILY);
    project.write(
        "dags/plain.yaml",
        "name: plain\ntasks:\n  a:\n    operator: noop\n",
    );
    let refused = |args: &[&str], expected: &str| {
        let output = project.dag(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    };
    refused(
        &[
            "backfill",
            "plain",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-02",
        ],
        "has no `schedule`",
    );
    refused(
        &[
            "backfill",
            "daily",
            "--from",
            "2026-01-05",
            "--to",
            "2026-01-01",
        ],
        "is before",
    );
    refused(
        &[
            "backfill",
            "daily",
            "--from",
            "yesterday",
            "--to",
            "2026-01-01",
        ],
        "is not a date",
    );
    refused(
        &[
            "backfill",
            "daily",
            "--from",
            "2020-01-01",
            "--to",
            "2026-01-01",
        ],
        "more than 1000 fires",
    );
}

#[test]
fn through_the_daemon_backfill_runs_queue_under_max_active_runs() {
    let project = Project::new();
    project.write("dags/daily.yaml", DAILY);
    let _daemon = Daemon::start(&project, &[]);
    let (exit, accepted) = backfill(&project, &["--from", "2026-01-01", "--to", "2026-01-04"]);
    assert_eq!(exit, 0, "{accepted:#?}");
    let states: Vec<&str> = accepted
        .iter()
        .map(|a| a["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        states,
        ["started", "started", "queued", "queued"],
        "max_active_runs: 2"
    );
    wait_for("the four backfill runs to succeed", || {
        let done = runs(&project)
            .iter()
            .filter(|r| r["trigger"] == "backfill" && r["status"] == "succeeded")
            .count();
        (done == 4).then_some(())
    });
    // Nothing left to do for the same range.
    let (exit, again) = backfill(&project, &["--from", "2026-01-01", "--to", "2026-01-04"]);
    assert_eq!(exit, 0);
    assert!(again.iter().all(|a| a["status"] == "skipped"), "{again:#?}");
}
