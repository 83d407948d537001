//! `dag doctor`: checks the state store, repairs what can be repaired in
//! place, or moves a store that cannot be opened aside and starts a new
//! one — saying each time what is kept and what is lost.

use serde_json::{Value, json};

use super::args::{DoctorArgs, Global};
use super::console::outln;
use super::{CliResult, Exit, Failure};
use crate::record::error_chain;
use crate::workspace::{OpenError, history_elsewhere, open_anyway};

/// Most problems listed; the rest are counted.
const SHOWN: usize = 50;

pub fn doctor(global: &Global, args: &DoctorArgs) -> CliResult {
    if args.rebuild {
        return rebuild(global, args.json);
    }
    // The daemon runs `dag doctor` for clients against the store it holds.
    let store = match crate::workspace::open_store(&global.state_dir) {
        Ok(store) => store,
        Err(OpenError::Locked { .. }) => {
            return Err(Failure::internal(
                "the store is in use by another process; stop it (`dag daemon stop`, or let the `dag run` finish) and run `dag doctor` again",
            ));
        }
        Err(error @ (OpenError::Damaged(_) | OpenError::MissingHistory { .. })) => {
            let message = error.to_string();
            if args.json {
                outln!(
                    "{}",
                    json!({ "healthy": false, "opens": false, "problem": message })
                );
            } else {
                outln!("the store does not open: {message}");
                outln!(
                    "nothing in it can be repaired in place; `dag doctor --rebuild` moves it aside (nothing is deleted) and starts a new history"
                );
            }
            return Err(Failure::silent(Exit::TaskFailed));
        }
        Err(other) => return Err(Failure::internal(other.to_string())),
    };
    let report = store
        .check()
        .map_err(|e| Failure::internal(error_chain(&e)))?;
    let repaired = if args.repair && !report.is_healthy() {
        Some(
            store
                .repair(&report)
                .map_err(|e| Failure::internal(error_chain(&e)))?,
        )
    } else {
        None
    };
    let records: usize = report.entries.iter().map(|(_, n)| n).sum();
    if args.json {
        let value = json!({
            "healthy": report.is_healthy(),
            "opens": true,
            "entries": report.entries.iter().map(|(tree, n)| (tree.to_string(), Value::from(*n))).collect::<serde_json::Map<_, _>>(),
            "damage": report.damage.iter().map(|d| json!({"tree": d.tree, "key": d.key, "problem": d.problem})).collect::<Vec<_>>(),
            "unindexed_active": report.unindexed_active,
            "repaired": repaired.as_ref().map(|r| json!({"removed": r.removed, "reindexed": r.reindexed})),
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        outln!(
            "store `{}`: {records} records and index entries in {} trees",
            global.state_dir.join("db").display(),
            report.entries.len()
        );
        for damage in report.damage.iter().take(SHOWN) {
            outln!("  {} `{}`: {}", damage.tree, damage.key, damage.problem);
        }
        if report.damage.len() > SHOWN {
            outln!("  and {} more", report.damage.len() - SHOWN);
        }
        for run_id in &report.unindexed_active {
            outln!("  active_runs: run `{run_id}` is queued or running but not indexed");
        }
        match (&repaired, report.is_healthy()) {
            (_, true) => outln!("healthy"),
            (Some(done), false) => outln!(
                "repaired: removed {} unreadable records and dangling index entries, re-indexed {} active runs; what the removed records held is lost",
                done.removed,
                done.reindexed
            ),
            (None, false) => outln!(
                "{} problems; `dag doctor --repair` removes unreadable records and dangling index entries (what they held is lost) and re-indexes active runs",
                report.damage.len() + report.unindexed_active.len()
            ),
        }
    }
    if report.is_healthy() || repaired.is_some() {
        Ok(Exit::Success)
    } else {
        Err(Failure::silent(Exit::TaskFailed))
    }
}

/// Moves the store aside and starts a new one.
fn rebuild(global: &Global, as_json: bool) -> CliResult {
    let state_dir = &global.state_dir;
    let db = state_dir.join("db");
    if let Err(dag_state::StateError::Locked { .. }) = dag_state::Store::open(&db) {
        return Err(Failure::internal(
            "the store is in use by another process; stop it (`dag daemon stop`, or let the `dag run` finish) first",
        ));
    }
    let moved = if db.exists() {
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
        let aside = state_dir.join(format!("db.moved-{stamp}"));
        std::fs::rename(&db, &aside)
            .map_err(|e| Failure::internal(format!("cannot move `{}` aside: {e}", db.display())))?;
        Some(aside)
    } else {
        None
    };
    let kept = history_elsewhere(state_dir).unwrap_or_else(|| "nothing else".into());
    open_anyway(state_dir).map_err(|e| Failure::internal(e.to_string()))?;
    let lost = "the run history (runs, tasks, attempts, events), lineage, cache keys and remembered file digests";
    if as_json {
        outln!(
            "{}",
            json!({ "moved_to": moved, "kept": kept, "lost": lost })
        );
    } else {
        match &moved {
            Some(aside) => outln!(
                "moved the store aside to `{}` (nothing was deleted)",
                aside.display()
            ),
            None => outln!("there was no store to move aside"),
        }
        outln!("started a new, empty run history in `{}`", db.display());
        outln!("kept: {kept}");
        outln!(
            "lost: {lost}; every task runs once more before it is up to date again, and `dag gc` now keeps only the run-cache entries registered model versions reference"
        );
    }
    Ok(Exit::Success)
}
