//! Parsing and validation: DAG file text → a checked [`Dag`](crate::model::Dag),
//! or every problem in it as [`Diagnostic`]s with file, line and column.
//!
//! Stages: `node` (YAML → spanned tree) → `file_builder` (one file → a
//! `FileSpec`) → `loader` (includes merged) → `checker` (dependencies,
//! cycles, operators, templates). Across the DAGs of a directory,
//! `ownership` checks that each artifact path has one producer. Reading
//! files is the caller's job: the loader takes a function that returns a
//! file's text, so all of this is testable on strings.

mod checker;
mod diagnostic;
mod fields;
mod file_builder;
mod loader;
mod node;
mod ownership;
mod source;

pub use diagnostic::{Diagnostic, DiagnosticJson, Related, RelatedJson, closest, did_you_mean};
pub use file_builder::{DAG_KEYS, DEFAULTS_KEYS, INCLUDE_KEYS, SCHEDULE_KEYS, TASK_KEYS};
pub use loader::{load_dag, load_dag_file};
pub use node::{Node, Value as NodeValue, parse_yaml};
pub use ownership::{Conflict, check_ownership, load_dag_directory};
pub use source::{SourceFile, Span};
