//! `dag`: a declarative workflow engine for the ML lifecycle.
//!
//! The flow, and the module that owns each step:
//!
//! ```text
//! SourceFile ──parse──▶ Dag ──plan──▶ Plan ──execute──▶ RunEvent ──record──▶ state (sled)
//! ```
//!
//! - [`parse`]: YAML text → a checked [`model::Dag`], or diagnostics with
//!   file:line:col for every problem.
//! - [`plan`]: the task graph (petgraph): explicit and implied dependencies,
//!   topological order, parallel levels.
//! - [`scheduler`]: a pure state machine over the plan — ready set, trigger
//!   rules, skip propagation. No runtime, no clock.
//! - [`execute`]: the tokio executor around the scheduler — the only place
//!   that spawns, sleeps, times out, retries and cancels.
//! - [`record`]: the single writer of the state store; group-commits events.
//! - [`lineage`]: where artifacts and models came from, read from the store.
//! - [`cache`]: remembered file digests and the run cache of task outputs,
//!   which let results stand or come back without running; `dag gc`.
//! - [`cli`]: the `dag` command line; [`api`]: the daemon's HTTP API;
//!   [`ui`]: the web UI — three front ends over the library layer
//!   ([`workspace`], [`views`], [`control`], [`daemon`]).
//!
//! Operators (`dag_operators`) compute; the engine records. The store
//! (`dag_state`) is reached only through `record` (writes) and read APIs.

pub mod api;
pub mod app;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod client;
pub mod control;
pub mod daemon;
pub mod execute;
pub mod lineage;
pub mod model;
pub mod ops;
pub mod parse;
pub mod plan;
pub mod record;
pub mod render;
pub mod scheduler;
pub mod schema;
pub mod serve;
pub mod ui;
pub mod views;
pub mod workspace;
