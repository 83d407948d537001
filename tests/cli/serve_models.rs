//! Which model `dag serve` serves and what its answers carry beside the
//! prediction: the only registered model when `--model` is left out (and a
//! clear refusal with none or several), and the class labels declared as
//! `annotations` when the version was registered.

use serde_json::{Value, json};

use crate::support::Project;

use super::serve_support::*;

/// What `dag serve` without `--model` prints when it refuses to start (exit 2).
fn refusal(project: &Project) -> String {
    let output = project
        .command(&["serve", "--addr", "127.0.0.1:0"])
        .env_remove("DAG_API_TOKEN")
        .output()
        .expect("run dag serve");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    stderr
}

#[test]
fn serve_takes_the_only_model_and_asks_when_there_are_none_or_several() {
    // None registered: say so and how to name one.
    let stderr = refusal(&Project::new());
    assert!(
        stderr.contains("no model is registered") && stderr.contains("--model NAME"),
        "{stderr}"
    );

    // Two registered: list them and ask.
    let project = project_with_models();
    let mut csv = String::from("g,x,label\n");
    for i in 0..30 {
        csv.push_str(&format!(
            "{},{},{}\n",
            ["a", "b"][i % 2],
            i % 7,
            ["lo", "hi"][i % 2]
        ));
    }
    project.write("tiny.csv", &csv);
    project.write(
        "dags/other.yaml",
        r#"name: other
tasks:
  features:
    operator: data.features
    inputs: { train: tiny.csv }
    outputs: { transformer: out/transformer.json }
    params: { target: label }
  train:
    operator: ml.train
    inputs: { train: tiny.csv, transformer: out/transformer.json }
    outputs: { model: out/model.json }
    params: { model: decision_tree, seed: 1 }
  register:
    operator: models.register
    inputs: { model: out/model.json }
    params:
      name: other
      aliases: [production]
      annotations: { action: { hi: call } }
"#,
    );
    let run = project.dag(&["run", "other"]);
    assert!(run.status.success(), "{run:?}");
    let stderr = refusal(&project);
    assert!(
        stderr.contains("2 models are registered (obesity, other)"),
        "{stderr}"
    );

    // Named, the other model answers with its own annotation and no `risk`.
    let server = serve(&project, &["--model", "other"], None);
    let answer = post(&server.addr, "/predict", &json!({"g": "b", "x": 1})).json();
    assert_eq!(answer["model"]["name"], "other", "{answer:#}");
    let expected = if answer["class"] == "hi" {
        json!("call")
    } else {
        Value::Null
    };
    assert_eq!(answer["action"], expected, "{answer:#}");
    assert!(answer.get("risk").is_none(), "{answer:#}");
}
