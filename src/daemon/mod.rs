//! The daemon: one long-lived process that owns the state store, loads
//! every DAG in the DAG directory, and turns three kinds of triggers into
//! runs:
//!
//! ```text
//! cron ─────┐
//! watch ────┼──▶ Fire ──▶ dispatcher (max_active_runs, overlap) ──▶ execute_run
//! API/CLI ──┘
//! ```
//!
//! - [`clock`]: the wall clock triggers read, replaceable in tests so cron
//!   can be driven on tokio's paused clock.
//! - [`cron`]: `schedule:` → fires, with timezones and catch-up.
//! - [`watch`]: `watch:` globs → fires, debounced and confirmed by content
//!   hash; [`triggers`] keeps cron and watches in step with the loaded DAGs.
//! - [`dispatch`]: the one run queue, and in-process run control (submit,
//!   cancel, drain).
//! - [`reload`]: the DAG directory reloaded off the daemon's loop, each
//!   file within a time and size budget.
//! - [`events`]: what the recorder commits, broadcast to live followers.
//! - [`server`]: the daemon's life, from start-up to drain.
//!
//! This is the daemon's runtime, a library. Its HTTP front ends (the API,
//! the web UI) are handed to [`server::run`] by the binary.

pub mod clock;
pub mod cron;
pub mod dags;
pub mod dispatch;
pub mod events;
pub mod info;
pub mod metrics;
mod queued;
pub mod recovery;
pub mod reload;
pub mod server;
pub mod triggers;
pub mod watch;

use std::collections::BTreeMap;

use dag_state::Trigger;

/// A request to run a DAG, from any trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct Fire {
    /// The DAG's name (its `name:` key).
    pub dag: String,
    /// Recorded with the run: why it ran.
    pub trigger: Trigger,
    /// RFC 3339; for cron, the fire time the run stands for.
    pub logical_date: Option<String>,
    /// `--param`-style overrides, already typed.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Wall-clock milliseconds of the moment the run became due: the cron
    /// fire time, or the last file event of a watched burst. The dispatcher
    /// measures trigger latency from here.
    pub due_ms: i64,
}
