//! [`OnnxClassifier`]: a classifier given as an ONNX graph from any framework
//! (scikit-learn through skl2onnx, XGBoost, LightGBM, PyTorch), run in pure
//! Rust by tract.
//!
//! The contract: the graph has one input, a float matrix `[N, F]` of the
//! `data.features` transformer's output columns, and an output of class
//! probabilities `[N, C]` in the order of the model's class names (a label
//! output, as skl2onnx adds, is ignored). Checking a graph compiles it and
//! runs it on a row of zeros, so a graph that loads is one that scores.

use std::fmt;
use std::sync::{Arc, OnceLock};

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use tract_onnx::pb;
use tract_onnx::prelude::*;

use crate::ml::MlError;

use crate::ml::onnx_trees::TreeEnsemble;

/// How a checked graph is scored: a plain tree-ensemble classifier by the
/// engine's own reader, anything else by tract.
#[derive(Clone)]
enum Plan {
    Tract(Arc<TypedRunnableModel>),
    Trees(Arc<TreeEnsemble>),
}

/// An ONNX graph and, once checked, its compiled plan.
#[derive(Clone, Serialize, Deserialize)]
pub struct OnnxClassifier {
    /// The graph's bytes, base64 in the model file.
    #[serde(with = "crate::ml::base64")]
    graph: Vec<u8>,
    /// The width of the probability output.
    n_classes: usize,
    #[serde(skip)]
    plan: PlanCache,
}

/// The compiled plan: not part of the file and not part of equality.
#[derive(Clone, Default)]
struct PlanCache(OnceLock<Plan>);

impl PartialEq for OnnxClassifier {
    fn eq(&self, other: &Self) -> bool {
        self.graph == other.graph && self.n_classes == other.n_classes
    }
}

impl fmt::Debug for OnnxClassifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnnxClassifier")
            .field("graph_bytes", &self.graph.len())
            .field("compiled", &self.plan.0.get().is_some())
            .finish()
    }
}

impl OnnxClassifier {
    pub fn new(graph: Vec<u8>, n_classes: usize) -> Self {
        Self {
            graph,
            n_classes,
            plan: PlanCache::default(),
        }
    }

    pub fn graph(&self) -> &[u8] {
        &self.graph
    }

    /// Compiles the graph for `n_features` inputs and checks that a row of
    /// zeros gives `n_classes` probabilities.
    pub fn validate(&self, n_features: usize, n_classes: usize) -> Result<(), String> {
        if self.n_classes != n_classes {
            return Err(format!(
                "is declared with {} classes but the model names {n_classes}",
                self.n_classes
            ));
        }
        let plan = compile(&self.graph, n_features, n_classes)?;
        let zeros = Array2::<f64>::zeros((1, n_features));
        let proba = run(&plan, zeros.view(), n_classes)
            .map_err(|e| format!("fails its test inference on a row of zeros: {e}"))?;
        if proba.iter().any(|p| !p.is_finite()) {
            return Err("gives non-finite probabilities for a row of zeros".into());
        }
        // A second validation of the same value compiles again; keeping the
        // first plan is as good.
        let _ = self.plan.0.set(plan);
        Ok(())
    }

    /// For a graph the engine scores itself (a tree ensemble), checks that
    /// tract, which runs the graph as written, gives the same probabilities
    /// on a set of rows. Done once, at registration: tract is slow on large
    /// ensembles, which is why the engine scores them itself.
    pub fn cross_check(&self, n_features: usize) -> Result<(), String> {
        let plan = compile(&self.graph, n_features, self.n_classes)?;
        if matches!(plan, Plan::Trees(_)) {
            cross_check(&self.graph, &plan, n_features, self.n_classes)?;
        }
        Ok(())
    }

    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>, MlError> {
        let plan = match self.plan.0.get() {
            Some(plan) => plan,
            None => {
                let plan = compile(&self.graph, x.ncols(), self.n_classes)
                    .map_err(|e| MlError::invalid(format!("the ONNX graph {e}")))?;
                self.plan.0.get_or_init(|| plan)
            }
        };
        run(plan, x, self.n_classes).map_err(MlError::invalid)
    }
}

/// The ONNX operators of `graph` that tract does not implement, as
/// `domain:op_type` (the default domain left out), sorted and unique.
fn unsupported_operators(onnx: &tract_onnx::Onnx, graph: &pb::GraphProto) -> Vec<String> {
    let mut missing: Vec<String> = graph
        .node
        .iter()
        .filter(|node| !onnx.op_register.0.contains_key(&node.op_type))
        .map(|node| {
            if node.domain.is_empty() || node.domain == "ai.onnx" {
                node.op_type.clone()
            } else {
                format!("{}:{}", node.domain, node.op_type)
            }
        })
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

/// The declared width of the graph's single input, when it declares one.
fn declared_width(graph: &pb::GraphProto) -> Result<(String, Option<i64>), String> {
    let initializers: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|input| !initializers.contains(&input.name.as_str()))
        .collect();
    let [input] = inputs.as_slice() else {
        let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        return Err(format!(
            "has {} inputs ({}); expected one float matrix of the transformer's features",
            names.len(),
            names.join(", ")
        ));
    };
    let dims = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(pb::type_proto::Value::TensorType(tensor)) => tensor
            .shape
            .as_ref()
            .map(|shape| shape.dim.clone())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    if !dims.is_empty() && dims.len() != 2 {
        return Err(format!(
            "input `{}` has {} dimensions; expected a matrix [rows, features]",
            input.name,
            dims.len()
        ));
    }
    let width = dims.get(1).and_then(|d| match d.value {
        Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)) => Some(n),
        _ => None,
    });
    Ok((input.name.clone(), width))
}

fn compile(graph: &[u8], n_features: usize, n_classes: usize) -> Result<Plan, String> {
    compile_with(graph, n_features, n_classes, true)
}

/// Rows that a natively read tree ensemble and tract must score alike before
/// the graph is registered: zeros, then values spread over ±4 (standardised
/// features and one-hot columns both fall in that range).
fn cross_check(
    graph: &[u8],
    plan: &Plan,
    n_features: usize,
    n_classes: usize,
) -> Result<(), String> {
    const ROWS: usize = 16;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let x = Array2::from_shape_fn((ROWS, n_features), |(row, _)| {
        if row == 0 {
            return 0.0;
        }
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 * 8.0 - 4.0
    });
    let tract = compile_with(graph, n_features, n_classes, false)?;
    let ours = run(plan, x.view(), n_classes)?;
    let theirs = run(&tract, x.view(), n_classes)?;
    let gap = ours
        .iter()
        .zip(theirs.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    if gap > 1e-5 {
        return Err(format!(
            "is a tree ensemble that the engine's reader and tract score differently (by up to {gap:.2e}); please report it"
        ));
    }
    Ok(())
}

fn compile_with(
    graph: &[u8],
    n_features: usize,
    n_classes: usize,
    native_trees: bool,
) -> Result<Plan, String> {
    let onnx = tract_onnx::onnx();
    let proto = onnx
        .proto_model_for_read(&mut &graph[..])
        .map_err(|e| format!("is not a valid ONNX model: {e:#}"))?;
    let Some(graph_proto) = proto.graph.as_ref() else {
        return Err("is an ONNX model without a graph".into());
    };
    let missing = unsupported_operators(&onnx, graph_proto);
    if !missing.is_empty() {
        return Err(format!(
            "uses ONNX operator{} that the built-in runtime (tract) does not support: {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        ));
    }
    let (input, width) = declared_width(graph_proto)?;
    if let Some(width) = width
        && usize::try_from(width).ok() != Some(n_features)
    {
        return Err(format!(
            "input `{input}` takes {width} features but the transformer makes {n_features}"
        ));
    }
    if native_trees
        && let Some(trees) = crate::ml::onnx_trees::ensemble_of(graph_proto, &input, n_classes)
            .map_err(|e| format!("is a tree ensemble that {e}"))?
    {
        if trees.min_features() > n_features {
            return Err(format!(
                "reads feature {} but the transformer makes {n_features}",
                trees.min_features() - 1
            ));
        }
        return Ok(Plan::Trees(Arc::new(trees)));
    }
    let tract_error = |what: &str, e: TractError| format!("{what}: {e:#}");
    let mut model = onnx
        .model_for_proto_model(&proto)
        .map_err(|e| tract_error("cannot be translated", e))?;
    let rows = model.symbols.sym("N");
    let fact =
        InferenceFact::dt_shape(f32::datum_type(), tvec![rows.to_dim(), n_features.to_dim()]);
    model = model
        .with_input_fact(0, fact)
        .map_err(|e| tract_error("does not take a float matrix", e))?;
    let mut typed = model.into_typed().map_err(|e| {
        tract_error(
            &format!("cannot be typed for {n_features} float features"),
            e,
        )
    })?;
    let outlet = probability_output(&typed, n_classes)?;
    typed
        .select_output_outlets(&[outlet])
        .map_err(|e| tract_error("cannot select its probability output", e))?;
    typed
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .map(Plan::Tract)
        .map_err(|e| tract_error("cannot be compiled", e))
}

/// The first output that is a float matrix with `n_classes` columns.
fn probability_output(model: &TypedModel, n_classes: usize) -> Result<OutletId, String> {
    let mut seen = Vec::new();
    for (index, outlet) in model.outputs.iter().enumerate() {
        let fact = model
            .outlet_fact(*outlet)
            .map_err(|e| format!("output {index}: {e:#}"))?;
        let float = fact.datum_type.is_float();
        let columns = fact.shape.get(1).and_then(|d| d.to_i64().ok());
        if float
            && fact.rank() == 2
            && columns.and_then(|c| usize::try_from(c).ok()) == Some(n_classes)
        {
            return Ok(*outlet);
        }
        seen.push(format!(
            "`{}` {:?}{:?}",
            model
                .outlet_label(*outlet)
                .unwrap_or(&model.node(outlet.node).name),
            fact.datum_type,
            fact.shape
        ));
    }
    Err(format!(
        "has no output of probabilities for {n_classes} classes (a float matrix [rows, {n_classes}]); its outputs are {}",
        seen.join(", ")
    ))
}

fn run(plan: &Plan, x: ArrayView2<'_, f64>, n_classes: usize) -> Result<Array2<f64>, String> {
    let (rows, width) = x.dim();
    let values: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let plan = match plan {
        Plan::Tract(plan) => plan,
        Plan::Trees(trees) => {
            return Array2::from_shape_vec((rows, n_classes), trees.predict(&values, width))
                .map_err(|e| format!("probabilities: {e}"));
        }
    };
    let input = Tensor::from_shape(&[rows, width], &values).map_err(|e| format!("{e:#}"))?;
    let outputs = plan
        .run(tvec![input.into_tvalue()])
        .map_err(|e| format!("ONNX inference failed: {e:#}"))?;
    let Some(output) = outputs.first() else {
        return Err("ONNX inference gave no output".into());
    };
    let output = output
        .cast_to::<f32>()
        .map_err(|e| format!("probabilities: {e:#}"))?;
    if output.shape() != [rows, n_classes] {
        return Err(format!(
            "ONNX inference gave probabilities of shape {:?}, expected [{rows}, {n_classes}]",
            output.shape()
        ));
    }
    let view = output
        .to_plain_array_view::<f32>()
        .map_err(|e| format!("probabilities: {e:#}"))?;
    Array2::from_shape_vec(
        (rows, n_classes),
        view.iter().map(|&p| f64::from(p)).collect(),
    )
    .map_err(|e| format!("probabilities: {e}"))
}
