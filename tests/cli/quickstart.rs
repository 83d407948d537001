//! README's Quickstart, run as written in a fresh copy of the project: every
//! command in it that returns by itself exits 0. The long-running ones (the
//! daemon, the servers, the UI) and those that need a daemon (`trigger`,
//! `cancel`) are run by the daemon and serve tests.

use std::time::Duration;

use super::lifecycle::lifecycle_project;
use super::support::{Project, repo_root, run_within};

/// Commands that run until stopped, or need a daemon.
const LONG_RUNNING: [&str; 5] = [
    "dag serve",
    "dag daemon",
    "dag ui",
    "dag trigger",
    "dag cancel",
];

/// The `dag ...` lines of README's Quickstart block, comments removed.
fn quickstart_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("read README");
    let section = readme
        .split("\n## Quickstart\n")
        .nth(1)
        .expect("README has a Quickstart section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the Quickstart has a sh block");
    block
        .lines()
        .map(|line| line.split(" #").next().unwrap_or(line).trim().to_string())
        .filter(|line| line.starts_with("dag "))
        .collect()
}

fn run_ids(project: &Project) -> Vec<String> {
    let (exit, runs) = project.json(&["runs", "--json"]);
    assert_eq!(exit, 0);
    runs.as_array()
        .expect("`dag runs --json` is a list")
        .iter()
        .filter(|run| run["dag"] == "obesity")
        .filter_map(|run| run["run_id"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn every_quickstart_command_runs_as_written_in_a_fresh_copy() {
    let commands = quickstart_commands();
    assert!(
        commands.len() >= 20,
        "the Quickstart block was not found whole: {commands:?}"
    );
    let project = lifecycle_project();
    let mut ran = 0;
    for command in &commands {
        if LONG_RUNNING
            .iter()
            .any(|long| command == long || command.starts_with(&format!("{long} ")))
        {
            continue;
        }
        // Placeholders name runs of the main job: the newest, and the two
        // newest for a comparison.
        let ids = run_ids(&project);
        let line = command
            .replace("<RUN_ID>", ids.first().map_or("<none>", String::as_str))
            .replace("<RUN_A>", ids.get(1).map_or("<none>", String::as_str))
            .replace("<RUN_B>", ids.first().map_or("<none>", String::as_str));
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        let (exit, stderr) = run_within(&project, &args, Duration::from_secs(300));
        assert_eq!(exit, 0, "`{line}` exited {exit}:\n{stderr}");
        ran += 1;
    }
    assert!(ran >= 20, "only {ran} commands ran");
}
