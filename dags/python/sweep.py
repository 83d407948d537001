"""Picks the best model of a sweep: the `python` task of `obesity_sweep`.

`models`, `scores` and `reports` are the gathered outputs of the mapped
`train` and `evaluate` tasks, in the same order; the best score wins (the
first on a tie). Its model and evaluation report are copied to the task's
outputs, so registration and the gate see one model. Standard library only.
"""

import json
import shutil


def pick_best(context, models, scores, reports):
    if not (len(models) == len(scores) == len(reports)) or not models:
        raise ValueError(f"got {len(models)} models, {len(scores)} scores, {len(reports)} reports")
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    shutil.copyfile(models[best], context.outputs["best"])
    shutil.copyfile(reports[best], context.outputs["metrics"])
    with open(models[best]) as f:
        n_trees = json.load(f)["params"]["n_trees"]
    for model, score in zip(models, scores):
        print(f"{model}: macro-F1 {score:.4f}")
    return {"n_trees": n_trees, "f1_macro": scores[best], "candidates": len(models)}
