//! The scheduler's rules, one test per rule, without a runtime.

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
