//! A killed or interrupted `dag run` loses nothing that finished.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::support::{Project, task};

fn chain(n: usize, sleep: &str) -> String {
    let mut text = String::from("name: chain\ntasks:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  t{i:02}:\n    operator: shell\n    params: {{ command: \"sleep {sleep}\" }}\n"
        ));
        if i > 0 {
            text.push_str(&format!("    needs: [t{:02}]\n", i - 1));
        }
    }
    text
}

#[test]
fn kill_9_mid_run_keeps_every_task_reported_done_and_marks_the_run_interrupted() {
    for kill_after in [1usize, 4, 9] {
        let project = Project::new();
        project.write("dags/chain.yaml", &chain(30, "0.05"));
        let mut child = project
            .command(&["run", "chain"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn dag run");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut reported = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("utf-8 line");
            // `[ 3/30] ok        t02     52ms`
            let words: Vec<&str> = line.split_whitespace().collect();
            if let Some(at) = words.iter().position(|w| *w == "ok") {
                reported.push(words.get(at + 1).expect("task id after status").to_string());
            }
            if reported.len() >= kill_after {
                break;
            }
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        assert_eq!(reported.len(), kill_after);

        let (_, runs) = project.json(&["runs", "--json"]);
        assert_eq!(runs[0]["status"], "interrupted", "{runs:#}");
        let (_, run) = project.json(&[
            "runs",
            "show",
            runs[0]["run_id"].as_str().expect("id"),
            "--json",
        ]);
        for id in &reported {
            assert_eq!(
                task(&run, id)["status"],
                "succeeded",
                "task {id} was reported done but not recorded"
            );
        }
    }
}

#[test]
fn ctrl_c_cancels_running_tasks_records_them_and_exits_130() {
    let project = Project::new();
    project.write(
        "dags/long.yaml",
        "name: long\ntasks:\n  quick:\n    operator: noop\n  sleeper:\n    operator: shell\n    needs: [quick]\n    params: { command: \"touch started; sleep 60\" }\n  after:\n    operator: noop\n    needs: [sleeper]\n",
    );
    let mut child = project
        .command(&["run", "long"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn dag run");
    // Interrupt only once `sleeper` is really running.
    let marker = project.path().join("started");
    let waiting = Instant::now();
    while !marker.exists() && waiting.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(marker.exists(), "`sleeper` never started");
    let pid = i32::try_from(child.id()).expect("pid fits");
    // SAFETY: sending SIGINT to our own child process.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let started = Instant::now();
    let status = child.wait().expect("dag run exits");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "Ctrl-C did not stop the run promptly"
    );
    assert_eq!(status.code(), Some(130));
    let (_, runs) = project.json(&["runs", "--json"]);
    assert_eq!(runs[0]["status"], "interrupted");
    let (_, run) = project.json(&[
        "runs",
        "show",
        runs[0]["run_id"].as_str().expect("id"),
        "--json",
    ]);
    assert_eq!(task(&run, "quick")["status"], "succeeded");
    assert_eq!(task(&run, "sleeper")["status"], "cancelled");
    assert_eq!(task(&run, "after")["status"], "cancelled");
}
