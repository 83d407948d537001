//! Growing a run: a task that maps over an upstream task's list (`map: {
//! KEY: { from: tasks.UP.outputs.NAME } }`) is one task in the plan until
//! `UP` has finished; then the run expands it with the list `UP` produced
//! and carries on with the grown plan. Tasks keep their ids, so what the
//! run knows (values, cache keys, the ready queue, the scheduler's states)
//! moves to the new plan by id, tasks already running included.

use std::sync::Arc;

use dag_state::{EventRecord, TaskStatus, Write};
use serde_json::Value;

use super::clock::now_ms;
use super::resume::{Carried, Resume};
use super::run_state::RunState;
use crate::model::MapFrom;
use crate::plan::plan_for;
use crate::scheduler::{Scheduler, Terminal};

/// Why a task mapped over an upstream list cannot be expanded: the task
/// fails with it.
#[derive(Debug, thiserror::Error)]
pub(super) enum GrowError {
    #[error("`{from}` is `{shown}`, not a list")]
    NotAList { from: MapFrom, shown: String },
    #[error("`{}` gave no value `{}`", .from.task, .from.output)]
    NoValue { from: MapFrom },
    /// The instances do not check as a loaded DAG would (too many values,
    /// values that are not scalars, ids that collide): the diagnostics'
    /// messages.
    #[error("{0}")]
    Instances(String),
    #[error("the expanded DAG has a dependency cycle: {0}")]
    Cycle(String),
}

impl RunState<'_> {
    /// Expands the task at `index`, which maps over `from`, with the list
    /// this run produced: the DAG and the plan grow, and what the run knows
    /// moves to the new plan's indexes. Returns the instances' ids (none for
    /// an empty list, when the task is recorded as skipped); an error says
    /// why the task cannot be expanded.
    pub(super) fn grow(&mut self, index: usize, from: &MapFrom) -> Result<Vec<String>, GrowError> {
        let base = self.plan.ids[index].clone();
        let list = match self.output_lookup()(&from.task, &from.output) {
            Some(Value::Array(items)) => items,
            Some(other) => {
                let mut shown = other.to_string();
                if shown.len() > 80 {
                    shown = format!("{}…", shown.chars().take(80).collect::<String>());
                }
                return Err(GrowError::NotAList {
                    from: from.clone(),
                    shown,
                });
            }
            None => return Err(GrowError::NoValue { from: from.clone() }),
        };
        let mut resolved = self.resolved.clone();
        resolved.insert(base.clone(), list);
        let grown =
            crate::parse::expand_for_run(&self.dag, &self.params, &resolved, &self.engine.registry)
                .map_err(|diagnostics| {
                    GrowError::Instances(crate::parse::joined_messages(&diagnostics))
                })?
                // Always `Some`: a task mapping over an upstream list keeps the
                // DAG's declared tasks for expansion.
                .ok_or_else(|| {
                    GrowError::Instances(format!("task `{base}` has no declared tasks to expand"))
                })?;
        let plan = plan_for(&grown, &self.params)
            .map_err(|cycles| GrowError::Cycle(crate::plan::describe_cycles(&cycles)))?;
        let instances = grown.mapped.get(&base).cloned().unwrap_or_default();
        if instances.is_empty() {
            self.record_settled(
                index,
                TaskStatus::Skipped,
                format!("`{from}` is an empty list: no instances"),
            );
        }
        let moved: Vec<Option<usize>> = self.plan.ids.iter().map(|id| plan.index(id)).collect();
        let mut values = vec![None; plan.len()];
        let mut keys = vec![None; plan.len()];
        for (old, new) in moved.iter().enumerate() {
            if let Some(new) = *new {
                values[new] = self.values[old].take();
                keys[new] = self.keys[old].take();
            }
        }
        self.values = values;
        self.keys = keys;
        self.summaries = std::mem::take(&mut self.summaries)
            .into_iter()
            .filter_map(|(old, summary)| moved[old].map(|new| (new, summary)))
            .collect();
        self.ready = std::mem::take(&mut self.ready)
            .into_iter()
            .filter_map(|old| moved[old])
            .collect();
        self.plan = plan;
        self.dag = Arc::new(grown);
        self.resolved = resolved;
        self.notifier.grown(Arc::clone(&self.dag));
        self.engine.recorder.write(Write::Event(EventRecord {
            run_id: self.run_vars.id.clone(),
            seq: 0,
            at_ms: now_ms(),
            kind: "task_expanded".to_string(),
            task_id: Some(base),
            detail: serde_json::json!({ "from": from.to_string(), "instances": instances }),
        }));
        Ok(instances)
    }

    /// Takes over a task finished in the run being resumed; returns how it
    /// is preset in the scheduler.
    pub(super) fn carry(&mut self, carried: Carried) -> (usize, Terminal) {
        let mut values = self.declared_output_values(carried.index);
        values.extend(carried.values);
        self.values[carried.index] = Some(values);
        self.keys[carried.index] = carried.key;
        self.engine.recorder.write(Write::Task(carried.record));
        (carried.index, carried.terminal)
    }
}

/// Expands the ready task at `index`, which maps over `from`, and moves the
/// scheduler to the grown plan; instances that finished in the run being
/// resumed are taken over. A task that cannot be expanded fails, and what
/// needs it settles as after any failure.
pub(super) fn expand_task(
    state: &mut RunState<'_>,
    scheduler: &mut Scheduler,
    index: usize,
    from: &MapFrom,
    resume: Option<&Resume>,
) {
    match state.grow(index, from) {
        Ok(instances) => {
            let rules = state.dag.tasks.values().map(|t| t.trigger_rule).collect();
            let carried: Vec<Carried> = resume
                .iter()
                .flat_map(|r| r.carried_over(&state.plan, &state.run_vars.id))
                .filter(|c| instances.contains(&state.plan.ids[c.index]))
                .collect();
            let preset: Vec<(usize, Terminal)> =
                carried.into_iter().map(|c| state.carry(c)).collect();
            let (grown, decisions) = scheduler.regrow(&state.plan, rules, &preset);
            *scheduler = grown;
            state.apply(decisions);
        }
        Err(reason) => {
            state.failed = true;
            state.record_settled(
                index,
                TaskStatus::Failed,
                format!("cannot expand the map: {reason}"),
            );
            let decisions = scheduler.finish(index, Terminal::Failed, None);
            state.apply(decisions);
        }
    }
}
