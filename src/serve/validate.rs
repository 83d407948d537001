//! [`check_record`]: the server's stricter reading of a record. On top of
//! the model's own type checks it refuses numbers outside the range seen in
//! training and categories the model never saw, because a forest silently
//! extrapolates on both and a client deserves to hear about it.

use dag_operators::ml::{FieldError, FieldKind, TrainedModel};
use serde_json::{Map, Value};

pub fn check_record(model: &TrainedModel, record: &Map<String, Value>) -> Result<(), FieldError> {
    model.validate_record(record)?;
    for field in model.schema() {
        let error = |message: String| FieldError {
            field: field.name.clone(),
            message,
        };
        match (&field.kind, record.get(&field.name)) {
            (FieldKind::Numeric(stats), Some(Value::Number(n)))
                if !(stats.min..=stats.max).contains(&n.as_f64().unwrap_or(f64::NAN)) =>
            {
                return Err(error(format!(
                    "{n} is outside the training range {} to {}",
                    stats.min, stats.max
                )));
            }
            (FieldKind::Categorical { categories }, Some(Value::String(s)))
                if !categories.iter().any(|c| c == s) =>
            {
                let known: Vec<String> = categories.iter().map(|c| format!("`{c}`")).collect();
                return Err(error(format!(
                    "unknown category `{s}`; expected one of {}",
                    known.join(", ")
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;
    use crate::serve::test_support::registry_with_versions;
    use serde_json::json;

    fn check(record: Value) -> Result<(), FieldError> {
        let (_dir, registry, versions) = registry_with_versions(1);
        let model = registry.load_verified(&versions[0]).unwrap();
        check_record(&model, record.as_object().unwrap())
    }

    #[test]
    fn in_range_record_with_known_categories_passes() {
        assert_eq!(
            check(json!({"Gender": "Male", "Age": 30, "extra": 1})),
            Ok(())
        );
    }

    #[test]
    fn out_of_range_number_names_the_field_and_range() {
        let error = check(json!({"Gender": "Male", "Age": 300})).unwrap_err();
        assert_eq!(error.field, "Age");
        assert!(
            error.message.contains("outside the training range 20 to"),
            "{error}"
        );
    }

    #[test]
    fn unknown_category_lists_the_known_ones() {
        let error = check(json!({"Gender": "Other", "Age": 30})).unwrap_err();
        assert_eq!(error.field, "Gender");
        assert!(error.message.contains("`Female`, `Male`"), "{error}");
    }

    #[test]
    fn missing_and_mistyped_fields_are_reported_before_ranges() {
        assert_eq!(check(json!({"Gender": "Male"})).unwrap_err().field, "Age");
        let error = check(json!({"Gender": "Male", "Age": "30"})).unwrap_err();
        assert!(error.message.contains("expected a number"), "{error}");
    }
}
