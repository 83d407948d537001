//! [`Condition`]: a task's `when:` — `tasks.check.outputs.drift_detected`,
//! `not params.skip_eval`, `params.env == 'prod'`, `tasks.eval.outputs.accuracy >= 0.9`.

use super::{Reference, TemplateError};

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Reference(Reference),
    Literal(serde_json::Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// As written, for skip reasons.
    pub text: String,
    pub negated: bool,
    pub left: Operand,
    pub comparison: Option<(Comparison, Operand)>,
}

impl Condition {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let original = text.trim();
        let mut body = original;
        if let Some(inner) = body.strip_prefix("{{").and_then(|b| b.strip_suffix("}}")) {
            body = inner.trim();
        }
        let negated = body.starts_with("not ");
        if negated {
            body = body[4..].trim();
        }
        const OPERATORS: [(&str, Comparison); 6] = [
            ("==", Comparison::Eq),
            ("!=", Comparison::Ne),
            ("<=", Comparison::Le),
            (">=", Comparison::Ge),
            ("<", Comparison::Lt),
            (">", Comparison::Gt),
        ];
        let split = OPERATORS
            .iter()
            .find_map(|(token, op)| body.split_once(token).map(|(l, r)| (l, *op, r)));
        let (left, comparison) = match split {
            Some((left, op, right)) => (left.trim(), Some((op, parse_operand(right.trim())?))),
            None => (body, None),
        };
        Ok(Self {
            text: original.to_string(),
            negated,
            left: parse_operand(left)?,
            comparison,
        })
    }

    pub fn references(&self) -> impl Iterator<Item = &Reference> {
        let right = self.comparison.as_ref().map(|(_, operand)| operand);
        [Some(&self.left), right]
            .into_iter()
            .flatten()
            .filter_map(|operand| match operand {
                Operand::Reference(reference) => Some(reference),
                Operand::Literal(_) => None,
            })
    }

    /// Evaluates with `resolve` supplying reference values.
    pub fn evaluate(&self, resolve: impl Fn(&Reference) -> Option<serde_json::Value>) -> bool {
        let value = |operand: &Operand| match operand {
            Operand::Reference(reference) => resolve(reference).unwrap_or(serde_json::Value::Null),
            Operand::Literal(value) => value.clone(),
        };
        let left = value(&self.left);
        let result = match &self.comparison {
            None => truthy(&left),
            Some((op, right)) => compare(&left, *op, &value(right)),
        };
        result != self.negated
    }
}

fn parse_operand(text: &str) -> Result<Operand, TemplateError> {
    if text.is_empty() {
        return Err(TemplateError::Empty);
    }
    let quoted = ['\'', '"']
        .iter()
        .find_map(|q| text.strip_prefix(*q).and_then(|t| t.strip_suffix(*q)));
    if let Some(inner) = quoted {
        return Ok(Operand::Literal(inner.into()));
    }
    match text {
        "true" => return Ok(Operand::Literal(true.into())),
        "false" => return Ok(Operand::Literal(false.into())),
        "null" => return Ok(Operand::Literal(serde_json::Value::Null)),
        _ => {}
    }
    if let Ok(number) = text.parse::<f64>() {
        return Ok(Operand::Literal(serde_json::json!(number)));
    }
    let path_like = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !path_like {
        let message = if text.contains('=') {
            format!("`{text}`: `=` is not a comparison; write `==`")
        } else if text
            .split_whitespace()
            .any(|w| matches!(w, "and" | "or" | "&&" | "||"))
        {
            format!(
                "`{text}`: `when` takes one comparison, not `and` or `or`; split the task or compute the flag upstream"
            )
        } else {
            format!("`{text}` is neither a reference nor a value")
        };
        return Err(TemplateError::BadCondition(message));
    }
    Reference::parse(text).map(Operand::Reference)
}

/// `false`, `null`, `0`, `""`, `"false"`, `"0"`, `[]` and `{}` are false.
pub fn truthy(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !(s.is_empty() || s == "false" || s == "0"),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

fn compare(left: &serde_json::Value, op: Comparison, right: &serde_json::Value) -> bool {
    let ordering = match (left.as_f64(), right.as_f64()) {
        (Some(a), Some(b)) => a.partial_cmp(&b),
        _ => match (left, right) {
            (serde_json::Value::String(a), serde_json::Value::String(b)) => Some(a.cmp(b)),
            _ => (left == right).then_some(std::cmp::Ordering::Equal),
        },
    };
    use std::cmp::Ordering::{Equal, Greater, Less};
    match op {
        Comparison::Eq => ordering == Some(Equal),
        Comparison::Ne => ordering != Some(Equal),
        Comparison::Lt => ordering == Some(Less),
        Comparison::Le => matches!(ordering, Some(Less | Equal)),
        Comparison::Gt => ordering == Some(Greater),
        Comparison::Ge => matches!(ordering, Some(Greater | Equal)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn eval(text: &str, value: serde_json::Value) -> bool {
        Condition::parse(text)
            .expect("valid condition")
            .evaluate(|_| Some(value.clone()))
    }

    #[test]
    fn bare_reference_uses_truthiness() {
        assert!(eval("tasks.m.outputs.drift_detected", json!(true)));
        assert!(!eval("tasks.m.outputs.drift_detected", json!(false)));
        assert!(eval("not tasks.m.outputs.drift_detected", json!(false)));
        assert!(eval("{{ params.flag }}", json!("yes")));
    }

    #[test]
    fn comparisons_work_on_numbers_and_strings() {
        assert!(eval("tasks.e.outputs.accuracy >= 0.9", json!(0.93)));
        assert!(!eval("tasks.e.outputs.accuracy >= 0.9", json!(0.85)));
        assert!(eval("params.env == 'prod'", json!("prod")));
        assert!(eval("params.env != 'prod'", json!("dev")));
    }

    #[test]
    fn unknown_root_is_rejected() {
        assert!(Condition::parse("task.x.outputs.y").is_err());
    }

    #[test]
    fn a_single_equals_sign_and_compound_conditions_are_refused() {
        let single = Condition::parse("tasks.fetch.outputs.exit_code = 0").expect_err("single =");
        assert_eq!(
            single.to_string(),
            "`tasks.fetch.outputs.exit_code = 0`: `=` is not a comparison; write `==`"
        );
        let compound = Condition::parse("params.a and params.b").expect_err("and");
        assert!(
            compound.to_string().contains("not `and` or `or`"),
            "{compound}"
        );
        let junk = Condition::parse("params.a params.b").expect_err("two references");
        assert!(
            junk.to_string().contains("neither a reference nor a value"),
            "{junk}"
        );
        // Quoted values may hold anything.
        assert!(eval("params.env == 'a = b'", json!("a = b")));
    }
}
