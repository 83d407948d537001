//! [`GateRecord`]: a gate's verdict on a version as the registry keeps it —
//! both models' scores on the same rows, which rows, and every criterion
//! with its threshold — so that "why is this version in production?" has an
//! answer in the registry itself.
//!
//! `ml.gate` builds these; the registry only stores them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::models::Actor;

/// The rows both models were scored on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRows {
    pub count: usize,
    /// blake3 of the file the rows were read from.
    pub digest: String,
}

/// One model's scores on the evaluation rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredVersion {
    pub version: u32,
    /// The alias the version was found through (`champion`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// blake3 of the model file.
    pub digest: String,
    pub metrics: BTreeMap<String, f64>,
}

/// One check of the gate, with the number it compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionResult {
    /// As written or derived: `accuracy >= 0.9`, `f1_macro >= champion - 0.02`.
    pub criterion: String,
    /// The measured value (the challenger's, a gap, a row count).
    pub value: f64,
    /// The bound the value was compared with.
    pub threshold: f64,
    pub passed: bool,
}

/// A gate's verdict on one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateRecord {
    pub passed: bool,
    pub rows: EvaluationRows,
    pub challenger: ScoredVersion,
    /// `None` when there was no champion to compare with.
    pub champion: Option<ScoredVersion>,
    pub criteria: Vec<CriterionResult>,
    /// The metrics its rules named (criteria and the champion margin): a
    /// promotion says when it lowers one of these.
    #[serde(default)]
    pub tracked: Vec<String>,
    /// Why it was rejected (empty when it passed).
    pub reasons: Vec<String>,
    /// RFC 3339; set when the registry records the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The gate task that judged; set when the registry records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Actor>,
}

impl GateRecord {
    /// Tracked metrics the challenger scored lower than the champion on
    /// the same rows: `(metric, champion, challenger)`, by metric name.
    pub fn lowered(&self) -> Vec<(String, f64, f64)> {
        let Some(champion) = &self.champion else {
            return Vec::new();
        };
        if champion.version == self.challenger.version {
            return Vec::new();
        }
        self.tracked
            .iter()
            .filter_map(|name| {
                let before = *champion.metrics.get(name)?;
                let after = *self.challenger.metrics.get(name)?;
                (after < before).then(|| (name.clone(), before, after))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(version: u32, f1: f64, accuracy: f64) -> ScoredVersion {
        ScoredVersion {
            version,
            alias: None,
            digest: "d".into(),
            metrics: BTreeMap::from([("accuracy".into(), accuracy), ("f1_macro".into(), f1)]),
        }
    }

    #[test]
    fn lowered_lists_only_tracked_metrics_the_challenger_scored_below_the_champion() {
        let record = GateRecord {
            passed: true,
            rows: EvaluationRows {
                count: 10,
                digest: "r".into(),
            },
            challenger: scored(2, 0.9824, 0.99),
            champion: Some(scored(1, 0.9872, 0.98)),
            criteria: Vec::new(),
            tracked: vec!["accuracy".into(), "f1_macro".into()],
            reasons: Vec::new(),
            at: None,
            by: None,
        };
        assert_eq!(record.lowered(), [("f1_macro".to_string(), 0.9872, 0.9824)]);
        let untracked = GateRecord {
            tracked: vec!["accuracy".into()],
            ..record.clone()
        };
        assert!(untracked.lowered().is_empty());
        let alone = GateRecord {
            champion: None,
            ..record.clone()
        };
        assert!(alone.lowered().is_empty());
    }
}
