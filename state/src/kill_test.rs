//! Durability under SIGKILL, with real processes.
//!
//! The test binary re-executes itself (`std::env::current_exe()`) selecting
//! one helper test that only does something when its environment variable
//! names a store directory; run normally, the helpers return at once. The
//! writer helper commits one task per commit and reports `committed <n>`
//! after each `commit` returns; the parent kills it at different moments and
//! checks that everything reported is durable and that the run is repaired.

use std::io::{BufRead, BufReader, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::test_support::{TestResult, artifact, attempt, event, run, task};
use crate::{AttemptStatus, RunStatus, StateError, Store, TaskStatus, Write};

const WRITER_ENV: &str = "DAG_STATE_KILL_CHILD";
const HOLDER_ENV: &str = "DAG_STATE_LOCK_CHILD";
const RUN_ID: &str = "20240501-120000-kill";

fn task_id(index: u64) -> String {
    format!("task-{index:06}")
}

/// Child mode: commits one succeeded task per batch, forever, reporting each
/// commit on stdout. Stops when stdout is gone (the parent went away).
#[test]
fn writer_child_commits_until_killed() -> TestResult {
    let Some(dir) = std::env::var_os(WRITER_ENV) else {
        return Ok(());
    };
    let (store, _) = Store::open(Path::new(&dir))?;
    store.commit(vec![Write::Run(run(RUN_ID, "kill", RunStatus::Running))])?;
    let mut stdout = std::io::stdout().lock();
    for index in 0..1_000_000u64 {
        let id = task_id(index);
        let mut record = task(RUN_ID, &id, TaskStatus::Succeeded);
        record.outputs = vec![artifact(
            &format!("out/{id}.csv"),
            &format!("digest-{index}"),
        )];
        let mut finished = event(RUN_ID, "task_finished");
        finished.task_id = Some(id.clone());
        // Enough payload that a kill often lands inside the write.
        finished.detail = json!({ "index": index, "padding": "x".repeat(2048) });
        let mut running = task(RUN_ID, &task_id(index + 1), TaskStatus::Running);
        running.attempts = 1;
        store.commit(vec![
            Write::Task(record),
            Write::Attempt(attempt(RUN_ID, &id, 1, AttemptStatus::Succeeded)),
            Write::Event(finished),
            Write::Task(running),
            Write::Attempt(attempt(
                RUN_ID,
                &task_id(index + 1),
                1,
                AttemptStatus::Running,
            )),
        ])?;
        if writeln!(stdout, "committed {index}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            break;
        }
    }
    Ok(())
}

/// Child mode: holds the store open until stdin closes.
#[test]
fn holder_child_keeps_the_store_open() -> TestResult {
    let Some(dir) = std::env::var_os(HOLDER_ENV) else {
        return Ok(());
    };
    let (_store, _) = Store::open(Path::new(&dir))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "opened")?;
    stdout.flush()?;
    let mut rest = Vec::new();
    std::io::stdin().read_to_end(&mut rest)?;
    Ok(())
}

fn spawn_child(
    test_name: &str,
    env: &str,
    dir: &Path,
) -> Result<Child, Box<dyn std::error::Error>> {
    let child = Command::new(std::env::current_exe()?)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(env, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    Ok(child)
}

/// Reads the child's stdout until `wanted` lines contain `marker`; returns
/// the last one from the marker on (the test harness may have printed the
/// test's name on the same line). Fails if the child ends first.
fn read_until(
    child: &mut Child,
    marker: &str,
    wanted: usize,
) -> Result<String, Box<dyn std::error::Error>> {
    let stdout = child.stdout.as_mut().ok_or("child stdout is not piped")?;
    let mut seen = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(start) = line.find(marker) {
            seen += 1;
            if seen == wanted {
                return Ok(line[start..].to_owned());
            }
        }
    }
    Err(format!("child ended after {seen} `{marker}` lines, wanted {wanted}").into())
}

fn killed_writer_leaves_reported_commits_durable(kill_after: usize) -> TestResult {
    let temp = tempfile::tempdir()?;
    let dir: PathBuf = temp.path().join("state");
    let mut child = spawn_child(
        "kill_test::writer_child_commits_until_killed",
        WRITER_ENV,
        &dir,
    )?;
    let last_line = read_until(&mut child, "committed ", kill_after);
    child.kill()?; // SIGKILL on Unix
    child.wait()?;
    let last_reported: u64 = last_line?.trim_start_matches("committed ").parse()?;

    let (store, report) = Store::open(&dir)?;
    assert_eq!(report.interrupted_runs, [RUN_ID]);
    let run = store.run(RUN_ID)?.ok_or("the run is missing")?;
    assert_eq!(run.status, RunStatus::Interrupted);

    for index in 0..=last_reported {
        let task = store.task(RUN_ID, &task_id(index))?;
        assert_eq!(
            task.map(|task| task.status),
            Some(TaskStatus::Succeeded),
            "task {index} was reported committed (kill after {kill_after})"
        );
    }
    // Each commit is atomic: tasks finished and their events agree, and the
    // one task left running was interrupted along with its attempt.
    let tasks = store.tasks(RUN_ID)?;
    let succeeded = tasks
        .iter()
        .filter(|task| task.status == TaskStatus::Succeeded)
        .count();
    let finished_events = store
        .events(RUN_ID)?
        .iter()
        .filter(|event| event.kind == "task_finished")
        .count();
    assert_eq!(succeeded, finished_events);
    assert_eq!(tasks.len(), succeeded + 1);
    assert!(tasks.iter().all(|task| task.status != TaskStatus::Running));
    assert!(
        store
            .attempts(RUN_ID)?
            .iter()
            .all(|attempt| attempt.status != AttemptStatus::Running)
    );
    assert_eq!(
        store
            .producers_of_path(&format!("out/{}.csv", task_id(last_reported)))?
            .len(),
        1
    );
    Ok(())
}

#[test]
fn killed_writer_leaves_every_reported_commit_durable() -> TestResult {
    for kill_after in [1, 3, 17, 60, 150] {
        killed_writer_leaves_reported_commits_durable(kill_after)?;
    }
    Ok(())
}

#[test]
fn store_held_by_another_process_is_locked_until_it_exits() -> TestResult {
    let temp = tempfile::tempdir()?;
    let dir = temp.path().join("state");
    let mut child = spawn_child(
        "kill_test::holder_child_keeps_the_store_open",
        HOLDER_ENV,
        &dir,
    )?;
    let opened = read_until(&mut child, "opened", 1);
    let second = Store::open(&dir).map(|_| ());
    drop(child.stdin.take());
    let status = child.wait()?;
    opened?;
    assert!(
        matches!(second, Err(StateError::Locked { .. })),
        "{second:?}"
    );
    assert!(status.success());
    Store::open(&dir)?;
    Ok(())
}
