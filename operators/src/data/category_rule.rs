//! [`CategoryRule`]: what `data.clean` does to one category column — bring
//! its spellings together (`case`, or a `canonical` list matched ignoring
//! case and whitespace) and fill its nulls (`impute`: the most frequent
//! value, a constant, or drop the row).
//!
//! Each step is a pure function on one column's values, so it is tested
//! without files. The operator in `clean.rs` decides the order; values are
//! already trimmed when they get here (the reader trims every text value).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use polars::prelude::*;
use serde::Deserialize;

use super::column::category_counts;
use super::numeric_rule::CoerceInvalid;
use crate::OperatorError;

/// The `category.<column>` block of `data.clean` params.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryRule {
    /// How values are rewritten; not with `canonical`.
    #[serde(default)]
    pub case: Case,
    /// The allowed spellings; a value equal to one of them ignoring case
    /// and whitespace is rewritten to it.
    pub canonical: Option<Vec<String>>,
    /// What to do with a value matching no `canonical` spelling.
    #[serde(default)]
    pub on_unknown: CoerceInvalid,
    /// How to fill nulls, after deduplication.
    pub impute: Option<CategoryImpute>,
}

/// How to fill a null category value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CategoryImpute {
    /// The most frequent value; the smallest one (in byte order) on a tie.
    MostFrequent,
    /// This value (`impute: { constant: Unknown }`).
    Constant(String),
    /// Remove the row.
    Drop,
}

/// How `case` rewrites the values of a category column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Case {
    /// Leave the spelling as it is.
    #[default]
    Preserve,
    Lower,
    Upper,
    /// The first letter of each word upper case, the rest lower; a word is
    /// a run of letters and digits (`public_transportation` →
    /// `Public_Transportation`).
    Title,
}

/// What [`CategoryRule::normalise`] changed in one column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Normalised {
    /// Values whose spelling was rewritten (by `case` or to a `canonical`
    /// spelling).
    pub rewritten: usize,
    /// Values matching no `canonical` spelling: value → (count, first
    /// 1-based row).
    pub unknown: BTreeMap<String, (usize, usize)>,
}

impl Normalised {
    pub fn unknown_count(&self) -> usize {
        self.unknown.values().map(|(count, _)| count).sum()
    }

    /// Describes the unknown values of column `name` (at most five, the
    /// most frequent first), or `None` when there are none.
    pub fn unknown_problem(&self, name: &str, canonical: &[String]) -> Option<String> {
        if self.unknown.is_empty() {
            return None;
        }
        let mut unknown: Vec<(&String, &(usize, usize))> = self.unknown.iter().collect();
        unknown.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.1.1.cmp(&b.1.1)));
        let shown: Vec<String> = unknown
            .iter()
            .take(5)
            .map(|(value, (count, row))| format!("`{value}` ×{count} (first at row {row})"))
            .collect();
        let more = unknown.len().saturating_sub(shown.len());
        let total = self.unknown_count();
        Some(format!(
            "column `{name}`: {total} value{} match{} none of its `canonical` spellings ({}): {}{}",
            if total == 1 { "" } else { "s" },
            if total == 1 { "es" } else { "" },
            canonical
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", "),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ))
    }
}

/// The key `canonical` matching compares: lower case, without whitespace.
pub fn match_key(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

fn title(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut word_start = true;
    for c in value.chars() {
        if c.is_alphanumeric() {
            if word_start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            word_start = false;
        } else {
            out.push(c);
            word_start = true;
        }
    }
    out
}

impl Case {
    fn apply(self, value: &str) -> String {
        match self {
            Self::Preserve => value.to_string(),
            Self::Lower => value.to_lowercase(),
            Self::Upper => value.to_uppercase(),
            Self::Title => title(value),
        }
    }
}

impl CategoryRule {
    /// Problems with the rule itself, as messages.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match &self.canonical {
            Some(canonical) => {
                if canonical.is_empty() {
                    problems.push("`canonical` lists no spelling".to_string());
                }
                let mut seen: BTreeMap<String, &str> = BTreeMap::new();
                for spelling in canonical {
                    if let Some(earlier) = seen.insert(match_key(spelling), spelling) {
                        problems.push(format!(
                            "`canonical` spellings `{earlier}` and `{spelling}` are the same ignoring case and whitespace"
                        ));
                    }
                }
                if self.case != Case::Preserve {
                    problems.push(
                        "`case` has no effect with `canonical`: values take the canonical spelling"
                            .to_string(),
                    );
                }
            }
            None if self.on_unknown != CoerceInvalid::Error => {
                problems.push("`on_unknown` needs a `canonical` list".to_string());
            }
            None => {}
        }
        if let Some(CategoryImpute::Constant(value)) = &self.impute
            && value.trim().is_empty()
        {
            problems.push("`impute: { constant }` needs a non-empty value".to_string());
        }
        problems
    }

    /// Rewrites the spellings of a column. With `canonical`, a value that
    /// matches no spelling is counted in `unknown` and becomes null under
    /// `on_unknown: null` (under `error` it is kept; the caller fails).
    pub fn normalise(&self, values: &StringChunked) -> (StringChunked, Normalised) {
        let canonical: Option<HashMap<String, &str>> = self.canonical.as_ref().map(|list| {
            list.iter()
                .map(|spelling| (match_key(spelling), spelling.as_str()))
                .collect()
        });
        let mut normalised = Normalised::default();
        // Distinct values are few; each is mapped once.
        let mut mapped: HashMap<&str, Option<String>> = HashMap::new();
        let mut out = Vec::with_capacity(values.len());
        for (row, value) in values.iter().enumerate() {
            let Some(value) = value else {
                out.push(None);
                continue;
            };
            let new = mapped
                .entry(value)
                .or_insert_with(|| match &canonical {
                    Some(canonical) => canonical.get(&match_key(value)).map(|s| s.to_string()),
                    None => Some(self.case.apply(value)),
                })
                .clone();
            match new {
                Some(new) => {
                    if new != value {
                        normalised.rewritten += 1;
                    }
                    out.push(Some(new));
                }
                None => {
                    let entry = normalised
                        .unknown
                        .entry(value.to_string())
                        .or_insert((0, row + 1));
                    entry.0 += 1;
                    out.push(match self.on_unknown {
                        CoerceInvalid::Error => Some(value.to_string()),
                        CoerceInvalid::Null => None,
                    });
                }
            }
        }
        let chunk: StringChunked = out.into_iter().collect();
        (chunk.with_name(values.name().clone()), normalised)
    }
}

/// Fills the nulls of a category column by `method`. Returns the new values,
/// the rows to keep (all `true` unless `drop`) and how many values were
/// filled or dropped.
pub fn impute_categories(
    values: &StringChunked,
    method: &CategoryImpute,
    file: &Path,
) -> Result<(StringChunked, Vec<bool>, usize), OperatorError> {
    let nulls = values.null_count();
    if *method == CategoryImpute::Drop {
        let keep = values.iter().map(|v| v.is_some()).collect();
        return Ok((values.clone(), keep, nulls));
    }
    if nulls == 0 {
        return Ok((values.clone(), vec![true; values.len()], 0));
    }
    let fill = match method {
        CategoryImpute::Constant(value) => value.clone(),
        _ => {
            let counts = category_counts(values);
            // Strictly greater keeps the smallest value on a tie.
            let mut best: Option<(&String, u64)> = None;
            for (value, count) in &counts {
                if best.is_none_or(|(_, most)| *count > most) {
                    best = Some((value, *count));
                }
            }
            best.map(|(value, _)| value.clone()).ok_or_else(|| {
                OperatorError::failed(format!(
                    "cannot impute column `{}` of `{}` by `most_frequent`: it has no non-null values",
                    values.name(),
                    file.display()
                ))
            })?
        }
    };
    let filled: StringChunked = values
        .iter()
        .map(|v| Some(v.unwrap_or(fill.as_str())))
        .collect();
    Ok((
        filled.with_name(values.name().clone()),
        vec![true; values.len()],
        nulls,
    ))
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use super::*;

    fn chunk(values: &[Option<&str>]) -> StringChunked {
        let chunk: StringChunked = values.iter().copied().collect();
        chunk.with_name("x".into())
    }

    fn rule(json: serde_json::Value) -> CategoryRule {
        serde_json::from_value(json).unwrap()
    }

    fn strings(values: &StringChunked) -> Vec<Option<&str>> {
        values.iter().collect()
    }

    #[test]
    fn case_rewrites_and_counts_changed_values() {
        let input = chunk(&[
            Some("male"),
            Some("MALE"),
            Some("Male"),
            None,
            Some("public_transportation"),
        ]);
        let (lower, counts) = rule(serde_json::json!({"case": "lower"})).normalise(&input);
        assert_eq!(
            strings(&lower),
            [
                Some("male"),
                Some("male"),
                Some("male"),
                None,
                Some("public_transportation")
            ]
        );
        assert_eq!((counts.rewritten, counts.unknown_count()), (2, 0));
        let (upper, counts) = rule(serde_json::json!({"case": "upper"})).normalise(&input);
        assert_eq!(strings(&upper)[4], Some("PUBLIC_TRANSPORTATION"));
        assert_eq!(counts.rewritten, 3);
        let (title, counts) = rule(serde_json::json!({"case": "title"})).normalise(&input);
        assert_eq!(
            strings(&title),
            [
                Some("Male"),
                Some("Male"),
                Some("Male"),
                None,
                Some("Public_Transportation")
            ]
        );
        assert_eq!(counts.rewritten, 3);
        let (same, counts) = CategoryRule::default().normalise(&input);
        assert_eq!(strings(&same), strings(&input));
        assert_eq!(counts, Normalised::default());
    }

    #[test]
    fn canonical_matches_ignoring_case_and_whitespace() {
        let input = chunk(&[
            Some("female"),
            Some("MALE"),
            Some("Ma le"),
            Some("Male"),
            None,
        ]);
        let canonical = rule(serde_json::json!({"canonical": ["Female", "Male"]}));
        let (values, counts) = canonical.normalise(&input);
        assert_eq!(
            strings(&values),
            [
                Some("Female"),
                Some("Male"),
                Some("Male"),
                Some("Male"),
                None
            ]
        );
        assert_eq!((counts.rewritten, counts.unknown_count()), (3, 0));
    }

    #[test]
    fn unknown_values_are_counted_with_their_first_row_and_nulled_when_asked() {
        let input = chunk(&[Some("Mle"), Some("Male"), Some("X"), Some("mle")]);
        let (kept, counts) =
            rule(serde_json::json!({"canonical": ["Female", "Male"]})).normalise(&input);
        assert_eq!(strings(&kept), strings(&input));
        assert_eq!(
            counts.unknown.into_iter().collect::<Vec<_>>(),
            [
                ("Mle".to_string(), (1, 1)),
                ("X".to_string(), (1, 3)),
                ("mle".to_string(), (1, 4))
            ]
        );
        let (nulled, counts) =
            rule(serde_json::json!({"canonical": ["Female", "Male"], "on_unknown": "null"}))
                .normalise(&input);
        assert_eq!(strings(&nulled), [None, Some("Male"), None, None]);
        assert_eq!((counts.rewritten, counts.unknown_count()), (0, 3));
        assert_eq!(
            counts
                .unknown_problem("Gender", &["Female".to_string(), "Male".to_string()])
                .unwrap(),
            "column `Gender`: 3 values match none of its `canonical` spellings (`Female`, `Male`): \
             `Mle` ×1 (first at row 1), `X` ×1 (first at row 3), `mle` ×1 (first at row 4)"
        );
        assert_eq!(Normalised::default().unknown_problem("x", &[]), None);
    }

    #[test]
    fn most_frequent_fills_nulls_with_the_smallest_value_on_a_tie() {
        let input = chunk(&[Some("b"), None, Some("a"), Some("b"), None, Some("a")]);
        let (values, keep, count) =
            impute_categories(&input, &CategoryImpute::MostFrequent, Path::new("t")).unwrap();
        assert_eq!(
            strings(&values),
            [
                Some("b"),
                Some("a"),
                Some("a"),
                Some("b"),
                Some("a"),
                Some("a")
            ]
        );
        assert_eq!((keep, count), (vec![true; 6], 2));
        let input = chunk(&[Some("b"), None, Some("a"), Some("b")]);
        let (values, _, _) =
            impute_categories(&input, &CategoryImpute::MostFrequent, Path::new("t")).unwrap();
        assert_eq!(strings(&values)[1], Some("b"));
    }

    #[test]
    fn constant_and_drop_imputation() {
        let input = chunk(&[Some("a"), None]);
        let constant: CategoryImpute =
            serde_json::from_value(serde_json::json!({"constant": "Unknown"})).unwrap();
        let (values, _, count) = impute_categories(&input, &constant, Path::new("t")).unwrap();
        assert_eq!(
            (strings(&values), count),
            (vec![Some("a"), Some("Unknown")], 1)
        );
        let drop: CategoryImpute = serde_json::from_value(serde_json::json!("drop")).unwrap();
        let (_, keep, count) = impute_categories(&input, &drop, Path::new("t")).unwrap();
        assert_eq!((keep, count), (vec![true, false], 1));
    }

    #[test]
    fn imputing_an_all_null_column_by_most_frequent_is_an_error() {
        let error = impute_categories(
            &chunk(&[None, None]),
            &CategoryImpute::MostFrequent,
            Path::new("t.csv"),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "cannot impute column `x` of `t.csv` by `most_frequent`: it has no non-null values"
        );
    }

    #[test]
    fn contradictory_rules_are_problems() {
        let problems =
            rule(serde_json::json!({"canonical": ["Male", " male", "MA LE"], "case": "lower"}))
                .problems();
        assert_eq!(
            problems,
            [
                "`canonical` spellings `Male` and ` male` are the same ignoring case and whitespace",
                "`canonical` spellings ` male` and `MA LE` are the same ignoring case and whitespace",
                "`case` has no effect with `canonical`: values take the canonical spelling",
            ]
        );
        assert_eq!(
            rule(serde_json::json!({"canonical": []})).problems(),
            ["`canonical` lists no spelling"]
        );
        assert_eq!(
            rule(serde_json::json!({"on_unknown": "null"})).problems(),
            ["`on_unknown` needs a `canonical` list"]
        );
        assert_eq!(
            rule(serde_json::json!({"impute": {"constant": " "}})).problems(),
            ["`impute: { constant }` needs a non-empty value"]
        );
    }
}
