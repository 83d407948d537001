//! Permutation importance: how much a model's held-out score drops when the
//! values of one raw input column are shuffled across rows, breaking its
//! link with the label. It needs nothing but predictions, so it works for
//! every model kind, native or ONNX.
//!
//! Columns are the model's raw inputs (before one-hot encoding and scaling),
//! so a categorical column counts once and a derived column (BMI from
//! weight and height) moves with the columns it is computed from. Each
//! column is shuffled `repeats` times with its own seeded stream, so the
//! result depends only on the model, the rows, the seed and the repeats;
//! shuffles are scored in parallel and collected in a fixed order.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ml::MlError;
use crate::ml::canvas::{Anchor, BLACK, Canvas, GREY};
use crate::ml::dataset::{ColumnValues, Table};
use crate::ml::font::text_width;
use crate::ml::forest::argmax;
use crate::ml::heatmap::label;
use crate::ml::metrics::score;
use crate::ml::model::TrainedModel;
use crate::ml::rng::SplitMix64;

/// The most shuffles per column `ml.evaluate` accepts.
pub const MAX_REPEATS: usize = 100;

/// The score permutation importance measures the drop of.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceMetric {
    #[default]
    Accuracy,
    F1Macro,
}

impl ImportanceMetric {
    pub fn name(self) -> &'static str {
        match self {
            Self::Accuracy => "accuracy",
            Self::F1Macro => "f1_macro",
        }
    }
}

/// The `importance` params of `ml.evaluate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportanceParams {
    /// Shuffles per column; the mean and standard deviation are over these.
    #[serde(default = "default_repeats")]
    pub repeats: usize,
    /// The seed of the shuffles.
    #[serde(default)]
    pub seed: u64,
    /// The score whose drop is measured.
    #[serde(default)]
    pub metric: ImportanceMetric,
}

fn default_repeats() -> usize {
    5
}

impl Default for ImportanceParams {
    fn default() -> Self {
        Self {
            repeats: default_repeats(),
            seed: 0,
            metric: ImportanceMetric::Accuracy,
        }
    }
}

/// One raw input column's importance: the mean and standard deviation of
/// the score drop over the shuffles (negative when shuffling helped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureImportance {
    pub feature: String,
    pub mean: f64,
    pub std: f64,
}

/// The importance of every raw input column of `model` on `table` (which
/// holds the target), most important first; ties keep the model's column
/// order.
pub fn permutation_importance(
    model: &TrainedModel,
    table: &Table,
    params: &ImportanceParams,
) -> Result<Vec<FeatureImportance>, MlError> {
    if params.repeats == 0 || params.repeats > MAX_REPEATS {
        return Err(MlError::invalid(format!(
            "`importance.repeats` must be between 1 and {MAX_REPEATS}, got {}",
            params.repeats
        )));
    }
    let classes = model.classes();
    let truth: Vec<usize> = model
        .transformer()
        .labels(table)?
        .iter()
        // A label the model never saw can only be mispredicted.
        .map(|l| classes.binary_search(l).unwrap_or(classes.len()))
        .collect();
    // Room for the unseen-label bucket only when there is one, so it does
    // not enter the macro average as an empty class.
    let n_scored = classes.len() + usize::from(truth.contains(&classes.len()));
    let measure = |table: &Table| -> Result<f64, MlError> {
        let proba = model.predict_table(table)?;
        let predicted: Vec<usize> = proba
            .rows()
            .into_iter()
            .map(|r| argmax(&r.to_vec()))
            .collect();
        let scores = score(&truth, &predicted, n_scored);
        Ok(match params.metric {
            ImportanceMetric::Accuracy => scores.accuracy,
            ImportanceMetric::F1Macro => scores.f1_macro,
        })
    };
    let baseline = measure(table)?;
    let columns: Vec<&str> = model.schema().iter().map(|f| f.name.as_str()).collect();
    let jobs: Vec<(usize, usize)> = (0..columns.len())
        .flat_map(|c| (0..params.repeats).map(move |r| (c, r)))
        .collect();
    let drops: Vec<f64> = jobs
        .par_iter()
        .map(|&(c, r)| {
            let stream = (c * MAX_REPEATS + r) as u64;
            let mut rng = SplitMix64::for_stream(params.seed, stream);
            let shuffled = shuffle_column(table, columns[c], &mut rng)?;
            Ok(baseline - measure(&shuffled)?)
        })
        .collect::<Result<_, MlError>>()?;
    let mut importances: Vec<FeatureImportance> = columns
        .iter()
        .zip(drops.chunks(params.repeats))
        .map(|(column, drops)| {
            let n = drops.len() as f64;
            let mean = drops.iter().sum::<f64>() / n;
            let var = drops.iter().map(|d| (d - mean) * (d - mean)).sum::<f64>() / n;
            FeatureImportance {
                feature: (*column).to_string(),
                mean,
                std: var.sqrt(),
            }
        })
        .collect();
    importances.sort_by(|a, b| b.mean.total_cmp(&a.mean));
    Ok(importances)
}

/// `table` with the values of `column` in a seeded random order.
fn shuffle_column(table: &Table, column: &str, rng: &mut SplitMix64) -> Result<Table, MlError> {
    table.column(column)?;
    let mut order: Vec<usize> = (0..table.rows).collect();
    rng.shuffle(&mut order);
    let mut shuffled = table.clone();
    for (name, values) in &mut shuffled.columns {
        if name == column {
            *values = match values {
                ColumnValues::Numeric(v) => {
                    ColumnValues::Numeric(order.iter().map(|&i| v[i]).collect())
                }
                ColumnValues::Text(v) => {
                    ColumnValues::Text(order.iter().map(|&i| v[i].clone()).collect())
                }
            };
        }
    }
    Ok(shuffled)
}

/// Layout of the importance chart, in pixels.
const ROW: usize = 24;
const BAR: usize = 16;
const BAR_AREA: usize = 360;
const TITLE: usize = 34;
const GAP: usize = 8;
const VALUE_ROOM: usize = 90;
const LABEL_SCALE: usize = 2;

/// The importance chart: one horizontal bar per column, most important on
/// top, its length the mean drop, a whisker of ± one standard deviation,
/// and the value beside it. A negative mean draws no bar.
pub fn write_importance_png(
    path: &std::path::Path,
    importances: &[FeatureImportance],
    params: &ImportanceParams,
) -> Result<(), MlError> {
    render_chart(importances, params).write_png(path)
}

fn render_chart(importances: &[FeatureImportance], params: &ImportanceParams) -> Canvas {
    let labels: Vec<String> = importances.iter().map(|i| label(&i.feature)).collect();
    let left = GAP
        + labels
            .iter()
            .map(|l| text_width(l, LABEL_SCALE))
            .max()
            .unwrap_or(0)
        + GAP;
    let title = format!(
        "permutation importance: {} drop, {} shuffles",
        params.metric.name(),
        params.repeats
    );
    let width = (left + BAR_AREA + VALUE_ROOM).max(text_width(&title, LABEL_SCALE) + 2 * GAP);
    let mut canvas = Canvas::new(width, TITLE + importances.len() * ROW + GAP);
    canvas.text(&title, GAP, TITLE / 2, Anchor::Start, LABEL_SCALE, BLACK);
    let top = importances
        .iter()
        .map(|i| i.mean + i.std)
        .fold(0.0_f64, f64::max)
        .max(1e-12);
    canvas.fill(left, TITLE, 1, importances.len() * ROW, GREY);
    let length = |value: f64| ((value.max(0.0) / top) * BAR_AREA as f64).round() as usize;
    for (row, (importance, name)) in importances.iter().zip(&labels).enumerate() {
        let y = TITLE + row * ROW;
        let middle = y + ROW / 2;
        canvas.text(name, left - GAP, middle, Anchor::End, LABEL_SCALE, GREY);
        let bar = length(importance.mean);
        canvas.fill(left, middle - BAR / 2, bar, BAR, [8, 48, 107]);
        let (low, high) = (
            length(importance.mean - importance.std),
            length(importance.mean + importance.std),
        );
        canvas.fill(
            left + low,
            middle - 1,
            high.saturating_sub(low).max(1),
            2,
            [230, 120, 20],
        );
        // No `-0.000` for a drop that rounds to nothing.
        let shown = if importance.mean.abs() < 0.0005 {
            0.0
        } else {
            importance.mean
        };
        let value = format!("{shown:.3}");
        canvas.text(
            &value,
            left + bar.max(high) + GAP,
            middle,
            Anchor::Start,
            LABEL_SCALE,
            BLACK,
        );
    }
    canvas
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;
    use crate::ml::test_fixtures::{tiny_csv, tiny_model, write};

    #[test]
    fn the_column_the_label_follows_matters_and_the_other_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let model = TrainedModel::load(&tiny_model(dir.path(), 1)).unwrap();
        let table = Table::read(&write(dir.path(), "test.csv", &tiny_csv(60))).unwrap();
        let params = ImportanceParams::default();
        let importances = permutation_importance(&model, &table, &params).unwrap();
        let names: Vec<&str> = importances.iter().map(|i| i.feature.as_str()).collect();
        assert_eq!(names, ["x", "g"]);
        // Shuffling x leaves about a third of the labels right by chance.
        assert!(importances[0].mean > 0.4, "{importances:?}");
        assert!(importances[1].mean.abs() < 0.1, "{importances:?}");
        // The same seed gives the same numbers; another seed other ones.
        assert_eq!(
            permutation_importance(&model, &table, &params).unwrap(),
            importances
        );
        let other = ImportanceParams { seed: 9, ..params };
        assert_ne!(
            permutation_importance(&model, &table, &other).unwrap()[0].mean,
            importances[0].mean
        );
    }

    #[test]
    fn the_chart_draws_longer_bars_for_more_important_columns() {
        let importances = vec![
            FeatureImportance {
                feature: "Weight".into(),
                mean: 0.4,
                std: 0.02,
            },
            FeatureImportance {
                feature: "Age".into(),
                mean: 0.1,
                std: 0.01,
            },
            FeatureImportance {
                feature: "SMOKE".into(),
                mean: -0.01,
                std: 0.01,
            },
        ];
        let canvas = render_chart(&importances, &ImportanceParams::default());
        let bar_colour = |row: usize| {
            let y = TITLE + row * ROW + ROW / 2 - BAR / 2 + 1;
            (0..canvas.width)
                .filter(|x| canvas.pixels[(y * canvas.width + x) * 3..][..3] == [8, 48, 107])
                .count()
        };
        assert_eq!(
            bar_colour(0),
            (0.4 / 0.42 * BAR_AREA as f64).round() as usize
        );
        assert_eq!(
            bar_colour(1),
            (0.1 / 0.42 * BAR_AREA as f64).round() as usize
        );
        assert_eq!(bar_colour(2), 0, "a negative mean draws no bar");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("importance.png");
        write_importance_png(&path, &importances, &ImportanceParams::default()).unwrap();
        assert!(std::fs::read(&path).unwrap().starts_with(b"\x89PNG"));
    }

    #[test]
    fn repeats_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let model = TrainedModel::load(&tiny_model(dir.path(), 1)).unwrap();
        let table = Table::read(&write(dir.path(), "test.csv", &tiny_csv(12))).unwrap();
        for repeats in [0, MAX_REPEATS + 1] {
            let params = ImportanceParams {
                repeats,
                ..ImportanceParams::default()
            };
            let error = permutation_importance(&model, &table, &params).unwrap_err();
            assert!(
                error.to_string().contains("`importance.repeats`"),
                "{error}"
            );
        }
    }
}
