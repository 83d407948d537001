//! `dag daemon`: the real binary as a background process — the CLI going
//! through its API, watch triggers, hot reload, `dag.trigger`, a second
//! daemon refused, the API's refusals, SIGTERM drain, and SIGKILL mid-run
//! losing nothing that finished.

use serde_json::Value;

use super::daemon_support::{Daemon, http, runs, wait_for};
use super::support::Project;

/// The trigger detail of a listed run (`dag runs` shows only its kind).
fn trigger_detail(project: &Project, run: &Value) -> String {
    let id = run["run_id"].as_str().unwrap_or_default();
    let (_, shown) = project.json(&["runs", "show", id, "--json"]);
    shown["trigger"]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Triggers `dag`, waits until its task `first` succeeded, then kills the
/// daemon with SIGKILL; returns the run id.
fn kill_after_first_task(project: &Project, daemon: &mut Daemon, dag: &str) -> String {
    let trigger = project.dag(&["trigger", dag, "--json"]);
    assert!(
        trigger.status.success(),
        "{}",
        String::from_utf8_lossy(&trigger.stderr)
    );
    let accepted: Value = serde_json::from_slice(&trigger.stdout).expect("json");
    let run_id = accepted["run_id"].as_str().unwrap_or_default().to_string();
    wait_for("the first task to finish", || {
        let (_, run) = project.json(&["runs", "show", &run_id, "--json"]);
        (run["tasks"]
            .as_array()?
            .iter()
            .any(|t| t["id"] == "first" && t["status"] == "succeeded"))
        .then_some(())
    });
    daemon.signal("-KILL");
    daemon.wait_exit();
    run_id
}

const QUICK: &str =
    "name: quick\ntasks:\n  a:\n    operator: noop\n  b:\n    operator: noop\n    needs: [a]\n";

#[test]
fn the_cli_goes_through_the_daemon_and_a_second_daemon_is_refused() {
    let project = Project::new();
    project.write("dags/quick.yaml", QUICK);
    let daemon = Daemon::start(&project, &[]);

    // `dag run` is submitted to the daemon and followed to the end.
    let output = project.dag(&["run", "quick"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{stderr}\n{}",
        daemon.log()
    );
    assert!(stderr.contains("(daemon pid"), "{stderr}");
    assert!(
        stdout.contains("run ") && stdout.contains("succeeded"),
        "{stdout}"
    );
    let (exit, run) = project.json(&["run", "quick", "--json"]);
    assert_eq!(exit, 0, "{run:#}");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["trigger"]["kind"], "api");
    assert_eq!(run["tasks"].as_array().map(Vec::len), Some(2));

    // Read commands are answered from the daemon's store.
    let listed = runs(&project);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let show = project.dag(&["runs", "show", run["run_id"].as_str().unwrap_or_default()]);
    assert!(String::from_utf8_lossy(&show.stdout).contains("dag       quick"));
    let missing = project.dag(&["runs", "show", "nope"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no run `nope`"));

    // Store maintenance goes through the daemon too.
    let gc = project.dag(&["gc", "--dry-run"]);
    assert_eq!(
        gc.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );

    // Status names the DAGs.
    let (exit, status) = project.json(&["daemon", "status", "--json"]);
    assert_eq!(exit, 0);
    assert_eq!(status["running"], true);
    assert_eq!(status["dags"][0]["name"], "quick");

    // A second daemon on the same state directory refuses to start.
    let second = project.dag(&["daemon", "--addr", "127.0.0.1:0"]);
    assert_eq!(second.status.code(), Some(2));
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(message.contains("already serves"), "{message}");

    // Unknown DAGs and params are refused before anything is queued.
    let unknown = project.dag(&["trigger", "quik"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("did you mean `quick`"));
    let bad_param = project.dag(&["trigger", "quick", "--param", "x=1"]);
    assert_eq!(bad_param.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_param.stderr).contains("unknown param `x`"));
}

#[test]
fn the_api_refuses_bad_requests_without_losing_anything() {
    let project = Project::new();
    project.write("dags/quick.yaml", QUICK);
    let daemon = Daemon::start(&project, &[]);
    let addr = &daemon.addr;

    let (status, body) = http(addr, "POST", "/api/runs", br#"{"dag":"nope"}"#, &[]);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no DAG named `nope`"), "{body}");
    let (status, _) = http(addr, "POST", "/api/runs", b"{not json", &[]);
    assert_eq!(status, 400);
    let (status, _) = http(
        addr,
        "POST",
        "/api/runs",
        br#"{"dag":"quick","evil":1}"#,
        &[],
    );
    assert_eq!(status, 400);
    let big = vec![b' '; 2 * 1024 * 1024];
    let (status, _) = http(addr, "POST", "/api/runs", &big, &[]);
    assert_eq!(status, 413);
    let (status, _) = http(addr, "GET", "/api/nothing", b"", &[]);
    assert_eq!(status, 404);

    // Logs are looked up through the store: a path cannot be smuggled in.
    // A secret beside the state directory, named the way an attempt's log
    // is (`<task>.<attempt>.log`), is what a handler that built the path
    // from the request would serve: `.dag/logs/<run>/../../../secret.1.log`.
    project.write("secret.1.log", "the secret\n");
    let (exit, real) = project.json(&["run", "quick", "--json"]);
    assert_eq!(exit, 0, "{real:#}");
    let real = real["run_id"].as_str().unwrap_or_default().to_string();
    let (status, _) = http(addr, "GET", &format!("/api/runs/{real}/logs/a"), b"", &[]);
    assert_eq!(status, 200, "the real log is served");
    for path in [
        format!("/api/runs/{real}/logs/..%2F..%2F..%2Fsecret?attempt=1"),
        format!("/api/runs/{real}/logs/..%2F..%2F..%2Fsecret"),
        format!("/api/runs/{real}%2F..%2F..%2F..%2Fsecret/logs/a"),
        format!("/api/runs/{real}/logs/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret?attempt=1"),
        "/api/runs/..%2F..%2F..%2Fetc%2Fpasswd/logs/a".to_string(),
        "/api/runs/../../etc/passwd/logs/a".to_string(),
    ] {
        let (status, body) = http(addr, "GET", &path, b"", &[]);
        assert!(status == 404 || status == 400, "{path}: {status} {body}");
        assert!(
            !body.contains("the secret") && !body.contains("root:"),
            "{path}: {body}"
        );
    }
    let (status, _) = http(addr, "POST", "/api/runs/nope/cancel", b"", &[]);
    assert_eq!(status, 404);

    // The daemon still works after all that.
    let (exit, run) = project.json(&["run", "quick", "--json", "--force"]);
    assert_eq!(exit, 0, "{run:#}");
    let run_id = run["run_id"].as_str().unwrap_or_default();
    let (status, _) = http(addr, "GET", &format!("/api/runs/{run_id}/logs/a"), b"", &[]);
    assert_eq!(status, 200);
    project.write(
        "dags/talk.yaml",
        "name: talk\ntasks:\n  a:\n    operator: shell\n    params: { command: \"echo hello from a\" }\n",
    );
    let talk: Value = wait_for("the new DAG to load and run", || {
        let output = project.dag(&["run", "talk", "--json"]);
        (output.status.code() == Some(0))
            .then(|| serde_json::from_slice(&output.stdout).ok())
            .flatten()
    });
    let talk_id = talk["run_id"].as_str().unwrap_or_default().to_string();
    let (status, log) = http(
        addr,
        "GET",
        &format!("/api/runs/{talk_id}/logs/a"),
        b"",
        &[],
    );
    assert_eq!(status, 200);
    assert!(log.contains("hello from a"), "the real log: {log}");

    // An unknown task to force is refused like an unknown task to run.
    let (status, body) = http(
        addr,
        "POST",
        "/api/runs",
        br#"{"dag":"quick","options":{"force_tasks":["nope"]}}"#,
        &[],
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("nope"), "{body}");
    // So is an unknown param, naming it.
    let (status, body) = http(
        addr,
        "POST",
        "/api/runs",
        br#"{"dag":"quick","params":{"nope":1}}"#,
        &[],
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("unknown param `nope`"), "{body}");

    // `/api/cli` runs read-only commands only: not `gc` without
    // `--dry-run`, not `run`, and `lineage` only of recorded artifacts.
    for args in [
        &["gc"][..],
        &["run", "quick"][..],
        &["gc", "--keep-runs", "0"][..],
    ] {
        let body = serde_json::json!({ "args": args }).to_string();
        let (status, answer) = http(addr, "POST", "/api/cli", body.as_bytes(), &[]);
        assert_eq!(status, 200, "{answer}");
        let answer: Value = serde_json::from_str(&answer).unwrap_or_default();
        assert_eq!(answer["exit"], 2, "{args:?}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or("")
                .contains("not run through the daemon"),
            "{args:?}: {answer}"
        );
    }
    let body = serde_json::json!({ "args": ["lineage", "/etc/passwd"] }).to_string();
    let (_, answer) = http(addr, "POST", "/api/cli", body.as_bytes(), &[]);
    let answer: Value = serde_json::from_str(&answer).unwrap_or_default();
    assert_eq!(answer["exit"], 2, "{answer}");
    assert!(
        answer["stdout"].as_str().unwrap_or("").is_empty(),
        "{answer}"
    );
    assert!(!answer.to_string().contains("root:"), "{answer}");
    let (status, body) = http(
        addr,
        "POST",
        &format!("/api/runs/{run_id}/cancel"),
        b"",
        &[],
    );
    assert_eq!(status, 409, "{body}");
    let (status, metrics) = http(addr, "GET", "/metrics", b"", &[]);
    assert_eq!(status, 200);
    assert!(
        metrics.contains("dag_runs_total{dag=\"quick\",status=\"succeeded\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dag_trigger_latency_seconds_count{trigger=\"api\"} 3"),
        "{metrics}"
    );
}

#[test]
fn a_token_is_required_off_loopback_and_checked_on_every_request() {
    let project = Project::new();
    project.write("dags/quick.yaml", QUICK);
    let refused = project.dag(&["daemon", "--addr", "0.0.0.0:0"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("DAG_API_TOKEN"));

    // Weak tokens are refused before anything listens, by the daemon and by
    // `dag serve`, with a way to make a good one.
    for weak in ["   ", "x", "fifteen-chars!!"] {
        for args in [
            &["daemon", "--addr", "127.0.0.1:0"][..],
            &["serve", "--addr", "127.0.0.1:0"][..],
        ] {
            let output = project
                .command(args)
                .env("DAG_API_TOKEN", weak)
                .output()
                .expect("run dag");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{args:?} {weak:?}: {stderr}");
            assert!(stderr.contains("openssl rand -hex 32"), "{stderr}");
        }
    }
    assert!(!project.path().join(".dag/daemon.json").exists());

    let log = project.path().join("daemon.log");
    let child = project
        .command(&["daemon", "--addr", "127.0.0.1:0"])
        .env("DAG_API_TOKEN", "s3cret-token-0123456789")
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("daemon");
    let mut daemon = Daemon {
        child,
        addr: String::new(),
        log,
    };
    let info = project.path().join(".dag/daemon.json");
    daemon.addr = wait_for("daemon.json", || {
        let value: Value = serde_json::from_str(&std::fs::read_to_string(&info).ok()?).ok()?;
        value["addr"].as_str().map(String::from)
    });
    let (status, _) = http(&daemon.addr, "GET", "/api/status", b"", &[]);
    assert_eq!(status, 401);
    let (status, _) = http(
        &daemon.addr,
        "GET",
        "/api/status",
        b"",
        &["Authorization: Bearer wrong"],
    );
    assert_eq!(status, 401);
    let (status, _) = http(
        &daemon.addr,
        "GET",
        "/api/status",
        b"",
        &["Authorization: Bearer s3cret-token-0123456789"],
    );
    assert_eq!(status, 200);
    // The CLI without the token is told what to set; with it, it works.
    let without = project.dag(&["runs"]);
    assert_eq!(without.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&without.stderr).contains("DAG_API_TOKEN"));
    let with = project
        .command(&["runs"])
        .env("DAG_API_TOKEN", "s3cret-token-0123456789")
        .output()
        .expect("runs");
    assert_eq!(
        with.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
}

#[test]
fn watched_files_trigger_on_content_change_and_dags_reload_live() {
    let project = Project::new();
    project.write("inbox/a.csv", "x\n1\n");
    project.write(
        "dags/ingest.yaml",
        "name: ingest\nwatch: [\"inbox/*.csv\"]\ntasks:\n  count:\n    operator: shell\n    params: { command: \"cat inbox/*.csv | wc -l > out.txt\" }\n    outputs: { n: out.txt }\n",
    );
    let daemon = Daemon::start(&project, &[]);
    let watch_runs = |project: &Project| -> Vec<Value> {
        runs(project)
            .into_iter()
            .filter(|r| r["trigger"] == "watch")
            .collect()
    };

    // A burst of writes: one run.
    for i in 0..10 {
        project.write("inbox/a.csv", &format!("x\n{i}\n"));
    }
    wait_for("a watch-triggered run", || {
        let runs = watch_runs(&project);
        (runs.len() == 1 && runs[0]["status"] == "succeeded").then_some(())
    });
    // Bursts are settled in order: once a later change to another file has
    // run, nothing of an earlier burst is still on its way. So the run of
    // `file` must be the `expected`-th watch run, triggered by `file` alone.
    let runs_after_change_to = |file: &str, expected: usize| {
        let found = wait_for(&format!("the run for {file}"), || {
            let found = watch_runs(&project);
            found
                .iter()
                .any(|r| r["status"] == "succeeded" && trigger_detail(&project, r).contains(file))
                .then_some(found)
        });
        assert_eq!(found.len(), expected, "{found:#?}\n{}", daemon.log());
        let detail = trigger_detail(&project, &found[0]);
        assert!(
            detail.starts_with(file) && !detail.contains("more"),
            "{detail}"
        );
    };
    project.write("inbox/b.csv", "x\n1\n");
    runs_after_change_to("inbox/b.csv", 2);

    // Same bytes again, and a file the glob does not match: nothing. The
    // next change then runs alone.
    project.write("inbox/a.csv", "x\n9\n");
    project.write("inbox/notes.txt", "hello");
    project.write("inbox/c.csv", "x\n1\n");
    runs_after_change_to("inbox/c.csv", 3);

    // An invalid edit keeps the last valid version; status shows the error.
    project.write(
        "dags/ingest.yaml",
        "name: ingest\ntasks:\n  count:\n    operator: nope\n",
    );
    let status = wait_for("the reload error in status", || {
        let (_, status) = project.json(&["daemon", "status", "--json"]);
        status["dags"][0]["error"].as_str().map(String::from)
    });
    assert!(status.contains("nope"), "{status}");
    // ... and the old version still triggers on a change.
    project.write("inbox/b.csv", "x\n2\n");
    wait_for("a fourth watch-triggered run", || {
        (watch_runs(&project).len() == 4).then_some(())
    });

    // A new DAG file is picked up without a restart.
    project.write(
        "dags/late.yaml",
        "name: late\ntasks:\n  t:\n    operator: noop\n",
    );
    wait_for("the new DAG to load", || {
        let output = project.dag(&["trigger", "late"]);
        output.status.success().then_some(())
    });
}

#[test]
fn a_dag_that_would_overwrite_another_does_not_load_and_status_says_why() {
    let project = Project::new();
    let writes = |name: &str, text: &str| {
        format!(
            "name: {name}\ntasks:\n  t:\n    operator: shell\n    params: {{ command: \"echo {text} > out.txt\" }}\n    outputs: {{ out: out.txt }}\n"
        )
    };
    project.write("dags/make.yaml", &writes("make", "a"));
    let daemon = Daemon::start(&project, &[]);
    project.write("dags/other.yaml", &writes("other", "b"));
    let error = wait_for("the conflict in status", || {
        let (_, status) = project.json(&["daemon", "status", "--json"]);
        let dags = status["dags"].as_array()?.clone();
        let make = dags.iter().find(|d| d["name"] == "make")?;
        make["error"].as_str().map(String::from)
    });
    assert!(
        error.contains("dag::output_conflict_across_dags"),
        "{error}"
    );
    // `make` keeps its last valid version; `other` never loaded.
    let (_, status) = project.json(&["daemon", "status", "--json"]);
    let names: Vec<&str> = status["dags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, ["make"], "{status:#}");
    assert!(!project.dag(&["trigger", "other"]).status.success());
    assert!(
        daemon.log().contains("both write `out.txt`"),
        "{}",
        daemon.log()
    );
}

#[test]
fn dag_trigger_tasks_start_runs_of_other_dags_recording_why() {
    let project = Project::new();
    project.write("dags/quick.yaml", QUICK);
    project.write(
        "dags/parent.yaml",
        "name: parent\ntasks:\n  go:\n    operator: dag.trigger\n    params: { dag: quick, reason: because }\n",
    );
    let _daemon = Daemon::start(&project, &[]);
    let (exit, parent) = project.json(&["run", "parent", "--json"]);
    assert_eq!(exit, 0, "{parent:#}");
    let child = wait_for("the triggered run", || {
        runs(&project)
            .into_iter()
            .find(|r| r["dag"] == "quick" && r["status"] == "succeeded")
    });
    assert_eq!(child["trigger"], "dag");
    let (_, shown) = project.json(&[
        "runs",
        "show",
        child["run_id"].as_str().unwrap_or_default(),
        "--json",
    ]);
    let detail = shown["trigger"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with(&format!(
            "parent run {} task go: because",
            parent["run_id"].as_str().unwrap_or_default()
        )),
        "{detail}"
    );
}

const SLOW: &str = "name: slow\ntasks:\n  first:\n    operator: noop\n  second:\n    operator: shell\n    needs: [first]\n    params: { command: \"touch second-started; sleep 30\" }\n";

#[test]
fn sigterm_drains_and_sigkill_loses_nothing_that_finished() {
    let project = Project::new();
    project.write("dags/slow.yaml", SLOW);

    // SIGKILL mid-run: the finished task survives, the run is interrupted
    // when the next daemon opens the store.
    let mut daemon = Daemon::start(&project, &[]);
    let run_id = kill_after_first_task(&project, &mut daemon, "slow");

    let mut daemon = Daemon::start(&project, &["--grace", "200ms"]);
    let (_, run) = project.json(&["runs", "show", &run_id, "--json"]);
    assert_eq!(run["status"], "interrupted", "{run:#}");
    let first = run["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["id"] == "first").cloned());
    assert_eq!(
        first.map(|t| t["status"].clone()),
        Some(Value::from("succeeded"))
    );

    // SIGTERM: stop accepting, cancel after the grace period, record, exit 0.
    let started = project.path().join("second-started");
    let _ = std::fs::remove_file(&started);
    let trigger = project.dag(&["trigger", "slow", "--json"]);
    let accepted: Value = serde_json::from_slice(&trigger.stdout).expect("json");
    let second_id = accepted["run_id"].as_str().unwrap_or_default().to_string();
    wait_for("the slow task to start", || started.exists().then_some(()));
    daemon.signal("-TERM");
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
    assert!(!project.path().join(".dag/daemon.json").exists());
    // Without a daemon the CLI opens the store itself.
    // Drained like a Ctrl-C'd `dag run`: the run is interrupted (and can be
    // resumed), the task that was running is cancelled.
    let (_, run) = project.json(&["runs", "show", &second_id, "--json"]);
    assert_eq!(run["status"], "interrupted", "{run:#}");
    let second = run["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["id"] == "second").cloned());
    assert_eq!(
        second.map(|t| t["status"].clone()),
        Some(Value::from("cancelled"))
    );
}

#[test]
fn interrupted_runs_resume_after_a_crash_when_the_dag_asks_and_resume_works_through_the_daemon() {
    let project = Project::new();
    project.write(
        "dags/resumable.yaml",
        "name: resumable\nresume_interrupted: true\ntasks:\n  first:\n    operator: noop\n  second:\n    operator: shell\n    needs: [first]\n    params: { command: \"test -f go || sleep 30\" }\n",
    );
    let mut daemon = Daemon::start(&project, &[]);
    let crashed = kill_after_first_task(&project, &mut daemon, "resumable");
    project.write("go", "");

    let _daemon = Daemon::start(&project, &[]);
    let resumed = wait_for("the resumed run to succeed", || {
        runs(&project)
            .into_iter()
            .find(|r| r["trigger"] == "resume" && r["status"] == "succeeded")
    });
    let (_, run) = project.json(&[
        "runs",
        "show",
        resumed["run_id"].as_str().unwrap_or_default(),
        "--json",
    ]);
    assert_eq!(run["resumed_from"], Value::from(crashed.clone()), "{run:#}");
    let status = |id: &str| {
        run["tasks"].as_array().and_then(|t| {
            t.iter()
                .find(|t| t["id"] == id)
                .map(|t| t["status"].clone())
        })
    };
    assert_eq!(
        status("first"),
        Some(Value::from("up_to_date")),
        "carried over, not rerun"
    );
    assert_eq!(status("second"), Some(Value::from("succeeded")));
    let (_, old) = project.json(&["runs", "show", &crashed, "--json"]);
    assert_eq!(old["status"], "interrupted");

    // `dag run --resume` goes through the daemon too.
    project.write(
        "dags/flaky.yaml",
        "name: flaky\ntasks:\n  a:\n    operator: noop\n  b:\n    operator: shell\n    needs: [a]\n    params: { command: \"test -f ok\" }\n",
    );
    let failed: Value = wait_for("the flaky DAG to load and fail", || {
        let output = project.dag(&["run", "flaky", "--json"]);
        (output.status.code() == Some(1))
            .then(|| serde_json::from_slice(&output.stdout).ok())
            .flatten()
    });
    project.write("ok", "");
    let failed_id = failed["run_id"].as_str().unwrap_or_default();
    let (exit, again) = project.json(&["run", "flaky", "--resume", failed_id, "--json"]);
    assert_eq!(exit, 0, "{again:#}");
    assert_eq!(again["resumed_from"], Value::from(failed_id));
    let unknown = project.dag(&["run", "flaky", "--resume", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no run `nope`"));
}

#[test]
fn diagnostics_of_a_command_the_daemon_runs_reach_the_user_who_ran_it() {
    let project = Project::new();
    project.write("dags/quick.yaml", QUICK);
    project.write(
        "dags/broken.yaml",
        "name: broken\ntasks:\n  a:\n    operator: noop\n    needs: [nope]\n",
    );
    let daemon = Daemon::start(&project, &[]);
    for args in [
        &["plan", "broken", "--why"][..],
        &["run", "broken", "--dry-run"][..],
    ] {
        let output = project.dag(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("dag::unknown_dependency") && stderr.contains("broken.yaml:5:"),
            "{args:?} printed no diagnostic:\n{stderr}"
        );
    }
    drop(daemon);
}

#[test]
fn commands_started_while_the_daemon_starts_wait_for_it_instead_of_failing() {
    let project = Project::new();
    project.write("dags/quick.yaml", QUICK);
    let (exit, _) = project.json(&["run", "quick", "--json"]);
    assert_eq!(exit, 0);
    let log = project.path().join("daemon-starting.log");
    let child = project
        .command(&["daemon", "--addr", "127.0.0.1:0"])
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start the daemon");
    let _daemon = Daemon {
        child,
        addr: String::new(),
        log,
    };
    // Right away, and until the daemon answers: never "store in use".
    let mut through_daemon = false;
    for _ in 0..200 {
        let output = project.dag(&["runs"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        if project.path().join(".dag/daemon.json").exists() {
            through_daemon = true;
            break;
        }
    }
    assert!(through_daemon, "the daemon never published daemon.json");
    assert!(!project.path().join(".dag/daemon.starting").exists());
}

#[test]
fn a_dag_file_outside_dags_runs_through_the_daemon_and_one_outside_the_project_is_refused() {
    let project = Project::new();
    project.write("dags/quick.yaml", QUICK);
    project.write(
        "experiments/trial.yaml",
        "name: trial\ninclude: [part.yaml]\ntasks:\n  a:\n    operator: noop\n",
    );
    project.write(
        "experiments/part.yaml",
        "name: part\ntasks:\n  b:\n    operator: noop\n",
    );
    let outside = tempfile::tempdir().expect("another dir");
    let foreign = outside.path().join("foreign.yaml");
    std::fs::write(
        &foreign,
        "name: foreign\ntasks:\n  a:\n    operator: noop\n",
    )
    .expect("write");
    let _daemon = Daemon::start(&project, &[]);

    let output = project.dag(&["run", "experiments/trial.yaml"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("(daemon pid"), "{stderr}");
    let listed = runs(&project);
    assert_eq!(listed[0]["dag"], "trial", "{listed:?}");
    let dry = project.dag(&["run", "experiments/trial.yaml", "--dry-run"]);
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );

    let refused = project.dag(&["run", foreign.to_str().unwrap_or_default()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("outside"), "{stderr}");
}
