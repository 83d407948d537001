//! Operators that need the engine itself (and so live in this crate, not in
//! `dag_operators`), and [`registry`]: every operator a DAG file can use.

use dag_operators::Registry;

/// The built-in operators plus the engine's own.
pub fn registry() -> Registry {
    Registry::builtin()
}
