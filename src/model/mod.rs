//! The checked model of a DAG: what a file means once parsing and validation
//! have accepted it. Values here are immutable and carry the spans that later
//! stages (planning, execution errors) need to point back at the file.
//!
//! Parsing lives in `parse`; nothing here reads files or YAML.

mod byte_size;
mod condition;
mod dag;
mod duration;
mod executor;
mod hooks;
mod schedule;
mod task;
mod template;
mod trigger_rule;

pub use byte_size::parse_byte_size;
pub use condition::{Comparison, Condition, Operand};
pub use dag::{CheckedPlan, Dag, SecretSource};
pub use duration::parse_duration;
pub use executor::{
    EXECUTOR_OVERRIDE_VAR, Executor, ExecutorKind, LOCAL as LOCAL_EXECUTOR, RAY_ADDRESS_VAR,
    RayExecutor, ray_host_port,
};
pub use hooks::{HookEvent, HookTarget, Hooks};
pub use schedule::parse_timezone;
pub use schedule::{Catchup, Overlap, Schedule, normalize_cron};
pub use task::{MapFrom, Retry, Task, TaskMap, TaskOrigin};
pub use template::{Reference, Segment, Template, TemplateError};
pub use trigger_rule::TriggerRule;
