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
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A plan from `(task, upstream)` pairs; ids must be given sorted.
    fn plan(ids: &[&str], edges: &[(usize, usize)]) -> Plan {
        let n = ids.len();
        let mut upstream = vec![Vec::new(); n];
        let mut downstream = vec![Vec::new(); n];
        for &(from, to) in edges {
            upstream[to].push(from);
            downstream[from].push(to);
        }
        Plan {
            ids: ids.iter().map(|s| s.to_string()).collect(),
            upstream,
            downstream,
            edges: BTreeMap::new(),
            order: (0..n).collect(),
            levels: vec![(0..n).collect()],
            inputs: vec![BTreeMap::new(); n],
            outputs: vec![BTreeMap::new(); n],
        }
    }

    fn runs(decisions: &[Decision]) -> Vec<usize> {
        decisions
            .iter()
            .filter_map(|d| {
                if let Decision::Run(t) = d {
                    Some(*t)
                } else {
                    None
                }
            })
            .collect()
    }

    #[test]
    fn roots_run_first_and_a_join_waits_for_all_upstream() {
        // a, b -> c
        let p = plan(&["a", "b", "c"], &[(0, 2), (1, 2)]);
        let mut s = Scheduler::new(&p, vec![TriggerRule::AllSuccess; 3]);
        assert_eq!(runs(&s.start(&[])), vec![0, 1]);
        assert!(s.finish(0, Terminal::Succeeded, None).is_empty());
        assert_eq!(runs(&s.finish(1, Terminal::Succeeded, None)), vec![2]);
        s.finish(2, Terminal::Succeeded, None);
        assert!(s.is_finished());
    }

    #[test]
    fn a_regrown_scheduler_keeps_states_by_id_and_starts_only_the_new_tasks() {
        // list -> map -> total, slow -> total; `slow` is running when `map`
        // becomes m1, m2 (and m2 finished in a resumed run).
        let before = plan(&["list", "map", "slow", "total"], &[(0, 1), (1, 3), (2, 3)]);
        let mut s = Scheduler::new(&before, vec![TriggerRule::AllSuccess; 4]);
        assert_eq!(runs(&s.start(&[])), vec![0, 2]);
        assert_eq!(runs(&s.finish(0, Terminal::Succeeded, None)), vec![1]);
        let after = plan(
            &["list", "m1", "m2", "slow", "total"],
            &[(0, 1), (0, 2), (1, 4), (2, 4), (3, 4)],
        );
        let (mut grown, decisions) = s.regrow(
            &after,
            vec![TriggerRule::AllSuccess; 5],
            &[(2, Terminal::UpToDate)],
        );
        // Only m1 starts: list stays done, slow stays running at its new
        // index, m2 is taken over, total waits.
        assert_eq!(decisions, vec![Decision::Run(1)]);
        assert_eq!(grown.terminal(0), Some(Terminal::Succeeded));
        assert_eq!(grown.terminal(3), None);
        assert!(grown.finish(1, Terminal::Succeeded, None).is_empty());
        assert_eq!(runs(&grown.finish(3, Terminal::Succeeded, None)), vec![4]);
        grown.finish(4, Terminal::Succeeded, None);
        assert!(grown.is_finished());
    }

    #[test]
    fn failure_propagates_upstream_failed_through_the_chain() {
        // a -> b -> c
        let p = plan(&["a", "b", "c"], &[(0, 1), (1, 2)]);
        let mut s = Scheduler::new(&p, vec![TriggerRule::AllSuccess; 3]);
        s.start(&[]);
        let decisions = s.finish(0, Terminal::Failed, None);
        assert_eq!(
            decisions,
            vec![
                Decision::Settle(1, Terminal::UpstreamFailed, "upstream `a` failed".into()),
                Decision::Settle(2, Terminal::UpstreamFailed, "upstream `b` failed".into()),
            ]
        );
        assert!(s.is_finished());
    }

    #[test]
    fn all_done_runs_cleanup_after_a_failure() {
        let p = plan(&["a", "cleanup"], &[(0, 1)]);
        let mut s = Scheduler::new(&p, vec![TriggerRule::AllSuccess, TriggerRule::AllDone]);
        s.start(&[]);
        assert_eq!(runs(&s.finish(0, Terminal::Failed, None)), vec![1]);
    }

    #[test]
    fn one_failed_runs_as_soon_as_one_upstream_fails() {
        // a, b -> alert (one_failed)
        let p = plan(&["a", "alert", "b"], &[(0, 1), (2, 1)]);
        let mut s = Scheduler::new(
            &p,
            vec![
                TriggerRule::AllSuccess,
                TriggerRule::OneFailed,
                TriggerRule::AllSuccess,
            ],
        );
        s.start(&[]);
        assert_eq!(runs(&s.finish(0, Terminal::Failed, None)), vec![1]);
    }

    #[test]
    fn one_failed_is_skipped_when_everything_succeeds() {
        let p = plan(&["a", "alert"], &[(0, 1)]);
        let mut s = Scheduler::new(&p, vec![TriggerRule::AllSuccess, TriggerRule::OneFailed]);
        s.start(&[]);
        let decisions = s.finish(0, Terminal::Succeeded, None);
        assert!(matches!(
            decisions.as_slice(),
            [Decision::Settle(1, Terminal::Skipped, _)]
        ));
    }

    #[test]
    fn one_success_runs_early_and_all_failed_waits_for_every_failure() {
        let p = plan(
            &["a", "any", "b", "both_failed"],
            &[(0, 1), (2, 1), (0, 3), (2, 3)],
        );
        let rules = vec![
            TriggerRule::AllSuccess,
            TriggerRule::OneSuccess,
            TriggerRule::AllSuccess,
            TriggerRule::AllFailed,
        ];
        let mut s = Scheduler::new(&p, rules);
        s.start(&[]);
        assert_eq!(
            runs(&s.finish(0, Terminal::Failed, None)),
            Vec::<usize>::new()
        );
        let decisions = s.finish(2, Terminal::Failed, None);
        assert!(decisions.contains(&Decision::Run(3)), "{decisions:?}");
        assert!(
            decisions
                .iter()
                .any(|d| matches!(d, Decision::Settle(1, Terminal::UpstreamFailed, _)))
        );
    }

    #[test]
    fn none_failed_runs_after_a_skip_but_all_success_does_not() {
        // a -> b (all_success), a -> c (none_failed); a skipped.
        let p = plan(&["a", "b", "c"], &[(0, 1), (0, 2)]);
        let mut s = Scheduler::new(
            &p,
            vec![
                TriggerRule::AllSuccess,
                TriggerRule::AllSuccess,
                TriggerRule::NoneFailed,
            ],
        );
        s.start(&[]);
        let decisions = s.finish(0, Terminal::Skipped, None);
        assert!(decisions.contains(&Decision::Settle(
            1,
            Terminal::Skipped,
            "upstream `a` was skipped".into()
        )));
        assert!(decisions.contains(&Decision::Run(2)));
    }

    #[test]
    fn short_circuit_skips_every_descendant_whatever_its_rule() {
        // gate -> deploy -> notify (all_done)
        let p = plan(&["deploy", "gate", "notify"], &[(1, 0), (0, 2)]);
        let mut s = Scheduler::new(
            &p,
            vec![
                TriggerRule::AllSuccess,
                TriggerRule::AllSuccess,
                TriggerRule::AllDone,
            ],
        );
        assert_eq!(runs(&s.start(&[])), vec![1]);
        let decisions = s.finish(1, Terminal::Succeeded, Some("gate rejected the model"));
        assert_eq!(
            decisions,
            vec![
                Decision::Settle(0, Terminal::Skipped, "gate rejected the model".into()),
                Decision::Settle(2, Terminal::Skipped, "gate rejected the model".into()),
            ]
        );
        assert!(s.is_finished());
    }

    #[test]
    fn preset_tasks_count_as_settled_upstream() {
        let p = plan(&["a", "b"], &[(0, 1)]);
        let mut s = Scheduler::new(&p, vec![TriggerRule::AllSuccess; 2]);
        assert_eq!(runs(&s.start(&[(0, Terminal::UpToDate)])), vec![1]);
    }

    #[test]
    fn cancel_waiting_settles_only_unstarted_tasks() {
        let p = plan(&["a", "b"], &[(0, 1)]);
        let mut s = Scheduler::new(&p, vec![TriggerRule::AllSuccess; 2]);
        s.start(&[]);
        assert_eq!(s.cancel_waiting(), vec![1]);
        assert!(!s.is_finished());
        s.finish(0, Terminal::Cancelled, None);
        assert!(s.is_finished());
    }
}
