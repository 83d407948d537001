//! Parsing and validation: DAG file text → a checked [`Dag`](crate::model::Dag),
//! or every problem in it as [`Diagnostic`]s with file, line and column.
//!
//! Stages: `tree_builder` (YAML → spanned `node` tree, within a `limits`
//! budget) → `file_builder` (one file → a `FileSpec`) → `loader` (includes
//! merged) → `checker` (dependencies, cycles, operators, templates). Across
//! the DAGs of a directory, `ownership` checks that each artifact path has
//! one producer. Reading files is the caller's job: the loader takes a
//! function that returns a file's text, so all of this is testable on
//! strings; `source_reader` is the one that reads the filesystem (regular
//! files only, bounded, includes confined to the project).
//!
//! Every load is bounded — bytes, files, nodes (alias copies included),
//! depth, and optionally time — and reports at most
//! [`MAX_DIAGNOSTICS_PER_FILE`] problems per file, so a hostile file costs
//! a diagnostic, not the process.

mod checker;
pub use checker::check_params_for_run;
mod diagnostic;
mod executors;
mod fields;
mod file_builder;
mod hooks_reader;
pub use hooks_reader::check_url as check_webhook_url;
mod limits;
mod loader;
mod map_reader;
pub mod mapping;
mod node;
mod ownership;
mod source;
mod source_reader;
mod tree_builder;

pub use diagnostic::{
    Diagnostic, DiagnosticJson, MAX_DIAGNOSTICS_PER_FILE, Related, RelatedJson, cap_per_file,
    closest, did_you_mean, joined_messages,
};
pub use file_builder::{DAG_KEYS, DEFAULTS_KEYS, INCLUDE_KEYS, SCHEDULE_KEYS, TASK_KEYS};
pub use limits::{Budget, LimitHit, ParseLimits};
pub use loader::{
    ReadSource, expand_for_run, load_dag, load_dag_file, load_dag_file_with, load_dag_within,
};
pub use node::{Node, SyntaxError, Value as NodeValue, parse_yaml, parse_yaml_within};
pub use ownership::{Conflict, apply_ownership, check_ownership, load_dag_directory};
pub use source::{SourceFile, Span};
pub use source_reader::{ReadError, SourceReader, read_regular_file};
