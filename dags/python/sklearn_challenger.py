"""Trains a scikit-learn classifier on the engine's transformed feature matrix
and exports it to ONNX for `models.register`.

As a `python` task: `function: dags/python/sklearn_challenger.py:train`, with
inputs `matrix` and `classes`, output `model`, and `args` `model`,
`n_estimators` and `seed`; it returns the train accuracy as a metric.

From a shell: python sklearn_challenger.py MATRIX.csv CLASSES.json OUT.onnx
       [--model gb|rf] [--n-estimators N] [--seed S]

MATRIX.csv is what `data.transform` writes: the transformer's feature columns,
then the target's labels. Labels are encoded as positions in CLASSES.json, so
the ONNX graph's probability columns follow the class names registered with it.
"""

import argparse
import csv
import json
import os
import sys

import numpy as np
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier


def read_matrix(path, classes):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    position = {name: i for i, name in enumerate(classes)}
    x = np.array([[float(v) for v in row[:-1]] for row in body], dtype=np.float32)
    y = np.array([position[row[-1]] for row in body], dtype=np.int64)
    return header[:-1], x, y


def fit_and_export(matrix, classes_path, out, model="gb", n_estimators=100, seed=42):
    """Fits the model, writes its ONNX graph to `out`, returns the train accuracy."""
    with open(classes_path) as f:
        classes = json.load(f)
    names, x, y = read_matrix(matrix, classes)
    if model == "gb":
        estimator = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed)
    elif model == "rf":
        estimator = RandomForestClassifier(n_estimators=n_estimators, random_state=seed)
    else:
        raise ValueError(f"model must be `gb` or `rf`, not `{model}`")
    estimator.fit(x, y)
    onx = to_onnx(
        estimator,
        initial_types=[("features", FloatTensorType([None, len(names)]))],
        options={id(estimator): {"zipmap": False}},
        target_opset={"": 15, "ai.onnx.ml": 3},
    )
    with open(out, "wb") as f:
        f.write(onx.SerializeToString())
    accuracy = float((estimator.predict(x) == y).mean())
    print(f"trained {type(estimator).__name__} on {x.shape[0]} rows x {x.shape[1]} features; "
          f"train accuracy {accuracy:.4f}", file=sys.stderr)
    return accuracy


def train(context, model="gb", n_estimators=100, seed=42):
    """The `python` task: paths come from the task's inputs and outputs."""
    accuracy = fit_and_export(
        context.inputs["matrix"], context.inputs["classes"], context.outputs["model"],
        model=model, n_estimators=n_estimators, seed=seed,
    )
    return {"train_accuracy": accuracy}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("matrix")
    parser.add_argument("classes")
    parser.add_argument("out")
    parser.add_argument("--model", choices=["gb", "rf"], default="gb")
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    accuracy = fit_and_export(args.matrix, args.classes, args.out,
                              model=args.model, n_estimators=args.n_estimators, seed=args.seed)
    outcome = os.environ.get("DAG_OUTCOME")
    if outcome:
        with open(outcome, "w") as f:
            json.dump({"metrics": {"train_accuracy": accuracy}}, f)


if __name__ == "__main__":
    main()
