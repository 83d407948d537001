//! [`TrainedModel`]: the self-contained model file (transformer, classifier,
//! class names, hyperparameters) and the prediction API a server calls.
//!
//! The file is compact JSON written from ordered structures only, so the same
//! data, params and seed give identical bytes. It holds no timestamps or
//! paths; where and when a model was trained is the registry's business.

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ml::MlError;
use crate::ml::dataset::{ColumnValues, Table};
use crate::ml::features::{Field, FieldKind, NumericStats, Transformer};
use crate::ml::forest::{RandomForest, argmax};
use crate::ml::logistic::LogisticModel;
use crate::ml::onnx::OnnxClassifier;

/// Identifies the file layout; bumped on incompatible changes.
pub const MODEL_FORMAT: &str = "dag-model/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classifier {
    RandomForest(RandomForest),
    DecisionTree(RandomForest),
    LogisticRegression(LogisticModel),
    /// A graph from another framework; see [`OnnxClassifier`].
    Onnx(OnnxClassifier),
}

impl Classifier {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RandomForest(_) => "random_forest",
            Self::DecisionTree(_) => "decision_tree",
            Self::LogisticRegression(_) => "logistic_regression",
            Self::Onnx(_) => "onnx",
        }
    }

    /// Class probabilities, one row per row of `x`. Native models cannot
    /// fail here; an ONNX graph's inference can.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>, MlError> {
        match self {
            Self::RandomForest(f) | Self::DecisionTree(f) => Ok(f.predict_proba(x)),
            Self::LogisticRegression(l) => Ok(l.predict_proba(x)),
            Self::Onnx(o) => o.predict_proba(x),
        }
    }

    fn validate(&self, n_features: usize, n_classes: usize) -> Result<(), String> {
        match self {
            Self::RandomForest(f) | Self::DecisionTree(f) => f.validate(n_features, n_classes),
            Self::LogisticRegression(l) => l.validate(n_features, n_classes),
            Self::Onnx(o) => o.validate(n_features, n_classes),
        }
    }
}

/// What a model file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    pub format: String,
    /// Class names in the order of every probability vector.
    pub classes: Vec<String>,
    pub transformer: Transformer,
    /// The hyperparameters the classifier was fitted with.
    pub params: Value,
    pub classifier: Classifier,
}

impl ModelFile {
    pub fn to_bytes(&self) -> Result<Vec<u8>, MlError> {
        serde_json::to_vec(self).map_err(|source| MlError::Encode {
            what: "model",
            source,
        })
    }
}

/// One prediction: the most probable class and the full distribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub class: String,
    pub probabilities: Vec<f64>,
}

/// Why a record cannot be scored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    /// The record has no value for `field`.
    pub fn missing(field: &Field) -> Self {
        Self {
            field: field.name.clone(),
            message: "is missing".into(),
        }
    }

    /// `value` has the wrong JSON type for `field` (a number field needs a
    /// number, a categorical one a string).
    pub fn mistyped(field: &Field, value: &Value) -> Self {
        let message = match &field.kind {
            FieldKind::Numeric(_) => format!("expected a number, got `{value}`"),
            FieldKind::Categorical { categories } => {
                format!("expected one of {}, got `{value}`", quoted(categories))
            }
        };
        Self {
            field: field.name.clone(),
            message,
        }
    }

    /// `value` lies outside the range `stats` saw in training.
    pub fn outside_training_range(
        field: &Field,
        value: &dyn std::fmt::Display,
        stats: &NumericStats,
    ) -> Self {
        Self {
            field: field.name.clone(),
            message: format!(
                "{value} is outside the training range {} to {}",
                stats.min, stats.max
            ),
        }
    }

    /// `value` is not among the `categories` seen in training.
    pub fn unknown_category(field: &Field, value: &str, categories: &[String]) -> Self {
        Self {
            field: field.name.clone(),
            message: format!(
                "unknown category `{value}`; expected one of {}",
                quoted(categories)
            ),
        }
    }
}

/// A bad record in a batch, by position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("record {index}: {error}")]
pub struct RecordError {
    pub index: usize,
    #[source]
    pub error: FieldError,
}

/// A loaded, structurally validated model.
#[derive(Debug, Clone)]
pub struct TrainedModel {
    file: ModelFile,
    digest: String,
    path: PathBuf,
}

impl TrainedModel {
    /// Reads and validates a model file.
    pub fn load(path: &Path) -> Result<Self, MlError> {
        let bytes = std::fs::read(path).map_err(|e| MlError::io("read model", path, e))?;
        Self::from_bytes(path, &bytes)
    }

    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, MlError> {
        let file: ModelFile = serde_json::from_slice(bytes).map_err(|source| MlError::Format {
            path: path.into(),
            what: "model",
            source,
        })?;
        if file.format != MODEL_FORMAT {
            return Err(MlError::invalid(format!(
                "model `{}` has format `{}`, expected `{MODEL_FORMAT}`",
                path.display(),
                file.format
            )));
        }
        file.transformer
            .validate()
            .and_then(|()| {
                file.classifier
                    .validate(file.transformer.n_features(), file.classes.len())
            })
            .map_err(|e| {
                MlError::invalid(format!("model `{}` is inconsistent: {e}", path.display()))
            })?;
        let digest = blake3::hash(bytes).to_hex().to_string();
        Ok(Self {
            file,
            digest,
            path: path.to_path_buf(),
        })
    }

    pub fn classes(&self) -> &[String] {
        &self.file.classes
    }

    /// The raw fields a record must provide, with types, categories and training ranges.
    pub fn schema(&self) -> &[Field] {
        &self.file.transformer.fields
    }

    pub fn transformer(&self) -> &Transformer {
        &self.file.transformer
    }

    pub fn kind(&self) -> &'static str {
        self.file.classifier.kind()
    }

    pub fn classifier(&self) -> &Classifier {
        &self.file.classifier
    }

    pub fn params(&self) -> &Value {
        &self.file.params
    }

    /// blake3 hex of the file's bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Class probabilities for every row of `table` (extra columns ignored).
    pub fn predict_table(&self, table: &Table) -> Result<Array2<f64>, MlError> {
        let x = self.file.transformer.transform(table)?;
        self.file.classifier.predict_proba(x.view())
    }

    /// Class probabilities of feature rows (row-major, `transformer()`'s
    /// width per row, as a [`RecordEncoder`](crate::ml::RecordEncoder)
    /// writes them), row-major with one value per class.
    pub fn predict_rows(&self, features: &[f64]) -> Result<Vec<f64>, MlError> {
        let width = self.file.transformer.n_features();
        if width == 0 || !features.len().is_multiple_of(width) {
            return Err(MlError::invalid(format!(
                "{} feature values do not make rows of {width}",
                features.len()
            )));
        }
        let x = ArrayView2::from_shape((features.len() / width, width), features)
            .map_err(|e| MlError::invalid(format!("feature matrix: {e}")))?;
        let proba = self.file.classifier.predict_proba(x)?;
        Ok(proba
            .as_slice()
            .map_or_else(|| proba.iter().copied().collect(), <[f64]>::to_vec))
    }

    /// Checks that a record has every field with the right type. Unseen
    /// categories and values outside the training range are accepted.
    pub fn validate_record(&self, record: &Map<String, Value>) -> Result<(), FieldError> {
        for field in self.schema() {
            let value = record
                .get(&field.name)
                .ok_or_else(|| FieldError::missing(field))?;
            match (&field.kind, value) {
                (FieldKind::Numeric(_), Value::Number(n))
                    if n.as_f64().is_some_and(f64::is_finite) => {}
                (FieldKind::Categorical { .. }, Value::String(_)) => {}
                (_, other) => return Err(FieldError::mistyped(field, other)),
            }
        }
        Ok(())
    }

    /// Scores records after validating each.
    pub fn predict(&self, records: &[Map<String, Value>]) -> Result<Vec<Prediction>, RecordError> {
        for (index, record) in records.iter().enumerate() {
            self.validate_record(record)
                .map_err(|error| RecordError { index, error })?;
        }
        let mut columns = Vec::new();
        for field in self.schema() {
            let values = match field.kind {
                FieldKind::Numeric(_) => ColumnValues::Numeric(
                    records
                        .iter()
                        .map(|r| r.get(&field.name).and_then(Value::as_f64))
                        .collect(),
                ),
                FieldKind::Categorical { .. } => ColumnValues::Text(
                    records
                        .iter()
                        .map(|r| {
                            r.get(&field.name)
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        })
                        .collect(),
                ),
            };
            columns.push((field.name.clone(), values));
        }
        let internal = |message: String| RecordError {
            index: 0,
            error: FieldError {
                field: String::new(),
                message,
            },
        };
        let table = Table::from_columns("request", columns).map_err(|e| internal(e.to_string()))?;
        let proba = self
            .predict_table(&table)
            .map_err(|e| internal(e.to_string()))?;
        Ok(proba
            .rows()
            .into_iter()
            .map(|row| {
                let probabilities = row.to_vec();
                Prediction {
                    class: self.file.classes[argmax(&probabilities)].clone(),
                    probabilities,
                }
            })
            .collect())
    }
}

fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;
    use crate::ml::test_fixtures::tiny_model;
    use serde_json::json;

    fn record(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn predict_applies_the_embedded_transformer() {
        let dir = tempfile::tempdir().unwrap();
        let model = TrainedModel::load(&tiny_model(dir.path(), 1)).unwrap();
        assert_eq!(model.classes(), ["high", "low", "mid"]);
        let predictions = model
            .predict(&[
                record(json!({"g": "a", "x": 0.1})),
                record(json!({"g": "zzz", "x": 20.2})),
            ])
            .unwrap();
        assert_eq!(predictions[0].class, "low");
        assert_eq!(predictions[1].class, "high");
        assert!((predictions[1].probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn invalid_records_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let model = TrainedModel::load(&tiny_model(dir.path(), 1)).unwrap();
        let missing = model
            .validate_record(&record(json!({"g": "a"})))
            .unwrap_err();
        assert_eq!(
            missing,
            FieldError {
                field: "x".into(),
                message: "is missing".into()
            }
        );
        let wrong = model
            .validate_record(&record(json!({"g": 3, "x": 1.0})))
            .unwrap_err();
        assert!(wrong.message.contains("`a`, `b`"), "{wrong}");
        let error = model
            .predict(&[
                record(json!({"g": "a", "x": 1})),
                record(json!({"g": "a", "x": "1"})),
            ])
            .unwrap_err();
        assert_eq!(error.index, 1);
    }

    #[test]
    fn schema_reports_training_ranges_and_categories() {
        let dir = tempfile::tempdir().unwrap();
        let model = TrainedModel::load(&tiny_model(dir.path(), 1)).unwrap();
        let schema = serde_json::to_value(model.schema()).unwrap();
        assert_eq!(
            schema[0],
            json!({"name": "g", "type": "categorical", "categories": ["a", "b"]})
        );
        assert_eq!(schema[1]["type"], json!("numeric"));
        assert_eq!(schema[1]["max"], json!(20.4));
    }

    #[test]
    fn garbage_and_truncated_model_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = tiny_model(dir.path(), 1);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let message = crate::ml::chain(&TrainedModel::load(&path).unwrap_err());
        assert!(
            message.contains("model-1.json") && message.contains("not a valid model"),
            "{message}"
        );
        std::fs::write(&path, [0xff, 0x00, 0x13]).unwrap();
        assert!(TrainedModel::load(&path).is_err());
    }

    #[test]
    fn structurally_inconsistent_model_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = tiny_model(dir.path(), 1);
        let mut file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        file["classes"] = json!(["only"]);
        std::fs::write(&path, file.to_string()).unwrap();
        let message = TrainedModel::load(&path).unwrap_err().to_string();
        assert!(message.contains("inconsistent"), "{message}");
    }
}
