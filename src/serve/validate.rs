//! [`check_fields`]: the server's stricter reading of a record. On top of
//! the model's own type checks it refuses numbers outside the range seen in
//! training and categories the model never saw, because a forest silently
//! extrapolates on both and a client deserves to hear about it.
//!
//! With [`InvalidRecords::Flag`] a record whose values are well typed but
//! out of range or of an unknown category is scored anyway and carries the
//! reason; missing or mistyped fields are refused either way, since there
//! is nothing to score. It judges values already read ([`FieldValue`]);
//! reading JSON is [`crate::serve::records`]' job.

use std::borrow::Cow;

use dag_operators::ml::{Field, FieldError, FieldInput, FieldKind, TrainedModel};
use serde_json::{Map, Number, Value};

/// One schema field of a record, as the request gave it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    Missing,
    Number(Number),
    Text(Cow<'a, str>),
    /// Anything else (`null`, a boolean, an array, an object).
    Other(Value),
}

/// What the server does with a record that fails the range and category
/// checks (`dag serve --invalid-records`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum InvalidRecords {
    /// Answer 422 naming the field (the record is logged as `rejected`).
    #[default]
    Reject,
    /// Score it and say why in `flagged` (logged as `flagged`).
    Flag,
}

impl FieldValue<'_> {
    /// The value as a CSV cell of `field`'s column: a number or text as
    /// given when it has the field's type, else empty (a logged column keeps
    /// one type, so monitoring reads it as the model does).
    pub fn to_cell(&self, field: &Field) -> String {
        match (&field.kind, self) {
            (FieldKind::Numeric(_), Self::Number(n)) => n.to_string(),
            (FieldKind::Categorical { .. }, Self::Text(s)) => s.to_string(),
            _ => String::new(),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Self::Missing => Value::Null,
            Self::Number(n) => Value::Number(n.clone()),
            Self::Text(s) => Value::String(s.clone().into_owned()),
            Self::Other(v) => v.clone(),
        }
    }
}

impl<'a> From<&'a Value> for FieldValue<'a> {
    fn from(value: &'a Value) -> Self {
        match value {
            Value::Number(n) => Self::Number(n.clone()),
            Value::String(s) => Self::Text(Cow::Borrowed(s)),
            other => Self::Other(other.clone()),
        }
    }
}

/// Checks `values` (one per field of `schema`, in schema order): every field
/// present with the right type first, then ranges and categories, each in
/// schema order, so the first problem reported is the same however the
/// record was written. On success `inputs` holds the record as a
/// [`RecordEncoder`](dag_operators::ml::RecordEncoder) takes it.
pub fn check_fields(
    schema: &[Field],
    values: &[FieldValue<'_>],
    inputs: &mut Vec<FieldInput>,
) -> Result<(), FieldError> {
    match check_or_flag(schema, values, inputs, InvalidRecords::Reject)? {
        None => Ok(()),
        Some(flag) => Err(flag),
    }
}

/// Like [`check_fields`], but with [`InvalidRecords::Flag`] a value out of
/// range or of an unknown category is kept (an unknown category encodes as
/// none of the known ones) and the first such problem is returned as
/// `Ok(Some(problem))`.
pub fn check_or_flag(
    schema: &[Field],
    values: &[FieldValue<'_>],
    inputs: &mut Vec<FieldInput>,
    invalid: InvalidRecords,
) -> Result<Option<FieldError>, FieldError> {
    let flag = invalid == InvalidRecords::Flag;
    let mut flagged = None;
    inputs.clear();
    for (field, value) in schema.iter().zip(values) {
        match (&field.kind, value) {
            (_, FieldValue::Missing) => return Err(FieldError::missing(field)),
            (FieldKind::Numeric(_), FieldValue::Number(n))
                if n.as_f64().is_some_and(f64::is_finite) => {}
            (FieldKind::Categorical { .. }, FieldValue::Text(_)) => {}
            (_, other) => return Err(FieldError::mistyped(field, &other.to_value())),
        }
    }
    for (field, value) in schema.iter().zip(values) {
        let input = match (&field.kind, value) {
            (FieldKind::Numeric(stats), FieldValue::Number(n)) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if !(stats.min..=stats.max).contains(&x) {
                    let problem = FieldError::outside_training_range(field, n, stats);
                    if !flag {
                        return Err(problem);
                    }
                    flagged.get_or_insert(problem);
                }
                FieldInput::Number(x)
            }
            (FieldKind::Categorical { categories }, FieldValue::Text(s)) => {
                match field.category_index(s) {
                    Some(position) => FieldInput::Category(Some(position)),
                    None => {
                        let problem = FieldError::unknown_category(field, s, categories);
                        if !flag {
                            return Err(problem);
                        }
                        flagged.get_or_insert(problem);
                        FieldInput::Category(None)
                    }
                }
            }
            // The first pass refused every other pairing.
            (_, other) => return Err(FieldError::mistyped(field, &other.to_value())),
        };
        inputs.push(input);
    }
    Ok(flagged)
}

/// A record already parsed into a JSON object, one value per schema field.
pub fn record_values<'a>(
    model: &TrainedModel,
    record: &'a Map<String, Value>,
) -> Vec<FieldValue<'a>> {
    model
        .schema()
        .iter()
        .map(|field| {
            record
                .get(&field.name)
                .map_or(FieldValue::Missing, FieldValue::from)
        })
        .collect()
}

/// [`check_fields`] on a record already parsed into a JSON object.
pub fn check_record(model: &TrainedModel, record: &Map<String, Value>) -> Result<(), FieldError> {
    check_fields(
        model.schema(),
        &record_values(model, record),
        &mut Vec::new(),
    )
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
    fn flagging_keeps_out_of_range_and_unknown_values_but_not_missing_ones() {
        let (_dir, registry, versions) = registry_with_versions(1);
        let model = registry.load_verified(&versions[0]).unwrap();
        let check = |record: Value| {
            let record = record.as_object().cloned().unwrap_or_default();
            let mut inputs = Vec::new();
            let result = check_or_flag(
                model.schema(),
                &record_values(&model, &record),
                &mut inputs,
                InvalidRecords::Flag,
            );
            (result, inputs)
        };
        let (result, inputs) = check(json!({"Gender": "Other", "Age": 300}));
        let flag = result.unwrap().unwrap();
        assert_eq!(flag.field, "Gender", "the first problem in schema order");
        assert_eq!(
            inputs,
            [FieldInput::Category(None), FieldInput::Number(300.0)]
        );
        assert_eq!(check(json!({"Gender": "Male", "Age": 30})).0, Ok(None));
        assert_eq!(check(json!({"Gender": "Male"})).0.unwrap_err().field, "Age");
    }

    #[test]
    fn missing_and_mistyped_fields_are_reported_before_ranges() {
        assert_eq!(check(json!({"Gender": "Male"})).unwrap_err().field, "Age");
        let error = check(json!({"Gender": "Male", "Age": "30"})).unwrap_err();
        assert!(error.message.contains("expected a number"), "{error}");
        let error = check(json!({"Gender": "Other", "Age": null})).unwrap_err();
        assert_eq!(error.field, "Age", "{error}");
    }
}
