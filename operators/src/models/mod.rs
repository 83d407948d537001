//! The model registry: content-addressed model files, numbered versions per
//! model name, and movable aliases with history ([`ModelRegistry`]), plus the
//! `models.register` and `models.promote` operators.
//!
//! It stores files under the state directory and never touches the run-state
//! store; the CLI and the prediction server use the same API.

mod error;
mod lock;
mod promote_op;
mod register_op;
mod registry;
mod version;

pub use error::RegistryError;
pub use promote_op::Promote;
pub use register_op::Register;
pub use registry::ModelRegistry;
pub use version::{AliasEvent, AliasMove, AliasState, ModelVersion, RegisterInfo};
