//! Task logs stay bounded: an attempt keeps the start and the end of what
//! it printed, with a marker counting what was dropped; `dag logs` reads
//! in bounded memory, with `--tail` and `--follow`, with a daemon or
//! without one.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::daemon_support::{Daemon, wait_for};
use super::support::Project;

/// A task printing `megabytes` MiB of `x` between a first and a last line.
fn flood(megabytes: usize) -> String {
    format!(
        "name: flood\ntasks:\n  loud:\n    operator: shell\n    params: {{ command: \"echo FIRST; head -c {} /dev/zero | tr '\\\\0' x; echo; echo LAST\" }}\n",
        megabytes << 20
    )
}

/// Runs `command` to the end; its output and peak resident memory (KiB).
#[expect(
    clippy::zombie_processes,
    reason = "reaped by wait4, which also reports its peak memory"
)]
fn with_peak_memory(mut command: Command) -> (Vec<u8>, i32, i64) {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    let mut stdout = child.stdout.expect("stdout");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut bytes).expect("read stdout");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for the child spawned above; the pointers are valid.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = std::process::ExitStatus::from_raw(status)
        .code()
        .unwrap_or(-1);
    (bytes, code, usage.ru_maxrss)
}

fn run_id(project: &Project, args: &[&str]) -> String {
    let (exit, run) = project.json(args);
    assert_eq!(exit, 0, "{run:#}");
    run["run_id"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_flood_keeps_a_bounded_log_with_both_ends_and_says_what_it_dropped() {
    let project = Project::new();
    project.write("dags/flood.yaml", &flood(5));
    let id = run_id(
        &project,
        &["run", "flood", "--json", "--task-log-limit", "64K"],
    );
    let logs = project.dag(&["logs", &id, "loud"]);
    assert_eq!(logs.status.code(), Some(0));
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.len() < 64 * 1024 + 300, "{} bytes kept", text.len());
    assert!(
        text.starts_with("FIRST\n") && text.ends_with("LAST\n"),
        "{}",
        text.len()
    );
    let marker = text
        .lines()
        .find(|l| l.starts_with("[dag: "))
        .expect("a marker line");
    let dropped: u64 = marker
        .trim_start_matches("[dag: ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a byte count");
    let written = 6 + (5 << 20) + 1 + 5;
    let kept = text.len() as u64 - marker.len() as u64 - 2;
    assert_eq!(dropped + kept, written, "{marker}");
    // The attempt records it too.
    let (_, run) = project.json(&["runs", "show", &id, "--json"]);
    assert_eq!(run["status"], "succeeded");

    let tail = project.dag(&["logs", &id, "loud", "--tail", "1"]);
    assert_eq!(String::from_utf8_lossy(&tail.stdout), "LAST\n");
    let tail = project.dag(&["logs", &id, "loud", "--tail", "2"]);
    assert!(String::from_utf8_lossy(&tail.stdout).ends_with("x\nLAST\n"));
}

#[test]
fn dag_logs_reads_a_large_log_in_bounded_memory_with_and_without_a_daemon() {
    let project = Project::new();
    project.write("dags/flood.yaml", &flood(48));
    let id = run_id(
        &project,
        &["run", "flood", "--json", "--task-log-limit", "1G"],
    );
    let size = 6 + (48 << 20) + 1 + 5;

    // What the same process costs without reading any log (opening the
    // store dominates): `dag logs` may add a little to that, never the log.
    let (_, _, baseline) = with_peak_memory(project.command(&["runs"]));
    let (bytes, code, peak) = with_peak_memory(project.command(&["logs", &id, "loud"]));
    assert_eq!(code, 0);
    assert_eq!(bytes.len(), size);
    assert!(
        peak < baseline + 16 * 1024,
        "dag logs peaked at {peak} KiB for a 48 MiB log ({baseline} KiB without it)"
    );

    let daemon = Daemon::start(&project, &[]);
    let daemon_peak = || -> i64 {
        std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(i64::MAX)
    };
    let (_, _, baseline) = with_peak_memory(project.command(&["runs"]));
    let daemon_before = daemon_peak();
    let (bytes, code, peak) = with_peak_memory(project.command(&["logs", &id, "loud"]));
    assert_eq!(code, 0);
    assert_eq!(bytes.len(), size, "the whole log through the daemon");
    assert!(bytes.ends_with(b"LAST\n"));
    assert!(
        peak < baseline + 16 * 1024,
        "dag logs peaked at {peak} KiB through the daemon ({baseline} KiB without a log)"
    );
    let daemon_after = daemon_peak();
    assert!(
        daemon_after < daemon_before + 16 * 1024,
        "the daemon's peak grew from {daemon_before} to {daemon_after} KiB serving a 48 MiB log"
    );
    let tail = project.dag(&["logs", &id, "loud", "--tail", "1"]);
    assert_eq!(String::from_utf8_lossy(&tail.stdout), "LAST\n");
}

#[test]
fn follow_prints_a_running_attempt_until_it_ends() {
    let project = Project::new();
    project.write(
        "dags/slow.yaml",
        "name: slow\ntasks:\n  talk:\n    operator: shell\n    params: { command: \"echo one; while [ ! -f go ]; do sleep 0.05; done; echo two; echo three\" }\n",
    );
    let _daemon = Daemon::start(&project, &[]);
    let accepted = project.dag(&["trigger", "slow", "--json"]);
    let accepted: Value = serde_json::from_slice(&accepted.stdout).expect("json");
    let id = accepted["run_id"].as_str().unwrap_or_default().to_string();
    // The attempt runs and has written its first line.
    wait_for("the first line", || {
        let logs = project.dag(&["logs", &id, "talk"]);
        String::from_utf8_lossy(&logs.stdout)
            .contains("one")
            .then_some(())
    });
    let follower = project
        .command(&["logs", &id, "talk", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("follow");
    project.write("go", "");
    let output = follower.wait_with_output().expect("follower ends");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "one\ntwo\nthree\n");
    let (_, run) = project.json(&["runs", "show", &id, "--json"]);
    assert_eq!(
        run["status"], "succeeded",
        "the follower ended with the attempt"
    );
}
