//! The model registry: content-addressed model files, numbered versions per
//! model name, and movable aliases with history ([`ModelRegistry`]), plus the
//! `models.register`, `models.promote` and `models.data` operators.
//!
//! It stores files under the state directory and never touches the run-state
//! store; the CLI and the prediction server use the same API.

mod actor;
mod alias_moves;
mod data_op;
mod error;
mod gate_record;
mod lock;
mod promote_op;
mod register_op;
mod registry;
#[cfg(test)]
mod registry_tests;
mod version;

pub use actor::{Actor, AliasEvent, MoveKind};
pub use data_op::Data;
pub use error::RegistryError;
pub use gate_record::{CriterionResult, EvaluationRows, GateRecord, ScoredVersion};
pub use promote_op::Promote;
pub use register_op::Register;
pub use registry::ModelRegistry;
pub use version::{AliasMove, AliasState, ModelVersion, RegisterInfo, Rollback};
