//! [`build_tree`]: yaml-rust2's marked event stream → a [`Node`] tree,
//! within a [`Budget`].
//!
//! The events are pulled one at a time, so a limit stops the parse where
//! it is hit: nesting deeper than allowed, more nodes or scalar bytes than
//! allowed (an alias costs the whole anchored value again, so "billion
//! laughs" stops at the first alias over the limit, before anything is
//! copied), or the deadline. Only the first document of a stream is read.

use std::collections::BTreeMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::Span;
use super::limits::{Budget, LimitHit};
use super::node::{Node, SyntaxError, Value};

/// How often (in events) the deadline is checked.
const TIME_CHECK_EVERY: usize = 1024;

/// Parses the first YAML document of `text` into a [`Node`], spending
/// `budget`. An empty document is `Null`.
pub fn build_tree(text: &str, budget: &mut Budget) -> Result<Node, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut builder = TreeBuilder {
        stack: Vec::new(),
        root: None,
        anchors: BTreeMap::new(),
        offsets: ByteOffsets::new(text),
        budget,
    };
    let mut events = 0usize;
    loop {
        let (event, mark) = parser.next_token().map_err(|error| SyntaxError {
            message: error.info().to_string(),
            offset: builder.offsets.byte(error.marker().index()),
            limit: None,
        })?;
        events += 1;
        if events.is_multiple_of(TIME_CHECK_EVERY) {
            builder
                .budget
                .check_time()
                .map_err(|hit| builder.limit(hit, &mark))?;
        }
        match event {
            Event::StreamEnd | Event::DocumentEnd => break,
            event => builder.on_event(event, &mark)?,
        }
    }
    Ok(builder.root.unwrap_or(Node {
        value: Value::Null,
        span: Span::default(),
        content_offset: 0,
    }))
}

/// Nodes and scalar bytes under a node, the node included: what copying it
/// through an alias costs.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    nodes: usize,
    bytes: usize,
}

impl Size {
    fn add(&mut self, other: Size) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

enum Frame {
    Seq(Vec<Node>, Span, usize, Size),
    Map(Vec<(Node, Node)>, Option<Node>, Span, usize, Size),
}

struct TreeBuilder<'a, 'b> {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: BTreeMap<usize, (Node, Size)>,
    offsets: ByteOffsets<'a>,
    budget: &'b mut Budget,
}

impl TreeBuilder<'_, '_> {
    fn limit(&mut self, hit: LimitHit, mark: &Marker) -> SyntaxError {
        SyntaxError {
            message: hit.to_string(),
            offset: self.offsets.byte(mark.index()),
            limit: Some(hit),
        }
    }

    fn on_event(&mut self, event: Event, mark: &Marker) -> Result<(), SyntaxError> {
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let size = Size {
                    nodes: 1,
                    bytes: text.len(),
                };
                self.spend(size, mark)?;
                let offset = self.offsets.byte(mark.index());
                self.push_value(scalar_node(text, style, offset), anchor, size);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= self.budget.limits.max_depth {
                    return Err(self.limit(LimitHit::Depth(self.budget.limits.max_depth), mark));
                }
                let size = Size { nodes: 1, bytes: 0 };
                self.spend(size, mark)?;
                let span = Span::new(self.offsets.byte(mark.index()), 1);
                self.stack.push(match event {
                    Event::SequenceStart(..) => Frame::Seq(Vec::new(), span, anchor, size),
                    _ => Frame::Map(Vec::new(), None, span, anchor, size),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, span, anchor, size) = match self.stack.pop() {
                    Some(Frame::Seq(items, span, anchor, size)) => {
                        (Value::Seq(items), span, anchor, size)
                    }
                    Some(Frame::Map(entries, _, span, anchor, size)) => {
                        (Value::Map(entries), span, anchor, size)
                    }
                    None => return Ok(()),
                };
                let node = Node {
                    value,
                    span,
                    content_offset: 0,
                };
                self.push_value(node, anchor, size);
            }
            Event::Alias(id) => {
                let Some((node, size)) = self.anchors.get(&id) else {
                    return Err(SyntaxError {
                        message: "alias to an unknown anchor".into(),
                        offset: self.offsets.byte(mark.index()),
                        limit: None,
                    });
                };
                let (node, size) = (node.clone(), *size);
                // Checked before the copy exists: the copy is what explodes.
                self.budget
                    .spend_alias(size.nodes, size.bytes)
                    .map_err(|hit| self.limit(hit, mark))?;
                self.push_value(node, 0, size);
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart => {}
            Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn spend(&mut self, size: Size, mark: &Marker) -> Result<(), SyntaxError> {
        self.budget
            .spend(size.nodes, size.bytes)
            .map_err(|hit| self.limit(hit, mark))
    }

    fn push_value(&mut self, node: Node, anchor: usize, size: Size) {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            Some(Frame::Seq(items, _, _, total)) => {
                total.add(size);
                items.push(node);
            }
            Some(Frame::Map(entries, key, _, _, total)) => {
                total.add(size);
                match key.take() {
                    Some(k) => entries.push((k, node)),
                    None => *key = Some(node),
                }
            }
            None => self.root = Some(node),
        }
    }
}

fn scalar_node(text: String, style: TScalarStyle, offset: usize) -> Node {
    let quoted = matches!(
        style,
        TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted
    );
    let len = text.len() + if quoted { 2 } else { 0 };
    let content_offset = usize::from(quoted);
    let span = Span::new(offset, len.max(1));
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
pub(super) fn plain_scalar(text: String) -> Value {
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

/// yaml-rust2 markers count characters; spans count bytes. Markers arrive
/// mostly in increasing order, so a cursor walks forward from the last
/// one; a checkpoint every [`CHECKPOINT`] characters bounds the walk when
/// one does not.
struct ByteOffsets<'a> {
    text: &'a str,
    ascii: bool,
    checkpoints: Vec<usize>,
    cursor: (usize, usize),
}

const CHECKPOINT: usize = 1024;

impl<'a> ByteOffsets<'a> {
    fn new(text: &'a str) -> Self {
        let ascii = text.is_ascii();
        let checkpoints = if ascii {
            Vec::new()
        } else {
            text.char_indices()
                .step_by(CHECKPOINT)
                .map(|(byte, _)| byte)
                .collect()
        };
        Self {
            text,
            ascii,
            checkpoints,
            cursor: (0, 0),
        }
    }

    /// The byte offset of character `chars`.
    fn byte(&mut self, chars: usize) -> usize {
        if self.ascii {
            return chars.min(self.text.len());
        }
        let (mut at_char, mut at_byte) = self.cursor;
        if chars < at_char || chars - at_char > CHECKPOINT {
            let index = chars / CHECKPOINT;
            let Some(&byte) = self.checkpoints.get(index) else {
                return self.text.len();
            };
            (at_char, at_byte) = (index * CHECKPOINT, byte);
        }
        for c in self.text[at_byte..].chars() {
            if at_char == chars {
                break;
            }
            at_char += 1;
            at_byte += c.len_utf8();
        }
        self.cursor = (at_char, at_byte);
        at_byte
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::ParseLimits;

    fn limits(change: impl FnOnce(&mut ParseLimits)) -> Budget {
        let mut limits = ParseLimits::default();
        change(&mut limits);
        Budget::new(limits)
    }

    /// Nine levels of nine aliases: 9^9 (387 million) strings if expanded.
    fn billion_laughs() -> String {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for level in 1..9 {
            let previous = format!("*a{}", level - 1);
            let items = [previous.as_str(); 9].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{items}]\n"));
        }
        text
    }

    #[test]
    fn alias_expansion_stops_at_the_node_limit_before_copying() {
        let text = billion_laughs();
        let mut budget = Budget::default();
        let error = build_tree(&text, &mut budget).expect_err("expands past the limit");
        assert_eq!(error.limit, Some(LimitHit::AliasNodes(500_000)));
        assert!(budget.alias_nodes <= 500_000, "{}", budget.alias_nodes);
        assert!(budget.nodes <= 600_000, "{}", budget.nodes);
        // Levels hold 10, 91, 820, 7,381, 66,430 nodes: the seventh alias
        // to level 4, on line 6, is the first over 500,000.
        let line = text[..error.offset].matches('\n').count() + 1;
        assert_eq!(line, 6, "{error:?}");
    }

    #[test]
    fn many_written_nodes_load_and_only_the_total_limit_stops_them() {
        // A million plain scalars, as a 100,000-task DAG has: no alias, so
        // only the total limit applies, and it is far above this.
        let text = format!("[{}x]", "x, ".repeat(999_999));
        let mut budget = Budget::default();
        assert!(build_tree(&text, &mut budget).is_ok());
        assert_eq!((budget.nodes, budget.alias_nodes), (1_000_001, 0));
        let mut small = limits(|l| l.max_nodes = 1_000);
        let error = build_tree(&text, &mut small).expect_err("over the total");
        assert_eq!(error.limit, Some(LimitHit::Nodes(1_000)));
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_where_it_goes_over() {
        let text = format!("{}x", "- ".repeat(5));
        let mut budget = limits(|l| l.max_depth = 3);
        let error = build_tree(&text, &mut budget).expect_err("too deep");
        assert_eq!(error.limit, Some(LimitHit::Depth(3)));
        assert_eq!(error.offset, 6, "the fourth `- `");
        assert!(build_tree("- - x", &mut limits(|l| l.max_depth = 3)).is_ok());
    }

    #[test]
    fn deep_block_nesting_is_refused_without_overflowing_the_stack() {
        let mut text = String::new();
        for depth in 0..200 {
            text.push_str(&" ".repeat(depth));
            text.push_str("a:\n");
        }
        let error = build_tree(&text, &mut Budget::default()).expect_err("too deep");
        assert_eq!(error.limit, Some(LimitHit::Depth(64)));
    }

    #[test]
    fn scalar_text_copied_by_aliases_counts_against_its_own_limit() {
        let text = format!("a: &a {}\nb: [*a, *a, *a]\n", "x".repeat(1000));
        let mut budget = limits(|l| l.max_scalar_bytes = 2500);
        let error = build_tree(&text, &mut budget).expect_err("too much text");
        assert_eq!(error.limit, Some(LimitHit::ScalarBytes(2500)));
    }

    #[test]
    fn an_expired_deadline_stops_the_parse() {
        let text = "- x\n".repeat(5000);
        let mut budget = limits(|l| l.time = Some(std::time::Duration::ZERO));
        let error = build_tree(&text, &mut budget).expect_err("out of time");
        assert!(matches!(error.limit, Some(LimitHit::Time(_))), "{error:?}");
    }

    #[test]
    fn byte_offsets_follow_characters_forwards_and_backwards() {
        let text = format!("{}é{}", "é".repeat(3000), "a".repeat(10));
        let mut offsets = ByteOffsets::new(&text);
        assert_eq!(offsets.byte(3001), 6002);
        assert_eq!(offsets.byte(5), 10);
        assert_eq!(offsets.byte(2999), 5998);
        assert_eq!(offsets.byte(3005), 6006);
        assert_eq!(offsets.byte(99_999), text.len());
    }
}
