//! `dag plan --why` and `dag run --dry-run`: print what a run would do and
//! why. The prediction itself lives in [`crate::execute::explain_run`].

use super::args::Global;
use super::console::{out, outln};
use super::workspace::{load, open_store, parse_param_overrides};
use super::{CliResult, Exit, Failure};
use crate::execute::{ExplainContext, ExplainRequest, Explanation, Verdict, explain_run};
use crate::record::error_chain;

/// The knobs of a run that change what it would do.
pub struct WhyArgs<'a> {
    pub dag: &'a str,
    pub params: &'a [String],
    pub only: &'a [String],
    pub force: bool,
    pub force_tasks: &'a [String],
    pub json: bool,
}

pub fn why(global: &Global, args: &WhyArgs<'_>) -> CliResult {
    let registry = crate::ops::registry();
    let dag = load(global, args.dag, &registry)?;
    let params = parse_param_overrides(args.params)?;
    let store = open_store(global)?;
    let workdir = std::env::current_dir()
        .map_err(|e| Failure::internal(format!("cannot read the current directory: {e}")))?;
    let context = ExplainContext {
        registry: &registry,
        store: &store,
        workdir: &workdir,
    };
    let request = ExplainRequest {
        dag: &dag,
        params,
        only: args.only.to_vec(),
        force: args.force,
        force_tasks: args.force_tasks.to_vec(),
    };
    let explanation =
        explain_run(&context, &request).map_err(|e| Failure::invalid(error_chain(&e)))?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&explanation).unwrap_or_default()
        );
    } else {
        out!("{}", render(&explanation));
    }
    Ok(Exit::Success)
}

/// `name: N to run, M to skip`, then one line per task and one per reason.
pub fn render(explanation: &Explanation) -> String {
    let runs = explanation
        .tasks
        .iter()
        .filter(|t| t.decision == Verdict::Run)
        .count();
    let mut out = format!(
        "{}: {runs} to run, {} to skip\n",
        explanation.dag,
        explanation.tasks.len() - runs
    );
    let width = explanation
        .tasks
        .iter()
        .map(|t| t.id.len())
        .max()
        .unwrap_or(0);
    for task in &explanation.tasks {
        let word = match task.decision {
            Verdict::Run => "run ",
            Verdict::Skip => "skip",
        };
        let mut reasons = task.reasons.iter();
        let first = reasons.next().map(String::as_str).unwrap_or("");
        out.push_str(&format!("  {word}  {:<width$}  {first}\n", task.id));
        for reason in reasons {
            out.push_str(&format!("        {:<width$}  {reason}\n", ""));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::TaskExplanation;

    #[test]
    fn render_counts_decisions_and_puts_extra_reasons_on_their_own_lines() {
        let explanation = Explanation {
            dag: "d".into(),
            tasks: vec![
                TaskExplanation {
                    id: "a".into(),
                    decision: Verdict::Skip,
                    reasons: vec!["up to date (result of run r1)".into()],
                },
                TaskExplanation {
                    id: "bb".into(),
                    decision: Verdict::Run,
                    reasons: vec!["upstream `x` will run".into(), "forced".into()],
                },
            ],
        };
        assert_eq!(
            render(&explanation),
            "d: 1 to run, 1 to skip\n\
             \x20 skip  a   up to date (result of run r1)\n\
             \x20 run   bb  upstream `x` will run\n\
             \x20           forced\n"
        );
    }
}
