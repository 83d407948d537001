//! Lineage: where an artifact or a model version came from, and what was
//! made from it, answered offline from the state store's indexes.
//!
//! `walk` builds a [`LineageGraph`] from a [`Start`]; `graph` holds it and
//! renders it as JSON, an indented tree or Mermaid. Resolving what the user
//! typed (a path, `MODEL@VERSION`, `RUN_ID:TASK`) is the CLI's job; this
//! module never reads the model registry nor hashes files.

mod graph;
mod walk;

pub use graph::{Direction, Edge, LineageGraph, Node, NodeKind, Relation};
pub use walk::{ModelLink, Start, downstream, upstream};
