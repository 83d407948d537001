//! Planning: a checked [`Dag`](crate::model::Dag) → a [`Plan`], the task graph
//! with every dependency made explicit, a topological order and parallel
//! levels. Built on petgraph.
//!
//! Dependencies come from three places: `needs`, artifacts (a task whose
//! input path is another task's output path depends on it) and references
//! (`{{ tasks.x.outputs.y }}` or a `when` on `tasks.x` depends on `x`).
//! Planning does not run anything and does not decide what is up to date.

mod graph;

pub use graph::{EdgeKind, Plan, build_plan, describe_cycles, normalize, plan_for};
