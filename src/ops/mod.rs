//! Operators that need the engine itself (and so live in this crate, not in
//! `dag_operators`), and [`registry`]: every operator a DAG file can use.
//!
//! - [`trigger`]: `dag.trigger`, a run of another DAG
//! - [`smoke`]: `serve.smoke`, the deployment's check that the served model
//!   answers a record like the batch prediction did

pub mod smoke;
pub mod trigger;

use std::sync::Arc;

use dag_operators::Registry;

pub use trigger::{Deferred, Submit, SubmitSlot, Submitted, TriggerDag};

/// Every operator, for loading and checking DAG files. `dag.trigger` fails
/// at run time here; runs use [`registry_with`].
pub fn registry() -> Registry {
    registry_with(Arc::new(SubmitSlot::default()))
}

/// Every operator, with `dag.trigger` sending runs to `target`.
pub fn registry_with(target: Arc<dyn Submit>) -> Registry {
    let mut registry = Registry::builtin();
    registry.add(TriggerDag { target });
    registry.add(smoke::Smoke);
    registry
}
