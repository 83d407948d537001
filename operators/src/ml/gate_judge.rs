//! The gate's judgement, free of files and the registry: an evaluation
//! report flattened into named metrics, and every check — minimum evidence,
//! criteria, the margin against the champion on the same rows, fairness —
//! as a [`CriterionResult`] with the number it compared and its threshold.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::did_you_mean;
use crate::ml::criterion::{CLASS_METRICS, Criterion, check_metric};
use crate::models::CriterionResult;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChampionRule {
    /// The alias of the version to beat.
    #[serde(default = "default_alias")]
    pub alias: String,
    /// How far below the champion's `metric` the challenger may score.
    pub max_regression: f64,
    /// The metric compared (an overall metric, or `recall[CLASS]` and the like).
    #[serde(default = "default_metric")]
    pub metric: String,
}

fn default_alias() -> String {
    "champion".into()
}
fn default_metric() -> String {
    "f1_macro".into()
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FairnessRule {
    /// The column whose values form the groups (`Gender`).
    pub group: String,
    /// The largest accuracy gap allowed between two groups.
    pub max_gap: f64,
}

/// `ml.gate` params.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GateParams {
    /// The registry name of the model.
    pub model: String,
    /// The challenger: a version number (or its text, as templates render
    /// it, `3` or `v3`) or an alias.
    pub version: Value,
    /// Conditions on the challenger's scores, `METRIC OP VALUE` with OP one
    /// of `>=`, `>`, `<=`, `<`: `accuracy >= 0.9`,
    /// `recall[Obesity_Type_III] >= 0.9`. Overall metrics: `accuracy`,
    /// `f1_macro`, `f1_weighted`, `roc_auc_ovr`; per class, written
    /// `name[CLASS]`: `precision`, `recall`, `f1`, `roc_auc`. Names are
    /// checked at load time.
    #[serde(default)]
    pub criteria: Vec<String>,
    /// Compare with the version an alias points at, on the same rows.
    #[serde(default)]
    pub champion: Option<ChampionRule>,
    /// Bound the accuracy gap between groups.
    #[serde(default)]
    pub fairness: Option<FairnessRule>,
    /// Fewer evaluation rows than this reject the challenger.
    #[serde(default = "default_min_rows")]
    pub min_rows: usize,
    /// A class with fewer evaluation rows than this rejects the challenger.
    #[serde(default = "default_min_rows_per_class")]
    pub min_rows_per_class: usize,
}

fn default_min_rows() -> usize {
    30
}
fn default_min_rows_per_class() -> usize {
    5
}

impl GateParams {
    /// The challenger reference as the registry resolves it.
    pub fn challenger(&self) -> Result<String, String> {
        match &self.version {
            Value::Number(n) if n.as_u64().is_some() => Ok(n.to_string()),
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            other => Err(format!(
                "`version` must be a version number or an alias, got `{other}`"
            )),
        }
    }

    /// Problems a DAG file can be told about at load time: `(at, message, help)`.
    pub fn problems(&self) -> Vec<(String, String, Option<String>)> {
        let mut problems = Vec::new();
        for (i, text) in self.criteria.iter().enumerate() {
            let at = format!("params.criteria[{i}]");
            match Criterion::parse(text) {
                Err(message) => problems.push((at, message, None)),
                Ok(criterion) => {
                    if let Err(unknown) = check_metric(&criterion.key()) {
                        problems.push((
                            at,
                            format!("criterion `{text}`: {}", unknown.message),
                            Some(unknown.help),
                        ));
                    }
                }
            }
        }
        if let Some(rule) = &self.champion {
            if let Err(unknown) = check_metric(&rule.metric) {
                problems.push((
                    "params.champion.metric".into(),
                    unknown.message,
                    Some(unknown.help),
                ));
            }
            if !(rule.max_regression.is_finite() && rule.max_regression >= 0.0) {
                problems.push((
                    "params.champion.max_regression".into(),
                    format!(
                        "`max_regression` must be a number >= 0, not {}",
                        rule.max_regression
                    ),
                    None,
                ));
            }
        }
        if self.criteria.is_empty() && self.champion.is_none() && self.fairness.is_none() {
            problems.push((
                "params".into(),
                "the gate checks nothing; give `criteria`, `champion` or `fairness`".into(),
                None,
            ));
        }
        if self.min_rows == 0 || self.min_rows_per_class == 0 {
            problems.push((
                "params".into(),
                "`min_rows` and `min_rows_per_class` must be at least 1".into(),
                None,
            ));
        }
        if let Err(message) = self.challenger() {
            problems.push(("params.version".into(), message, None));
        }
        problems
    }
}

/// Every check's outcome; rejected when any failed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Judgement {
    pub criteria: Vec<CriterionResult>,
    pub reasons: Vec<String>,
}

impl Judgement {
    pub fn passed(&self) -> bool {
        self.reasons.is_empty()
    }

    fn add(&mut self, criterion: String, value: f64, threshold: f64, passed: bool, reason: String) {
        if !passed {
            self.reasons.push(reason);
        }
        self.criteria.push(CriterionResult {
            criterion,
            value,
            threshold,
            passed,
        });
    }
}

/// The overall metrics of an evaluation report, and per class as `name[class]`.
pub fn metric_map(report: &Value) -> BTreeMap<String, f64> {
    let mut metrics = BTreeMap::new();
    for name in crate::ml::criterion::OVERALL_METRICS {
        if let Some(value) = report.get(*name).and_then(Value::as_f64) {
            metrics.insert((*name).to_string(), value);
        }
    }
    if let Some(classes) = report.get("per_class").and_then(Value::as_object) {
        for (class, scores) in classes {
            for name in CLASS_METRICS {
                if let Some(value) = scores.get(*name).and_then(Value::as_f64) {
                    metrics.insert(format!("{name}[{class}]"), value);
                }
            }
        }
    }
    metrics
}

/// Checks the evaluation rows: enough in total, and enough of each class.
pub fn judge_evidence(
    params: &GateParams,
    rows: usize,
    support: &BTreeMap<String, usize>,
) -> Judgement {
    let mut judgement = Judgement::default();
    judgement.add(
        format!("rows >= {}", params.min_rows),
        rows as f64,
        params.min_rows as f64,
        rows >= params.min_rows,
        format!(
            "too little evidence: {rows} evaluation rows, at least {} needed (`min_rows`)",
            params.min_rows
        ),
    );
    if let Some((class, fewest)) = support.iter().min_by_key(|(class, n)| (**n, *class)) {
        judgement.add(
            format!("rows of each class >= {}", params.min_rows_per_class),
            *fewest as f64,
            params.min_rows_per_class as f64,
            *fewest >= params.min_rows_per_class,
            format!(
                "too little evidence: class `{class}` has {fewest} evaluation rows, at least {} needed (`min_rows_per_class`)",
                params.min_rows_per_class
            ),
        );
    }
    judgement
}

/// Judges the challenger's metrics (and its report, for fairness) against
/// the criteria, and against the champion's metrics on the same rows.
pub fn judge(
    params: &GateParams,
    challenger: &BTreeMap<String, f64>,
    report: &Value,
    champion: Option<(u32, &BTreeMap<String, f64>)>,
) -> Result<Judgement, String> {
    let mut judgement = Judgement::default();
    let lookup = |key: &str| {
        challenger.get(key).copied().ok_or_else(|| {
            let known: Vec<&str> = challenger.keys().map(String::as_str).collect();
            let help = did_you_mean(key, known.iter().copied())
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            format!(
                "the evaluation has no metric `{key}`{help} (it has: {})",
                known.join(", ")
            )
        })
    };
    for text in &params.criteria {
        let criterion = Criterion::parse(text)?;
        let value = lookup(&criterion.key())?;
        let passed = criterion.comparison.holds(value, criterion.bound);
        let line = match criterion.judge(value) {
            Ok(line) | Err(line) => line,
        };
        judgement.add(criterion.to_string(), value, criterion.bound, passed, line);
    }
    if let Some(rule) = &params.champion {
        let value = lookup(&rule.metric)?;
        // Without a champion there is nothing to compare with; the verdict's
        // `champion: null` says so.
        if let Some((version, metrics)) = champion {
            let best = metrics.get(&rule.metric).copied().ok_or_else(|| {
                format!("the champion's evaluation has no metric `{}`", rule.metric)
            })?;
            let threshold = best - rule.max_regression;
            judgement.add(
                    format!(
                        "{} >= {} v{version} ({best:.4}) - {}",
                        rule.metric, rule.alias, rule.max_regression
                    ),
                    value,
                    threshold,
                    value >= threshold,
                    format!(
                        "{} {value:.4} is worse than the {} v{version} ({best:.4}) on the same rows by more than {}",
                        rule.metric, rule.alias, rule.max_regression
                    ),
                );
        }
    }
    if let Some(rule) = &params.fairness {
        let groups = report
            .get("groups")
            .and_then(|g| g.get(&rule.group))
            .and_then(Value::as_object)
            .ok_or_else(|| format!("the evaluation has no `{}` groups", rule.group))?;
        let accuracies: Vec<(&String, f64)> = groups
            .iter()
            .filter_map(|(k, v)| v.get("accuracy").and_then(Value::as_f64).map(|a| (k, a)))
            .collect();
        let lowest = accuracies.iter().min_by(|a, b| a.1.total_cmp(&b.1));
        let highest = accuracies.iter().max_by(|a, b| a.1.total_cmp(&b.1));
        if let (Some(lowest), Some(highest)) = (lowest, highest) {
            let gap = highest.1 - lowest.1;
            judgement.add(
                format!("{} accuracy gap <= {}", rule.group, rule.max_gap),
                gap,
                rule.max_gap,
                gap <= rule.max_gap,
                format!(
                    "{} accuracy gap {gap:.4} ({} {:.4}, {} {:.4}) > {}",
                    rule.group, lowest.0, lowest.1, highest.0, highest.1, rule.max_gap
                ),
            );
        }
    }
    Ok(judgement)
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(value: Value) -> GateParams {
        let mut base = json!({"model": "m", "version": 2});
        if let (Some(base), Some(extra)) = (base.as_object_mut(), value.as_object()) {
            base.extend(extra.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    fn report() -> Value {
        json!({
            "accuracy": 0.95, "f1_macro": 0.94,
            "per_class": {"low": {"recall": 0.8, "precision": 1.0, "f1": 0.9, "roc_auc": null}},
            "groups": {"Gender": {"Female": {"accuracy": 0.97}, "Male": {"accuracy": 0.90}}}
        })
    }

    #[test]
    fn reports_flatten_into_overall_and_per_class_metrics() {
        let metrics = metric_map(&report());
        assert_eq!(
            metrics.keys().collect::<Vec<_>>(),
            [
                "accuracy",
                "f1[low]",
                "f1_macro",
                "precision[low]",
                "recall[low]"
            ]
        );
    }

    #[test]
    fn criteria_record_value_and_threshold_and_failures_give_reasons() {
        let p = params(json!({"criteria": ["accuracy >= 0.9", "recall[low] >= 0.9"]}));
        let judgement = judge(&p, &metric_map(&report()), &report(), None).unwrap();
        assert!(!judgement.passed());
        assert_eq!(judgement.reasons, ["recall[low] 0.8000 < 0.9"]);
        assert_eq!(judgement.criteria[1].value, 0.8);
        assert_eq!(judgement.criteria[1].threshold, 0.9);
        assert!(judgement.criteria[0].passed);
    }

    #[test]
    fn the_champion_margin_compares_scores_on_the_same_rows() {
        let p = params(json!({"champion": {"max_regression": 0.02}}));
        let challenger = metric_map(&report());
        let champion = BTreeMap::from([("f1_macro".to_string(), 0.97)]);
        let judgement = judge(&p, &challenger, &report(), Some((1, &champion))).unwrap();
        assert_eq!(
            judgement.reasons,
            [
                "f1_macro 0.9400 is worse than the champion v1 (0.9700) on the same rows by more than 0.02"
            ]
        );
        assert!((judgement.criteria[0].threshold - 0.95).abs() < 1e-12);
        let close = BTreeMap::from([("f1_macro".to_string(), 0.955)]);
        assert!(
            judge(&p, &challenger, &report(), Some((1, &close)))
                .unwrap()
                .passed()
        );
        let alone = judge(&p, &challenger, &report(), None).unwrap();
        assert!(alone.passed() && alone.criteria.is_empty());
    }

    #[test]
    fn fairness_gap_is_checked_per_group() {
        let strict = params(json!({"fairness": {"group": "Gender", "max_gap": 0.05}}));
        let judgement = judge(&strict, &metric_map(&report()), &report(), None).unwrap();
        assert!(
            judgement.reasons[0].starts_with("Gender accuracy gap 0.07"),
            "{judgement:?}"
        );
        let missing = params(json!({"fairness": {"group": "Age", "max_gap": 0.1}}));
        assert!(
            judge(&missing, &metric_map(&report()), &report(), None)
                .unwrap_err()
                .contains("`Age` groups")
        );
    }

    #[test]
    fn an_unknown_class_names_the_known_metrics() {
        let p = params(json!({"criteria": ["recall[lwo] >= 0.9"]}));
        let error = judge(&p, &metric_map(&report()), &report(), None).unwrap_err();
        assert!(error.contains("did you mean `recall[low]`?"), "{error}");
    }

    #[test]
    fn too_few_rows_in_total_or_of_a_class_reject_with_the_numbers() {
        let p = params(json!({"criteria": ["accuracy >= 0.9"]}));
        let support = BTreeMap::from([("a".to_string(), 40), ("b".to_string(), 2)]);
        let judgement = judge_evidence(&p, 42, &support);
        assert_eq!(
            judgement.reasons,
            [
                "too little evidence: class `b` has 2 evaluation rows, at least 5 needed (`min_rows_per_class`)"
            ]
        );
        let judgement = judge_evidence(&p, 2, &BTreeMap::from([("a".to_string(), 2)]));
        assert_eq!(judgement.reasons.len(), 2);
        assert!(
            judgement.reasons[0].contains("2 evaluation rows, at least 30 needed (`min_rows`)")
        );
    }

    #[test]
    fn load_time_problems_name_unknown_metrics_with_a_suggestion() {
        let p = params(
            json!({"criteria": ["f1_marco >= 0.9", "accuracy => 1"], "champion": {"max_regression": 0.02, "metric": "acuracy"}}),
        );
        let problems = p.problems();
        let at: Vec<&str> = problems.iter().map(|(at, _, _)| at.as_str()).collect();
        assert_eq!(
            at,
            [
                "params.criteria[0]",
                "params.criteria[1]",
                "params.champion.metric"
            ]
        );
        assert!(
            problems[0]
                .2
                .as_deref()
                .unwrap()
                .starts_with("did you mean `f1_macro`?")
        );
        assert!(
            problems[2]
                .2
                .as_deref()
                .unwrap()
                .starts_with("did you mean `accuracy`?")
        );
    }
}
