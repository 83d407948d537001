//! Turning an ONNX graph from another framework into a model file: the graph,
//! the `data.features` transformer whose output columns it takes, and the
//! class names of its probability columns, checked together before anything
//! is registered.

use std::path::Path;

use serde_json::{Value, json};

use crate::ml::MlError;
use crate::ml::model::{Classifier, MODEL_FORMAT, ModelFile};
use crate::ml::onnx::OnnxClassifier;
use crate::ml::train_op::read_transformer;

/// Reads the graph at `graph_path` and the transformer at `transformer_path`
/// and returns the bytes of a model file holding both, with `classes` in
/// the order of the graph's probability columns. The graph is compiled and
/// run on a row of zeros first; any mismatch is an error naming the file.
pub fn onnx_model_file(
    graph_path: &Path,
    transformer_path: &Path,
    classes: Vec<String>,
) -> Result<Vec<u8>, MlError> {
    let graph =
        std::fs::read(graph_path).map_err(|e| MlError::io("read ONNX model", graph_path, e))?;
    let transformer = read_transformer(transformer_path)?;
    if classes.len() < 2 {
        return Err(MlError::invalid(format!(
            "ONNX model `{}` needs at least two class names, got {}",
            graph_path.display(),
            classes.len()
        )));
    }
    let mut sorted = classes.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != classes.len() {
        return Err(MlError::invalid(format!(
            "ONNX model `{}`: class names repeat",
            graph_path.display()
        )));
    }
    let classifier = OnnxClassifier::new(graph, classes.len());
    classifier
        .validate(transformer.n_features(), classes.len())
        .and_then(|()| classifier.cross_check(transformer.n_features()))
        .map_err(|e| MlError::invalid(format!("ONNX model `{}` {e}", graph_path.display())))?;
    let source = graph_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let params: Value = json!({
        "source": source,
        "graph_digest": blake3::hash(classifier.graph()).to_hex().to_string(),
    });
    ModelFile {
        format: MODEL_FORMAT.into(),
        classes,
        transformer,
        params,
        classifier: Classifier::Onnx(classifier),
    }
    .to_bytes()
}

/// Class names from a JSON file holding a list of strings.
pub fn read_classes(path: &Path) -> Result<Vec<String>, MlError> {
    let bytes = std::fs::read(path).map_err(|e| MlError::io("read classes", path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| MlError::Format {
        path: path.into(),
        what: "class list (a JSON list of names)",
        source,
    })
}
