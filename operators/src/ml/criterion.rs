//! [`Criterion`]: one gate condition such as `accuracy >= 0.90` or
//! `recall[Obesity_Type_III] >= 0.9`, parsed at load time so a typo fails
//! the DAG before anything runs, and the metric names a gate can judge.

use std::fmt;

use crate::did_you_mean;

/// Metrics of the whole evaluation.
pub const OVERALL_METRICS: &[&str] = &["accuracy", "f1_macro", "f1_weighted", "roc_auc_ovr"];
/// Metrics of one class, written `name[Class]`.
pub const CLASS_METRICS: &[&str] = &["precision", "recall", "f1", "roc_auc"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    AtLeast,
    Above,
    AtMost,
    Below,
}

impl Comparison {
    pub fn symbol(self) -> &'static str {
        match self {
            Self::AtLeast => ">=",
            Self::Above => ">",
            Self::AtMost => "<=",
            Self::Below => "<",
        }
    }

    fn negated(self) -> &'static str {
        match self {
            Self::AtLeast => "<",
            Self::Above => "<=",
            Self::AtMost => ">",
            Self::Below => ">=",
        }
    }

    pub fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Self::AtLeast => value >= bound,
            Self::Above => value > bound,
            Self::AtMost => value <= bound,
            Self::Below => value < bound,
        }
    }
}

/// `<metric> <op> <number>` with `op` one of `>=`, `>`, `<=`, `<`, and the
/// metric either overall (`f1_macro`) or of one class (`recall[Normal_Weight]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    /// The metric's name without the class: `recall`.
    pub metric: String,
    /// The class of a per-class metric.
    pub class: Option<String>,
    pub comparison: Comparison,
    pub bound: f64,
}

/// Why a metric name is not one a gate can judge, with a suggestion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMetric {
    pub message: String,
    pub help: String,
}

/// Checks a metric name (`f1_macro`, `recall[X]`) against the known ones.
pub fn check_metric(name: &str) -> Result<(), UnknownMetric> {
    let (base, class) = split_metric(name);
    let known = if class.is_some() {
        CLASS_METRICS
    } else {
        OVERALL_METRICS
    };
    if known.contains(&base) {
        return Ok(());
    }
    let other = if class.is_some() {
        OVERALL_METRICS
    } else {
        CLASS_METRICS
    };
    let help = if other.contains(&base) {
        if class.is_some() {
            format!("`{base}` is a metric of the whole evaluation; write it without `[class]`")
        } else {
            format!("`{base}` is a per-class metric; write `{base}[<class>]`")
        }
    } else {
        let suggestion = did_you_mean(base, known.iter().copied());
        let list = format!(
            "metrics: {}; per class: {}",
            OVERALL_METRICS.join(", "),
            CLASS_METRICS
                .iter()
                .map(|m| format!("{m}[<class>]"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        suggestion.map_or(list.clone(), |s| format!("{s} ({list})"))
    };
    Err(UnknownMetric {
        message: format!("unknown metric `{name}`"),
        help,
    })
}

/// `recall[X]` → (`recall`, `Some("X")`); `accuracy` → (`accuracy`, `None`).
fn split_metric(name: &str) -> (&str, Option<&str>) {
    match name.strip_suffix(']').and_then(|n| n.split_once('[')) {
        Some((base, class)) => (base, Some(class)),
        None => (name, None),
    }
}

impl Criterion {
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [metric, op, bound] = parts[..] else {
            return Err(format!(
                "criterion `{text}` must look like `accuracy >= 0.90` or `recall[<class>] >= 0.9`"
            ));
        };
        let comparison = match op {
            ">=" => Comparison::AtLeast,
            ">" => Comparison::Above,
            "<=" => Comparison::AtMost,
            "<" => Comparison::Below,
            other => {
                return Err(format!(
                    "criterion `{text}` has unknown comparison `{other}`; use >=, >, <= or <"
                ));
            }
        };
        let (base, class) = split_metric(metric);
        let word = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        if !word(base) || class.is_some_and(|c| !word(c)) {
            return Err(format!(
                "criterion `{text}` names an invalid metric `{metric}`"
            ));
        }
        let bound = bound
            .parse::<f64>()
            .ok()
            .filter(|b| b.is_finite())
            .ok_or_else(|| {
                format!("criterion `{text}` has a bound `{bound}` that is not a number")
            })?;
        Ok(Self {
            metric: base.to_string(),
            class: class.map(str::to_string),
            comparison,
            bound,
        })
    }

    /// The metric as the gate's metric maps key it: `recall[X]` or `accuracy`.
    pub fn key(&self) -> String {
        match &self.class {
            Some(class) => format!("{}[{class}]", self.metric),
            None => self.metric.clone(),
        }
    }

    /// `Ok(note)` when `value` satisfies the criterion, `Err(reason)` otherwise.
    pub fn judge(&self, value: f64) -> Result<String, String> {
        let symbol = if self.comparison.holds(value, self.bound) {
            self.comparison.symbol()
        } else {
            self.comparison.negated()
        };
        let line = format!("{} {value:.4} {symbol} {}", self.key(), self.bound);
        if self.comparison.holds(value, self.bound) {
            Ok(line)
        } else {
            Err(line)
        }
    }
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.key(),
            self.comparison.symbol(),
            self.bound
        )
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_judges_a_criterion() {
        let c = Criterion::parse("accuracy >= 0.90").unwrap();
        assert_eq!(c.judge(0.95), Ok("accuracy 0.9500 >= 0.9".into()));
        assert_eq!(c.judge(0.85), Err("accuracy 0.8500 < 0.9".into()));
    }

    #[test]
    fn a_per_class_criterion_keeps_its_class() {
        let c = Criterion::parse("recall[Obesity_Type_III] >= 0.9").unwrap();
        assert_eq!(
            (c.metric.as_str(), c.class.as_deref()),
            ("recall", Some("Obesity_Type_III"))
        );
        assert_eq!(c.to_string(), "recall[Obesity_Type_III] >= 0.9");
        assert_eq!(
            c.judge(0.5),
            Err("recall[Obesity_Type_III] 0.5000 < 0.9".into())
        );
    }

    #[test]
    fn malformed_criteria_are_explained() {
        assert!(
            Criterion::parse("accuracy => 0.9")
                .unwrap_err()
                .contains("unknown comparison `=>`")
        );
        assert!(
            Criterion::parse("accuracy >= high")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            Criterion::parse("accuracy")
                .unwrap_err()
                .contains("must look like")
        );
        assert!(
            Criterion::parse("recall[] >= 0.9")
                .unwrap_err()
                .contains("invalid metric")
        );
    }

    #[test]
    fn unknown_metrics_suggest_the_closest_and_say_which_need_a_class() {
        assert_eq!(check_metric("f1_macro"), Ok(()));
        assert_eq!(check_metric("recall[Normal_Weight]"), Ok(()));
        let typo = check_metric("f1_marco").unwrap_err();
        assert_eq!(typo.message, "unknown metric `f1_marco`");
        assert!(
            typo.help.starts_with("did you mean `f1_macro`?"),
            "{}",
            typo.help
        );
        let class_typo = check_metric("recal[X]").unwrap_err();
        assert!(
            class_typo.help.starts_with("did you mean `recall`?"),
            "{}",
            class_typo.help
        );
        assert!(
            check_metric("recall")
                .unwrap_err()
                .help
                .contains("write `recall[<class>]`")
        );
        assert!(
            check_metric("accuracy[X]")
                .unwrap_err()
                .help
                .contains("without `[class]`")
        );
    }
}
