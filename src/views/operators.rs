//! The public view of the operators: what `dag operators NAME` prints, and
//! `docs/operators.md`, both made from each operator's params type (its
//! JSON Schema) and its declared artifacts, so the reference cannot drift
//! from the code.

use serde::Serialize;
use serde_json::{Map, Value};

use dag_operators::{Operator, Port, Registry};

/// One operator, documented.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorDoc {
    pub name: String,
    pub version: String,
    pub description: String,
    pub params: Vec<FieldDoc>,
    /// Object types used inside the params (a drift rule, a numeric rule,
    /// ...), by name, with their fields; a tagged union lists one entry per
    /// variant, named after its tag.
    pub types: Vec<TypeDoc>,
    pub inputs: Vec<PortDoc>,
    pub outputs: Vec<PortDoc>,
    /// What other input or output names mean, when the operator takes any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_inputs: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_outputs: Option<String>,
    /// Values it always writes (`{{ tasks.ID.outputs.NAME }}`).
    pub values: Vec<String>,
    /// Whether it writes values of the task's choosing (declared with `values:`).
    pub open_values: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldDoc {
    pub name: String,
    /// `string`, `integer`, `list of string`, `` `keep` | `drop` ``, a type name, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    pub description: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TypeDoc {
    pub name: String,
    pub description: String,
    pub fields: Vec<FieldDoc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PortDoc {
    pub name: String,
    pub required: bool,
    pub about: String,
}

impl PortDoc {
    fn of(port: &Port) -> Self {
        Self {
            name: port.name.to_string(),
            required: port.required,
            about: port.about.to_string(),
        }
    }
}

/// Every operator of `registry`, by name.
pub fn operator_docs(registry: &Registry) -> Vec<OperatorDoc> {
    registry
        .iter()
        .map(|op| operator_doc(op.as_ref()))
        .collect()
}

pub fn operator_doc(operator: &dyn Operator) -> OperatorDoc {
    let schema = operator.params_schema().unwrap_or(Value::Null);
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut types: Vec<TypeDoc> = Vec::new();
    for (name, def) in &defs {
        if def.get("properties").is_some() {
            types.push(TypeDoc {
                name: name.clone(),
                description: text(def),
                fields: fields(def, &defs),
            });
        }
        for variant in def
            .get("oneOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(tag) = variant_tag(variant) else {
                continue;
            };
            types.push(TypeDoc {
                name: format!("{name} `{tag}`"),
                description: text(variant),
                fields: fields(variant, &defs)
                    .into_iter()
                    .filter(|f| f.name != "kind")
                    .collect(),
            });
        }
    }
    let ports = operator.ports();
    OperatorDoc {
        name: operator.name().to_string(),
        version: operator.version().to_string(),
        description: operator.description().to_string(),
        params: fields(&schema, &defs),
        types,
        inputs: ports.inputs.iter().map(PortDoc::of).collect(),
        outputs: ports.outputs.iter().map(PortDoc::of).collect(),
        other_inputs: ports.any_inputs.map(String::from),
        other_outputs: ports.any_outputs.map(String::from),
        values: operator
            .value_names()
            .iter()
            .map(|v| v.to_string())
            .collect(),
        open_values: operator.open_values(),
    }
}

/// The tag of a variant of an internally tagged union (`kind: range`).
fn variant_tag(variant: &Value) -> Option<String> {
    variant
        .pointer("/properties/kind/const")
        .or_else(|| variant.pointer("/properties/kind/enum/0"))
        .and_then(Value::as_str)
        .map(String::from)
}

fn text(schema: &Value) -> String {
    schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn fields(schema: &Value, defs: &Map<String, Value>) -> Vec<FieldDoc> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    properties
        .iter()
        .map(|(name, property)| FieldDoc {
            name: name.clone(),
            kind: type_text(property, defs, 0),
            required: required.contains(&name.as_str()),
            default: property.get("default").cloned().filter(|d| !d.is_null()),
            description: text(property),
        })
        .collect()
}

/// A short type for a property schema.
fn type_text(schema: &Value, defs: &Map<String, Value>, depth: usize) -> String {
    if depth > 4 {
        return "value".into();
    }
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return match defs.get(name) {
            Some(def) if def.get("properties").is_none() && def.get("oneOf").is_none() => {
                type_text(def, defs, depth + 1)
            }
            Some(def) if def.get("oneOf").is_some() && variant_tag_all(def) => {
                format!("{name} (by `kind`)")
            }
            Some(def) if def.get("properties").is_none() => type_text(def, defs, depth + 1),
            _ => name.to_string(),
        };
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values.iter().map(literal).collect::<Vec<_>>().join(" | ");
    }
    if let Some(constant) = schema.get("const") {
        return literal(constant);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let shown: Vec<String> = options
                .iter()
                .filter(|o| o.get("type").and_then(Value::as_str) != Some("null"))
                .map(|o| type_text(o, defs, depth + 1))
                .collect();
            return shown.join(" | ");
        }
    }
    let kinds: Vec<&str> = match schema.get("type") {
        Some(Value::String(kind)) => vec![kind.as_str()],
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .filter(|k| *k != "null")
            .collect(),
        _ => vec![],
    };
    let named: Vec<String> = kinds
        .iter()
        .map(|kind| match *kind {
            "array" => format!(
                "list of {}",
                schema
                    .get("items")
                    .map_or_else(|| "value".into(), |i| type_text(i, defs, depth + 1))
            ),
            "object" => match schema.get("additionalProperties") {
                Some(inner @ Value::Object(_)) => {
                    format!("mapping to {}", type_text(inner, defs, depth + 1))
                }
                _ => "mapping".into(),
            },
            other => other.to_string(),
        })
        .collect();
    if named.is_empty() {
        "any".into()
    } else {
        named.join(" | ")
    }
}

fn variant_tag_all(def: &Value) -> bool {
    def.get("oneOf")
        .and_then(Value::as_array)
        .is_some_and(|variants| variants.iter().all(|v| variant_tag(v).is_some()))
}

fn literal(value: &Value) -> String {
    match value {
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    }
}

/// The reference `docs/operators.md` holds: every operator of `registry`.
pub fn operators_markdown(registry: &Registry) -> String {
    let mut out = String::from(
        "# Operators\n\n\
         Generated from the code by `dag operators --markdown` (a test fails when\n\
         this file is stale). `dag operators NAME` prints one operator;\n\
         `dag schema` includes each operator's params, so editors check them.\n\
         Paths are relative to the project root; params may hold `{{ ... }}`\n\
         templates (see [dag-format.md](dag-format.md)).\n",
    );
    for doc in operator_docs(registry) {
        out.push_str(&operator_markdown(&doc));
    }
    out
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn field_table(out: &mut String, fields: &[FieldDoc], first: &str) {
    out.push_str(&format!(
        "| {first} | type | default | meaning |\n|---|---|---|---|\n"
    ));
    for field in fields {
        let default = match (&field.default, field.required) {
            (Some(value), _) => literal(value),
            (None, true) => "required".into(),
            (None, false) => String::new(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            field.name,
            cell(&field.kind),
            cell(&default),
            cell(&field.description)
        ));
    }
}

fn ports_list(out: &mut String, what: &str, ports: &[PortDoc], other: Option<&String>) {
    if ports.is_empty() && other.is_none() {
        return;
    }
    out.push_str(&format!("\n{what}:\n\n"));
    for port in ports {
        let required = if port.required { "" } else { " (optional)" };
        out.push_str(&format!("- `{}`{required}: {}\n", port.name, port.about));
    }
    if let Some(other) = other {
        out.push_str(&format!("- other names: {other}\n"));
    }
}

/// One operator's section.
pub fn operator_markdown(doc: &OperatorDoc) -> String {
    let mut out = format!("\n## `{}`\n\n{}\n", doc.name, doc.description);
    ports_list(&mut out, "Inputs", &doc.inputs, doc.other_inputs.as_ref());
    ports_list(
        &mut out,
        "Outputs",
        &doc.outputs,
        doc.other_outputs.as_ref(),
    );
    if !doc.values.is_empty() || doc.open_values {
        let mut values: Vec<String> = doc.values.iter().map(|v| format!("`{v}`")).collect();
        if doc.open_values {
            values.push("any the task declares under `values:`".into());
        }
        out.push_str(&format!("\nValues: {}.\n", values.join(", ")));
    }
    if doc.params.is_empty() {
        out.push_str("\nNo params.\n");
    } else {
        out.push('\n');
        field_table(&mut out, &doc.params, "param");
    }
    for ty in &doc.types {
        out.push_str(&format!("\n### {} (in `{}`)\n\n", ty.name, doc.name));
        if !ty.description.is_empty() {
            out.push_str(&format!("{}\n\n", ty.description));
        }
        field_table(&mut out, &ty.fields, "field");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str) -> OperatorDoc {
        let registry = crate::ops::registry();
        let operator = registry.get(name).unwrap_or_else(|| panic!("no `{name}`"));
        operator_doc(operator.as_ref())
    }

    fn field<'a>(fields: &'a [FieldDoc], name: &str) -> &'a FieldDoc {
        fields
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no field `{name}` in {fields:?}"))
    }

    #[test]
    fn every_operator_with_params_documents_each_of_them() {
        for doc in operator_docs(&crate::ops::registry()) {
            if doc.name == "data.transform" {
                assert!(doc.params.is_empty());
                continue;
            }
            if doc.name == "data.concat" {
                continue;
            }
            assert!(!doc.params.is_empty(), "`{}` documents no params", doc.name);
        }
    }

    #[test]
    fn types_defaults_and_descriptions_come_from_the_params_type() {
        let split = doc("data.split");
        let test_size = field(&split.params, "test_size");
        assert_eq!(test_size.kind, "number");
        assert_eq!(test_size.default, Some(serde_json::json!(0.3)));
        assert!(
            test_size.description.contains("share of rows"),
            "{test_size:?}"
        );
        assert!(field(&split.params, "target").required);

        let train = doc("ml.train");
        assert!(
            field(&train.params, "cv_folds")
                .description
                .contains("cross-validation")
        );
        assert_eq!(
            field(&train.params, "model").kind,
            "`random_forest` | `decision_tree` | `logistic_regression`"
        );
        assert!(
            field(&train.params, "grid").kind.starts_with("mapping"),
            "{:?}",
            field(&train.params, "grid")
        );

        let clean = doc("data.clean");
        let numeric = clean
            .types
            .iter()
            .find(|t| t.name == "NumericRule")
            .expect("the numeric rule is documented");
        assert!(
            field(&numeric.fields, "coerce_invalid")
                .kind
                .contains("`null`")
        );

        let validate = doc("data.validate");
        assert!(
            validate
                .types
                .iter()
                .any(|t| t.name == "Expectation `range`"),
            "{:?}",
            validate.types.iter().map(|t| &t.name).collect::<Vec<_>>()
        );
        assert_eq!(validate.inputs[0].name, "data");
    }

    #[test]
    fn the_gate_documents_every_metric_name_it_accepts() {
        let gate = doc("ml.gate");
        let criteria = &field(&gate.params, "criteria").description;
        for name in dag_operators::ml::OVERALL_METRICS
            .iter()
            .chain(dag_operators::ml::CLASS_METRICS)
        {
            assert!(
                criteria.contains(&format!("`{name}`")),
                "`{name}` undocumented: {criteria}"
            );
        }
    }

    #[test]
    fn docs_operators_md_is_the_generated_reference() {
        let committed = include_str!("../../docs/operators.md");
        let generated = operators_markdown(&crate::ops::registry());
        assert!(
            committed == generated,
            "docs/operators.md is stale: regenerate it with `cargo run -- operators --markdown > docs/operators.md`"
        );
    }
}
