//! What must hold after every cycle of the soak test, read from outside:
//! `dag runs`, `dag models list|history`, the files on disk and a final
//! `dag run obesity` with its `plan --why`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::support::Project;

/// What the checks remember between cycles.
#[derive(Default)]
pub struct Ledger {
    /// Every run seen, by id: its `dag runs show --json`.
    pub runs: BTreeMap<String, Value>,
    /// Run ids, oldest first.
    order: Vec<String>,
    /// Runs the script made fail on purpose, with the message they must show.
    pub expected_failures: BTreeMap<String, String>,
    /// Alias moves made by hand so far.
    pub moves_by_hand: usize,
}

pub fn blake3_of(project: &Project, path: &str) -> Option<String> {
    let bytes = std::fs::read(project.path().join(path)).ok()?;
    Some(blake3::hash(&bytes).to_hex().to_string())
}

pub fn versions(project: &Project) -> Vec<Value> {
    let (exit, models) = project.json(&["models", "list", "--json"]);
    assert_eq!(exit, 0, "{models:#}");
    models.as_array().cloned().unwrap_or_default()
}

/// The version an alias points at.
pub fn aliased(project: &Project, alias: &str) -> Option<Value> {
    versions(project).into_iter().find(|v| {
        v["aliases"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == alias))
    })
}

impl Ledger {
    /// Reads the runs made since the last call.
    fn refresh(&mut self, project: &Project) {
        let (exit, list) = project.json(&["runs", "--json", "--limit", "100000"]);
        assert_eq!(exit, 0, "{list:#}");
        // Newest first; `order` keeps the oldest first.
        for run in list.as_array().cloned().unwrap_or_default().iter().rev() {
            let id = run["run_id"].as_str().unwrap_or_default().to_string();
            if !self.runs.contains_key(&id) {
                let (_, shown) = project.json(&["runs", "show", &id, "--json"]);
                self.runs.insert(id.clone(), shown);
                self.order.push(id);
            }
        }
    }

    /// Every invariant of the loop; `cycle` names the failure.
    pub fn check(&mut self, project: &Project, cycle: &str) {
        self.refresh(project);
        self.no_unexpected_failure(cycle);
        self.every_run_records_its_trigger(cycle);
        production_passed_its_gate_on_shared_rows(project, cycle);
        self.no_dag_overwrote_another(project, cycle);
        self.history_tells_the_whole_story(project, cycle);
        main_pipeline_is_up_to_date_or_says_why(project, cycle);
        self.refresh(project);
        self.no_unexpected_failure(cycle);
        self.no_dag_overwrote_another(project, cycle);
    }

    fn no_unexpected_failure(&self, cycle: &str) {
        for (id, run) in &self.runs {
            match self.expected_failures.get(id) {
                None => assert_eq!(run["status"], "succeeded", "{cycle}: run {id} {run:#}"),
                Some(message) => {
                    assert_eq!(run["status"], "failed", "{cycle}: run {id}");
                    let said = run["tasks"].as_array().is_some_and(|tasks| {
                        tasks.iter().any(|t| {
                            t["status"] == "failed"
                                && t["reason"].as_str().is_some_and(|r| r.contains(message))
                        })
                    });
                    assert!(said, "{cycle}: run {id} does not say `{message}`: {run:#}");
                }
            }
        }
    }

    fn every_run_records_its_trigger(&self, cycle: &str) {
        for (id, run) in &self.runs {
            let kind = run["trigger"]["kind"].as_str().unwrap_or_default();
            let detail = run["trigger"]["detail"].as_str().unwrap_or_default();
            match kind {
                "cli" => assert!(detail.starts_with("dag run "), "{cycle}: {id}: {detail}"),
                "dag" => {
                    // `<parent dag> run <run id> task <task>: <reason>`
                    let parent = detail.split_whitespace().nth(2).unwrap_or_default();
                    assert!(
                        self.runs.contains_key(parent)
                            && detail.contains("task trigger_retraining: drift in"),
                        "{cycle}: {id} names no known parent run: {detail}"
                    );
                }
                other => panic!("{cycle}: run {id} has trigger `{other}`"),
            }
        }
    }

    /// For each DAG, the outputs its newest run recorded are on disk as it
    /// left them (no other DAG rewrote them), and no path was ever written
    /// by two DAGs.
    fn no_dag_overwrote_another(&self, project: &Project, cycle: &str) {
        let mut writers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut newest: BTreeMap<String, &Value> = BTreeMap::new();
        for run in self.order.iter().filter_map(|id| self.runs.get(id)) {
            let dag = run["dag"].as_str().unwrap_or_default().to_string();
            for output in outputs(run) {
                writers.entry(output.0).or_default().insert(dag.clone());
            }
            newest.insert(dag, run);
        }
        for (path, dags) in &writers {
            assert_eq!(dags.len(), 1, "{cycle}: `{path}` was written by {dags:?}");
        }
        for (dag, run) in newest {
            for (path, digest) in outputs(run) {
                assert_eq!(
                    blake3_of(project, &path).as_deref(),
                    Some(digest.as_str()),
                    "{cycle}: `{path}` of `{dag}` changed since run {}",
                    run["run_id"]
                );
            }
        }
    }

    fn history_tells_the_whole_story(&self, project: &Project, cycle: &str) {
        let (exit, history) = project.json(&["models", "history", "obesity", "--json"]);
        assert_eq!(exit, 0, "{history:#}");
        let events = history.as_array().cloned().unwrap_or_default();
        let mut at: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_hand = 0;
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event["seq"], i + 1, "{cycle}: events out of order");
            assert!(
                event["at"].as_str().is_some_and(|t| t.ends_with('Z')),
                "{event}"
            );
            let alias = event["alias"].as_str().unwrap_or_default().to_string();
            assert_eq!(
                event["from"].as_u64(),
                at.get(&alias).copied(),
                "{cycle}: `{alias}` moved from where it was not: {event}"
            );
            at.insert(alias, event["to"].as_u64().unwrap_or_default());
            let by = &event["by"];
            match by["run_id"].as_str() {
                Some(run_id) => {
                    let run = self.runs.get(run_id).unwrap_or_else(|| {
                        panic!("{cycle}: move by unknown run {run_id}: {event}")
                    });
                    assert_eq!(run["dag"], by["dag"], "{cycle}: {event}");
                    let task = by["task_id"].as_str().unwrap_or_default();
                    assert!(
                        ["register_forest", "promote"].contains(&task),
                        "{cycle}: {event}"
                    );
                }
                None => {
                    assert!(
                        by["command"]
                            .as_str()
                            .is_some_and(|c| c.starts_with("dag models "))
                    );
                    by_hand += 1;
                }
            }
        }
        assert_eq!(by_hand, self.moves_by_hand, "{cycle}: moves by hand");
        for version in versions(project) {
            for alias in version["aliases"].as_array().cloned().unwrap_or_default() {
                let alias = alias.as_str().unwrap_or_default();
                assert_eq!(
                    at.get(alias).copied(),
                    version["version"].as_u64(),
                    "{cycle}: history does not end where `{alias}` is"
                );
            }
        }
        let champion = aliased(project, "champion").map(|v| v["version"].clone());
        let production = aliased(project, "production").map(|v| v["version"].clone());
        assert_eq!(champion, production, "{cycle}: champion follows production");
    }
}

/// `dag run obesity`: every task up to date, or `plan --why` and the run
/// say why not.
fn main_pipeline_is_up_to_date_or_says_why(project: &Project, cycle: &str) {
    let (_, why) = project.json(&["plan", "obesity", "--why", "--json"]);
    let predicted: BTreeMap<String, Value> = why["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t["id"].as_str().unwrap_or_default().to_string(), t))
        .collect();
    let (exit, run) = project.json(&["run", "obesity", "--json"]);
    assert_eq!(exit, 0, "{cycle}: {run:#}");
    for task in run["tasks"].as_array().cloned().unwrap_or_default() {
        let id = task["id"].as_str().unwrap_or_default();
        if task["status"] == "up_to_date" {
            continue;
        }
        let explained = task["reason"].as_str().is_some_and(|r| !r.is_empty())
            || predicted.get(id).is_some_and(|p| {
                p["decision"] == "run" && p["reasons"].as_array().is_some_and(|r| !r.is_empty())
            });
        assert!(
            explained,
            "{cycle}: `{id}` ran without a reason: {task:#} / {why:#}"
        );
    }
}

/// `(path, digest)` of every output a run's finished tasks recorded.
fn outputs(run: &Value) -> Vec<(String, String)> {
    run["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|t| t["status"] == "succeeded" || t["status"] == "up_to_date")
        .flat_map(|t| t["outputs"].as_array().cloned().unwrap_or_default())
        .map(|o| {
            (
                o["path"].as_str().unwrap_or_default().to_string(),
                o["digest"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// `production` points at a version with a passed verdict against an older
/// champion (or none, for the first), both scored on one set of rows.
fn production_passed_its_gate_on_shared_rows(project: &Project, cycle: &str) {
    let production =
        aliased(project, "production").unwrap_or_else(|| panic!("{cycle}: nothing in production"));
    let version = production["version"].as_u64().unwrap_or_default();
    let gates = &production["gates"];
    let passed = gates.as_array().into_iter().flatten().any(|gate| {
        let champion = gate["champion"]["version"].as_u64();
        gate["passed"] == true
            && gate["challenger"]["version"] == version
            && gate["rows"]["count"].as_u64().is_some_and(|n| n >= 100)
            && gate["rows"]["digest"]
                .as_str()
                .is_some_and(|d| d.len() == 64)
            && match champion {
                None => version == 1,
                Some(champion) => {
                    champion < version && gate["champion"]["metrics"]["f1_macro"].is_number()
                }
            }
    });
    assert!(
        passed,
        "{cycle}: production v{version} has no passing verdict: {gates:#}"
    );
}
