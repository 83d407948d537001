//! [`Node`]: a YAML document as a tree whose every value carries its span.
//!
//! serde_yaml reports positions only for syntax and type errors; semantic
//! errors (an unknown dependency, a cycle) need the span of the offending
//! value, so DAG files are read through yaml-rust2's marked event stream into
//! this tree (built by `tree_builder`, within a budget). Anchors and
//! aliases are supported; tags are ignored.

use super::Span;
use super::limits::{Budget, LimitHit};
use super::tree_builder::build_tree;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order; duplicate keys are kept for the checker to report.
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
    /// Byte offset of the string content within `span` (1 for quoted scalars).
    pub content_offset: usize,
}

impl Node {
    /// What a type error calls this value: `a string`, `a mapping`, ...
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Converts to JSON, the form operator params take.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
            }
            Value::Str(s) => s.clone().into(),
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| (k.scalar_text(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    /// A scalar as text (for mapping keys).
    pub fn scalar_text(&self) -> String {
        match &self.value {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => s.clone(),
            Value::Seq(_) | Value::Map(_) => String::new(),
        }
    }

    /// The span of the `index`-th byte of this scalar's string content.
    pub fn content_span(&self, start: usize, len: usize) -> Span {
        self.span.slice(self.content_offset + start, len)
    }
}

/// Why a YAML text did not become a tree: a syntax error, or a limit of
/// the [`Budget`] hit at `offset`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub message: String,
    pub offset: usize,
    /// Set when a limit stopped the parse rather than the YAML's syntax.
    pub limit: Option<LimitHit>,
}

/// Parses one YAML document into a [`Node`] within the default
/// [`ParseLimits`](super::ParseLimits). An empty document is `Null`.
pub fn parse_yaml(text: &str) -> Result<Node, SyntaxError> {
    build_tree(text, &mut Budget::default())
}

/// [`parse_yaml`] spending `budget`, shared with other files of one load.
pub fn parse_yaml_within(text: &str, budget: &mut Budget) -> Result<Node, SyntaxError> {
    build_tree(text, budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_entries(node: &Node) -> &[(Node, Node)] {
        match &node.value {
            Value::Map(entries) => entries,
            other => panic!("expected a mapping, got {other:?}"),
        }
    }

    #[test]
    fn scalars_are_typed_and_spanned() {
        let root = parse_yaml("a: 42\nb: '42'\nc: 1.5\nd: yes\n").expect("valid yaml");
        let entries = map_entries(&root);
        assert_eq!(entries[0].1.value, Value::Int(42));
        assert_eq!(entries[1].1.value, Value::Str("42".into()));
        assert_eq!(entries[2].1.value, Value::Float(1.5));
        assert_eq!(entries[3].1.value, Value::Str("yes".into()));
        assert_eq!(entries[1].1.span, Span::new(9, 4));
    }

    #[test]
    fn duplicate_keys_are_kept_for_the_checker() {
        let root = parse_yaml("a: 1\na: 2\n").expect("valid yaml");
        assert_eq!(map_entries(&root).len(), 2);
    }

    #[test]
    fn syntax_error_has_offset() {
        let error = parse_yaml("a: [1, 2\nb: 3\n").expect_err("unclosed flow sequence");
        assert!(error.offset > 0, "{error:?}");
    }

    #[test]
    fn spans_count_bytes_after_non_ascii_text() {
        let root = parse_yaml("a: \"é\"\nb: x\n").expect("valid yaml");
        let entries = map_entries(&root);
        // `é` is two bytes: `b` is character 7 but byte 8.
        assert_eq!(entries[1].0.span.offset, 8);
    }

    #[test]
    fn aliases_copy_the_anchored_value() {
        let root = parse_yaml("x: &r {a: 1}\ny: *r\n").expect("valid yaml");
        let entries = map_entries(&root);
        assert_eq!(entries[1].1.to_json(), serde_json::json!({"a": 1}));
    }
}
