//! Operators that need the engine itself (and so live in this crate, not in
//! `dag_operators`), and [`registry`]: every operator a DAG file can use.
//!
//! - [`smoke`]: `serve.smoke`, the deployment's check that the served model
//!   answers a record like the batch prediction did

use dag_operators::Registry;

pub mod smoke;

/// The built-in operators plus the engine's own.
pub fn registry() -> Registry {
    let mut registry = Registry::builtin();
    registry.add(smoke::Smoke);
    registry
}
