//! Hostile input: DAG files built to exhaust memory, hang a reader, read
//! secrets or flood the terminal. Each ends in a diagnostic naming the
//! limit or refusal and where it was hit, within a time and memory bound,
//! with nothing read that should not be and no file content echoed.

use std::os::unix::process::CommandExt;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::daemon_support::{Daemon, wait_for};
use super::support::{Project, mkfifo, repo_root};

/// What one `dag validate` of a hostile file may take.
const TIME_BOUND: Duration = Duration::from_secs(10);
/// The address space a `dag` process gets here: an unbounded parse would
/// hit it and abort instead of finishing with a diagnostic.
const MEMORY_BOUND: u64 = 1 << 30;
/// Most bytes of diagnostics a file may produce.
const OUTPUT_BOUND: usize = 64 * 1024;

/// Runs `dag args` in `project` with the memory bound; returns the output
/// and how long it took.
fn bounded(project: &Project, args: &[&str]) -> (Output, Duration) {
    let mut command = project.command(args);
    // SAFETY: setrlimit is async-signal-safe and only affects the child.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: MEMORY_BOUND,
                rlim_max: MEMORY_BOUND,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let output = command.output().expect("run dag");
    (output, started.elapsed())
}

/// `dag validate --json file`: exit 2 within the bounds, with `code` among
/// the diagnostics; returns them.
fn refused(project: &Project, file: &str, code: &str) -> Vec<Value> {
    let (output, took) = bounded(project, &["validate", "--json", file]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{file}: {stderr}");
    assert!(took < TIME_BOUND, "{file} took {took:?}");
    assert!(
        output.stdout.len() + output.stderr.len() < OUTPUT_BOUND,
        "{file}: {} bytes of output",
        output.stdout.len() + output.stderr.len()
    );
    let json: Value = serde_json::from_slice(&output.stdout).expect("validate --json");
    let diagnostics = json["diagnostics"].as_array().cloned().unwrap_or_default();
    assert!(
        diagnostics.iter().any(|d| d["code"] == code),
        "{file}: no `{code}` in {diagnostics:#?}"
    );
    diagnostics
}

/// Each fixture's first line says what it must produce:
/// `# expect: <code> <line>:<col>`.
#[test]
fn every_hostile_fixture_is_refused_at_its_position_within_bounds() {
    let dir = repo_root().join("tests/fixtures/hostile");
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 6, "{} fixtures", fixtures.len());
    let project = Project::new();
    for fixture in fixtures {
        let text = std::fs::read_to_string(&fixture).expect("read fixture");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("an expect line");
        let (code, position) = expect.split_once(' ').expect("code and position");
        let path = fixture.to_str().expect("utf-8 path");
        let diagnostics = refused(&project, path, code);
        let at = |d: &Value| format!("{}:{}", d["line"], d["column"]);
        assert!(
            diagnostics
                .iter()
                .any(|d| d["code"] == code && at(d) == position),
            "{path}: no `{code}` at {position} in {diagnostics:#?}"
        );
        let rendered = serde_json::to_string(&diagnostics).unwrap_or_default();
        assert!(
            !rendered.contains("root:x:"),
            "{path} echoed a file: {rendered}"
        );
    }
}

#[test]
fn includes_of_fifos_and_escaping_symlinks_are_refused_without_reading() {
    let project = Project::new();
    mkfifo(&project.path().join("dags/pipe.yaml"));
    project.write(
        "dags/fifo.yaml",
        "name: fifo\ninclude: [pipe.yaml]\ntasks:\n  a:\n    operator: noop\n",
    );
    let diagnostics = refused(&project, "dags/fifo.yaml", "dag::include_refused");
    assert!(
        diagnostics[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("a FIFO")),
        "{diagnostics:#?}"
    );
    // A symlink inside the project to a file outside it.
    std::os::unix::fs::symlink("/etc/passwd", project.path().join("dags/secret.yaml"))
        .expect("symlink");
    project.write(
        "dags/link.yaml",
        "name: link\ninclude: [secret.yaml]\ntasks:\n  a:\n    operator: noop\n",
    );
    refused(&project, "dags/link.yaml", "dag::include_refused");
    // `dag run --dry-run` and `plan` refuse the same way, without hanging.
    for args in [&["run", "fifo", "--dry-run"][..], &["plan", "fifo"][..]] {
        let (output, took) = bounded(&project, args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(took < TIME_BOUND, "{args:?} took {took:?}");
    }
}

#[test]
fn oversized_files_are_refused_before_they_are_read_whole() {
    let project = Project::new();
    let mut big = String::from("name: big\ntasks: {}\n");
    big.push_str(&"# padding padding padding padding padding padding padding\n".repeat(160_000));
    project.write("dags/big.yaml", &big);
    refused(&project, "dags/big.yaml", "dag::file_too_large");
}

#[test]
fn ten_thousand_duplicate_keys_and_references_cost_little_and_print_little() {
    let project = Project::new();
    let mut duplicates = String::from("name: dup\ntasks:\n");
    for _ in 0..10_000 {
        duplicates.push_str("  a:\n    operator: noop\n");
    }
    project.write("dags/dup.yaml", &duplicates);
    let diagnostics = refused(&project, "dags/dup.yaml", "dag::duplicate_task");
    assert_eq!(diagnostics.len(), 51, "capped at 50 and a count");
    assert!(
        diagnostics
            .iter()
            .any(|d| d["message"] == "and 9949 more problems in `dags/dup.yaml`"),
        "{:#?}",
        diagnostics.last()
    );

    let references: Vec<String> = (0..10_000)
        .map(|i| format!("{{{{ params.p{i} }}}}"))
        .collect();
    project.write(
        "dags/refs.yaml",
        &format!(
            "name: refs\ntasks:\n  a:\n    operator: shell\n    params: {{ command: \"{}\" }}\n",
            references.join(" ")
        ),
    );
    refused(&project, "dags/refs.yaml", "dag::unknown_template_variable");
    // The text report is bounded too (the `refused` check was on JSON).
    let (output, _) = bounded(&project, &["validate", "dags/refs.yaml"]);
    assert!(
        output.stderr.len() < OUTPUT_BOUND,
        "{} bytes",
        output.stderr.len()
    );
}

#[test]
fn a_hostile_file_in_a_running_daemon_is_a_load_error_and_the_daemon_keeps_serving() {
    let project = Project::new();
    project.write(
        "dags/quick.yaml",
        "name: quick\ntasks:\n  a:\n    operator: noop\n",
    );
    let daemon = Daemon::start(&project, &[]);
    let laughs =
        std::fs::read_to_string(repo_root().join("tests/fixtures/hostile/billion_laughs.yaml"))
            .expect("fixture");
    project.write("dags/laughs.yaml", &laughs);
    mkfifo(&project.path().join("dags/pipe.yaml"));
    project.write(
        "dags/fifo.yaml",
        "name: fifo\ninclude: [pipe.yaml]\ntasks:\n  a:\n    operator: noop\n",
    );
    let status = wait_for("both files to be load errors in status", || {
        let (_, status) = project.json(&["daemon", "status", "--json"]);
        let errors = status["load_errors"].as_array()?.clone();
        (errors.len() == 2).then_some(status)
    });
    let text = status["load_errors"].to_string();
    assert!(
        text.contains("dag::limit") && text.contains("dag::include_refused"),
        "{text}"
    );
    let (_, status) = project.json(&["daemon", "status", "--json"]);
    assert_eq!(
        status["dags"][0]["name"], "quick",
        "the good DAG stays loaded"
    );
    // The daemon still runs things and answers.
    let (exit, run) = project.json(&["run", "quick", "--json"]);
    assert_eq!(exit, 0, "{run:#}\n{}", daemon.log());
    let shown = project.dag(&["daemon", "status"]);
    let printed = String::from_utf8_lossy(&shown.stdout);
    assert!(printed.contains("files that do not load: 2"), "{printed}");
    // Its memory stayed bounded.
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id())).unwrap_or_default();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(peak_kib < 512 * 1024, "daemon peak RSS {peak_kib} KiB");
    // And SIGTERM still drains promptly.
    let mut daemon = daemon;
    let started = Instant::now();
    daemon.signal("-TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
