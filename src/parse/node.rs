//! [`Node`]: a YAML document as a tree whose every value carries its span.
//!
//! serde_yaml reports positions only for syntax and type errors; semantic
//! errors (an unknown dependency, a cycle) need the span of the offending
//! value, so DAG files are read through yaml-rust2's marked event stream into
//! this tree. Anchors and aliases are supported; tags are ignored.

use std::collections::BTreeMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::Span;

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

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub message: String,
    pub offset: usize,
}

/// Parses one YAML document into a [`Node`]. An empty document is `Null`.
pub fn parse_yaml(text: &str) -> Result<Node, SyntaxError> {
    let mut builder = TreeBuilder::default();
    let mut parser = Parser::new_from_str(text);
    parser
        .load(&mut builder, false)
        .map_err(|error| SyntaxError {
            message: error.info().to_string(),
            offset: char_to_byte(text, error.marker().index()),
        })?;
    if let Some(error) = builder.error {
        return Err(error);
    }
    let mut root = builder.root.unwrap_or(Node {
        value: Value::Null,
        span: Span::default(),
        content_offset: 0,
    });
    if !text.is_ascii() {
        // Markers count characters; spans count bytes. One table, built once.
        let mut bytes: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        bytes.push(text.len());
        fix_offsets(&mut root, &bytes);
    }
    Ok(root)
}

/// yaml-rust2 markers count characters; spans count bytes.
fn char_to_byte(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

fn fix_offsets(node: &mut Node, bytes: &[usize]) {
    node.span.offset = bytes
        .get(node.span.offset)
        .copied()
        .unwrap_or(node.span.offset);
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| fix_offsets(n, bytes)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            fix_offsets(k, bytes);
            fix_offsets(v, bytes);
        }),
        _ => {}
    }
}

enum Frame {
    Seq(Vec<Node>, Marker, usize),
    Map(Vec<(Node, Node)>, Option<Node>, Marker, usize),
}

#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: BTreeMap<usize, Node>,
    error: Option<SyntaxError>,
}

impl TreeBuilder {
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            Some(Frame::Seq(items, ..)) => items.push(node),
            Some(Frame::Map(entries, key, ..)) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => *key = Some(node),
            },
            None => self.root = Some(node),
        }
    }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let node = scalar_node(text, style, mark);
                self.push_value(node, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq(Vec::new(), mark, anchor))
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(Vec::new(), None, mark, anchor))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, start, anchor) = match self.stack.pop() {
                    Some(Frame::Seq(items, start, anchor)) => (Value::Seq(items), start, anchor),
                    Some(Frame::Map(entries, _, start, anchor)) => {
                        (Value::Map(entries), start, anchor)
                    }
                    None => return,
                };
                let node = Node {
                    value,
                    span: Span::new(start.index(), 1),
                    content_offset: 0,
                };
                self.push_value(node, anchor);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(node) => self.push_value(node, 0),
                None if self.error.is_none() => {
                    self.error = Some(SyntaxError {
                        message: "alias to an unknown anchor".into(),
                        offset: mark.index(),
                    })
                }
                None => {}
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

fn scalar_node(text: String, style: TScalarStyle, mark: Marker) -> Node {
    let quoted = matches!(
        style,
        TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted
    );
    let len = text.len() + if quoted { 2 } else { 0 };
    let content_offset = usize::from(quoted);
    let span = Span::new(mark.index(), len.max(1));
    let value = if style == TScalarStyle::Plain {
        plain_scalar(text)
    } else {
        Value::Str(text)
    };
    Node {
        value,
        span,
        content_offset,
    }
}

/// YAML 1.2 core schema typing of plain scalars.
fn plain_scalar(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            if let Ok(i) = text.parse::<i64>() {
                Value::Int(i)
            } else if looks_numeric(&text) {
                text.parse::<f64>().map_or(Value::Str(text), Value::Float)
            } else {
                Value::Str(text)
            }
        }
    }
}

/// Rust accepts `inf` and `NaN` as floats; YAML spells those `.inf`/`.nan`.
fn looks_numeric(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
        && text.chars().any(|c| c.is_ascii_digit())
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
