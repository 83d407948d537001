//! [`FeatureDrift`]: the Jensen–Shannon divergence and PSI of one column of
//! the current table against the same column of the reference.
//!
//! Numeric columns are binned over the reference (see `divergence.rs`);
//! categorical columns compare category shares over the union of categories
//! seen in either table. Nulls are left out here; completeness reports them.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;
use serde::Serialize;

use super::divergence::{Binning, edges, histogram, jensen_shannon, population_stability, shares};
use crate::OperatorError;
use crate::data::column::{ColumnKind, categories, category_counts, numbers};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureDrift {
    pub kind: ColumnKind,
    pub js: f64,
    pub psi: f64,
    pub drifted: bool,
}

/// Compares column `name` of `current` against `reference`. When the kinds
/// differ, both are compared as categories.
pub fn compare(
    name: &str,
    reference: &DataFrame,
    current: &DataFrame,
    files: (&Path, &Path),
    bins: usize,
    binning: Binning,
) -> Result<(ColumnKind, Vec<f64>, Vec<f64>), OperatorError> {
    let kinds = (
        reference.column(name).map(ColumnKind::of).ok(),
        current.column(name).map(ColumnKind::of).ok(),
    );
    if kinds == (Some(ColumnKind::Number), Some(ColumnKind::Number)) {
        let before = numbers(reference, name, files.0)?;
        let after = numbers(current, name, files.1)?;
        let reference_values = before.iter().flatten().filter(|v| !v.is_nan()).collect();
        let edges = edges(reference_values, bins, binning);
        let p = shares(&histogram(before.iter().flatten(), &edges));
        let q = shares(&histogram(after.iter().flatten(), &edges));
        return Ok((ColumnKind::Number, p, q));
    }
    let before = categories(reference, name, files.0)?;
    let after = categories(current, name, files.1)?;
    let mut counts: BTreeMap<String, [u64; 2]> = BTreeMap::new();
    for (value, count) in category_counts(&before) {
        counts.entry(value).or_default()[0] = count;
    }
    for (value, count) in category_counts(&after) {
        counts.entry(value).or_default()[1] = count;
    }
    let p = shares(&counts.values().map(|c| c[0]).collect::<Vec<_>>());
    let q = shares(&counts.values().map(|c| c[1]).collect::<Vec<_>>());
    Ok((ColumnKind::Category, p, q))
}

impl FeatureDrift {
    pub fn from_shares(
        kind: ColumnKind,
        p: &[f64],
        q: &[f64],
        js_threshold: f64,
        psi_threshold: f64,
    ) -> Self {
        let js = jensen_shannon(p, q);
        let psi = population_stability(p, q);
        Self {
            kind,
            js,
            psi,
            drifted: js > js_threshold || psi > psi_threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use super::*;

    fn drift(reference: &DataFrame, current: &DataFrame, name: &str) -> FeatureDrift {
        let files = (Path::new("r"), Path::new("c"));
        let (kind, p, q) = compare(name, reference, current, files, 10, Binning::Quantile).unwrap();
        FeatureDrift::from_shares(kind, &p, &q, 0.1, 0.2)
    }

    #[test]
    fn a_shifted_numeric_column_drifts_and_an_unshifted_one_does_not() {
        let values: Vec<f64> = (0..1000).map(|i| f64::from(i % 100)).collect();
        let shifted: Vec<f64> = values.iter().map(|v| v + 40.0).collect();
        let reference = df!("x" => &values).unwrap();
        assert!(!drift(&reference, &df!("x" => &values).unwrap(), "x").drifted);
        let moved = drift(&reference, &df!("x" => &shifted).unwrap(), "x");
        assert!(moved.drifted && moved.js > 0.1, "{moved:?}");
    }

    #[test]
    fn a_new_dominant_category_drifts() {
        let reference = df!("c" => ["a", "b", "a", "b"]).unwrap();
        let current = df!("c" => ["z", "z", "z", "a"]).unwrap();
        let result = drift(&reference, &current, "c");
        assert_eq!(result.kind, ColumnKind::Category);
        assert!(result.drifted && result.psi > 0.2, "{result:?}");
    }
}
