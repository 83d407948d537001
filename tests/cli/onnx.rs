//! ONNX model versions: a scikit-learn model trained by the shipped
//! challenger DAG with the real scikit-learn and skl2onnx, registered, gated
//! against the native forest, served and hot-swapped; graphs that are
//! corrupt, use an operator tract lacks, or take the wrong width are refused
//! at registration and never reach serving.

use std::process::Command;

use serde_json::{Value, json};

use crate::python_env::python;
use crate::support::Project;

use super::serve_support::*;

/// A project with the shipped DAGs and data, after one small `obesity` run:
/// `obesity` v1 (native forest) is champion and production.
pub(crate) fn project_after_obesity() -> Project {
    let project = crate::lifecycle::lifecycle_project();
    let output = project.dag(&[
        "run",
        "obesity",
        "--param",
        "n_trees=20",
        "--param",
        "cv_folds=2",
    ]);
    assert!(output.status.success(), "{output:?}");
    project
}

fn versions(project: &Project) -> Vec<Value> {
    let (code, list) = project.json(&["models", "list", "--json"]);
    assert_eq!(code, 0, "{list:#}");
    list.as_array().cloned().unwrap_or_default()
}

fn python_script(project: &Project, name: &str, code: &str) {
    let path = project.write(name, code);
    let output = Command::new(python())
        .arg(&path)
        .current_dir(project.path())
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_scikit_learn_model_is_registered_gated_served_and_hot_swapped() {
    let project = project_after_obesity();
    let server = serve(&project, &[], None);
    assert_eq!(served_version(&server.addr), json!(1));
    let python = python().to_string_lossy().into_owned();
    let output = project.dag(&[
        "run",
        "obesity_sklearn_challenger",
        "--param",
        &format!("python={python}"),
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("gate passed v2 against champion v1"),
        "{text}"
    );
    let listed = versions(&project);
    let v2 = listed
        .iter()
        .find(|v| v["version"] == json!(2))
        .unwrap_or_else(|| panic!("no v2 in {listed:#?}"));
    assert_eq!(v2["params"]["source"], json!("model.onnx"), "{v2:#}");
    let aliases = v2["aliases"].as_array().cloned().unwrap_or_default();
    for alias in ["champion", "production", "sklearn"] {
        assert!(aliases.contains(&json!(alias)), "{v2:#}");
    }
    wait_for("the server to swap to v2", || {
        served_version(&server.addr) == json!(2)
    });
    let answer = post(&server.addr, "/predict", &record()).json();
    let probabilities = answer["probabilities"].as_object().expect("probabilities");
    assert_eq!(probabilities.len(), 7, "{answer:#}");
    let sum: f64 = probabilities.values().filter_map(Value::as_f64).sum();
    assert!((sum - 1.0).abs() < 1e-4, "{answer:#}");
    assert_eq!(answer["class"], json!("Normal_Weight"), "{answer:#}");
    let model = get(&server.addr, "/model").json();
    assert_eq!(model["version"], json!(2), "{model:#}");
    assert_eq!(model["schema"].as_array().map(Vec::len), Some(16));
    // Back to the native forest: the same endpoint serves it again.
    let rollback = project.dag(&["models", "rollback", "obesity", "--alias", "production"]);
    assert!(rollback.status.success(), "{rollback:?}");
    wait_for("the server to swap back to v1", || {
        served_version(&server.addr) == json!(1)
    });
}

/// A DAG registering `model.onnx` with the `obesity` transformer.
fn register_dag(project: &Project) {
    project.write(
        "dags/import.yaml",
        r#"name: import
tasks:
  register:
    operator: models.register
    inputs:
      model: model.onnx
      transformer: data/models/transformer.json
      classes: data/sklearn/classes.json
    params: { name: obesity, aliases: [imported] }
"#,
    );
    let classes = project.path().join("data/sklearn/classes.json");
    std::fs::create_dir_all(classes.parent().expect("parent")).expect("create dir");
    std::fs::write(
        &classes,
        r#"["Insufficient_Weight","Normal_Weight","Obesity_Type_I","Obesity_Type_II","Obesity_Type_III","Overweight_Level_I","Overweight_Level_II"]"#,
    )
    .expect("write classes");
}

fn refused(project: &Project, needle: &str) {
    let output = project.dag(&["run", "import"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{text}");
    assert!(text.contains(needle), "expected `{needle}` in:\n{text}");
    assert_eq!(versions(project).len(), 1, "a refused graph was registered");
}

#[test]
fn corrupt_unsupported_and_mismatched_graphs_are_refused_at_registration() {
    let project = project_after_obesity();
    register_dag(&project);
    let server = serve(&project, &[], None);
    std::fs::write(
        project.path().join("model.onnx"),
        b"\x08\x07garbage, not protobuf",
    )
    .expect("write garbage");
    refused(&project, "is not a valid ONNX model");
    python_script(
        &project,
        "unsupported.py",
        r#"
import onnx
from onnx import helper, TensorProto
x = helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, 32])
y = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 7])
node = helper.make_node("Frobnicate", ["features"], ["probabilities"], domain="com.example")
graph = helper.make_graph([node], "g", [x], [y])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("com.example", 1)])
open("model.onnx", "wb").write(model.SerializeToString())
"#,
    );
    refused(&project, "does not support: com.example:Frobnicate");
    python_script(
        &project,
        "narrow.py",
        r#"
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
rng = np.random.default_rng(0)
x = rng.normal(size=(70, 5)).astype(np.float32)
y = np.arange(70) % 7
m = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y)
onx = to_onnx(m, initial_types=[("features", FloatTensorType([None, 5]))],
              options={id(m): {"zipmap": False}}, target_opset={"": 15, "ai.onnx.ml": 3})
open("model.onnx", "wb").write(onx.SerializeToString())
"#,
    );
    refused(&project, "takes 5 features but the transformer makes 32");
    assert!(project.path().join("model.onnx").is_file());
    assert_eq!(served_version(&server.addr), json!(1));
}

/// Reads a CSV of numbers after a header, skipping `skip` leading columns and
/// keeping `take`.
fn numbers(text: &str, skip: usize, take: usize) -> Vec<Vec<f64>> {
    text.lines()
        .skip(1)
        .map(|line| {
            line.split(',')
                .skip(skip)
                .take(take)
                .map(|v| v.parse::<f64>().unwrap_or(f64::NAN))
                .collect()
        })
        .collect()
}

#[test]
fn onnx_versions_score_as_onnxruntime_does() {
    let project = project_after_obesity();
    let interpreter = python().to_string_lossy().into_owned();
    project.write(
        "dags/score.yaml",
        r#"name: score
tasks:
  matrix:
    operator: data.transform
    inputs: { data: data/processed/test.parquet, transformer: data/models/transformer.json }
    outputs: { matrix: data/check/matrix.csv }
  predict:
    operator: ml.predict_batch
    inputs: { data: data/processed/test.parquet }
    outputs: { predictions: data/check/predictions.csv }
    params: { registry_model: obesity, alias: sklearn }
"#,
    );
    project.write(
        "ort.py",
        r#"import csv, sys
import numpy as np
import onnxruntime as ort
rows = list(csv.reader(open("data/check/matrix.csv")))
x = np.array([[float(v) for v in r[:-1]] for r in rows[1:]], dtype=np.float32)
session = ort.InferenceSession("data/sklearn/model.onnx", providers=["CPUExecutionProvider"])
names = [o.name for o in session.get_outputs()]
proba = session.run(None, {session.get_inputs()[0].name: x})[names.index("probabilities")]
with open("data/check/ort.csv", "w") as f:
    f.write("p\n")
    for row in proba:
        f.write(",".join(repr(float(p)) for p in row) + "\n")
"#,
    );
    // Gradient boosting (SOFTMAX over summed scores) and a random forest
    // (averaged votes): both kinds of tree ensemble skl2onnx writes.
    for model in ["gb", "rf"] {
        let output = project.dag(&[
            "run",
            "obesity_sklearn_challenger",
            "--param",
            &format!("python={interpreter}"),
            "--param",
            &format!("model={model}"),
            "--param",
            "n_estimators=60",
        ]);
        assert!(output.status.success(), "{model}: {output:?}");
        let output = project.dag(&["run", "score"]);
        assert!(output.status.success(), "{model}: {output:?}");
        let run = Command::new(python())
            .arg("ort.py")
            .current_dir(project.path())
            .output()
            .expect("run onnxruntime");
        assert!(run.status.success(), "{run:?}");
        let read = |path: &str| std::fs::read_to_string(project.path().join(path)).expect(path);
        let ours = numbers(&read("data/check/predictions.csv"), 2, 7);
        let theirs = numbers(&read("data/check/ort.csv"), 0, 7);
        assert_eq!(ours.len(), theirs.len(), "{model}: row counts");
        assert!(ours.len() > 100, "{model}: {} rows", ours.len());
        let gap = ours
            .iter()
            .flatten()
            .zip(theirs.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(gap < 1e-5, "{model}: probabilities differ by up to {gap}");
    }
}
