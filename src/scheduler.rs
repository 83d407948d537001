//! The scheduler: a pure state machine over a [`Plan`]. It is told how tasks
//! ended and answers which tasks to run next and which are settled without
//! running (skipped, upstream failed). It never spawns, sleeps or reads a
//! clock — the executor does — so every rule here is unit-tested without a
//! runtime.

use std::collections::BTreeSet;

use crate::model::TriggerRule;
use crate::plan::Plan;

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    Succeeded,
    /// Its cached result is current; counts as success.
    UpToDate,
    Failed,
    UpstreamFailed,
    Skipped,
    Cancelled,
}

impl Terminal {
    fn is_success(self) -> bool {
        matches!(self, Self::Succeeded | Self::UpToDate)
    }

    fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::UpstreamFailed | Self::Cancelled)
    }
}

/// What the executor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start this task; report back with [`Scheduler::finish`].
    Run(usize),
    /// This task is settled without running; record it. Already applied.
    Settle(usize, Terminal, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Done(Terminal),
}

pub struct Scheduler {
    upstream: Vec<Vec<usize>>,
    downstream: Vec<Vec<usize>>,
    ids: Vec<String>,
    rules: Vec<TriggerRule>,
    states: Vec<State>,
}

impl Scheduler {
    /// `rules[i]` is task `i`'s trigger rule.
    pub fn new(plan: &Plan, rules: Vec<TriggerRule>) -> Self {
        Self {
            upstream: plan.upstream.clone(),
            downstream: plan.downstream.clone(),
            ids: plan.ids.clone(),
            rules,
            states: vec![State::Waiting; plan.len()],
        }
    }

    /// Settles `preset` tasks up front (tasks left out by `--only`, or
    /// finished in the run being resumed), then returns the first decisions.
    pub fn start(&mut self, preset: &[(usize, Terminal)]) -> Vec<Decision> {
        for &(task, terminal) in preset {
            self.states[task] = State::Done(terminal);
        }
        let mut decisions = Vec::new();
        for task in 0..self.states.len() {
            if self.states[task] == State::Waiting {
                self.evaluate(task, &mut decisions);
            }
        }
        decisions
    }

    /// The scheduler for `plan`, a plan this one's grew into mid-run (a task
    /// mapping over an upstream list became its instances): each task still
    /// in `plan` keeps its state, found by id; `preset` tasks are settled
    /// (instances finished in a resumed run); the rest wait. Returns it with
    /// its first decisions.
    pub fn regrow(
        &self,
        plan: &Plan,
        rules: Vec<TriggerRule>,
        preset: &[(usize, Terminal)],
    ) -> (Self, Vec<Decision>) {
        let mut grown = Self::new(plan, rules);
        for (old, id) in self.ids.iter().enumerate() {
            if let Some(new) = plan.index(id) {
                grown.states[new] = self.states[old];
            }
        }
        let decisions = grown.start(preset);
        (grown, decisions)
    }

    /// Records how a running task ended. With `short_circuit`, every waiting
    /// task downstream of it is skipped with that reason, whatever its rule.
    pub fn finish(
        &mut self,
        task: usize,
        terminal: Terminal,
        short_circuit: Option<&str>,
    ) -> Vec<Decision> {
        self.states[task] = State::Done(terminal);
        let mut decisions = Vec::new();
        if let Some(reason) = short_circuit {
            let mut stack = self.downstream[task].clone();
            let mut seen = BTreeSet::new();
            while let Some(next) = stack.pop() {
                if !seen.insert(next) || self.states[next] != State::Waiting {
                    continue;
                }
                self.settle(next, Terminal::Skipped, reason.to_string(), &mut decisions);
                stack.extend(self.downstream[next].iter().copied());
            }
        }
        for next in self.downstream[task].clone() {
            if self.states[next] == State::Waiting {
                self.evaluate(next, &mut decisions);
            }
        }
        decisions
    }

    /// Cancels every task that has not started; returns them.
    pub fn cancel_waiting(&mut self) -> Vec<usize> {
        let waiting: Vec<usize> = (0..self.states.len())
            .filter(|&t| self.states[t] == State::Waiting)
            .collect();
        for &task in &waiting {
            self.states[task] = State::Done(Terminal::Cancelled);
        }
        waiting
    }

    pub fn is_finished(&self) -> bool {
        self.states.iter().all(|s| matches!(s, State::Done(_)))
    }

    pub fn terminal(&self, task: usize) -> Option<Terminal> {
        match self.states[task] {
            State::Done(terminal) => Some(terminal),
            _ => None,
        }
    }

    fn settle(
        &mut self,
        task: usize,
        terminal: Terminal,
        reason: String,
        decisions: &mut Vec<Decision>,
    ) {
        self.states[task] = State::Done(terminal);
        decisions.push(Decision::Settle(task, terminal, reason));
    }

    /// Applies `task`'s trigger rule to what its upstream tasks did so far;
    /// settling a task cascades to its own downstream.
    fn evaluate(&mut self, task: usize, decisions: &mut Vec<Decision>) {
        let verdict = self.verdict(task);
        match verdict {
            Verdict::Wait => {}
            Verdict::Run => {
                self.states[task] = State::Running;
                decisions.push(Decision::Run(task));
            }
            Verdict::Settle(terminal, reason) => {
                self.settle(task, terminal, reason, decisions);
                for next in self.downstream[task].clone() {
                    if self.states[next] == State::Waiting {
                        self.evaluate(next, decisions);
                    }
                }
            }
        }
    }

    fn verdict(&self, task: usize) -> Verdict {
        let mut pending = 0;
        let (mut first_success, mut first_failure, mut first_skip) = (None, None, None);
        for &up in &self.upstream[task] {
            match self.states[up] {
                State::Done(t) if t.is_success() => first_success = first_success.or(Some(up)),
                State::Done(t) if t.is_failure() => first_failure = first_failure.or(Some(up)),
                State::Done(_) => first_skip = first_skip.or(Some(up)),
                State::Waiting | State::Running => pending += 1,
            }
        }
        let name = |t: usize| &self.ids[t];
        let all_done = pending == 0;
        let rule = self.rules[task];
        use Verdict::{Run, Settle, Wait};
        match rule {
            TriggerRule::AllSuccess => match (first_failure, first_skip) {
                (Some(up), _) => Settle(
                    Terminal::UpstreamFailed,
                    format!("upstream `{}` failed", name(up)),
                ),
                (None, Some(up)) => Settle(
                    Terminal::Skipped,
                    format!("upstream `{}` was skipped", name(up)),
                ),
                (None, None) if all_done => Run,
                _ => Wait,
            },
            TriggerRule::AllDone => {
                if all_done {
                    Run
                } else {
                    Wait
                }
            }
            TriggerRule::AllFailed => match first_success.or(first_skip) {
                Some(up) => Settle(
                    Terminal::Skipped,
                    format!(
                        "trigger rule `{rule}`: upstream `{}` did not fail",
                        name(up)
                    ),
                ),
                None if all_done => Run,
                None => Wait,
            },
            TriggerRule::OneFailed => match first_failure {
                Some(_) => Run,
                None if all_done => Settle(
                    Terminal::Skipped,
                    format!("trigger rule `{rule}`: no upstream task failed"),
                ),
                None => Wait,
            },
            TriggerRule::OneSuccess => match first_success {
                Some(_) => Run,
                None if all_done => match first_failure {
                    Some(up) => Settle(
                        Terminal::UpstreamFailed,
                        format!(
                            "trigger rule `{rule}`: upstream `{}` failed and none succeeded",
                            name(up)
                        ),
                    ),
                    None => Settle(
                        Terminal::Skipped,
                        format!("trigger rule `{rule}`: no upstream task succeeded"),
                    ),
                },
                None => Wait,
            },
            TriggerRule::NoneFailed => match first_failure {
                Some(up) => Settle(
                    Terminal::UpstreamFailed,
                    format!("upstream `{}` failed", name(up)),
                ),
                None if all_done => Run,
                None => Wait,
            },
        }
    }
}

enum Verdict {
    Wait,
    Run,
    Settle(Terminal, String),
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
