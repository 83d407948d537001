//! The public views of what the engine knows: the JSON (and HTML-ready)
//! shapes of runs, tasks, DAGs, models and lineage that every front end
//! shows. Front ends render these; they never read the store into shapes of
//! their own, so `--json`, the daemon's API and the web UI agree.
//!
//! This layer reads; it does not decide (run control is in
//! [`crate::daemon`] and [`crate::execute`]) and does not print.

mod run;

pub use run::{RunJson, RunListJson, TaskJson, run_json};
