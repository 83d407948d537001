//! Machine learning for the obesity lifecycle: reading splits, fitting the
//! feature transformer, training (a deterministic forest and tree written
//! here, logistic regression from linfa), evaluation, quality gates and batch
//! prediction, plus the [`TrainedModel`] API a prediction server uses.
//!
//! Data cleaning and splitting belong to the data stage; the model registry
//! lives in [`crate::models`].

mod atomic;
pub(crate) mod base64;
mod canvas;
mod compiled_tree;
mod criterion;
mod dataset;
mod error;
mod evaluate_op;
mod features;
mod features_op;
mod font;
mod forest;
mod gate_judge;
mod gate_op;
mod heatmap;
mod importance;
mod logistic;
mod metrics;
mod model;
mod onnx;
mod onnx_export;
mod onnx_import;
mod onnx_trees;
mod predict_op;
mod record_encoder;
mod rng;
mod train_evidence;
mod train_op;
mod training;
mod transform_op;
mod tree;

#[cfg(test)]
mod dag_files_tests;
#[cfg(test)]
mod gate_tests;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod real_data_tests;
#[cfg(test)]
pub(crate) mod test_fixtures;

pub use atomic::write_atomic;
pub use criterion::{CLASS_METRICS, Comparison, Criterion, OVERALL_METRICS, check_metric};
pub use dataset::{ColumnValues, Table};
pub use error::{MlError, chain};
pub use evaluate_op::{Evaluate, Evaluation, evaluate};
pub use features::{
    Derivation, FeatureConfig, Field, FieldKind, Formula, NumericStats, Scaling, Transformer,
};
pub use features_op::Features;
pub use forest::{ClassWeight, FitHooks, ForestParams, RandomForest, argmax};
pub use gate_judge::{ChampionRule, FairnessRule, GateParams, Judgement, judge, metric_map};
pub use gate_op::Gate;
pub use heatmap::write_confusion_png;
pub use importance::{
    FeatureImportance, ImportanceMetric, ImportanceParams, MAX_REPEATS, permutation_importance,
};
pub use logistic::{LogisticModel, LogisticParams};
pub use model::{
    Classifier, FieldError, MODEL_FORMAT, ModelFile, Prediction, RecordError, TrainedModel,
};
pub use onnx::OnnxClassifier;
pub use onnx_export::{ExportOrigin, OnnxExport, export_onnx};
pub use onnx_import::{onnx_model_file, read_classes};
pub use predict_op::{PredictBatch, predictions_csv};
pub use record_encoder::{FieldInput, RecordEncoder};
pub use rng::SplitMix64;
pub use train_op::{Train, TrainParams, TrainResult, read_transformer, train};
pub use training::{CvScores, Hyperparameters, ModelKind};
pub use transform_op::Transform;
pub use tree::{DecisionTree, MaxFeatures, MaxFeaturesRule, TreeParams};
