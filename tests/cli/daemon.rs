//! `dag daemon`: the real binary as a background process — the CLI going
//! through its API, watch triggers, hot reload, `dag.trigger`, a second
//! daemon refused, the API's refusals, SIGTERM drain, and SIGKILL mid-run
//! losing nothing that finished.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::Project;

struct Daemon {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn start(project: &Project, extra: &[&str]) -> Self {
        let log = unique(project.path().join("daemon.log"));
        let mut args = vec![
            "daemon",
            "--addr",
            "127.0.0.1:0",
            "--reload-every",
            "1h",
            "--debounce",
            "100ms",
        ];
        args.extend_from_slice(extra);
        let child = project
            .command(&args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("daemon log"))
            .spawn()
            .expect("start the daemon");
        let pid = child.id();
        let info = project.path().join(".dag/daemon.json");
        let addr = wait_for("the daemon to write daemon.json", || {
            let text = std::fs::read_to_string(&info).ok()?;
            let value: Value = serde_json::from_str(&text).ok()?;
            (value["pid"].as_u64() == Some(u64::from(pid)))
                .then(|| value["addr"].as_str().map(String::from))
                .flatten()
        });
        Self { child, addr, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the daemon did not exit; its log:\n{}", self.log());
    }
}

fn unique(path: PathBuf) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_file_name(format!("daemon-{n}.log"))
}

fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A raw HTTP request: (status, body).
fn http(addr: &str, method: &str, path: &str, body: &[u8], headers: &[&str]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write");
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn runs(project: &Project) -> Vec<Value> {
    let (exit, value) = project.json(&["runs", "--json", "--limit", "100"]);
    assert_eq!(exit, 0, "{value}");
    value.as_array().cloned().unwrap_or_default()
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
    for path in [
        "/api/runs/..%2F..%2F..%2Fetc%2Fpasswd/logs/a",
        "/api/runs/x/logs/..%2F..%2Fdb",
        "/api/runs/../../etc/passwd/logs/a",
        "/api/runs/%2e%2e/logs/%2e%2e",
    ] {
        let (status, body) = http(addr, "GET", path, b"", &[]);
        assert!(status == 404 || status == 400, "{path}: {status} {body}");
        assert!(!body.contains("root:"), "{path}: {body}");
    }
    let (status, _) = http(addr, "POST", "/api/runs/nope/cancel", b"", &[]);
    assert_eq!(status, 404);

    // The daemon still works after all that.
    let (exit, run) = project.json(&["run", "quick", "--json"]);
    assert_eq!(exit, 0, "{run:#}");
    let run_id = run["run_id"].as_str().unwrap_or_default();
    let (status, _) = http(addr, "GET", &format!("/api/runs/{run_id}/logs/a"), b"", &[]);
    assert_eq!(status, 200);
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
        metrics.contains("dag_runs_total{dag=\"quick\",status=\"succeeded\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dag_trigger_latency_seconds_count{trigger=\"api\"} 1"),
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

    let log = project.path().join("daemon.log");
    let child = project
        .command(&["daemon", "--addr", "127.0.0.1:0"])
        .env("DAG_API_TOKEN", "s3cret")
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
        &["Authorization: Bearer s3cret"],
    );
    assert_eq!(status, 200);
    // The CLI without the token is told what to set; with it, it works.
    let without = project.dag(&["runs"]);
    assert_eq!(without.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&without.stderr).contains("DAG_API_TOKEN"));
    let with = project
        .command(&["runs"])
        .env("DAG_API_TOKEN", "s3cret")
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
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(watch_runs(&project).len(), 1, "{}", daemon.log());

    // Same bytes again, and a file the glob does not match: nothing.
    project.write("inbox/a.csv", "x\n9\n");
    project.write("inbox/notes.txt", "hello");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(watch_runs(&project).len(), 1, "{}", daemon.log());

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
    wait_for("a second watch-triggered run", || {
        (watch_runs(&project).len() == 2).then_some(())
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

const SLOW: &str = "name: slow\ntasks:\n  first:\n    operator: noop\n  second:\n    operator: shell\n    needs: [first]\n    params: { command: \"sleep 30\" }\n";

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
    let trigger = project.dag(&["trigger", "slow", "--json"]);
    let accepted: Value = serde_json::from_slice(&trigger.stdout).expect("json");
    let second_id = accepted["run_id"].as_str().unwrap_or_default().to_string();
    wait_for("the slow task to start", || {
        let (_, status) = project.json(&["daemon", "status", "--json"]);
        (status["active"].as_array()?.len() == 1).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
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
