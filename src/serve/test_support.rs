//! A registry holding small trained models, for the unit tests of this module.

#![expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]

use dag_operators::ml::{FeatureConfig, FitHooks, Table, TrainParams, Transformer, train};
use dag_operators::models::{ModelRegistry, ModelVersion, RegisterInfo};
use serde_json::json;

/// Rows where the class follows `Age`; `Gender` is `Female` or `Male`.
pub fn csv(rows: usize) -> String {
    let mut text = String::from("Gender,Age,NObeyesdad\n");
    let classes = ["Normal_Weight", "Overweight_Level_I", "Obesity_Type_II"];
    for i in 0..rows {
        let gender = if i % 2 == 0 { "Female" } else { "Male" };
        let band = i % 3;
        let age = 20 + band * 15 + i % 4;
        text.push_str(&format!("{gender},{age},{}\n", classes[band]));
    }
    text
}

/// A registry under a temp dir with `count` versions of model `obesity`
/// (different seeds, so different digests) and `production` on version 1.
pub fn registry_with_versions(count: u64) -> (tempfile::TempDir, ModelRegistry, Vec<ModelVersion>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("train.csv");
    std::fs::write(&data, csv(60)).unwrap();
    let table = Table::read(&data).unwrap();
    let config: FeatureConfig = serde_json::from_value(json!({"target": "NObeyesdad"})).unwrap();
    let registry = ModelRegistry::open(&dir.path().join(".dag")).unwrap();
    let hooks = FitHooks {
        progress: &|_| {},
        cancelled: &|| false,
    };
    let mut versions = Vec::new();
    for seed in 1..=count {
        let transformer = Transformer::fit(&config, &table).unwrap();
        let params = TrainParams::parse(
            &json!({"model": "random_forest", "n_trees": 3 + seed, "seed": seed}),
        )
        .unwrap();
        let result = train(&params, transformer, &table, &hooks).unwrap();
        let path = dir.path().join(format!("model-{seed}.json"));
        std::fs::write(&path, &result.bytes).unwrap();
        versions.push(
            registry
                .register("obesity", &path, RegisterInfo::default())
                .unwrap(),
        );
    }
    registry.set_alias("obesity", "production", 1).unwrap();
    (dir, registry, versions)
}
