//! [`Criterion`]: one gate condition such as `accuracy >= 0.90`, parsed at
//! load time so a typo fails the DAG before anything runs.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    AtLeast,
    Above,
    AtMost,
    Below,
}

impl Comparison {
    fn symbol(self) -> &'static str {
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

    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Self::AtLeast => value >= bound,
            Self::Above => value > bound,
            Self::AtMost => value <= bound,
            Self::Below => value < bound,
        }
    }
}

/// `<metric> <op> <number>` with `op` one of `>=`, `>`, `<=`, `<`.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    pub metric: String,
    pub comparison: Comparison,
    pub bound: f64,
}

impl Criterion {
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [metric, op, bound] = parts[..] else {
            return Err(format!(
                "criterion `{text}` must look like `accuracy >= 0.90`"
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
        if !metric
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
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
            metric: metric.to_string(),
            comparison,
            bound,
        })
    }

    /// `Ok(note)` when `value` satisfies the criterion, `Err(reason)` otherwise.
    pub fn judge(&self, value: f64) -> Result<String, String> {
        if self.comparison.holds(value, self.bound) {
            Ok(format!(
                "{} {value:.4} {} {}",
                self.metric,
                self.comparison.symbol(),
                self.bound
            ))
        } else {
            Err(format!(
                "{} {value:.4} {} {}",
                self.metric,
                self.comparison.negated(),
                self.bound
            ))
        }
    }
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.metric,
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
    }
}
