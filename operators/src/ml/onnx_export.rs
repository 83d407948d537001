//! Writing a native model as an ONNX graph that any ONNX runtime can serve:
//! the `data.features` transformer and the classifier in one graph, taking
//! the raw named columns the model was trained on.
//!
//! The graph has one input per raw column, shaped `[rows, 1]`: `tensor(double)`
//! for a numeric column, `tensor(string)` for a categorical one. It has two
//! outputs: `label` (`tensor(string)`, one class name per row) and
//! `probabilities` (`tensor(float)`, rows × classes in the model's class
//! order). Scaling and derived columns are computed in double precision with
//! the same operations in the same order as [`Transformer::transform`];
//! categories are one-hot encoded by `ai.onnx.ml.OneHotEncoder` (an unseen
//! category is all zeros, as here). Forests and trees become one
//! `ai.onnx.ml.TreeEnsembleClassifier` with double thresholds and leaf
//! weights (`*_as_tensor`, ai.onnx.ml opset 3); logistic regression becomes
//! `MatMul`, `Add` and `Softmax` in double. The label is the first class of
//! highest probability, as [`argmax`](crate::ml::forest::argmax) picks it.
//!
//! The same model gives the same bytes: every list is written in a fixed
//! order and the graph holds no timestamps.

use prost::Message;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
use tract_onnx::pb::type_proto::{Tensor as TensorType, Value as TypeValue};
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

use crate::ml::MlError;
use crate::ml::features::{Derivation, FieldKind, Formula, NumericStats, Scaling, Transformer};
use crate::ml::forest::RandomForest;
use crate::ml::logistic::LogisticModel;
use crate::ml::model::{Classifier, TrainedModel};
use crate::ml::tree::NodeView;

/// The IR version written: ONNX 1.13 and later read it (onnxruntime ≥ 1.14).
const IR_VERSION: i64 = 8;
/// Default-domain operator set (Softmax with an `axis` over the last dimension).
const OPSET: i64 = 17;
/// `ai.onnx.ml` operator set 3 adds the double-precision `*_as_tensor` attributes.
const ML_OPSET: i64 = 3;

/// Where the exported graph came from; written into its metadata.
pub struct ExportOrigin<'a> {
    pub name: &'a str,
    pub version: u32,
    pub digest: &'a str,
}

/// An exported graph and the inputs a caller feeds it.
pub struct OnnxExport {
    pub bytes: Vec<u8>,
    /// The graph inputs in order: column name and element type (`double`
    /// or `string`), each shaped `[rows, 1]`.
    pub inputs: Vec<(String, &'static str)>,
}

/// The ONNX graph of `model`. ONNX graphs registered from other frameworks
/// are refused: their own file is the export.
pub fn export_onnx(model: &TrainedModel, origin: &ExportOrigin<'_>) -> Result<OnnxExport, MlError> {
    let mut graph = Graph::default();
    let features = graph.transformer(model.transformer())?;
    let probabilities = match model.classifier() {
        Classifier::RandomForest(forest) | Classifier::DecisionTree(forest) => {
            graph.forest(&features, forest)
        }
        Classifier::LogisticRegression(logistic) => graph.logistic(&features, logistic),
        Classifier::Onnx(_) => {
            return Err(MlError::invalid(format!(
                "model {}@v{} is already an ONNX graph; the graph it was registered from is its export",
                origin.name, origin.version
            )));
        }
    };
    graph.outputs(&probabilities, model.classes());
    let metadata = [
        ("dag.model", origin.name.to_string()),
        ("dag.version", origin.version.to_string()),
        ("dag.digest", origin.digest.to_string()),
        ("dag.kind", model.kind().to_string()),
        (
            "dag.classes",
            serde_json::to_string(model.classes()).unwrap_or_default(),
        ),
        (
            "dag.feature_names",
            serde_json::to_string(&model.transformer().feature_names).unwrap_or_default(),
        ),
    ];
    let proto = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![
            OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            },
            OperatorSetIdProto {
                domain: "ai.onnx.ml".into(),
                version: ML_OPSET,
            },
        ],
        producer_name: "dag".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        model_version: i64::from(origin.version),
        doc_string: format!(
            "{}@v{} ({}): inputs are the raw columns, outputs `label` and `probabilities`",
            origin.name,
            origin.version,
            model.kind()
        ),
        graph: Some(GraphProto {
            name: origin.name.to_string(),
            node: graph.nodes,
            initializer: graph.constants,
            input: graph.inputs,
            output: graph.outputs,
            ..GraphProto::default()
        }),
        metadata_props: metadata
            .into_iter()
            .map(|(key, value)| StringStringEntryProto {
                key: key.into(),
                value,
            })
            .collect(),
        ..ModelProto::default()
    };
    let inputs = proto
        .graph
        .iter()
        .flat_map(|g| &g.input)
        .map(|input| {
            let string = input
                .r#type
                .as_ref()
                .and_then(|t| t.value.as_ref())
                .is_some_and(|TypeValue::TensorType(t)| t.elem_type == DataType::String as i32);
            (input.name.clone(), if string { "string" } else { "double" })
        })
        .collect();
    Ok(OnnxExport {
        bytes: proto.encode_to_vec(),
        inputs,
    })
}

/// A graph under construction; values are named `v{n}` in creation order.
#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    constants: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    next: usize,
}

impl Graph {
    fn fresh(&mut self) -> String {
        self.next += 1;
        format!("v{}", self.next)
    }

    fn node(
        &mut self,
        op: &str,
        domain: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> String {
        let output = self.fresh();
        self.node_to(op, domain, inputs, &[&output], attributes);
        output
    }

    fn node_to(
        &mut self,
        op: &str,
        domain: &str,
        inputs: &[&str],
        outputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: format!("{op}_{}", self.nodes.len()),
            op_type: op.into(),
            domain: domain.into(),
            attribute,
            ..NodeProto::default()
        });
    }

    fn constant(&mut self, tensor: TensorProto) -> String {
        let name = self.fresh();
        self.constants.push(TensorProto {
            name: name.clone(),
            ..tensor
        });
        name
    }

    fn double(&mut self, value: f64) -> String {
        self.constant(doubles(vec![], vec![value]))
    }

    /// The transformer's feature matrix (`tensor(double)`, rows × features)
    /// from one input per raw column.
    fn transformer(&mut self, transformer: &Transformer) -> Result<String, MlError> {
        let mut columns = Vec::new();
        let mut raw_numeric: Vec<(String, String)> = Vec::new();
        for field in &transformer.fields {
            match &field.kind {
                FieldKind::Numeric(stats) => {
                    let input = self.input(&field.name, DataType::Double);
                    raw_numeric.push((field.name.clone(), input.clone()));
                    columns.push(self.scale(&input, stats, transformer.scaling));
                }
                FieldKind::Categorical { categories } => {
                    let input = self.input(&field.name, DataType::String);
                    let encoded = self.node(
                        "OneHotEncoder",
                        "ai.onnx.ml",
                        &[&input],
                        vec![
                            strings_attribute("cats_strings", categories),
                            int_attribute("zeros", 1),
                        ],
                    );
                    let shape = self.constant(int64s(vec![2], vec![-1, categories.len() as i64]));
                    let flat = self.node("Reshape", "", &[&encoded, &shape], vec![]);
                    columns.push(self.node(
                        "Cast",
                        "",
                        &[&flat],
                        vec![int_attribute("to", DataType::Double as i64)],
                    ));
                }
            }
        }
        for (derivation, stats) in &transformer.derived {
            let a = self.raw_numeric(&mut raw_numeric, transformer, &derivation.numerator)?;
            let b = self.raw_numeric(&mut raw_numeric, transformer, &derivation.denominator)?;
            let value = self.derive(derivation, &a, &b);
            columns.push(self.scale(&value, stats, transformer.scaling));
        }
        if columns.is_empty() {
            return Err(MlError::invalid("the model has no input columns to export"));
        }
        let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
        Ok(self.node("Concat", "", &refs, vec![int_attribute("axis", 1)]))
    }

    /// The input of a raw numeric column a derived column reads; a column
    /// that is not itself a feature becomes an input of its own.
    fn raw_numeric(
        &mut self,
        known: &mut Vec<(String, String)>,
        transformer: &Transformer,
        name: &str,
    ) -> Result<String, MlError> {
        if let Some((_, input)) = known.iter().find(|(n, _)| n == name) {
            return Ok(input.clone());
        }
        if transformer.fields.iter().any(|f| f.name == name) {
            return Err(MlError::invalid(format!(
                "derived columns read `{name}`, a categorical column; only numeric columns can be exported"
            )));
        }
        let input = self.input(name, DataType::Double);
        known.push((name.to_string(), input.clone()));
        Ok(input)
    }

    fn input(&mut self, name: &str, data_type: DataType) -> String {
        self.inputs
            .push(value_info(name, data_type, &[None, Some(1)]));
        name.to_string()
    }

    fn derive(&mut self, derivation: &Derivation, a: &str, b: &str) -> String {
        match derivation.formula {
            Formula::Ratio => self.node("Div", "", &[a, b], vec![]),
            Formula::RatioSq => {
                let square = self.node("Mul", "", &[b, b], vec![]);
                self.node("Div", "", &[a, &square], vec![])
            }
            Formula::Product => self.node("Mul", "", &[a, b], vec![]),
        }
    }

    /// [`NumericStats::scale`] as graph nodes.
    fn scale(&mut self, x: &str, stats: &NumericStats, scaling: Scaling) -> String {
        let (offset, divisor) = match scaling {
            Scaling::Standard if stats.std > 0.0 => (Some(stats.mean), Some(stats.std)),
            Scaling::Standard => (Some(stats.mean), None),
            Scaling::Minmax if stats.max > stats.min => {
                (Some(stats.min), Some(stats.max - stats.min))
            }
            Scaling::Minmax => (Some(stats.min), None),
            Scaling::None => (None, None),
        };
        let mut value = x.to_string();
        if let Some(offset) = offset {
            let offset = self.double(offset);
            value = self.node("Sub", "", &[&value, &offset], vec![]);
        }
        if let Some(divisor) = divisor {
            let divisor = self.double(divisor);
            value = self.node("Div", "", &[&value, &divisor], vec![]);
        }
        if value == x {
            // An output name must differ from the graph input's.
            value = self.node("Identity", "", &[x], vec![]);
        }
        value
    }

    /// Probabilities (`tensor(float)`) as the mean of the trees' leaf
    /// distributions: each leaf weighs its distribution by 1 / trees, and the
    /// classifier sums them.
    fn forest(&mut self, features: &str, forest: &RandomForest) -> String {
        let k = forest.n_classes();
        let scale = 1.0 / forest.n_trees().max(1) as f64;
        let mut nodes = TreeAttributes::default();
        for (tree_id, tree) in forest.trees().iter().enumerate() {
            for (node_id, node) in tree.node_views().enumerate() {
                nodes.tree_ids.push(tree_id as i64);
                nodes.node_ids.push(node_id as i64);
                match node {
                    NodeView::Split {
                        feature,
                        threshold,
                        left,
                        right,
                    } => {
                        nodes.features.push(i64::from(feature));
                        nodes.values.push(threshold);
                        nodes.modes.push(b"BRANCH_LEQ".to_vec());
                        nodes.true_ids.push(i64::from(left));
                        nodes.false_ids.push(i64::from(right));
                    }
                    NodeView::Leaf(distribution) => {
                        nodes.features.push(0);
                        nodes.values.push(0.0);
                        nodes.modes.push(b"LEAF".to_vec());
                        nodes.true_ids.push(0);
                        nodes.false_ids.push(0);
                        // Every class is written, zeros included: with two
                        // classes and one weighted, onnxruntime would
                        // derive the other as 1 − p.
                        for (class, p) in distribution.iter().enumerate() {
                            nodes.class_tree_ids.push(tree_id as i64);
                            nodes.class_node_ids.push(node_id as i64);
                            nodes.class_ids.push(class as i64);
                            nodes.class_weights.push(p * scale);
                        }
                    }
                }
            }
        }
        let labels = self.fresh();
        let probabilities = self.fresh();
        let attributes = vec![
            ints_attribute("classlabels_int64s", (0..k as i64).collect()),
            ints_attribute("nodes_treeids", nodes.tree_ids),
            ints_attribute("nodes_nodeids", nodes.node_ids),
            ints_attribute("nodes_featureids", nodes.features),
            tensor_attribute("nodes_values_as_tensor", {
                let n = nodes.values.len() as i64;
                doubles(vec![n], nodes.values)
            }),
            bytes_attribute("nodes_modes", nodes.modes),
            ints_attribute("nodes_truenodeids", nodes.true_ids),
            ints_attribute("nodes_falsenodeids", nodes.false_ids),
            ints_attribute("class_treeids", nodes.class_tree_ids),
            ints_attribute("class_nodeids", nodes.class_node_ids),
            ints_attribute("class_ids", nodes.class_ids),
            tensor_attribute("class_weights_as_tensor", {
                let n = nodes.class_weights.len() as i64;
                doubles(vec![n], nodes.class_weights)
            }),
            string_attribute("post_transform", "NONE"),
        ];
        self.node_to(
            "TreeEnsembleClassifier",
            "ai.onnx.ml",
            &[features],
            &[&labels, &probabilities],
            attributes,
        );
        probabilities
    }

    /// Probabilities (`tensor(float)`) as the softmax of the linear scores,
    /// computed in double.
    fn logistic(&mut self, features: &str, logistic: &LogisticModel) -> String {
        let (weights, intercept) = logistic.coefficients();
        let k = intercept.len();
        let flat: Vec<f64> = weights.iter().flatten().copied().collect();
        let weights = self.constant(doubles(vec![weights.len() as i64, k as i64], flat));
        let intercept = self.constant(doubles(vec![k as i64], intercept.to_vec()));
        let scores = self.node("MatMul", "", &[features, &weights], vec![]);
        let scores = self.node("Add", "", &[&scores, &intercept], vec![]);
        let softmax = self.node("Softmax", "", &[&scores], vec![int_attribute("axis", -1)]);
        self.node(
            "Cast",
            "",
            &[&softmax],
            vec![int_attribute("to", DataType::Float as i64)],
        )
    }

    /// The graph outputs `probabilities` and `label`.
    fn outputs(&mut self, probabilities: &str, classes: &[String]) {
        self.node_to("Identity", "", &[probabilities], &["probabilities"], vec![]);
        let index = self.node(
            "ArgMax",
            "",
            &[probabilities],
            vec![int_attribute("axis", 1), int_attribute("keepdims", 0)],
        );
        let names = self.constant(TensorProto {
            dims: vec![classes.len() as i64],
            data_type: DataType::String as i32,
            string_data: classes.iter().map(|c| c.as_bytes().to_vec()).collect(),
            ..TensorProto::default()
        });
        self.node_to(
            "Gather",
            "",
            &[&names, &index],
            &["label"],
            vec![int_attribute("axis", 0)],
        );
        self.outputs
            .push(value_info("label", DataType::String, &[None]));
        self.outputs.push(value_info(
            "probabilities",
            DataType::Float,
            &[None, Some(classes.len() as i64)],
        ));
    }
}

#[derive(Default)]
struct TreeAttributes {
    tree_ids: Vec<i64>,
    node_ids: Vec<i64>,
    features: Vec<i64>,
    values: Vec<f64>,
    modes: Vec<Vec<u8>>,
    true_ids: Vec<i64>,
    false_ids: Vec<i64>,
    class_tree_ids: Vec<i64>,
    class_node_ids: Vec<i64>,
    class_ids: Vec<i64>,
    class_weights: Vec<f64>,
}

fn value_info(name: &str, data_type: DataType, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(n) => dimension::Value::DimValue(*n),
                None => dimension::Value::DimParam("rows".into()),
            }),
            ..Dimension::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(TypeValue::TensorType(TensorType {
                elem_type: data_type as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..TypeProto::default()
        }),
        ..ValueInfoProto::default()
    }
}

fn doubles(dims: Vec<i64>, values: Vec<f64>) -> TensorProto {
    TensorProto {
        dims,
        data_type: DataType::Double as i32,
        double_data: values,
        ..TensorProto::default()
    }
}

fn int64s(dims: Vec<i64>, values: Vec<i64>) -> TensorProto {
    TensorProto {
        dims,
        data_type: DataType::Int64 as i32,
        int64_data: values,
        ..TensorProto::default()
    }
}

fn attribute(name: &str, kind: AttributeType) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: kind as i32,
        ..AttributeProto::default()
    }
}

fn int_attribute(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        i: value,
        ..attribute(name, AttributeType::Int)
    }
}

fn ints_attribute(name: &str, values: Vec<i64>) -> AttributeProto {
    AttributeProto {
        ints: values,
        ..attribute(name, AttributeType::Ints)
    }
}

fn string_attribute(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        s: value.as_bytes().to_vec(),
        ..attribute(name, AttributeType::String)
    }
}

fn strings_attribute(name: &str, values: &[String]) -> AttributeProto {
    bytes_attribute(name, values.iter().map(|v| v.as_bytes().to_vec()).collect())
}

fn bytes_attribute(name: &str, values: Vec<Vec<u8>>) -> AttributeProto {
    AttributeProto {
        strings: values,
        ..attribute(name, AttributeType::Strings)
    }
}

fn tensor_attribute(name: &str, tensor: TensorProto) -> AttributeProto {
    AttributeProto {
        t: Some(tensor),
        ..attribute(name, AttributeType::Tensor)
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;
    use crate::ml::test_fixtures::tiny_model;
    use crate::ml::tree::DecisionTree;

    fn origin() -> ExportOrigin<'static> {
        ExportOrigin {
            name: "tiny",
            version: 3,
            digest: "abc",
        }
    }

    #[test]
    fn a_forest_exports_as_raw_inputs_one_hot_scaling_and_one_tree_ensemble() {
        let dir = tempfile::tempdir().unwrap();
        let model = TrainedModel::load(&tiny_model(dir.path(), 1)).unwrap();
        let export = export_onnx(&model, &origin()).unwrap();
        assert_eq!(
            export.inputs,
            vec![("g".to_string(), "string"), ("x".to_string(), "double")]
        );
        let proto = ModelProto::decode(export.bytes.as_slice()).unwrap();
        let graph = proto.graph.unwrap();
        let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(outputs, ["label", "probabilities"]);
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops.iter().filter(|op| **op == "OneHotEncoder").count(), 1);
        assert_eq!(
            ops.iter()
                .filter(|op| **op == "TreeEnsembleClassifier")
                .count(),
            1
        );
        let ensemble = graph
            .node
            .iter()
            .find(|n| n.op_type == "TreeEnsembleClassifier")
            .unwrap();
        let weights = ensemble
            .attribute
            .iter()
            .find(|a| a.name == "class_weights_as_tensor")
            .and_then(|a| a.t.as_ref())
            .unwrap();
        // Five trees, each leaf's weights sum to 1/5, so all of them sum to
        // the number of leaves / 5; every tree has at least one leaf.
        let total: f64 = weights.double_data.iter().sum();
        let Classifier::RandomForest(forest) = model.classifier() else {
            panic!("the tiny model is a forest");
        };
        let leaves = forest
            .trees()
            .iter()
            .flat_map(DecisionTree::node_views)
            .filter(|n| matches!(n, NodeView::Leaf(_)))
            .count();
        assert!(
            (total - leaves as f64 / 5.0).abs() < 1e-9,
            "{total} vs {leaves}"
        );
        let metadata: Vec<(&str, &str)> = proto
            .metadata_props
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_str()))
            .collect();
        assert!(metadata.contains(&("dag.model", "tiny")));
        assert!(metadata.contains(&("dag.version", "3")));
    }

    #[test]
    fn the_same_model_exports_to_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = tiny_model(dir.path(), 2);
        let first = export_onnx(&TrainedModel::load(&path).unwrap(), &origin()).unwrap();
        let second = export_onnx(&TrainedModel::load(&path).unwrap(), &origin()).unwrap();
        assert_eq!(first.bytes, second.bytes);
    }
}
