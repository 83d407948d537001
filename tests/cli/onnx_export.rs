//! `dag models export --format onnx`: the native forest, tree and logistic
//! models, each with its feature transformer, scored by the real onnxruntime
//! on every row of the raw data set and compared with `dag`'s own batch
//! predictions of the same version.

use serde_json::Value;

use crate::onnx::project_after_obesity;
use crate::python_env::python;
use crate::support::Project;

/// Scores `graph` with onnxruntime on `data` (a CSV with a header) and
/// compares with `predictions` (the CSV `ml.predict_batch` writes): the
/// largest probability difference and how many labels agree.
const CHECK: &str = r#"
import csv, json, sys
import numpy as np, onnxruntime as ort
graph, data, predictions = sys.argv[1:4]
session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
rows = list(csv.DictReader(open(data, newline="")))
feeds = {}
for i in session.get_inputs():
    column = [r[i.name] for r in rows]
    if i.type == "tensor(string)":
        feeds[i.name] = np.array(column, dtype=object).reshape(-1, 1)
    else:
        feeds[i.name] = np.array([float(v) for v in column], dtype=np.float64).reshape(-1, 1)
labels, probabilities = session.run(["label", "probabilities"], feeds)
ours = list(csv.DictReader(open(predictions, newline="")))
classes = [k[2:] for k in ours[0] if k.startswith("p_")]
reference = np.array([[float(r["p_" + c]) for c in classes] for r in ours])
print(json.dumps({
    "rows": len(rows),
    "scored": int(probabilities.shape[0]),
    "max_abs_diff": float(np.abs(reference - probabilities.astype(np.float64)).max()),
    "same_label": int(sum(a == r["predicted"] for a, r in zip(labels, ours))),
    "row_sums_off": float(np.abs(probabilities.sum(axis=1) - 1).max()),
}))
"#;

/// Trains a decision tree, registers it and the logistic baseline as models
/// of their own, and scores the raw data set with all three models.
const MODELS: &str = r#"
name: export_models
tasks:
  train_tree:
    operator: ml.train
    inputs: { train: data/processed/train.parquet, transformer: data/models/transformer.json }
    outputs: { model: data/models/tree.json, metrics: data/reports/tree_train_metrics.json }
    params: { model: decision_tree, max_depth: 10, seed: 7 }
  register_tree:
    operator: models.register
    inputs: { model: data/models/tree.json }
    params: { name: obesity_tree, aliases: [production] }
  register_logistic:
    operator: models.register
    inputs: { model: data/models/logistic.json }
    params: { name: obesity_logistic, aliases: [production] }
  score_forest:
    operator: ml.predict_batch
    inputs: { data: data/raw/ObesityDataSet.csv }
    outputs: { predictions: out/obesity.csv }
    params: { registry_model: obesity, alias: production }
  score_tree:
    operator: ml.predict_batch
    needs: [register_tree]
    inputs: { data: data/raw/ObesityDataSet.csv }
    outputs: { predictions: out/obesity_tree.csv }
    params: { registry_model: obesity_tree, alias: production }
  score_logistic:
    operator: ml.predict_batch
    needs: [register_logistic]
    inputs: { data: data/raw/ObesityDataSet.csv }
    outputs: { predictions: out/obesity_logistic.csv }
    params: { registry_model: obesity_logistic, alias: production }
"#;

fn onnxruntime_check(project: &Project, graph: &str, predictions: &str) -> Value {
    let script = project.write("check_onnx.py", CHECK);
    let output = std::process::Command::new(python())
        .arg(&script)
        .arg(graph)
        .arg("data/raw/ObesityDataSet.csv")
        .arg(predictions)
        .current_dir(project.path())
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "onnxruntime failed on {graph}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the check prints JSON")
}

#[test]
fn exported_native_models_score_in_onnxruntime_as_they_do_here() {
    let project = project_after_obesity();
    project.write("dags/export_models.yaml", MODELS);
    let output = project.dag(&["run", "export_models"]);
    assert!(output.status.success(), "{output:?}");
    for (model, kind) in [
        ("obesity", "random_forest"),
        ("obesity_tree", "decision_tree"),
        ("obesity_logistic", "logistic_regression"),
    ] {
        let graph = format!("{model}.onnx");
        let (code, exported) = project.json(&[
            "models",
            "export",
            &format!("{model}@production"),
            "--format",
            "onnx",
            "--output",
            &graph,
            "--json",
        ]);
        assert_eq!(code, 0, "{exported:#}");
        assert_eq!(exported["kind"], kind, "{exported:#}");
        assert_eq!(exported["version"], 1, "{exported:#}");
        let inputs = exported["inputs"].as_array().expect("inputs");
        assert_eq!(
            inputs.len(),
            16,
            "every raw column but the target: {exported:#}"
        );
        assert!(
            inputs
                .iter()
                .any(|i| i["name"] == "Gender" && i["type"] == "string")
        );
        assert!(
            inputs
                .iter()
                .any(|i| i["name"] == "Weight" && i["type"] == "double")
        );
        assert_eq!(exported["classes"].as_array().map(Vec::len), Some(7));
        let bytes = std::fs::read(project.path().join(&graph)).expect("the graph is written");
        assert_eq!(exported["bytes"], bytes.len());

        let check = onnxruntime_check(&project, &graph, &format!("out/{model}.csv"));
        assert_eq!(check["rows"], 2111, "{model}: {check}");
        assert_eq!(check["scored"], 2111, "{model}: {check}");
        assert_eq!(check["same_label"], 2111, "{model}: {check}");
        let diff = check["max_abs_diff"].as_f64().expect("a difference");
        assert!(diff < 1e-6, "{model}: probabilities differ by {diff}");
        let off = check["row_sums_off"].as_f64().expect("row sums");
        assert!(off < 1e-5, "{model}: probabilities sum to 1 ± {off}");

        // The same version exports to the same bytes.
        let again = format!("{model}_again.onnx");
        let (code, second) = project.json(&["models", "export", model, "-o", &again, "--json"]);
        assert_eq!(code, 0, "{second:#}");
        assert_eq!(second["digest"], exported["digest"], "{model}");
        assert_eq!(
            std::fs::read(project.path().join(&again)).expect("the second export"),
            bytes
        );
    }

    let missing = project.dag(&["models", "export", "nobody", "-o", "x.onnx"]);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("nobody"),
        "{missing:?}"
    );
    assert!(!project.path().join("x.onnx").exists());
}
