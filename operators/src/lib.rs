//! The operator side of `dag`: the [`Operator`] contract, the [`Registry`] that
//! maps names used in DAG files to operators, and the built-in operators.
//!
//! Operators compute; the engine records. An operator receives a [`Context`]
//! (rendered params, resolved input and output paths, ids, a log sink, a
//! cancellation token) and returns an [`Outcome`] (output values and metrics).
//! It never touches the run-state store: lineage and metrics are recorded by
//! the engine for every operator alike, including ones written in other
//! languages through the subprocess protocol (see `README.md`).
//!
//! This crate deliberately knows nothing about DAG files, plans or the store.

mod context;
pub mod data;
mod error;
mod log_sink;
pub mod ml;
pub mod models;
pub mod monitor;
mod noop;
mod operator;
mod params;
pub mod process_tree;
mod python;
mod registry;
mod shell;
mod suggest;
pub mod table;

pub use context::{Context, LogSink, ProgressSink};
pub use error::{OperatorError, error_chain};
pub use log_sink::{DEFAULT_LOG_LIMIT, MIN_LOG_LIMIT};
pub use noop::Noop;
pub use operator::{
    BoxFuture, Earlier, Operator, Outcome, Port, Ports, Problem, TaskSpec, run_blocking, schema_of,
};
pub use params::{parse_params, require_names};
pub use python::Python;
pub use registry::Registry;
pub use shell::Shell;
pub use suggest::{closest, did_you_mean};
