//! [`LogisticModel`]: multinomial logistic regression fitted by
//! `linfa-logistic` (L-BFGS, L2 penalty `alpha`), stored as plain weights so
//! the model file format stays ours and prediction is a dot product plus a
//! softmax.
//!
//! It does not scale features; fit it on a scaled transformer output.

use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::ml::MlError;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogisticParams {
    pub max_iterations: u64,
    pub alpha: f64,
    pub n_classes: usize,
}

/// Weights (features × classes) and intercepts (classes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    weights: Vec<Vec<f64>>,
    intercept: Vec<f64>,
}

impl LogisticParams {
    pub fn fit(&self, x: &Array2<f64>, y: &Array1<usize>) -> Result<LogisticModel, MlError> {
        let dataset = Dataset::new(x.clone(), y.clone());
        let fitted = MultiLogisticRegression::default()
            .max_iterations(self.max_iterations)
            .alpha(self.alpha)
            .fit(&dataset)?;
        // linfa numbers the classes it saw in ascending order; classes absent
        // from this fit keep a very negative intercept so they never win.
        let mut weights = vec![vec![0.0; self.n_classes]; x.ncols()];
        let mut intercept = vec![-1e3; self.n_classes];
        for (column, class) in fitted.classes().iter().enumerate() {
            if *class >= self.n_classes {
                return Err(MlError::invalid(format!(
                    "label {class} is outside the {} classes",
                    self.n_classes
                )));
            }
            intercept[*class] = fitted.intercept()[column];
            for (feature, row) in weights.iter_mut().enumerate() {
                row[*class] = fitted.params()[(feature, column)];
            }
        }
        Ok(LogisticModel { weights, intercept })
    }
}

impl LogisticModel {
    pub fn n_features(&self) -> usize {
        self.weights.len()
    }

    /// Weights (features × classes) and intercepts (classes).
    pub(crate) fn coefficients(&self) -> (&[Vec<f64>], &[f64]) {
        (&self.weights, &self.intercept)
    }

    /// Class probabilities (rows × classes) by softmax of the linear scores.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let k = self.intercept.len();
        let mut out = Array2::<f64>::zeros((x.nrows(), k));
        for (mut out_row, x_row) in out.rows_mut().into_iter().zip(x.rows()) {
            let mut scores = self.intercept.clone();
            for (value, weights) in x_row.iter().zip(&self.weights) {
                for (s, w) in scores.iter_mut().zip(weights) {
                    *s += value * w;
                }
            }
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let exp: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = exp.iter().sum();
            out_row
                .iter_mut()
                .zip(&exp)
                .for_each(|(o, e)| *o = e / total);
        }
        out
    }

    pub fn validate(&self, n_features: usize, n_classes: usize) -> Result<(), String> {
        if self.weights.len() != n_features
            || self.intercept.len() != n_classes
            || self.weights.iter().any(|w| w.len() != n_classes)
        {
            return Err(format!(
                "logistic weights do not have the shape {n_features} × {n_classes}"
            ));
        }
        Ok(())
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
    fn logistic_regression_separates_classes_and_gives_probabilities() {
        let x = Array2::from_shape_vec((6, 1), vec![-3.0, -2.5, -2.0, 2.0, 2.5, 3.0]).unwrap();
        let y = Array1::from(vec![0, 0, 0, 2, 2, 2]);
        let model = LogisticParams {
            max_iterations: 100,
            alpha: 1.0,
            n_classes: 3,
        }
        .fit(&x, &y)
        .unwrap();
        let proba = model.predict_proba(x.view());
        assert!(proba[(0, 0)] > 0.5 && proba[(5, 2)] > 0.5);
        assert!(proba[(0, 1)] < 1e-6, "class 1 was never seen");
        assert!((proba.row(3).sum() - 1.0).abs() < 1e-9);
    }
}
