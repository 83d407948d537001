//! The JSON a prediction is answered with, and the [`Risk`] level of each
//! obesity class. Scoring itself is the model's job.

use dag_operators::ml::Prediction;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::serve::slot::LoadedModel;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
}

/// The risk level of a class of the obesity model; `None` for a class it
/// does not know (another model's classes).
pub fn risk(class: &str) -> Option<Risk> {
    match class {
        "Normal_Weight" => Some(Risk::Low),
        "Insufficient_Weight" | "Overweight_Level_I" | "Overweight_Level_II" => Some(Risk::Medium),
        "Obesity_Type_I" | "Obesity_Type_II" | "Obesity_Type_III" => Some(Risk::High),
        _ => None,
    }
}

/// `{"name", "version"}` of the model that answered.
pub fn model_json(model: &LoadedModel) -> Value {
    json!({"name": model.version.name, "version": model.version.version})
}

/// `{"class", "probabilities": {class: p}, "confidence", "risk"}`.
pub fn prediction_json(classes: &[String], prediction: &Prediction) -> Map<String, Value> {
    let probabilities: Map<String, Value> = classes
        .iter()
        .zip(&prediction.probabilities)
        .map(|(class, p)| (class.clone(), json!(p)))
        .collect();
    let confidence = prediction
        .probabilities
        .iter()
        .copied()
        .fold(0.0_f64, f64::max);
    let mut out = Map::new();
    out.insert("class".into(), json!(prediction.class));
    out.insert("probabilities".into(), Value::Object(probabilities));
    out.insert("confidence".into(), json!(confidence));
    out.insert("risk".into(), json!(risk(&prediction.class)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_obesity_class_has_the_documented_risk() {
        assert_eq!(risk("Normal_Weight"), Some(Risk::Low));
        for class in [
            "Insufficient_Weight",
            "Overweight_Level_I",
            "Overweight_Level_II",
        ] {
            assert_eq!(risk(class), Some(Risk::Medium), "{class}");
        }
        for class in ["Obesity_Type_I", "Obesity_Type_II", "Obesity_Type_III"] {
            assert_eq!(risk(class), Some(Risk::High), "{class}");
        }
        assert_eq!(risk("mid"), None);
    }

    #[test]
    fn prediction_json_maps_classes_to_probabilities_and_reports_the_top_one() {
        let classes = vec!["Normal_Weight".to_string(), "Obesity_Type_I".to_string()];
        let prediction = Prediction {
            class: "Obesity_Type_I".into(),
            probabilities: vec![0.25, 0.75],
        };
        let value = Value::Object(prediction_json(&classes, &prediction));
        assert_eq!(
            value,
            json!({
                "class": "Obesity_Type_I",
                "probabilities": {"Normal_Weight": 0.25, "Obesity_Type_I": 0.75},
                "confidence": 0.75,
                "risk": "high"
            })
        );
    }
}
