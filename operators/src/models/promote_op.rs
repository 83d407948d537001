//! `models.promote`: moves aliases (e.g. `champion`, `production`) to a
//! version given by number or by another alias.
//!
//! It refuses a version whose newest gate verdict rejected it (and, with
//! `require_gate: true`, one no gate has judged), and a version a person
//! moved one of the aliases away from: a rollback is a decision the loop
//! respects, not damage it repairs. A promotion that lowers a metric the
//! gate compared says so, with both numbers. It counts as up to date while
//! every alias points at the promoted version or a later one.
//!
//! Rolling back is `ModelRegistry::rollback`, exposed by the CLI.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::models::{Actor, ModelRegistry, ModelVersion};
use crate::{
    BoxFuture, Context, Earlier, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    run_blocking,
};

pub struct Promote;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The registered model.
    name: String,
    /// A version number (or its string form, as templates render it).
    #[serde(default)]
    version: Option<Value>,
    /// Promote the version this alias points at, instead of `version`.
    #[serde(default)]
    from_alias: Option<String>,
    /// The aliases to move (`champion`, `production`, ...).
    aliases: Vec<String>,
    /// Refuse a version that no gate has judged.
    #[serde(default)]
    require_gate: bool,
}

impl Params {
    fn reference(&self) -> Result<String, String> {
        match (&self.version, &self.from_alias) {
            (Some(Value::Number(n)), None) if n.as_u64().is_some() => Ok(n.to_string()),
            (Some(Value::String(s)), None) => Ok(s.clone()),
            (None, Some(alias)) => Ok(alias.clone()),
            (Some(other), None) => {
                Err(format!("`version` must be a version number, got `{other}`"))
            }
            (Some(_), Some(_)) => Err("give either `version` or `from_alias`, not both".into()),
            (None, None) => Err("give `version` or `from_alias`".into()),
        }
    }
}

/// Why `target` must not be promoted, if it must not.
fn refusal(
    registry: &ModelRegistry,
    params: &Params,
    target: &ModelVersion,
) -> Result<Option<String>, OperatorError> {
    let name = &params.name;
    let version = target.version;
    match target.gates.last() {
        Some(gate) if !gate.passed => {
            return Ok(Some(format!(
                "{name} v{version} was rejected by its gate: {}",
                gate.reasons.join("; ")
            )));
        }
        None if params.require_gate => {
            return Ok(Some(format!(
                "{name} v{version} has no gate verdict and `require_gate` is set; gate it first"
            )));
        }
        _ => {}
    }
    for alias in &params.aliases {
        if let Some(event) = registry.last_move_away(name, alias, version)?
            && event.by.is_by_hand()
        {
            return Ok(Some(format!(
                "`{alias}` was moved from v{version} to v{} by {} at {}; not moving it back. \
                 To promote v{version} again, run `dag models promote {name} {version} --alias {alias}`",
                event.to, event.by, event.at
            )));
        }
    }
    Ok(None)
}

fn promote(ctx: &Context) -> Result<Outcome, OperatorError> {
    let params: Params = parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
    let reference = params.reference().map_err(OperatorError::Params)?;
    let registry = ModelRegistry::open(&ctx.state_dir)?;
    let target = registry.resolve(&params.name, &reference)?;
    if let Some(reason) = refusal(&registry, &params, &target)? {
        return Err(OperatorError::failed(format!(
            "not promoting {} v{}: {reason}",
            params.name, target.version
        )));
    }
    let actor = Actor::of_context(ctx);
    let mut moves = Vec::new();
    for alias in &params.aliases {
        moves.push(registry.set_alias_by(&params.name, alias, target.version, &actor)?);
    }
    let mut summary = moves
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let gate = target.gates.last();
    let lowered = gate.map(|g| g.lowered()).unwrap_or_default();
    if let (Some(gate), false) = (gate, lowered.is_empty()) {
        let champion = gate.champion.as_ref().map_or(0, |c| c.version);
        let list: Vec<String> = lowered
            .iter()
            .map(|(metric, before, after)| format!("{metric} {before:.4} → {after:.4}"))
            .collect();
        summary.push_str(&format!(
            "; lowers {} against v{champion} on the gate's {} rows",
            list.join(", "),
            gate.rows.count
        ));
    }
    let lowered_value: Vec<Value> = lowered
        .iter()
        .map(|(metric, before, after)| json!({"metric": metric, "from": before, "to": after}))
        .collect();
    let moves_value =
        serde_json::to_value(&moves).map_err(|e| OperatorError::failed(e.to_string()))?;
    Ok(Outcome::default()
        .value("moves", moves_value)
        .value("version", target.version)
        .value("lowered", lowered_value)
        .metric("lowered_metrics", lowered.len() as f64)
        .summary(summary))
}

/// Whether an earlier promotion still stands: every alias points at the
/// version it promoted, or at a later one (a later promotion superseded it).
fn promotion_holds(earlier: &Earlier<'_>) -> Result<(), String> {
    let params: Params = parse_params(earlier.params).map_err(|p| p.message)?;
    let Some(version) = earlier
        .values
        .get("version")
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
    else {
        return Err("the earlier promotion recorded no version".into());
    };
    let registry = ModelRegistry::open(earlier.state_dir).map_err(|e| crate::error_chain(&e))?;
    for alias in &params.aliases {
        let current = registry
            .alias_target(&params.name, alias)
            .map_err(|e| crate::error_chain(&e))?;
        match current {
            Some(current) if current >= version => {}
            current => {
                let now = current.map_or_else(|| "nothing".into(), |v| format!("v{v}"));
                let by = registry
                    .last_move_away(&params.name, alias, version)
                    .ok()
                    .flatten()
                    .map(|event| format!(" (moved by {} at {})", event.by, event.at))
                    .unwrap_or_default();
                return Err(format!(
                    "`{alias}` points at {now}, not v{version} as promoted{by}"
                ));
            }
        }
    }
    Ok(())
}

impl Operator for Promote {
    fn name(&self) -> &'static str {
        "models.promote"
    }

    /// 2: refuses rejected and rolled-back versions; reports lowered metrics.
    fn version(&self) -> &'static str {
        "2"
    }

    fn description(&self) -> &'static str {
        "points `aliases` of model `name` at `version` (or at what `from_alias` points to)"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<Params>())
    }

    fn value_names(&self) -> &'static [&'static str] {
        &["moves", "version", "lowered"]
    }

    fn effect_holds(&self, earlier: &Earlier<'_>) -> Result<(), String> {
        promotion_holds(earlier)
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        match parse_params::<Params>(spec.params) {
            Err(problem) => vec![problem],
            Ok(params) => {
                let mut problems = Vec::new();
                if let Err(message) = params.reference() {
                    problems.push(Problem::new("params", message));
                }
                if params.aliases.is_empty() {
                    problems.push(Problem::new(
                        "params.aliases",
                        "name at least one alias to move",
                    ));
                }
                problems
            }
        }
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| promote(&ctx))
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ml::test_fixtures::tiny_model;
    use crate::models::{EvaluationRows, GateRecord, RegisterInfo, ScoredVersion};

    fn scored(version: u32, f1: f64) -> ScoredVersion {
        ScoredVersion {
            version,
            alias: None,
            digest: String::new(),
            metrics: BTreeMap::from([("f1_macro".into(), f1)]),
        }
    }

    fn gate(passed: bool, challenger: u32, champion: Option<u32>) -> GateRecord {
        GateRecord {
            passed,
            rows: EvaluationRows {
                count: 633,
                digest: "rows".into(),
            },
            challenger: scored(challenger, 0.9824),
            champion: champion.map(|v| scored(v, 0.9872)),
            criteria: Vec::new(),
            tracked: vec!["f1_macro".into()],
            reasons: if passed {
                Vec::new()
            } else {
                vec!["accuracy 0.5000 < 0.9".into()]
            },
            at: None,
            by: None,
        }
    }

    fn setup() -> (tempfile::TempDir, Context, ModelRegistry) {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context::detached(
            dir.path(),
            json!({"name": "m", "version": "2", "aliases": ["champion", "production"]}),
        );
        let registry = ModelRegistry::open(&ctx.state_dir).unwrap();
        for seed in [1, 2] {
            registry
                .register("m", &tiny_model(dir.path(), seed), RegisterInfo::default())
                .unwrap();
        }
        (dir, ctx, registry)
    }

    fn holds(ctx: &Context, outcome: &Outcome) -> Result<(), String> {
        Promote.effect_holds(&Earlier {
            params: &ctx.params,
            values: &outcome.values,
            state_dir: &ctx.state_dir,
        })
    }

    #[test]
    fn a_promotion_that_lowers_a_gated_metric_says_so_with_both_numbers() {
        let (_dir, ctx, registry) = setup();
        registry.record_gate("m", 1, gate(true, 1, None)).unwrap();
        registry
            .record_gate("m", 2, gate(true, 2, Some(1)))
            .unwrap();
        let outcome = promote(&ctx).unwrap();
        assert_eq!(
            outcome.summary.as_deref(),
            Some(
                "champion: (none) → v2, production: (none) → v2; lowers f1_macro 0.9872 → 0.9824 against v1 on the gate's 633 rows"
            )
        );
        assert_eq!(outcome.metrics["lowered_metrics"], 1.0);
        assert_eq!(outcome.values["lowered"][0]["metric"], "f1_macro");
        let history = registry.history("m").unwrap();
        assert_eq!(history[0].by, Actor::of_context(&ctx));
    }

    #[test]
    fn a_rejected_version_is_refused() {
        let (_dir, ctx, registry) = setup();
        registry.record_gate("m", 2, gate(false, 2, None)).unwrap();
        let error = promote(&ctx).unwrap_err().to_string();
        assert_eq!(
            error,
            "not promoting m v2: m v2 was rejected by its gate: accuracy 0.5000 < 0.9"
        );
        assert_eq!(registry.alias_target("m", "production").unwrap(), None);
    }

    #[test]
    fn after_a_rollback_by_hand_the_promotion_is_stale_and_refuses_to_undo_it() {
        let (_dir, ctx, registry) = setup();
        let first = Actor::task("d", "r1", "promote");
        for alias in ["champion", "production"] {
            registry.set_alias_by("m", alias, 1, &first).unwrap();
        }
        let outcome = promote(&ctx).unwrap();
        assert_eq!(holds(&ctx, &outcome), Ok(()));
        registry.rollback("m", "production").unwrap();
        let stale = holds(&ctx, &outcome).unwrap_err();
        assert!(
            stale.starts_with(
                "`champion` points at v1, not v2 as promoted (moved by `dag models rollback`"
            ),
            "{stale}"
        );
        let error = promote(&ctx).unwrap_err().to_string();
        assert!(
            error.contains("`champion` was moved from v2 to v1 by `dag models rollback`")
                && error.contains("run `dag models promote m 2 --alias champion`"),
            "{error}"
        );
        assert_eq!(registry.alias_target("m", "production").unwrap(), Some(1));
    }

    #[test]
    fn a_later_promotion_supersedes_without_making_the_earlier_stale() {
        let (_dir, ctx, registry) = setup();
        let mut older = ctx.clone();
        older.params = json!({"name": "m", "version": 1, "aliases": ["production"]});
        let outcome = promote(&older).unwrap();
        registry
            .set_alias_by("m", "production", 2, &Actor::task("d", "r2", "promote"))
            .unwrap();
        assert_eq!(holds(&older, &outcome), Ok(()));
    }

    #[test]
    fn require_gate_refuses_an_ungated_version() {
        let (_dir, mut ctx, _registry) = setup();
        ctx.params["require_gate"] = json!(true);
        let error = promote(&ctx).unwrap_err().to_string();
        assert!(error.contains("has no gate verdict"), "{error}");
    }
}
