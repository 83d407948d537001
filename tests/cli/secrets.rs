//! Secrets: declared under `secrets:` from an environment variable or a
//! file, used as `{{ secrets.NAME }}`, masked in logs, absent from every
//! record and from cache keys, and a missing one fails only its users.

use std::path::Path;

use super::support::Project;

const TOKEN: &str = "tok-8c1f40b9e2";
const PASSWORD: &str = "pw-51d0a7c3f6";

const DAG: &str = r#"name: secretive
params: { port: 8080 }
secrets:
  token: { env: DAG_TEST_TOKEN }
  password: { file: secret.txt }
tasks:
  call:
    operator: shell
    params:
      env: { TOKEN: "{{ secrets.token }}", PORT: "{{ params.port }}" }
      command: "echo \"calling with $TOKEN and {{ secrets.password }} on $PORT\"; printf %s \"$TOKEN\" | rev > out.txt"
    outputs: { out: out.txt }
  plain:
    operator: shell
    params: { command: "echo no secrets here" }
"#;

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_containing(&path, needle, found);
        } else if std::fs::read(&path)
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        {
            found.push(path.display().to_string());
        }
    }
}

#[test]
fn secrets_reach_the_task_and_nothing_the_engine_keeps() {
    let project = Project::new();
    project.write("dags/secretive.yaml", DAG);
    project.write("secret.txt", &format!("{PASSWORD}\n"));
    let run = project
        .command(&["run", "secretive", "--json"])
        .env("DAG_TEST_TOKEN", TOKEN)
        .output()
        .expect("dag runs");
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        project.path().join("out.txt").exists(),
        "the task saw the token"
    );

    let log = project.dag(&["logs", "latest", "call"]);
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(log.contains("calling with *** and *** on 8080"), "{log}");
    for output in [&run.stdout, &run.stderr] {
        let text = String::from_utf8_lossy(output);
        assert!(!text.contains(TOKEN) && !text.contains(PASSWORD), "{text}");
    }
    let (_, shown) = project.json(&["runs", "show", "latest", "--json"]);
    let shown = shown.to_string();
    assert!(
        !shown.contains(TOKEN) && !shown.contains(PASSWORD),
        "{shown}"
    );
    // Nothing on disk but the secret's own file holds a value.
    for secret in [TOKEN, PASSWORD] {
        let mut found = Vec::new();
        files_containing(&project.path().join(".dag"), secret, &mut found);
        assert!(found.is_empty(), "{secret} found in {found:?}");
    }

    // A rotated token is not a change of the task: it stays up to date.
    let (exit, again) = {
        let output = project
            .command(&["run", "secretive", "--json"])
            .env("DAG_TEST_TOKEN", "tok-rotated")
            .output()
            .expect("dag runs");
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        (output.status.code(), json)
    };
    assert_eq!(exit, Some(0), "{again:#}");
    let call = super::support::task(&again, "call");
    assert_eq!(call["status"], "up_to_date", "{again:#}");
}

#[test]
fn a_missing_secret_fails_only_the_tasks_that_use_it_and_says_what_to_set() {
    let project = Project::new();
    project.write("dags/secretive.yaml", DAG);
    project.write("secret.txt", PASSWORD);
    let run = project
        .command(&["run", "secretive", "--json"])
        .env_remove("DAG_TEST_TOKEN")
        .output()
        .expect("dag runs");
    assert_eq!(run.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap_or_default();
    let call = super::support::task(&json, "call");
    assert_eq!(call["status"], "failed");
    assert!(
        call["reason"].as_str().is_some_and(|r| r.contains(
            "secret `token` has no value: the environment variable `DAG_TEST_TOKEN` is not set"
        )),
        "{json:#}"
    );
    assert_eq!(super::support::task(&json, "plain")["status"], "succeeded");
}

#[test]
fn a_secret_file_that_is_a_fifo_a_device_or_too_large_fails_the_task_without_reading_it() {
    let project = Project::new();
    super::support::mkfifo(&project.path().join("fifo"));
    project.write("big.txt", &"k".repeat(64 * 1024 + 1));
    let cases = [
        ("fifo", "it is a FIFO, not a regular file"),
        ("/dev/zero", "it is a device, not a regular file"),
        ("big.txt", "it is larger than 65536 bytes"),
    ];
    for (file, reason) in cases {
        project.write(
            "dags/key.yaml",
            &format!(
                "name: key\nsecrets:\n  key: {{ file: {file} }}\ntasks:\n  use:\n    operator: shell\n    params: {{ command: \"echo {{{{ secrets.key }}}}\" }}\n"
            ),
        );
        // Reading a FIFO would block the run for good, and `/dev/zero`
        // would fill the memory: each must end at once.
        let (exit, stderr) = super::support::run_within(
            &project,
            &["run", "key"],
            std::time::Duration::from_secs(60),
        );
        assert_eq!(exit, 1, "{file}: {stderr}");
        let (_, run) = project.json(&["runs", "show", "latest", "--json"]);
        let used = super::support::task(&run, "use");
        assert_eq!(used["status"], "failed", "{run:#}");
        assert!(
            used["reason"].as_str().is_some_and(|r| r.contains(reason)),
            "{file}: {run:#}"
        );
    }
}
