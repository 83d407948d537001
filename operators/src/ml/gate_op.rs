//! `ml.gate`: decides whether a registered version (the challenger) may move
//! on. It scores the challenger *and* the registry's champion on the same
//! evaluation rows (`inputs.data`), then checks minimum evidence, absolute
//! criteria (overall or per class, `recall[Obesity_Type_III] >= 0.9`), a
//! regression margin against the champion, and a fairness bound on
//! per-group accuracy. The verdict — both scores, the rows (digest, count),
//! every check with its threshold — goes to `outputs.verdict` and into the
//! registry with the version. A rejection succeeds the task but
//! short-circuits everything downstream, with the reasons.
//!
//! The verdict stands while the champion is the version it was compared
//! with (or the challenger itself, once promoted). It does not move
//! aliases; `models.promote` does, downstream of the gate.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::ml::atomic::write_atomic;
use crate::ml::dataset::Table;
use crate::ml::evaluate_op::evaluate;
use crate::ml::gate_judge::{GateParams, Judgement, judge, judge_evidence, metric_map};
use crate::ml::model::TrainedModel;
use crate::models::{
    Actor, EvaluationRows, GateRecord, ModelRegistry, ModelVersion, ScoredVersion,
};
use crate::{
    BoxFuture, Context, Earlier, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    require_names, run_blocking,
};

pub struct Gate;

/// Rows per class in the evaluation data, over its labels and the classes
/// the model knows (a known class without rows counts 0).
fn support(model: &TrainedModel, table: &Table) -> Result<BTreeMap<String, usize>, OperatorError> {
    let mut counts: BTreeMap<String, usize> =
        model.classes().iter().map(|c| (c.clone(), 0)).collect();
    for label in model.transformer().labels(table)? {
        *counts.entry(label).or_default() += 1;
    }
    Ok(counts)
}

struct Scored {
    version: ModelVersion,
    metrics: BTreeMap<String, f64>,
    report: Value,
}

fn score(
    registry: &ModelRegistry,
    version: ModelVersion,
    table: &Table,
    group_by: &[String],
) -> Result<Scored, OperatorError> {
    let model = registry.load_verified(&version)?;
    let evaluation = evaluate(&model, table, group_by)?;
    Ok(Scored {
        metrics: metric_map(&evaluation.report),
        report: evaluation.report,
        version,
    })
}

fn scored_version(scored: &Scored, alias: Option<&str>) -> ScoredVersion {
    ScoredVersion {
        version: scored.version.version,
        alias: alias.map(str::to_string),
        digest: scored.version.digest.clone(),
        metrics: scored.metrics.clone(),
    }
}

fn gate(ctx: &Context) -> Result<Outcome, OperatorError> {
    let params: GateParams =
        parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
    let reference = params.challenger().map_err(OperatorError::Params)?;
    let registry = ModelRegistry::open(&ctx.state_dir)?;
    let challenger = registry.resolve(&params.model, &reference)?;
    let path = ctx.input("data")?;
    let bytes = std::fs::read(path).map_err(|e| OperatorError::io("read", path, e))?;
    let rows_digest = blake3::hash(&bytes).to_hex().to_string();
    let table = Table::read(path)?;
    let model = registry.load_verified(&challenger)?;
    let mut judgement = judge_evidence(&params, table.rows, &support(&model, &table)?);
    let group_by: Vec<String> = params.fairness.iter().map(|f| f.group.clone()).collect();
    let (challenger, champion) = if judgement.passed() {
        let challenger = score(&registry, challenger, &table, &group_by)?;
        let champion = match &params.champion {
            None => None,
            Some(rule) => match registry.alias_target(&params.model, &rule.alias)? {
                None => None,
                Some(v) if v == challenger.version.version => Some(Scored {
                    version: challenger.version.clone(),
                    metrics: challenger.metrics.clone(),
                    report: Value::Null,
                }),
                Some(v) => Some(score(
                    &registry,
                    registry.get(&params.model, v)?,
                    &table,
                    &group_by,
                )?),
            },
        };
        let compared = champion.as_ref().map(|c| (c.version.version, &c.metrics));
        let checks = judge(&params, &challenger.metrics, &challenger.report, compared)
            .map_err(|message| OperatorError::failed(format!("`{}`: {message}", path.display())))?;
        judgement.criteria.extend(checks.criteria);
        judgement.reasons.extend(checks.reasons);
        (challenger, champion)
    } else {
        let unscored = Scored {
            version: challenger,
            metrics: BTreeMap::new(),
            report: Value::Null,
        };
        (unscored, None)
    };
    let champion_alias = params.champion.as_ref().map(|r| r.alias.as_str());
    let record = GateRecord {
        passed: judgement.passed(),
        rows: EvaluationRows {
            count: table.rows,
            digest: rows_digest,
        },
        challenger: scored_version(&challenger, None),
        champion: champion.as_ref().map(|c| scored_version(c, champion_alias)),
        criteria: judgement.criteria.clone(),
        tracked: tracked(&params),
        reasons: judgement.reasons.clone(),
        at: None,
        by: None,
    };
    let json =
        serde_json::to_vec_pretty(&record).map_err(|e| OperatorError::failed(e.to_string()))?;
    write_atomic(ctx.output("verdict")?, &json)?;
    registry.record_gate(
        &params.model,
        challenger.version.version,
        GateRecord {
            at: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            by: Some(Actor::of_context(ctx)),
            ..record
        },
    )?;
    Ok(outcome(
        &params,
        &judgement,
        &challenger,
        champion.as_ref(),
        table.rows,
    ))
}

/// The metrics the gate's rules name: what a promotion reports lowering.
fn tracked(params: &GateParams) -> Vec<String> {
    let mut names: Vec<String> = params
        .criteria
        .iter()
        .filter_map(|text| crate::ml::Criterion::parse(text).ok())
        .map(|c| c.key())
        .chain(params.champion.iter().map(|rule| rule.metric.clone()))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn outcome(
    params: &GateParams,
    judgement: &Judgement,
    challenger: &Scored,
    champion: Option<&Scored>,
    rows: usize,
) -> Outcome {
    let champion_version = champion.map(|c| c.version.version);
    let against = match champion_version {
        Some(v) => format!(
            "v{} against {} v{v}",
            challenger.version.version,
            params
                .champion
                .as_ref()
                .map_or("champion", |r| r.alias.as_str())
        ),
        None => format!("v{}", challenger.version.version),
    };
    let outcome = Outcome::default()
        .value("passed", judgement.passed())
        .value("reasons", judgement.reasons.clone())
        .value("challenger_version", challenger.version.version)
        .value("champion_version", champion_version)
        .metric("passed", if judgement.passed() { 1.0 } else { 0.0 })
        .metric("rows", rows as f64);
    if judgement.passed() {
        let checks: Vec<String> = judgement
            .criteria
            .iter()
            .map(|c| {
                if c.value.fract() == 0.0 && c.value.abs() < 1e15 {
                    format!("{} ({})", c.criterion, c.value)
                } else {
                    format!("{} ({:.4})", c.criterion, c.value)
                }
            })
            .collect();
        outcome.summary(format!(
            "gate passed {against} on {rows} rows: {}",
            checks.join("; ")
        ))
    } else {
        let reason = format!(
            "gate rejected {against} on {rows} rows: {}",
            judgement.reasons.join("; ")
        );
        outcome.summary(reason.clone()).short_circuit(reason)
    }
}

/// Whether an earlier verdict still applies: the champion is the version it
/// was compared with, or the challenger itself (promoted since).
fn verdict_holds(earlier: &Earlier<'_>) -> Result<(), String> {
    let params: GateParams = parse_params(earlier.params).map_err(|p| p.message)?;
    let Some(rule) = &params.champion else {
        return Ok(());
    };
    let version = |name: &str| earlier.values.get(name).and_then(Value::as_u64);
    let compared = version("champion_version");
    let challenger = version("challenger_version");
    let registry = ModelRegistry::open(earlier.state_dir).map_err(|e| crate::error_chain(&e))?;
    let now = registry
        .alias_target(&params.model, &rule.alias)
        .map_err(|e| crate::error_chain(&e))?
        .map(u64::from);
    if now == compared || (now.is_some() && now == challenger) {
        return Ok(());
    }
    let show = |v: Option<u64>| v.map_or_else(|| "nothing".to_string(), |v| format!("v{v}"));
    let against = compared.map_or_else(
        || format!("no `{}` (there was none)", rule.alias),
        |v| format!("v{v}"),
    );
    Err(format!(
        "`{}` now points at {}; this verdict compared against {against}",
        rule.alias,
        show(now),
    ))
}

impl Operator for Gate {
    fn name(&self) -> &'static str {
        "ml.gate"
    }

    /// 2: scores champion and challenger on the same rows; minimum evidence.
    fn version(&self) -> &'static str {
        "2"
    }

    fn description(&self) -> &'static str {
        "scores registered `version` and the champion on the same `data`; accepts or rejects by evidence, `criteria`, a `champion` margin and a `fairness` gap"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<crate::ml::GateParams>())
    }

    fn ports(&self) -> crate::Ports {
        const PORTS: crate::Ports = crate::Ports {
            inputs: &[crate::Port::required(
                "data",
                "the evaluation rows, with the target; both versions are scored on them",
            )],
            outputs: &[crate::Port::required(
                "verdict",
                "JSON: each check with its value, both versions' scores, passed or not",
            )],
            ..crate::Ports::NONE
        };
        PORTS
    }

    fn value_names(&self) -> &'static [&'static str] {
        &[
            "passed",
            "reasons",
            "challenger_version",
            "champion_version",
        ]
    }

    fn effect_holds(&self, earlier: &Earlier<'_>) -> Result<(), String> {
        verdict_holds(earlier)
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("inputs", spec.inputs, &["data"]);
        problems.extend(require_names("outputs", spec.outputs, &["verdict"]));
        match parse_params::<GateParams>(spec.params) {
            Err(problem) => problems.push(problem),
            Ok(params) => {
                problems.extend(params.problems().into_iter().map(|(at, message, help)| {
                    let problem = Problem::new(at, message);
                    match help {
                        Some(help) => problem.with_help(help),
                        None => problem,
                    }
                }))
            }
        }
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| gate(&ctx))
    }
}
