//! [`Transformer`]: turns raw table columns into the numeric feature matrix a
//! classifier sees. Fitted on the training split only, then embedded
//! unchanged in the model file so prediction applies exactly the same
//! encoding (no training/serving skew).
//!
//! It one-hot encodes text columns (a category unseen in training maps to all
//! zeros), scales numeric columns, and adds a small typed set of derived
//! columns. It does not clean data or choose features.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::ml::MlError;
use crate::ml::dataset::{ColumnValues, Table};

/// How numeric columns are rescaled; statistics come from the training split.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    #[default]
    Standard,
    Minmax,
    None,
}

/// The derived-column formulas: `ratio` = a / b, `ratio_sq` = a / b²
/// (BMI from weight and height), `product` = a × b.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Formula {
    Ratio,
    RatioSq,
    Product,
}

/// One derived column, e.g. `{name: BMI, formula: ratio_sq, numerator: Weight, denominator: Height}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Derivation {
    /// The new column's name.
    pub name: String,
    /// `ratio` = a / b, `ratio_sq` = a / b², `product` = a × b.
    pub formula: Formula,
    /// Column a.
    pub numerator: String,
    /// Column b.
    pub denominator: String,
}

impl Derivation {
    pub(crate) fn apply(&self, a: f64, b: f64) -> Option<f64> {
        let value = match self.formula {
            Formula::Ratio => a / b,
            Formula::RatioSq => a / (b * b),
            Formula::Product => a * b,
        };
        value.is_finite().then_some(value)
    }
}

/// What the transformer is fitted with (the params of `data.features`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    /// The label column; never a feature.
    pub target: String,
    /// How numeric columns are rescaled (statistics from the training rows).
    #[serde(default)]
    pub scaling: Scaling,
    /// Derived numeric columns, computed from raw ones before scaling.
    #[serde(default)]
    pub derive: Vec<Derivation>,
    /// Columns to leave out (identifiers and the like).
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// Training statistics of a numeric column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericStats {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub std: f64,
}

impl NumericStats {
    fn of(values: &[f64]) -> Self {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Self {
            min,
            max,
            mean,
            std: var.sqrt(),
        }
    }

    pub(crate) fn scale(&self, scaling: Scaling, x: f64) -> f64 {
        match scaling {
            Scaling::Standard if self.std > 0.0 => (x - self.mean) / self.std,
            Scaling::Standard => x - self.mean,
            Scaling::Minmax if self.max > self.min => (x - self.min) / (self.max - self.min),
            Scaling::Minmax => x - self.min,
            Scaling::None => x,
        }
    }
}

/// A raw input field as seen in training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FieldKind {
    Numeric(NumericStats),
    Categorical { categories: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(flatten)]
    pub kind: FieldKind,
}

impl Field {
    /// The position of `value` among a categorical field's categories (its
    /// one-hot column); `None` for a category not seen in training, or a
    /// numeric field.
    pub fn category_index(&self, value: &str) -> Option<usize> {
        match &self.kind {
            FieldKind::Categorical { categories } => {
                categories.binary_search_by(|c| c.as_str().cmp(value)).ok()
            }
            FieldKind::Numeric(_) => None,
        }
    }
}

/// The fitted transformer: input schema, encoding and scaling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transformer {
    pub target: String,
    pub scaling: Scaling,
    /// Raw input fields in training column order (target and excluded columns left out).
    pub fields: Vec<Field>,
    pub derived: Vec<(Derivation, NumericStats)>,
    /// Names of the output columns, in matrix order.
    pub feature_names: Vec<String>,
}

/// A text column is numeric when nearly all its values parse as numbers; the
/// few that do not are then reported as bad values instead of becoming
/// categories.
fn looks_numeric(values: &[Option<String>]) -> bool {
    let present: Vec<&str> = values.iter().flatten().map(String::as_str).collect();
    let numeric = present
        .iter()
        .filter(|v| v.trim().parse::<f64>().is_ok())
        .count();
    !present.is_empty() && numeric * 10 >= present.len() * 9
}

impl Transformer {
    /// Learns the schema, categories and scaling statistics from `table`.
    pub fn fit(config: &FeatureConfig, table: &Table) -> Result<Self, MlError> {
        table.column(&config.target)?;
        let mut fields = Vec::new();
        for (name, values) in &table.columns {
            if *name == config.target || config.exclude.contains(name) {
                continue;
            }
            let kind = match values {
                ColumnValues::Text(text) if !looks_numeric(text) => {
                    let mut categories = table.text(name)?;
                    categories.sort();
                    categories.dedup();
                    FieldKind::Categorical { categories }
                }
                _ => FieldKind::Numeric(NumericStats::of(&table.numeric(name)?)),
            };
            fields.push(Field {
                name: name.clone(),
                kind,
            });
        }
        let mut derived = Vec::new();
        for derivation in &config.derive {
            let values = derive_column(derivation, table)?;
            derived.push((derivation.clone(), NumericStats::of(&values)));
        }
        let mut feature_names = Vec::new();
        for field in &fields {
            match &field.kind {
                FieldKind::Numeric(_) => feature_names.push(field.name.clone()),
                FieldKind::Categorical { categories } => {
                    feature_names.extend(categories.iter().map(|c| format!("{}={c}", field.name)));
                }
            }
        }
        feature_names.extend(derived.iter().map(|(d, _)| d.name.clone()));
        Ok(Self {
            target: config.target.clone(),
            scaling: config.scaling,
            fields,
            derived,
            feature_names,
        })
    }

    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Checks a transformer read from a file: the encoded width matches the
    /// feature names and category lists are sorted and unique (lookups rely
    /// on both).
    pub fn validate(&self) -> Result<(), String> {
        let mut width = self.derived.len();
        for field in &self.fields {
            match &field.kind {
                FieldKind::Numeric(_) => width += 1,
                FieldKind::Categorical { categories } => {
                    if categories.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(format!(
                            "categories of `{}` are not sorted and unique",
                            field.name
                        ));
                    }
                    width += categories.len();
                }
            }
        }
        if width != self.feature_names.len() {
            return Err(format!(
                "fields encode {width} features but {} are named",
                self.feature_names.len()
            ));
        }
        Ok(())
    }

    /// The feature matrix (rows × features) of `table`; extra columns and the
    /// target are ignored, a missing field is an error naming it.
    pub fn transform(&self, table: &Table) -> Result<Array2<f64>, MlError> {
        let width = self.n_features();
        let mut data = vec![0.0; table.rows * width];
        let mut offset = 0;
        for field in &self.fields {
            match &field.kind {
                FieldKind::Numeric(stats) => {
                    for (row, x) in table.numeric(&field.name)?.into_iter().enumerate() {
                        data[row * width + offset] = stats.scale(self.scaling, x);
                    }
                    offset += 1;
                }
                FieldKind::Categorical { categories } => {
                    for (row, value) in table.text_values(&field.name)?.iter().enumerate() {
                        if let Some(position) = field.category_index(value) {
                            data[row * width + offset + position] = 1.0;
                        }
                    }
                    offset += categories.len();
                }
            }
        }
        for (derivation, stats) in &self.derived {
            for (row, x) in derive_column(derivation, table)?.into_iter().enumerate() {
                data[row * width + offset] = stats.scale(self.scaling, x);
            }
            offset += 1;
        }
        Array2::from_shape_vec((table.rows, width), data)
            .map_err(|e| MlError::invalid(format!("feature matrix: {e}")))
    }

    /// The target column as text labels.
    pub fn labels(&self, table: &Table) -> Result<Vec<String>, MlError> {
        table.text(&self.target)
    }
}

fn derive_column(derivation: &Derivation, table: &Table) -> Result<Vec<f64>, MlError> {
    let a = table.numeric(&derivation.numerator)?;
    let b = table.numeric(&derivation.denominator)?;
    a.iter()
        .zip(&b)
        .enumerate()
        .map(|(row, (a, b))| {
            derivation.apply(*a, *b).ok_or_else(|| MlError::BadValue {
                path: table.source.clone(),
                column: derivation.denominator.clone(),
                row: table.describe_row(row),
                message: format!(
                    "derived column `{}` is not finite ({a} and {b})",
                    derivation.name
                ),
            })
        })
        .collect()
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table::from_columns(
            "fixture",
            vec![
                (
                    "Gender".into(),
                    ColumnValues::Text(vec![
                        Some("Male".into()),
                        Some("Female".into()),
                        Some("Male".into()),
                    ]),
                ),
                (
                    "Height".into(),
                    ColumnValues::Numeric(vec![Some(2.0), Some(1.0), Some(1.5)]),
                ),
                (
                    "Weight".into(),
                    ColumnValues::Numeric(vec![Some(80.0), Some(50.0), Some(90.0)]),
                ),
                (
                    "Label".into(),
                    ColumnValues::Text(vec![Some("a".into()), Some("b".into()), Some("a".into())]),
                ),
            ],
        )
        .unwrap()
    }

    fn config(scaling: Scaling) -> FeatureConfig {
        FeatureConfig {
            target: "Label".into(),
            scaling,
            derive: vec![Derivation {
                name: "BMI".into(),
                formula: Formula::RatioSq,
                numerator: "Weight".into(),
                denominator: "Height".into(),
            }],
            exclude: vec![],
        }
    }

    #[test]
    fn one_hot_numeric_and_derived_columns_in_order() {
        let transformer = Transformer::fit(&config(Scaling::None), &table()).unwrap();
        assert_eq!(
            transformer.feature_names,
            ["Gender=Female", "Gender=Male", "Height", "Weight", "BMI"]
        );
        let x = transformer.transform(&table()).unwrap();
        assert_eq!(x.row(0).to_vec(), [0.0, 1.0, 2.0, 80.0, 20.0]);
        assert_eq!(x.row(1).to_vec(), [1.0, 0.0, 1.0, 50.0, 50.0]);
    }

    #[test]
    fn inconsistent_transformer_fails_validation() {
        let mut transformer = Transformer::fit(&config(Scaling::None), &table()).unwrap();
        assert_eq!(transformer.validate(), Ok(()));
        transformer.feature_names.pop();
        assert!(
            transformer
                .validate()
                .unwrap_err()
                .contains("5 features but 4")
        );
    }

    #[test]
    fn unseen_category_maps_to_all_zeros() {
        let transformer = Transformer::fit(&config(Scaling::None), &table()).unwrap();
        let mut other = table();
        other.columns[0].1 = ColumnValues::Text(vec![
            Some("Other".into()),
            Some("Male".into()),
            Some("Male".into()),
        ]);
        let x = transformer.transform(&other).unwrap();
        assert_eq!(x.row(0).to_vec()[..2], [0.0, 0.0]);
    }

    #[test]
    fn minmax_scaling_uses_training_range() {
        let transformer = Transformer::fit(&config(Scaling::Minmax), &table()).unwrap();
        let x = transformer.transform(&table()).unwrap();
        assert_eq!(x.column(2).to_vec(), [1.0, 0.0, 0.5]);
    }

    #[test]
    fn standard_scaling_centres_training_columns() {
        let transformer = Transformer::fit(&config(Scaling::Standard), &table()).unwrap();
        let x = transformer.transform(&table()).unwrap();
        let mean: f64 = x.column(3).iter().sum::<f64>() / 3.0;
        assert!(mean.abs() < 1e-12);
    }

    #[test]
    fn zero_denominator_names_the_row() {
        let mut bad = table();
        bad.columns[1].1 = ColumnValues::Numeric(vec![Some(2.0), Some(0.0), Some(1.5)]);
        let message = Transformer::fit(&config(Scaling::None), &bad)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("row 2") && message.contains("`BMI`"),
            "{message}"
        );
    }

    #[test]
    fn mostly_numeric_text_column_reports_the_bad_value() {
        let mut bad = table();
        let mut heights: Vec<Option<String>> = (0..20).map(|i| Some(format!("1.{i}"))).collect();
        heights[7] = Some("tall".into());
        let n = heights.len();
        bad.columns = vec![
            ("Height".into(), ColumnValues::Text(heights)),
            (
                "Label".into(),
                ColumnValues::Text(vec![Some("a".into()); n]),
            ),
        ];
        bad.rows = n;
        let mut plain = config(Scaling::None);
        plain.derive.clear();
        let message = Transformer::fit(&plain, &bad).unwrap_err().to_string();
        assert!(
            message.contains("row 8") && message.contains("`tall`"),
            "{message}"
        );
    }
}
