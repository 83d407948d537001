//! `ml.gate`: decides whether an evaluated model may move on, from absolute
//! criteria, a regression margin against the registry's champion, and a
//! fairness bound on per-group accuracy. A rejection succeeds the task but
//! short-circuits everything downstream, with the reasons.
//!
//! It does not move aliases; `models.promote` does, downstream of the gate.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::ml::atomic::write_atomic;
use crate::ml::criterion::Criterion;
use crate::models::{ModelRegistry, RegistryError};
use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    require_names, run_blocking,
};

pub struct Gate;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChampionRule {
    pub model: String,
    #[serde(default = "default_alias")]
    pub alias: String,
    pub max_regression: f64,
    #[serde(default = "default_metric")]
    pub metric: String,
}

fn default_alias() -> String {
    "champion".into()
}
fn default_metric() -> String {
    "f1_macro".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FairnessRule {
    pub group: String,
    pub max_gap: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateParams {
    #[serde(default)]
    pub criteria: Vec<String>,
    #[serde(default)]
    pub champion: Option<ChampionRule>,
    #[serde(default)]
    pub fairness: Option<FairnessRule>,
}

/// The gate's decision: every check's outcome, failures first in `reasons`.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    pub reasons: Vec<String>,
    pub notes: Vec<String>,
}

/// The champion's value of a metric, if a champion exists.
pub type ChampionLookup<'a> = &'a dyn Fn(&ChampionRule) -> Result<Option<f64>, String>;

/// Judges an evaluation report.
pub fn judge(
    params: &GateParams,
    report: &Value,
    champion: ChampionLookup<'_>,
) -> Result<Verdict, String> {
    let mut reasons = Vec::new();
    let mut notes = Vec::new();
    let metric = |name: &str| {
        report
            .get(name)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("the metrics have no numeric `{name}`"))
    };
    for text in &params.criteria {
        let criterion = Criterion::parse(text)?;
        match criterion.judge(metric(&criterion.metric)?) {
            Ok(note) => notes.push(note),
            Err(reason) => reasons.push(reason),
        }
    }
    if let Some(rule) = &params.champion {
        let candidate = metric(&rule.metric)?;
        match champion(rule)? {
            None => notes.push(format!(
                "no `{}` of `{}` yet; champion check passes",
                rule.alias, rule.model
            )),
            Some(best) if candidate >= best - rule.max_regression => notes.push(format!(
                "{} {candidate:.4} is within {} of the {} ({best:.4})",
                rule.metric, rule.max_regression, rule.alias
            )),
            Some(best) => reasons.push(format!(
                "{} {candidate:.4} is worse than the {} ({best:.4}) by more than {}",
                rule.metric, rule.alias, rule.max_regression
            )),
        }
    }
    if let Some(rule) = &params.fairness {
        let groups = report
            .get("groups")
            .and_then(|g| g.get(&rule.group))
            .and_then(Value::as_object)
            .ok_or_else(|| {
                format!(
                    "the metrics have no `groups.{}` section; evaluate with `group_by: {}`",
                    rule.group, rule.group
                )
            })?;
        let accuracies: Vec<(&String, f64)> = groups
            .iter()
            .filter_map(|(k, v)| v.get("accuracy").and_then(Value::as_f64).map(|a| (k, a)))
            .collect();
        let lowest = accuracies.iter().min_by(|a, b| a.1.total_cmp(&b.1));
        let highest = accuracies.iter().max_by(|a, b| a.1.total_cmp(&b.1));
        if let (Some(lowest), Some(highest)) = (lowest, highest) {
            let gap = highest.1 - lowest.1;
            let text = format!(
                "{} accuracy gap {gap:.4} ({} {:.4}, {} {:.4})",
                rule.group, lowest.0, lowest.1, highest.0, highest.1
            );
            if gap <= rule.max_gap {
                notes.push(format!("{text} <= {}", rule.max_gap));
            } else {
                reasons.push(format!("{text} > {}", rule.max_gap));
            }
        }
    }
    Ok(Verdict {
        passed: reasons.is_empty(),
        reasons,
        notes,
    })
}

fn registry_champion(
    state_dir: &std::path::Path,
) -> impl Fn(&ChampionRule) -> Result<Option<f64>, String> + '_ {
    move |rule| {
        let registry = ModelRegistry::open(state_dir).map_err(|e| crate::ml::chain(&e))?;
        match registry.resolve(&rule.model, &rule.alias) {
            Ok(version) => version
                .metrics
                .get(&rule.metric)
                .copied()
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "{} v{} has no metric `{}` recorded",
                        rule.model, version.version, rule.metric
                    )
                }),
            Err(RegistryError::UnknownModel { .. } | RegistryError::UnknownReference { .. }) => {
                Ok(None)
            }
            Err(other) => Err(crate::ml::chain(&other)),
        }
    }
}

impl Operator for Gate {
    fn name(&self) -> &'static str {
        "ml.gate"
    }

    fn description(&self) -> &'static str {
        "accepts or rejects an evaluated model by `criteria`, a `champion` margin and a `fairness` gap"
    }

    fn value_names(&self) -> &'static [&'static str] {
        &["passed", "reasons"]
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("inputs", spec.inputs, &["metrics"]);
        problems.extend(require_names("outputs", spec.outputs, &["verdict"]));
        match parse_params::<GateParams>(spec.params) {
            Err(problem) => problems.push(problem),
            Ok(params) => {
                for (i, text) in params.criteria.iter().enumerate() {
                    if let Err(message) = Criterion::parse(text) {
                        problems.push(Problem::new(format!("params.criteria[{i}]"), message));
                    }
                }
                if params.criteria.is_empty()
                    && params.champion.is_none()
                    && params.fairness.is_none()
                {
                    problems.push(Problem::new(
                        "params",
                        "the gate checks nothing; give `criteria`, `champion` or `fairness`",
                    ));
                }
            }
        }
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| {
            let params: GateParams =
                parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
            let path = ctx.input("metrics")?;
            let bytes =
                std::fs::read(path).map_err(|e| OperatorError::io("read metrics", path, e))?;
            let report: Value = serde_json::from_slice(&bytes).map_err(|e| {
                OperatorError::failed(format!("metrics `{}` is not JSON: {e}", path.display()))
            })?;
            let lookup = registry_champion(&ctx.state_dir);
            let verdict = judge(&params, &report, &lookup).map_err(|message| {
                OperatorError::failed(format!("`{}`: {message}", path.display()))
            })?;
            let json = json!({"passed": verdict.passed, "reasons": verdict.reasons, "notes": verdict.notes});
            let out = serde_json::to_vec_pretty(&json)
                .map_err(|e| OperatorError::failed(e.to_string()))?;
            write_atomic(ctx.output("verdict")?, &out)?;
            let outcome = Outcome::default()
                .value("passed", verdict.passed)
                .value("reasons", verdict.reasons.clone())
                .metric("passed", if verdict.passed { 1.0 } else { 0.0 });
            if verdict.passed {
                Ok(outcome.summary(format!("gate passed: {}", verdict.notes.join("; "))))
            } else {
                let reason = format!("gate rejected the model: {}", verdict.reasons.join("; "));
                Ok(outcome.summary(reason.clone()).short_circuit(reason))
            }
        })
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;

    fn report() -> Value {
        json!({
            "accuracy": 0.95, "f1_macro": 0.94,
            "groups": {"Gender": {"Female": {"accuracy": 0.97}, "Male": {"accuracy": 0.90}}}
        })
    }

    fn params(value: Value) -> GateParams {
        serde_json::from_value(value).unwrap()
    }

    fn no_champion(_: &ChampionRule) -> Result<Option<f64>, String> {
        Ok(None)
    }

    #[test]
    fn passing_criteria_pass() {
        let verdict = judge(
            &params(json!({"criteria": ["accuracy >= 0.9", "f1_macro > 0.9"]})),
            &report(),
            &no_champion,
        )
        .unwrap();
        assert!(verdict.passed, "{verdict:?}");
    }

    #[test]
    fn failing_criterion_gives_the_reason() {
        let verdict = judge(
            &params(json!({"criteria": ["accuracy >= 0.96"]})),
            &report(),
            &no_champion,
        )
        .unwrap();
        assert!(!verdict.passed);
        assert_eq!(verdict.reasons, ["accuracy 0.9500 < 0.96"]);
    }

    #[test]
    fn champion_regression_beyond_margin_rejects_and_missing_champion_passes() {
        let p = params(json!({"champion": {"model": "obesity", "max_regression": 0.02}}));
        let better_champion = |_: &ChampionRule| Ok(Some(0.97));
        let verdict = judge(&p, &report(), &better_champion).unwrap();
        assert!(
            !verdict.passed && verdict.reasons[0].contains("worse than the champion"),
            "{verdict:?}"
        );
        let close_champion = |_: &ChampionRule| Ok(Some(0.955));
        assert!(judge(&p, &report(), &close_champion).unwrap().passed);
        let verdict = judge(&p, &report(), &no_champion).unwrap();
        assert!(verdict.passed && verdict.notes[0].contains("no `champion`"));
    }

    #[test]
    fn fairness_gap_is_checked_per_group() {
        let strict = params(json!({"fairness": {"group": "Gender", "max_gap": 0.05}}));
        let verdict = judge(&strict, &report(), &no_champion).unwrap();
        assert!(
            !verdict.passed && verdict.reasons[0].contains("Gender accuracy gap 0.07"),
            "{verdict:?}"
        );
        let loose = params(json!({"fairness": {"group": "Gender", "max_gap": 0.1}}));
        assert!(judge(&loose, &report(), &no_champion).unwrap().passed);
        let missing = params(json!({"fairness": {"group": "Age", "max_gap": 0.1}}));
        assert!(
            judge(&missing, &report(), &no_champion)
                .unwrap_err()
                .contains("groups.Age")
        );
    }

    #[test]
    fn bad_criteria_are_load_time_problems() {
        let inputs =
            std::collections::BTreeMap::from([("metrics".to_string(), "m.json".to_string())]);
        let outputs =
            std::collections::BTreeMap::from([("verdict".to_string(), "v.json".to_string())]);
        let value = json!({"criteria": ["accuracy >= 0.9", "f1 ~ 3"]});
        let problems = Gate.check(&TaskSpec {
            params: &value,
            inputs: &inputs,
            outputs: &outputs,
        });
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].at, "params.criteria[1]");
    }

    #[test]
    fn rejecting_gate_short_circuits_with_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = dir.path().join("m.json");
        std::fs::write(&metrics, report().to_string()).unwrap();
        let mut ctx = Context::detached(dir.path(), json!({"criteria": ["accuracy >= 0.99"]}));
        ctx.inputs.insert("metrics".into(), metrics);
        ctx.outputs
            .insert("verdict".into(), dir.path().join("v.json"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(Gate.execute(&ctx)).unwrap();
        assert_eq!(
            outcome.short_circuit.as_deref(),
            Some("gate rejected the model: accuracy 0.9500 < 0.99")
        );
        assert_eq!(outcome.values["passed"], json!(false));
        let verdict: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("v.json")).unwrap()).unwrap();
        assert_eq!(verdict["passed"], json!(false));
    }
}
