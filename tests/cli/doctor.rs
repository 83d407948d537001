//! A damaged or missing store: a message that says what is damaged and
//! what to do (no storage-engine internals), and `dag doctor` to check,
//! repair or rebuild it.

use super::support::Project;

fn project_with_history() -> Project {
    let project = Project::new();
    project.write(
        "dags/a.yaml",
        "name: a\ntasks:\n  t:\n    operator: shell\n    params: { command: \"echo hi > out.txt\" }\n    outputs: { out: out.txt }\n",
    );
    let (exit, run) = project.json(&["run", "a", "--json"]);
    assert_eq!(exit, 0, "{run:#}");
    project
}

/// Overwrites the store's log with bytes sled cannot read.
fn damage(project: &Project) {
    let garbage: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(project.path().join(".dag/db/db"), garbage).expect("damage the store");
}

#[test]
fn a_healthy_store_checks_clean() {
    let project = project_with_history();
    let output = project.dag(&["doctor"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("healthy"), "{stdout}");
    let (exit, json) = project.json(&["doctor", "--json"]);
    assert_eq!(exit, 0);
    assert_eq!(json["healthy"], true);
    assert_eq!(json["entries"]["runs"], 1);
}

#[test]
fn a_damaged_store_says_what_to_do_and_rebuild_starts_over_keeping_the_rest() {
    let project = project_with_history();
    damage(&project);
    let output = project.dag(&["runs"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("is damaged"), "{stderr}");
    assert!(stderr.contains("dag doctor"), "{stderr}");
    for internal in ["Inline(", "panicked", "backtrace", "Some("] {
        assert!(!stderr.contains(internal), "`{internal}` in: {stderr}");
    }
    let output = project.dag(&["doctor"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("does not open") && stdout.contains("--rebuild"),
        "{stdout}"
    );

    let output = project.dag(&["doctor", "--rebuild"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("moved the store aside"), "{stdout}");
    assert!(stdout.contains("kept: 1 run-cache entry"), "{stdout}");
    assert!(stdout.contains("lost: the run history"), "{stdout}");
    let aside = std::fs::read_dir(project.path().join(".dag"))
        .expect("state dir")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("db.moved-"));
    assert!(aside, "the damaged store was not kept");
    let (exit, runs) = project.json(&["runs", "--json"]);
    assert_eq!(exit, 0);
    assert_eq!(runs, serde_json::json!([]));
}

#[test]
fn a_deleted_store_beside_its_cache_is_reported_not_silently_started_over() {
    let project = project_with_history();
    std::fs::remove_dir_all(project.path().join(".dag/db")).expect("delete the store");
    for args in [&["runs"][..], &["run", "a"][..]] {
        let output = project.dag(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains("no run history"), "{stderr}");
        assert!(stderr.contains("1 run-cache entry"), "{stderr}");
        assert!(stderr.contains("dag doctor --rebuild"), "{stderr}");
    }
    assert!(
        !project.path().join(".dag/db/db").exists(),
        "an empty store was created"
    );
    let output = project.dag(&["doctor", "--rebuild"]);
    assert_eq!(output.status.code(), Some(0));
    let (exit, _) = project.json(&["run", "a", "--json"]);
    assert_eq!(exit, 0);
}
