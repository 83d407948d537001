//! The public views of what the engine knows: the JSON (and HTML-ready)
//! shapes of runs, tasks, DAGs, models and lineage that every front end
//! shows. Front ends render these; they never read the store into shapes of
//! their own, so `--json`, the daemon's API and the web UI agree.
//!
//! - [`run`]: a run and its tasks (`dag runs show --json`).
//! - [`live`]: task states while a run goes on, and the changes recorded
//!   writes make to them.
//! - [`history`]: a DAG's recent runs × its tasks (the grid).
//! - [`timeline`]: a run's attempts on a time axis.
//! - [`dag`]: a DAG's status line and its graph by plan levels.
//! - [`diff`]: what changed between two runs (`dag runs diff`).
//! - [`experiments`]: runs side by side, params and metrics.
//! - [`model`]: registered models, versions, gate verdicts, alias moves.
//! - [`lineage`]: lineage graphs laid out for drawing.
//! - [`drift`]: drift checks, their reports and what they triggered.
//!
//! This layer reads; it does not decide (run control is in
//! [`crate::daemon`] and [`crate::execute`]) and does not print.

pub mod dag;
pub mod diff;
pub mod drift;
pub mod experiments;
pub mod history;
pub mod lineage;
pub mod live;
pub mod model;
pub mod operators;
mod run;
pub mod timeline;

#[cfg(test)]
pub(crate) mod test_support;

pub use dag::{DagGraph, DagStatusJson, edge_artifacts};
pub use diff::{DiffError, RunDiff, run_diff};
pub use lineage::model_link;
pub use run::{
    AttemptPlacement, ExpansionJson, NotificationJson, RunJson, RunListJson, TaskJson,
    expansions_of, run_json, run_json_of,
};
