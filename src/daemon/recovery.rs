//! [`take_up_after_crash`]: what a daemon does at start about the work a
//! crash left behind.
//!
//! - Runs a crash interrupted (found by open-time repair, whichever process
//!   opened the store first) are resumed when their DAG says
//!   `resume_interrupted: true`; the others stay `interrupted` for a person
//!   to look at (`dag run --resume`). Either way the interruption is then
//!   handled and not considered again.
//! - Runs accepted (202, a run id) but never started are started or queued
//!   again under the same id, or ended with the reason they cannot run.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Fire;
use super::dispatch::{Dispatcher, RunOptions, Submission};
use crate::execute::now_ms;
use crate::record::error_chain;

/// Resumes interrupted runs, then takes up the accepted runs that never
/// started.
pub fn take_up_after_crash(dispatcher: &Arc<Dispatcher>) {
    resume_interrupted(dispatcher);
    let recovered = dispatcher.recover_queue();
    if recovered > 0 {
        tracing::info!(
            runs = recovered,
            "runs accepted before the restart are queued again"
        );
    }
}

fn resume_interrupted(dispatcher: &Arc<Dispatcher>) {
    let interrupted = match dispatcher.engine.store.unhandled_interruptions() {
        Ok(runs) => runs,
        Err(error) => {
            tracing::error!(
                "cannot read the runs a crash interrupted: {}",
                error_chain(&error)
            );
            return;
        }
    };
    let mut handled = Vec::new();
    for run in interrupted {
        let Some(dag) = dispatcher.dag(&run.dag) else {
            // Decided when the DAG loads again.
            tracing::warn!(run_id = %run.run_id, dag = %run.dag, "a crash interrupted this run, and its DAG is not loaded");
            continue;
        };
        handled.push(run.run_id.clone());
        if !dag.resume_interrupted {
            continue;
        }
        let submission = Submission {
            fire: Fire {
                dag: run.dag.clone(),
                trigger: dag_state::Trigger {
                    kind: "resume".into(),
                    detail: format!(
                        "daemon restart: resuming run {}, interrupted by a crash",
                        run.run_id
                    ),
                },
                logical_date: Some(run.logical_date.clone()),
                params: BTreeMap::new(),
                due_ms: now_ms(),
            },
            explicit: true,
            options: RunOptions {
                resume: Some(run.run_id.clone()),
                ..RunOptions::default()
            },
        };
        match dispatcher.submit(submission) {
            Ok(accepted) => tracing::info!(
                dag = %run.dag, interrupted = %run.run_id, run_id = accepted.run_id().unwrap_or("-"),
                "resuming a run the crash interrupted"
            ),
            Err(error) => tracing::warn!(
                dag = %run.dag, run_id = %run.run_id, "cannot resume: {}", error_chain(&error)
            ),
        }
    }
    if let Err(error) = dispatcher.engine.store.acknowledge_interruptions(&handled) {
        tracing::error!(
            "cannot record which interrupted runs were handled: {}",
            error_chain(&error)
        );
    }
}
