//! Tiny tables and models shared by unit tests across the crate.

#![expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::ml::forest::FitHooks;
use crate::ml::{FeatureConfig, Table, TrainParams, Transformer, train};

/// A small, learnable CSV: the label follows `x` (and `g` for some rows).
pub fn tiny_csv(rows: usize) -> String {
    let mut text = String::from("g,x,label\n");
    for i in 0..rows {
        let label = ["low", "mid", "high"][i % 3];
        let g = if i % 2 == 0 { "a" } else { "b" };
        text.push_str(&format!(
            "{g},{},{label}\n",
            (i % 3) as f64 * 10.0 + (i % 5) as f64 * 0.1
        ));
    }
    text
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Trains a small forest on [`tiny_csv`] and writes it as `model.json` in `dir`.
pub fn tiny_model(dir: &Path, seed: u64) -> PathBuf {
    let data = write(dir, "tiny.csv", &tiny_csv(30));
    let table = Table::read(&data).unwrap();
    let config: FeatureConfig = serde_json::from_value(json!({"target": "label"})).unwrap();
    let transformer = Transformer::fit(&config, &table).unwrap();
    let params =
        TrainParams::parse(&json!({"model": "random_forest", "n_trees": 5, "seed": seed})).unwrap();
    let hooks = FitHooks {
        progress: &|_| {},
        cancelled: &|| false,
    };
    let result = train(&params, transformer, &table, &hooks).unwrap();
    let path = dir.join(format!("model-{seed}.json"));
    std::fs::write(&path, &result.bytes).unwrap();
    path
}
