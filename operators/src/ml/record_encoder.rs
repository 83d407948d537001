//! [`RecordEncoder`]: turns one record at a time (a prediction request)
//! into a feature row, appended to a growing matrix, with no table in
//! between. It applies the same per-value steps as
//! [`Transformer::transform`] (scaling, one-hot position, derived columns),
//! so a record encodes to the same bits as the same values in a table.
//!
//! It does not parse or validate records; the caller hands it typed values.

use crate::ml::MlError;
use crate::ml::features::{FieldKind, Transformer};

/// One field of a record, as the encoder takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldInput {
    Number(f64),
    /// The category's position ([`Field::category_index`](crate::ml::Field::category_index));
    /// `None` for a category unseen in training, which encodes as all zeros.
    Category(Option<usize>),
}

/// Encodes records for one [`Transformer`].
#[derive(Debug, Clone)]
pub struct RecordEncoder<'t> {
    transformer: &'t Transformer,
    /// The matrix column of each field's first feature.
    offsets: Vec<usize>,
    /// The matrix column of the first derived feature.
    derived_offset: usize,
    /// Schema positions of each derived column's numerator and denominator.
    derived_inputs: Vec<(usize, usize)>,
}

impl Transformer {
    /// An encoder for records of this transformer's fields. Fails when a
    /// derived column needs a column that is not one of the fields.
    pub fn record_encoder(&self) -> Result<RecordEncoder<'_>, MlError> {
        let mut offsets = Vec::with_capacity(self.fields.len());
        let mut offset = 0;
        for field in &self.fields {
            offsets.push(offset);
            offset += match &field.kind {
                FieldKind::Numeric(_) => 1,
                FieldKind::Categorical { categories } => categories.len(),
            };
        }
        let numeric = |name: &str| {
            self.fields
                .iter()
                .position(|f| f.name == name && matches!(f.kind, FieldKind::Numeric(_)))
                .ok_or_else(|| {
                    MlError::invalid(format!(
                        "a derived column needs `{name}`, which is not a numeric input field"
                    ))
                })
        };
        let derived_inputs = self
            .derived
            .iter()
            .map(|(d, _)| Ok((numeric(&d.numerator)?, numeric(&d.denominator)?)))
            .collect::<Result<_, MlError>>()?;
        Ok(RecordEncoder {
            transformer: self,
            offsets,
            derived_offset: offset,
            derived_inputs,
        })
    }
}

impl<'t> RecordEncoder<'t> {
    pub fn transformer(&self) -> &'t Transformer {
        self.transformer
    }

    /// Features per row.
    pub fn width(&self) -> usize {
        self.transformer.n_features()
    }

    /// Appends the feature row of `record` (one input per field, in field
    /// order) to `matrix`. On an error `matrix` is left as it was.
    pub fn encode(&self, record: &[FieldInput], matrix: &mut Vec<f64>) -> Result<(), MlError> {
        let start = matrix.len();
        matrix.resize(start + self.width(), 0.0);
        let encoded = self.fill(record, &mut matrix[start..]);
        if encoded.is_err() {
            matrix.truncate(start);
        }
        encoded
    }

    fn fill(&self, record: &[FieldInput], row: &mut [f64]) -> Result<(), MlError> {
        let t = self.transformer;
        if record.len() != t.fields.len() {
            return Err(MlError::invalid(format!(
                "a record has {} values for {} fields",
                record.len(),
                t.fields.len()
            )));
        }
        for ((field, input), offset) in t.fields.iter().zip(record).zip(&self.offsets) {
            match (&field.kind, input) {
                (FieldKind::Numeric(stats), FieldInput::Number(x)) => {
                    row[*offset] = stats.scale(t.scaling, *x);
                }
                (FieldKind::Categorical { categories }, FieldInput::Category(position)) => {
                    if let Some(position) = position.filter(|p| *p < categories.len()) {
                        row[offset + position] = 1.0;
                    }
                }
                _ => {
                    return Err(MlError::invalid(format!(
                        "field `{}` was given a value of the wrong kind",
                        field.name
                    )));
                }
            }
        }
        let derived = t.derived.iter().zip(&self.derived_inputs);
        for (offset, ((derivation, stats), (a, b))) in (self.derived_offset..).zip(derived) {
            let (FieldInput::Number(a), FieldInput::Number(b)) = (record[*a], record[*b]) else {
                return Err(MlError::invalid(format!(
                    "derived column `{}` needs numbers",
                    derivation.name
                )));
            };
            let value = derivation.apply(a, b).ok_or_else(|| {
                MlError::invalid(format!(
                    "derived column `{}` is not finite ({a} and {b})",
                    derivation.name
                ))
            })?;
            row[offset] = stats.scale(t.scaling, value);
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
    use crate::ml::dataset::{ColumnValues, Table};
    use crate::ml::features::{Derivation, FeatureConfig, Formula, Scaling};

    fn table() -> Table {
        let n = 40;
        Table::from_columns(
            "fixture",
            vec![
                (
                    "Gender".into(),
                    ColumnValues::Text(
                        (0..n)
                            .map(|i| Some(["Female", "Male", "Other"][i % 3].to_string()))
                            .collect(),
                    ),
                ),
                (
                    "Height".into(),
                    ColumnValues::Numeric((0..n).map(|i| Some(1.5 + i as f64 * 0.013)).collect()),
                ),
                (
                    "Weight".into(),
                    ColumnValues::Numeric((0..n).map(|i| Some(45.0 + i as f64 * 1.7)).collect()),
                ),
                (
                    "Label".into(),
                    ColumnValues::Text((0..n).map(|i| Some(format!("c{}", i % 2))).collect()),
                ),
            ],
        )
        .unwrap()
    }

    fn transformer(scaling: Scaling) -> Transformer {
        let config = FeatureConfig {
            target: "Label".into(),
            scaling,
            derive: vec![Derivation {
                name: "BMI".into(),
                formula: Formula::RatioSq,
                numerator: "Weight".into(),
                denominator: "Height".into(),
            }],
            exclude: vec![],
        };
        // Fit on the first rows only, so later rows carry an unseen category
        // and values outside the training range.
        let mut fit_on = table();
        for (_, values) in &mut fit_on.columns {
            match values {
                ColumnValues::Numeric(v) => v.truncate(20),
                ColumnValues::Text(v) => {
                    v.truncate(20);
                    v.iter_mut().for_each(|g| {
                        if g.as_deref() == Some("Other") {
                            *g = Some("Male".into());
                        }
                    });
                }
            }
        }
        fit_on.rows = 20;
        Transformer::fit(&config, &fit_on).unwrap()
    }

    #[test]
    fn records_encode_to_the_bits_of_the_table_transform() {
        for scaling in [Scaling::Standard, Scaling::Minmax, Scaling::None] {
            let transformer = transformer(scaling);
            let encoder = transformer.record_encoder().unwrap();
            let table = table();
            let expected = transformer.transform(&table).unwrap();
            let genders = table.text("Gender").unwrap();
            let heights = table.numeric("Height").unwrap();
            let weights = table.numeric("Weight").unwrap();
            let mut matrix = Vec::new();
            for row in 0..table.rows {
                let record = [
                    FieldInput::Category(transformer.fields[0].category_index(&genders[row])),
                    FieldInput::Number(heights[row]),
                    FieldInput::Number(weights[row]),
                ];
                encoder.encode(&record, &mut matrix).unwrap();
            }
            assert_eq!(matrix.len(), expected.len());
            for (a, b) in matrix.iter().zip(expected.iter()) {
                assert_eq!(a.to_bits(), b.to_bits(), "{scaling:?}");
            }
        }
    }

    #[test]
    fn a_bad_record_leaves_the_matrix_unchanged() {
        let transformer = transformer(Scaling::None);
        let encoder = transformer.record_encoder().unwrap();
        let mut matrix = vec![7.0];
        let zero_height = [
            FieldInput::Category(Some(0)),
            FieldInput::Number(0.0),
            FieldInput::Number(60.0),
        ];
        let message = encoder
            .encode(&zero_height, &mut matrix)
            .unwrap_err()
            .to_string();
        assert!(message.contains("`BMI`"), "{message}");
        let swapped = [
            FieldInput::Number(1.0),
            FieldInput::Number(1.7),
            FieldInput::Number(60.0),
        ];
        assert!(encoder.encode(&swapped, &mut matrix).is_err());
        assert!(encoder.encode(&swapped[..2], &mut matrix).is_err());
        assert_eq!(matrix, [7.0]);
    }

    #[test]
    fn a_derivation_on_a_column_that_is_not_a_field_is_refused() {
        let mut transformer = transformer(Scaling::None);
        transformer.derived[0].0.numerator = "Label".into();
        assert!(transformer.record_encoder().is_err());
    }
}
