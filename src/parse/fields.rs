//! [`Fields`]: reading a YAML mapping against a list of known keys, reporting
//! unknown keys, duplicates and type errors as diagnostics rather than
//! stopping at the first.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::node::{Node, Value};
use super::{Diagnostic, SourceFile, Span, did_you_mean};
use crate::model::parse_duration;

pub struct Fields<'a> {
    pub file: &'a Arc<SourceFile>,
    pub values: BTreeMap<&'a str, (&'a Node, &'a Node)>,
}

impl<'a> Fields<'a> {
    /// Reads `node` as a mapping of `known` keys; `what` names it in messages
    /// ("task `train`", "the DAG"). Returns `None` (after a diagnostic) if the
    /// node is not a mapping.
    pub fn read(
        file: &'a Arc<SourceFile>,
        node: &'a Node,
        known: &[&str],
        what: &str,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<Self> {
        let Value::Map(entries) = &node.value else {
            diagnostics.push(wrong_type(file, node, "a mapping", what));
            return None;
        };
        let mut values = BTreeMap::new();
        for (key, value) in entries {
            let Some(name) = key.as_str() else {
                diagnostics.push(wrong_type(file, key, "a string key", what));
                continue;
            };
            if !known.contains(&name) {
                diagnostics.push(
                    Diagnostic::new(
                        "dag::unknown_key",
                        format!("unknown key `{name}` in {what}"),
                    )
                    .at(file, key.span)
                    .label("not a known key")
                    .maybe_help(did_you_mean(name, known.iter().copied()))
                    .help(format!("known keys: {}", known.join(", "))),
                );
                continue;
            }
            if values.insert(name, (key, value)).is_some() {
                diagnostics.push(
                    Diagnostic::new(
                        "dag::duplicate_key",
                        format!("key `{name}` appears twice in {what}"),
                    )
                    .at(file, key.span)
                    .label("second occurrence"),
                );
            }
        }
        Some(Self { file, values })
    }

    pub fn node(&self, key: &str) -> Option<&'a Node> {
        self.values.get(key).map(|(_, value)| *value)
    }

    pub fn string(&self, key: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<String> {
        let node = self.node(key)?;
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                diagnostics.push(wrong_type(self.file, node, "a string", &format!("`{key}`")));
                None
            }
        }
    }

    pub fn unsigned(&self, key: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<u64> {
        let node = self.node(key)?;
        match node.value {
            Value::Int(i) if i >= 0 => Some(i as u64),
            _ => {
                diagnostics.push(wrong_type(
                    self.file,
                    node,
                    "a non-negative integer",
                    &format!("`{key}`"),
                ));
                None
            }
        }
    }

    /// A non-negative integer that must fit in 32 bits (counts such as
    /// `retries` and `max_active_runs`): a larger one is a diagnostic, never
    /// silently wrapped or clamped.
    pub fn unsigned_u32(&self, key: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<u32> {
        let value = self.unsigned(key, diagnostics)?;
        match u32::try_from(value) {
            Ok(value) => Some(value),
            Err(_) => {
                let span = self.node(key).map_or(Span::default(), |n| n.span);
                diagnostics.push(
                    Diagnostic::new(
                        "dag::bad_value",
                        format!("`{key}` must be at most {}, found {value}", u32::MAX),
                    )
                    .at(self.file, span)
                    .label("too large"),
                );
                None
            }
        }
    }

    pub fn number(&self, key: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<f64> {
        let node = self.node(key)?;
        match node.value {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => {
                diagnostics.push(wrong_type(self.file, node, "a number", &format!("`{key}`")));
                None
            }
        }
    }

    pub fn boolean(&self, key: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<bool> {
        let node = self.node(key)?;
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                diagnostics.push(wrong_type(
                    self.file,
                    node,
                    "true or false",
                    &format!("`{key}`"),
                ));
                None
            }
        }
    }

    /// A duration string (`30s`, `5m`) or a number of seconds.
    pub fn duration(&self, key: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<Duration> {
        let node = self.node(key)?;
        let parsed = match &node.value {
            Value::Str(s) => parse_duration(s),
            Value::Int(i) if *i >= 0 => Ok(Duration::from_secs(*i as u64)),
            Value::Float(f) if *f >= 0.0 => parse_duration(&f.to_string()),
            _ => Err(format!(
                "expected a duration such as `30s`, found {}",
                node.kind()
            )),
        };
        parsed
            .map_err(|message| {
                diagnostics.push(
                    Diagnostic::new(
                        "dag::bad_duration",
                        format!("bad duration for `{key}`: {message}"),
                    )
                    .at(self.file, node.span)
                    .help("write a number with a unit: `500ms`, `30s`, `5m`, `2h`, `1h30m`"),
                );
            })
            .ok()
    }

    /// A list of strings, with each item's node for spans.
    pub fn strings(&self, key: &str, diagnostics: &mut Vec<Diagnostic>) -> Vec<(String, &'a Node)> {
        let Some(node) = self.node(key) else {
            return Vec::new();
        };
        string_list(self.file, node, key, diagnostics)
    }

    /// A mapping of string → string (artifact declarations).
    pub fn string_map(
        &self,
        key: &str,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> BTreeMap<String, (String, &'a Node)> {
        let mut out = BTreeMap::new();
        let Some(node) = self.node(key) else {
            return out;
        };
        let Value::Map(entries) = &node.value else {
            diagnostics.push(wrong_type(
                self.file,
                node,
                "a mapping of name: path",
                &format!("`{key}`"),
            ));
            return out;
        };
        for (name, value) in entries {
            match (name.as_str(), value.as_str()) {
                (Some(name), Some(path)) => {
                    if out
                        .insert(name.to_string(), (path.to_string(), value))
                        .is_some()
                    {
                        diagnostics.push(
                            Diagnostic::new(
                                "dag::duplicate_key",
                                format!("`{key}.{name}` is declared twice"),
                            )
                            .at(self.file, name_span(value, name.len())),
                        );
                    }
                }
                (None, _) => diagnostics.push(wrong_type(
                    self.file,
                    name,
                    "a string name",
                    &format!("`{key}`"),
                )),
                (_, None) => diagnostics.push(wrong_type(
                    self.file,
                    value,
                    "a path string",
                    &format!("`{key}`"),
                )),
            }
        }
        out
    }
}

fn name_span(node: &Node, len: usize) -> Span {
    Span::new(node.span.offset, len)
}

/// A sequence of strings (a lone string is accepted as a one-item list).
pub fn string_list<'a>(
    file: &Arc<SourceFile>,
    node: &'a Node,
    key: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<(String, &'a Node)> {
    match &node.value {
        Value::Str(s) => vec![(s.clone(), node)],
        Value::Seq(items) => items
            .iter()
            .filter_map(|item| match item.as_str() {
                Some(s) => Some((s.to_string(), item)),
                None => {
                    diagnostics.push(wrong_type(
                        file,
                        item,
                        "a string",
                        &format!("`{key}` items"),
                    ));
                    None
                }
            })
            .collect(),
        Value::Null => Vec::new(),
        _ => {
            diagnostics.push(wrong_type(
                file,
                node,
                "a list of strings",
                &format!("`{key}`"),
            ));
            Vec::new()
        }
    }
}

pub fn wrong_type(file: &Arc<SourceFile>, node: &Node, expected: &str, what: &str) -> Diagnostic {
    Diagnostic::new(
        "dag::wrong_type",
        format!("{what} must be {expected}, found {}", node.kind()),
    )
    .at(file, node.span)
    .label(format!("expected {expected}"))
}

/// Task ids, DAG names and param names: `[a-z0-9_]`, starting with a letter.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
