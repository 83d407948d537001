//! Crashes: `kill -9` of the daemon at seeded random points while runs are
//! queued, of a foreground `dag run` while a task's processes run, and of
//! what they leave behind. No accepted run is lost, `resume_interrupted`
//! survives a CLI command run in between, and no task process outlives
//! the next open of the store unrecorded.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::daemon_support::{Daemon, http, wait_for};
use super::support::Project;

/// A small seeded generator (xorshift64*), so a failing trial can be
/// replayed with `DAG_CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn seed() -> u64 {
    std::env::var("DAG_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd)
        | 1
}

fn status_of(project: &Project, run_id: &str) -> Option<String> {
    let output = project.dag(&["runs", "show", run_id, "--json"]);
    let run: Value = serde_json::from_slice(&output.stdout).ok()?;
    run["status"].as_str().map(String::from)
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let exists = unsafe { libc::kill(pid, 0) } == 0;
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_or(true, |stat| stat.contains(") Z"));
    exists && !zombie
}

fn read_pid(project: &Project, file: &str) -> i32 {
    wait_for(&format!("`{file}`"), || {
        std::fs::read_to_string(project.path().join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    })
}

#[test]
fn no_run_the_daemon_accepted_is_lost_to_kill_9_at_random_points() {
    let mut rng = Rng(seed());
    let project = Project::new();
    project.write(
        "dags/q.yaml",
        "name: q\ntasks:\n  a:\n    operator: noop\n    params: { sleep_ms: 40 }\n  b:\n    operator: noop\n    needs: [a]\n",
    );
    let mut accepted: Vec<String> = Vec::new();
    for trial in 0..5 {
        let mut daemon = Daemon::start(&project, &[]);
        let submissions = 3 + rng.below(12);
        let kill_at = rng.below(submissions + 1);
        for index in 0..submissions {
            if index == kill_at {
                break;
            }
            let (status, body) = http(&daemon.addr, "POST", "/api/runs", br#"{"dag":"q"}"#, &[]);
            assert_eq!(status, 202, "trial {trial}: {body}");
            let answer: Value = serde_json::from_str(&body).unwrap_or_default();
            accepted.push(answer["run_id"].as_str().unwrap_or_default().to_string());
        }
        // Sometimes right after an answer, sometimes a moment into a run.
        if rng.below(2) == 1 {
            let pause = Duration::from_millis(rng.below(120));
            let until = Instant::now() + pause;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        daemon.signal("-KILL");
        daemon.wait_exit();
        // Without a daemon, the CLI opens the store: every accepted run is
        // there, with a status.
        for id in &accepted {
            let status = status_of(&project, id);
            assert!(status.is_some(), "trial {trial}: accepted run {id} is gone");
        }
    }
    // A last start takes up what was queued; everything ends.
    let _daemon = Daemon::start(&project, &[]);
    for id in &accepted {
        let status = wait_for(&format!("run {id} to end"), || {
            status_of(&project, id).filter(|s| s != "queued" && s != "running")
        });
        assert!(
            status == "succeeded" || status == "interrupted",
            "run {id} ended {status}"
        );
    }
    let succeeded = accepted
        .iter()
        .filter(|id| status_of(&project, id).as_deref() == Some("succeeded"))
        .count();
    assert!(succeeded > 0, "{accepted:?}");
}

#[test]
fn resume_interrupted_survives_a_cli_command_run_before_the_daemon_restarts() {
    let mut rng = Rng(seed() ^ 0x77);
    let project = Project::new();
    project.write(
        "dags/resumable.yaml",
        "name: resumable\nresume_interrupted: true\ntasks:\n  first:\n    operator: noop\n  second:\n    operator: shell\n    needs: [first]\n    params: { command: \"test -f go || sleep 30\" }\n",
    );
    for trial in 0..2 {
        let _ = std::fs::remove_file(project.path().join("go"));
        let mut daemon = Daemon::start(&project, &[]);
        let trigger = project.dag(&["trigger", "resumable", "--json"]);
        let accepted: Value = serde_json::from_slice(&trigger.stdout).expect("json");
        let crashed = accepted["run_id"].as_str().unwrap_or_default().to_string();
        wait_for("the first task to finish", || {
            let (_, run) = project.json(&["runs", "show", &crashed, "--json"]);
            (run["tasks"]
                .as_array()?
                .iter()
                .any(|t| t["id"] == "first" && t["status"] != "running"))
            .then_some(())
        });
        daemon.signal("-KILL");
        daemon.wait_exit();
        // Someone looks at what happened first: this CLI command opens the
        // store and does the repair.
        let look = if rng.below(2) == 0 { "runs" } else { "show" };
        let args: Vec<&str> = match look {
            "runs" => vec!["runs"],
            _ => vec!["runs", "show", &crashed],
        };
        let output = project.dag(&args);
        assert_eq!(output.status.code(), Some(0), "trial {trial}: {look}");
        assert_eq!(
            status_of(&project, &crashed).as_deref(),
            Some("interrupted")
        );
        project.write("go", "");

        let _daemon = Daemon::start(&project, &[]);
        let resumed = wait_for("the resumed run to succeed", || {
            let (_, runs) = project.json(&["runs", "--json", "--limit", "100"]);
            runs.as_array()?.iter().find_map(|r| {
                let id = r["run_id"].as_str()?;
                let (_, run) = project.json(&["runs", "show", id, "--json"]);
                (run["resumed_from"].as_str() == Some(crashed.as_str())
                    && run["status"] == "succeeded")
                    .then_some(run)
            })
        });
        assert_eq!(resumed["trigger"]["kind"], "resume", "trial {trial}");
    }
}

#[test]
fn task_processes_die_with_a_killed_engine_and_stragglers_are_killed_and_recorded() {
    let project = Project::new();
    project.write(
        "dags/effect.yaml",
        "name: effect\ntasks:\n  work:\n    operator: shell\n    params: { command: \"echo $$ > sh.pid; setsid sh -c 'echo $$ > escaped.pid; exec sleep 60' & sleep 60 & echo $! > child.pid; sleep 2; touch side_effect\" }\n",
    );
    let mut run = project
        .command(&["run", "effect"])
        .spawn()
        .expect("dag run");
    let shell = read_pid(&project, "sh.pid");
    let escaped = read_pid(&project, "escaped.pid");
    let child = read_pid(&project, "child.pid");
    run.kill().expect("SIGKILL dag run");
    let _ = run.wait();
    // The task's shell dies with the engine, so its side effect never comes.
    wait_for("the task's shell to die with the engine", || {
        (!alive(shell)).then_some(())
    });
    // Its children outlived it (their parent died, not them)...
    assert!(alive(child) || alive(escaped), "nothing left to find");
    // ... until the next open of the store finds, kills and records them.
    let (exit, runs) = project.json(&["runs", "--json"]);
    assert_eq!(exit, 0);
    for pid in [child, escaped] {
        wait_for(&format!("process {pid} to be killed"), || {
            (!alive(pid)).then_some(())
        });
    }
    let id = runs[0]["run_id"].as_str().unwrap_or_default().to_string();
    assert_eq!(runs[0]["status"], "interrupted");
    let shown = project.dag(&["runs", "show", &id]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("outlived"), "{text}");
    assert!(!project.path().join("side_effect").exists());
}

#[test]
fn temporary_files_of_killed_restores_and_registry_writes_go_at_the_next_open() {
    let project = Project::new();
    project.write("dags/a.yaml", "name: a\ntasks:\n  t:\n    operator: noop\n");
    let (exit, _) = project.json(&["run", "a", "--json"]);
    assert_eq!(exit, 0);
    // What a restore and an alias write killed mid-way leave (4194305 is
    // above any Linux pid_max, so that process is certainly gone).
    project.write(
        ".dag/cache/.restores/4194305.0.journal",
        &format!("{}\n", project.path().join("data/out.csv").display()),
    );
    let temp = project.write("data/.out.csv.4194305.0.tmp", &"x".repeat(10_000));
    let alias = project.write(".dag/models/obesity/.aliases.json.4194305.tmp", "{");
    let mine = project.write("data/.out.csv.notes", "a user's file");
    let output = project.dag(&["runs"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(!temp.exists() && !alias.exists(), "debris left");
    assert!(mine.exists(), "a file that is not ours was removed");
}
