//! Distribution comparison: binning a numeric reference, histograms, and the
//! two divergences `monitor.drift` reports.
//!
//! - Jensen–Shannon divergence in bits (log base 2), so it lies in `[0, 1]`:
//!   `JS(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m)` with `m = ½ (p + q)`.
//! - Population stability index: `PSI = Σ (q − p) ln(q / p)`, `p` the
//!   reference shares and `q` the current ones.
//!
//! Empty bins get a share of [`EPSILON`] before either formula, so both stay
//! finite. This module knows nothing about tables or thresholds.

use serde::Deserialize;

/// Above this many reference values, quantile edges come from an evenly
/// strided sample of this size: bin edges then sit within about 0.2 % of
/// the exact quantiles, which changes the bins' shares negligibly and saves
/// most of the binning time on large tables.
pub const QUANTILE_SAMPLE: usize = 1 << 18;

/// The share given to an empty bin.
pub const EPSILON: f64 = 1e-4;

/// How numeric bins are placed over the reference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Binning {
    /// Edges at the reference's quantiles: about equally many reference
    /// values per bin. Repeated edges (discrete columns) are merged.
    #[default]
    Quantile,
    /// Equally wide bins between the reference's minimum and maximum.
    EqualWidth,
}

/// The interior edges of `bins` bins over the reference values (in any
/// order, without NaN; see [`QUANTILE_SAMPLE`] for large references). Bin `i` holds values in `(edge[i-1], edge[i]]`; the
/// first and last bins are open-ended, so current values outside the
/// reference range still count.
pub fn edges(mut values: Vec<f64>, bins: usize, binning: Binning) -> Vec<f64> {
    if values.is_empty() {
        return Vec::new();
    }
    let mut edges: Vec<f64> = match binning {
        Binning::EqualWidth => {
            let low = values.iter().copied().fold(f64::INFINITY, f64::min);
            let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (1..bins)
                .map(|k| low + k as f64 / bins as f64 * (high - low))
                .collect()
        }
        Binning::Quantile if values.len() > QUANTILE_SAMPLE => {
            // Every `stride`-th value: a deterministic systematic sample.
            let stride = values.len().div_ceil(QUANTILE_SAMPLE);
            let mut sample: Vec<f64> = values.iter().copied().step_by(stride).collect();
            quantiles(&mut sample, bins)
        }
        Binning::Quantile => quantiles(&mut values, bins),
    };
    edges.dedup();
    edges
}

/// The linear-interpolated quantiles at `k / bins` for `k` in `1..bins`.
///
/// Uses repeated selection instead of a full sort: the positions ascend, so
/// each selection only needs the values right of the previous one.
fn quantiles(values: &mut [f64], bins: usize) -> Vec<f64> {
    let last = values.len() - 1;
    let mut start = 0;
    (1..bins)
        .map(|k| {
            let position = k as f64 / bins as f64 * last as f64;
            let below = position.floor() as usize;
            let (_, value, right) =
                values[start..].select_nth_unstable_by(below - start, f64::total_cmp);
            let value = *value;
            let fraction = position - below as f64;
            start = below;
            if fraction > 0.0 {
                let next = right.iter().copied().fold(f64::INFINITY, f64::min);
                value + fraction * (next - value)
            } else {
                value
            }
        })
        .collect()
}

/// Counts per bin (`edges.len() + 1` bins) of the given values.
pub fn histogram(values: impl Iterator<Item = f64>, edges: &[f64]) -> Vec<u64> {
    let mut counts = vec![0u64; edges.len() + 1];
    for value in values {
        counts[edges.partition_point(|edge| *edge < value)] += 1;
    }
    counts
}

/// Counts as shares, with [`EPSILON`] for empty bins (all `EPSILON` when empty).
pub fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|count| {
            if *count == 0 || total == 0 {
                EPSILON
            } else {
                *count as f64 / total as f64
            }
        })
        .collect()
}

/// Jensen–Shannon divergence in bits between two share vectors of equal length.
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    let half_kl = |a: f64, m: f64| {
        if a > 0.0 {
            0.5 * a * (a / m).log2()
        } else {
            0.0
        }
    };
    p.iter()
        .zip(q)
        .map(|(p, q)| {
            let m = 0.5 * (p + q);
            half_kl(*p, m) + half_kl(*q, m)
        })
        .sum::<f64>()
        .max(0.0)
}

/// Population stability index of current shares `q` against reference `p`.
pub fn population_stability(p: &[f64], q: &[f64]) -> f64 {
    p.iter().zip(q).map(|(p, q)| (q - p) * (q / p).ln()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_distributions_have_zero_divergence() {
        let p = shares(&[10, 20, 30]);
        assert!(jensen_shannon(&p, &p).abs() < 1e-12);
        assert!(population_stability(&p, &p).abs() < 1e-12);
    }

    #[test]
    fn disjoint_distributions_have_js_near_one_bit() {
        let js = jensen_shannon(&shares(&[100, 0]), &shares(&[0, 100]));
        assert!(js > 0.99 && js <= 1.0, "{js}");
    }

    #[test]
    fn psi_matches_a_hand_computed_value() {
        let (p, q) = ([0.5, 0.5], [0.25, 0.75]);
        let expected = (0.25 - 0.5) * (0.5f64).ln() + (0.75 - 0.5) * (1.5f64).ln();
        assert!((population_stability(&p, &q) - expected).abs() < 1e-12);
    }

    #[test]
    fn quantile_edges_split_the_reference_evenly_and_merge_ties() {
        let values: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let edges = edges(values.clone(), 4, Binning::Quantile);
        assert_eq!(histogram(values.into_iter(), &edges), [25, 25, 25, 25]);
        assert_eq!(
            super::edges(vec![2.0, 1.0, 1.0, 2.0, 1.0], 4, Binning::Quantile),
            [1.0, 2.0]
        );
    }

    #[test]
    fn values_outside_the_reference_fall_in_the_open_end_bins() {
        let edges = edges(vec![10.0, 0.0], 2, Binning::EqualWidth);
        assert_eq!(edges, [5.0]);
        assert_eq!(
            histogram([-100.0, 3.0, 7.0, 1e9].into_iter(), &edges),
            [2, 2]
        );
    }

    #[test]
    fn selected_quantiles_equal_quantiles_of_the_sorted_values() {
        let mut rng = crate::data::rng::SplitMix64::new(9);
        for n in [1, 2, 3, 10, 101, 1000] {
            let values: Vec<f64> = (0..n).map(|_| (rng.normal() * 4.0).round()).collect();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let expected: Vec<f64> = (1..10)
                .map(|k| {
                    let position = k as f64 / 10.0 * (n - 1) as f64;
                    let (below, above) = (position.floor() as usize, position.ceil() as usize);
                    sorted[below] + (position - below as f64) * (sorted[above] - sorted[below])
                })
                .collect();
            assert_eq!(quantiles(&mut values.clone(), 10), expected, "n = {n}");
        }
    }

    #[test]
    fn large_references_get_edges_close_to_the_exact_quantiles() {
        let values: Vec<f64> = (0..1_000_003_u64)
            .map(|i| ((i * 7919) % 1_000_003) as f64)
            .collect();
        let edges = edges(values, 4, Binning::Quantile);
        for (edge, exact) in edges.iter().zip([250_000.5, 500_001.0, 750_001.5]) {
            assert!((edge - exact).abs() < 2_000.0, "{edge} vs {exact}");
        }
    }
}
