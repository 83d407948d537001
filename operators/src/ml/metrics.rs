//! Classification metrics: accuracy, per-class precision/recall/F1, macro and
//! weighted F1, the confusion matrix, and one-vs-rest ROC-AUC from predicted
//! probabilities with ties counted as half (the Mann–Whitney statistic).
//!
//! Labels are class indices; naming classes is the caller's business.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub accuracy: f64,
    pub f1_macro: f64,
    pub f1_weighted: f64,
    pub per_class: Vec<ClassScores>,
    /// `matrix[actual][predicted]`.
    pub confusion: Vec<Vec<usize>>,
}

/// Scores predictions against truth over `n_classes` classes. Macro F1
/// averages over classes that occur in the truth or the predictions.
pub fn score(truth: &[usize], predicted: &[usize], n_classes: usize) -> Scores {
    let mut confusion = vec![vec![0usize; n_classes]; n_classes];
    for (t, p) in truth.iter().zip(predicted) {
        confusion[*t][*p] += 1;
    }
    let n = truth.len();
    let correct: usize = (0..n_classes).map(|c| confusion[c][c]).sum();
    let mut per_class = Vec::with_capacity(n_classes);
    for c in 0..n_classes {
        let tp = confusion[c][c] as f64;
        let support: usize = confusion[c].iter().sum();
        let predicted_c: usize = confusion.iter().map(|row| row[c]).sum();
        let precision = if predicted_c > 0 {
            tp / predicted_c as f64
        } else {
            0.0
        };
        let recall = if support > 0 {
            tp / support as f64
        } else {
            0.0
        };
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        per_class.push(ClassScores {
            precision,
            recall,
            f1,
            support,
        });
    }
    let seen: Vec<usize> = (0..n_classes)
        .filter(|c| per_class[*c].support > 0 || confusion.iter().any(|row| row[*c] > 0))
        .collect();
    let f1_macro = if seen.is_empty() {
        0.0
    } else {
        seen.iter().map(|c| per_class[*c].f1).sum::<f64>() / seen.len() as f64
    };
    let f1_weighted = if n == 0 {
        0.0
    } else {
        per_class
            .iter()
            .map(|s| s.f1 * s.support as f64)
            .sum::<f64>()
            / n as f64
    };
    Scores {
        accuracy: if n == 0 {
            0.0
        } else {
            correct as f64 / n as f64
        },
        f1_macro,
        f1_weighted,
        per_class,
        confusion,
    }
}

/// ROC-AUC of scores for one class against the rest; `None` when the truth
/// has no positives or no negatives (AUC is undefined).
pub fn roc_auc_binary(positive: &[bool], scores: &[f64]) -> Option<f64> {
    let n_pos = positive.iter().filter(|p| **p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    // Average ranks (1-based) over runs of tied scores.
    let mut rank_sum_pos = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let average_rank = (start + 1 + end) as f64 / 2.0;
        rank_sum_pos +=
            average_rank * order[start..end].iter().filter(|i| positive[**i]).count() as f64;
        start = end;
    }
    let (p, q) = (n_pos as f64, n_neg as f64);
    Some((rank_sum_pos - p * (p + 1.0) / 2.0) / (p * q))
}

/// One-vs-rest ROC-AUC per class (`None` where undefined) and their macro mean.
pub fn roc_auc_ovr(
    truth: &[usize],
    proba: &[Vec<f64>],
    n_classes: usize,
) -> (Vec<Option<f64>>, Option<f64>) {
    let per_class: Vec<Option<f64>> = (0..n_classes)
        .map(|c| {
            let positive: Vec<bool> = truth.iter().map(|t| *t == c).collect();
            let scores: Vec<f64> = proba
                .iter()
                .map(|row| row.get(c).copied().unwrap_or(0.0))
                .collect();
            roc_auc_binary(&positive, &scores)
        })
        .collect();
    let defined: Vec<f64> = per_class.iter().flatten().copied().collect();
    let mean = (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64);
    (per_class, mean)
}

/// Mean and population standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_hand_computed_values() {
        let truth = [0, 0, 1, 1, 2];
        let predicted = [0, 1, 1, 1, 0];
        let s = score(&truth, &predicted, 3);
        assert_eq!(s.accuracy, 0.6);
        assert_eq!(
            s.confusion,
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 0]]
        );
        // class 0: p=1/2 r=1/2 f1=1/2; class 1: p=2/3 r=1 f1=0.8; class 2: 0
        assert!((s.f1_macro - (0.5 + 0.8) / 3.0).abs() < 1e-12);
        assert!((s.f1_weighted - (0.5 * 2.0 + 0.8 * 2.0) / 5.0).abs() < 1e-12);
    }

    #[test]
    fn class_absent_everywhere_does_not_dilute_macro_f1() {
        let s = score(&[0, 1], &[0, 1], 3);
        assert_eq!(s.f1_macro, 1.0);
        assert_eq!(s.per_class[2].support, 0);
    }

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(roc_auc_binary(&[true, false], &[0.5, 0.5]), Some(0.5));
        assert_eq!(
            roc_auc_binary(&[true, false, true, false], &[0.9, 0.1, 0.8, 0.3]),
            Some(1.0)
        );
        // positives 0.4, 0.6 vs negatives 0.4, 0.2: pairs (0.4,0.4)=0.5, others 1 → 3.5/4
        assert_eq!(
            roc_auc_binary(&[true, true, false, false], &[0.4, 0.6, 0.4, 0.2]),
            Some(0.875)
        );
        assert_eq!(roc_auc_binary(&[true, true], &[0.4, 0.6]), None);
    }

    #[test]
    fn ovr_auc_skips_undefined_classes() {
        let proba = vec![vec![0.9, 0.1, 0.0], vec![0.2, 0.8, 0.0]];
        let (per_class, mean) = roc_auc_ovr(&[0, 1], &proba, 3);
        assert_eq!(per_class, vec![Some(1.0), Some(1.0), None]);
        assert_eq!(mean, Some(1.0));
    }
}
