//! [`Template`]: a string with `{{ ... }}` references, parsed once.
//!
//! References: `params.<name>`, `run.id`, `run.logical_date`, `run.dag`,
//! `tasks.<id>.outputs.<name>`. Whether a name exists is checked by the
//! validator, which knows the DAG; rendering lives in `execute`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reference {
    Param(String),
    RunId,
    RunLogicalDate,
    RunDag,
    TaskOutput {
        task: String,
        name: String,
    },
    /// `secrets.<name>`: a value declared under `secrets:`, never recorded.
    Secret(String),
    /// `map.<key>`: the value of a mapped task's instance, replaced when
    /// the file is loaded.
    Map(String),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Param(name) => write!(f, "params.{name}"),
            Self::RunId => f.write_str("run.id"),
            Self::RunLogicalDate => f.write_str("run.logical_date"),
            Self::RunDag => f.write_str("run.dag"),
            Self::TaskOutput { task, name } => write!(f, "tasks.{task}.outputs.{name}"),
            Self::Secret(name) => write!(f, "secrets.{name}"),
            Self::Map(key) => write!(f, "map.{key}"),
        }
    }
}

impl Reference {
    /// Parses a dotted path such as `tasks.split.outputs.train`.
    pub fn parse(path: &str) -> Result<Self, TemplateError> {
        let parts: Vec<&str> = path.split('.').collect();
        match parts.as_slice() {
            ["params", name] if !name.is_empty() => Ok(Self::Param((*name).to_string())),
            ["secrets", name] if !name.is_empty() => Ok(Self::Secret((*name).to_string())),
            ["map", key] if !key.is_empty() => Ok(Self::Map((*key).to_string())),
            ["run", "id"] => Ok(Self::RunId),
            ["run", "logical_date"] => Ok(Self::RunLogicalDate),
            ["run", "dag"] => Ok(Self::RunDag),
            ["tasks", task, "outputs", name] if !task.is_empty() && !name.is_empty() => {
                Ok(Self::TaskOutput {
                    task: (*task).to_string(),
                    name: (*name).to_string(),
                })
            }
            _ => Err(TemplateError::UnknownVariable(path.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    /// A reference and the byte offset of its path within the source string.
    Reference(Reference, usize),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`{{{{` is never closed")]
    Unclosed,
    #[error("empty `{{{{ }}}}`")]
    Empty,
    #[error("unknown template variable `{0}`")]
    UnknownVariable(String),
    /// A `when:` that is not `[not] A` or `A OP B`.
    #[error("{0}")]
    BadCondition(String),
}

/// A parsed template. A string without `{{` is a single text segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub segments: Vec<Segment>,
}

impl Template {
    /// Parses `text`; errors carry the byte offset of the fault.
    pub fn parse(text: &str) -> Result<Self, (TemplateError, usize)> {
        let mut segments = Vec::new();
        let mut rest = text;
        let mut consumed = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Text(rest[..open].to_string()));
            }
            let after_open = &rest[open + 2..];
            let close = after_open
                .find("}}")
                .ok_or((TemplateError::Unclosed, consumed + open))?;
            let inner = &after_open[..close];
            let path = inner.trim();
            let path_offset = consumed + open + 2 + inner.find(path).unwrap_or(0);
            if path.is_empty() {
                return Err((TemplateError::Empty, consumed + open));
            }
            let reference = Reference::parse(path).map_err(|e| (e, path_offset))?;
            segments.push(Segment::Reference(reference, path_offset));
            let advance = open + 2 + close + 2;
            consumed += advance;
            rest = &rest[advance..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_string()));
        }
        Ok(Self { segments })
    }

    /// The whole string is one reference: rendering keeps the value's type.
    pub fn single_reference(&self) -> Option<&Reference> {
        match self.segments.as_slice() {
            [Segment::Reference(reference, _)] => Some(reference),
            _ => None,
        }
    }

    pub fn references(&self) -> impl Iterator<Item = (&Reference, usize)> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Reference(reference, offset) => Some((reference, *offset)),
            Segment::Text(_) => None,
        })
    }

    pub fn has_references(&self) -> bool {
        self.references().next().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_and_references_with_offsets() {
        let template = Template::parse("seed={{ params.seed }} id={{run.id}}").expect("valid");
        assert_eq!(
            template.segments,
            vec![
                Segment::Text("seed=".into()),
                Segment::Reference(Reference::Param("seed".into()), 8),
                Segment::Text(" id=".into()),
                Segment::Reference(Reference::RunId, 28),
            ]
        );
    }

    #[test]
    fn single_reference_is_detected() {
        let template = Template::parse("{{ tasks.a.outputs.model }}").expect("valid");
        assert_eq!(
            template.single_reference(),
            Some(&Reference::TaskOutput {
                task: "a".into(),
                name: "model".into()
            })
        );
    }

    #[test]
    fn unknown_variable_and_unclosed_are_errors_with_offsets() {
        assert_eq!(
            Template::parse("x {{ param.seed }}"),
            Err((TemplateError::UnknownVariable("param.seed".into()), 5))
        );
        assert_eq!(
            Template::parse("ab {{ params.x"),
            Err((TemplateError::Unclosed, 3))
        );
    }
}
