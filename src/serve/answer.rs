//! The JSON a prediction is answered with. Scoring itself is the model's
//! job; per-class labels (a `risk` level, say) come from the annotations
//! declared when the version was registered.

use std::collections::BTreeMap;

use dag_operators::ml::argmax;
use serde::Serialize;
use serde_json::{Value, json};

use crate::serve::records::Flag;
use crate::serve::slot::LoadedModel;

/// Annotation name → class → label, as registered with a version.
pub type Annotations = BTreeMap<String, BTreeMap<String, String>>;

/// Keys every prediction has (or may have), in the order they are written.
const FIXED_KEYS: [&str; 5] = ["class", "confidence", "flagged", "model", "probabilities"];

/// `{"name", "version"}` of the model that answered.
pub fn model_json(model: &LoadedModel) -> Value {
    json!({"name": model.version.name, "version": model.version.version})
}

/// Writes answers straight to JSON bytes from a model's probabilities (one
/// row of `classes` values per record), with no intermediate JSON values.
/// Keys come out sorted, as they would from a JSON object: a prediction is
/// `{"class", "confidence", "model"?, "probabilities": {class: p}}` plus
/// one key per annotation (`"risk": "high"`, `null` for a class it does not
/// label).
/// Class names are escaped once; numbers are written by `serde_json`, so the
/// bytes are those of serialising the equivalent JSON object.
pub struct AnswerWriter<'a> {
    classes: &'a [String],
    /// Class indices in name order, for the `probabilities` object.
    by_name: Vec<usize>,
    /// Each class name as a JSON string.
    quoted: Vec<Vec<u8>>,
    /// Each annotation's key (as JSON) and each class's label as JSON, in
    /// key order; names that clash with a fixed key are left out.
    annotations: Vec<(String, Vec<u8>, Vec<Vec<u8>>)>,
    /// `{"name", "version"}` as JSON.
    model: Vec<u8>,
}

impl<'a> AnswerWriter<'a> {
    pub fn new(model: &'a LoadedModel) -> Self {
        Self::with_classes(
            model.model.classes(),
            &model_json(model),
            &model.version.annotations,
        )
    }

    /// A writer for `classes` that names the model as `model` and labels
    /// classes with `annotations`.
    pub fn with_classes(classes: &'a [String], model: &Value, annotations: &Annotations) -> Self {
        let mut by_name: Vec<usize> = (0..classes.len()).collect();
        by_name.sort_by(|a, b| classes[*a].cmp(&classes[*b]));
        Self {
            classes,
            by_name,
            quoted: classes.iter().map(to_json).collect(),
            annotations: annotations
                .iter()
                .filter(|(name, _)| !FIXED_KEYS.contains(&name.as_str()))
                .map(|(name, labels)| {
                    let values = classes
                        .iter()
                        .map(|c| labels.get(c).map_or_else(|| b"null".to_vec(), to_json))
                        .collect();
                    (name.clone(), to_json(name), values)
                })
                .collect(),
            model: to_json(model),
        }
    }

    /// The predicted class of a row of probabilities.
    pub fn class(&self, probabilities: &[f64]) -> &'a str {
        self.classes
            .get(argmax(probabilities))
            .map_or("", String::as_str)
    }

    /// The answer to `/predict`: one prediction with the model.
    pub fn single(&self, probabilities: &[f64]) -> Vec<u8> {
        self.single_flagged(probabilities, None)
    }

    /// [`single`](Self::single), with `"flagged": <reason>` for a record
    /// scored despite a value the model never saw.
    pub fn single_flagged(&self, probabilities: &[f64], flag: Option<&str>) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + 48 * probabilities.len());
        self.write_row(&mut out, probabilities, true, flag);
        out
    }

    /// The predictions of consecutive rows, comma-separated: a piece of a
    /// batch answer (see [`batch`](Self::batch)).
    pub fn rows(&self, probabilities: &[f64]) -> Vec<u8> {
        self.rows_flagged(probabilities, &[])
    }

    /// [`rows`](Self::rows), with `"flagged"` on the rows `flags` names.
    pub fn rows_flagged(&self, probabilities: &[f64], flags: &[Flag]) -> Vec<u8> {
        let k = self.classes.len().max(1);
        let mut out = Vec::with_capacity(probabilities.len() / k * (64 + 48 * k));
        let mut flags = flags.iter().peekable();
        for (i, row) in probabilities.chunks_exact(k).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let flag = flags.next_if(|f| f.row == i).map(|f| f.reason.as_str());
            self.write_row(&mut out, row, false, flag);
        }
        out
    }

    /// The answer to `/predict/batch`, `{"model", "predictions": [..]}`,
    /// from pieces made by [`rows`](Self::rows), in order.
    pub fn batch<'p>(&self, pieces: impl IntoIterator<Item = &'p [u8]>) -> Vec<u8> {
        let pieces: Vec<&[u8]> = pieces.into_iter().filter(|p| !p.is_empty()).collect();
        let size = pieces.iter().map(|p| p.len() + 1).sum::<usize>();
        let mut out = Vec::with_capacity(size + self.model.len() + 32);
        out.extend_from_slice(b"{\"model\":");
        out.extend_from_slice(&self.model);
        out.extend_from_slice(b",\"predictions\":[");
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(piece);
        }
        out.extend_from_slice(b"]}");
        out
    }

    fn write_row(
        &self,
        out: &mut Vec<u8>,
        probabilities: &[f64],
        with_model: bool,
        flag: Option<&str>,
    ) {
        let class = argmax(probabilities);
        let confidence = probabilities.iter().copied().fold(0.0_f64, f64::max);
        let mut annotations = self.annotations.iter().peekable();
        // Annotations sort among the fixed keys, as a JSON object's keys do.
        let mut before = |out: &mut Vec<u8>, key: &str| {
            while let Some((_, quoted, values)) =
                annotations.next_if(|(name, ..)| name.as_str() < key)
            {
                if out.last() != Some(&b'{') {
                    out.push(b',');
                }
                out.extend_from_slice(quoted);
                out.push(b':');
                out.extend_from_slice(values.get(class).map_or(&b"null"[..], Vec::as_slice));
            }
            if out.last() != Some(&b'{') {
                out.push(b',');
            }
        };
        out.push(b'{');
        before(out, "class");
        out.extend_from_slice(b"\"class\":");
        out.extend_from_slice(self.quoted.get(class).map_or(&b"\"\""[..], Vec::as_slice));
        before(out, "confidence");
        out.extend_from_slice(b"\"confidence\":");
        write_number(out, confidence);
        if let Some(reason) = flag {
            before(out, "flagged");
            out.extend_from_slice(b"\"flagged\":");
            out.extend_from_slice(&to_json(reason));
        }
        if with_model {
            before(out, "model");
            out.extend_from_slice(b"\"model\":");
            out.extend_from_slice(&self.model);
        }
        before(out, "probabilities");
        out.extend_from_slice(b"\"probabilities\":{");
        let mut first = true;
        for &i in &self.by_name {
            let Some(p) = probabilities.get(i) else {
                continue;
            };
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&self.quoted[i]);
            out.push(b':');
            write_number(out, *p);
        }
        out.push(b'}');
        for (_, quoted, values) in annotations {
            out.push(b',');
            out.extend_from_slice(quoted);
            out.push(b':');
            out.extend_from_slice(values.get(class).map_or(&b"null"[..], Vec::as_slice));
        }
        out.push(b'}');
    }
}

/// `x` as `serde_json` writes an `f64` (`null` when not finite).
fn write_number(out: &mut Vec<u8>, x: f64) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(out, &x);
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn risk() -> Annotations {
        let labels = [("Obesity_Type_I", "high"), ("Normal_Weight", "low")];
        Annotations::from([(
            "risk".to_string(),
            labels
                .iter()
                .map(|(c, l)| (c.to_string(), l.to_string()))
                .collect(),
        )])
    }

    /// The answer as a JSON value would serialise it (keys sorted).
    fn expected(classes: &[String], row: &[f64], annotations: &Annotations) -> Value {
        let class = &classes[argmax(row)];
        let probabilities: serde_json::Map<String, Value> = classes
            .iter()
            .zip(row)
            .map(|(c, p)| (c.clone(), json!(p)))
            .collect();
        let mut value = json!({
            "class": class,
            "probabilities": probabilities,
            "confidence": row.iter().copied().fold(0.0_f64, f64::max),
        });
        for (name, labels) in annotations {
            value[name] = json!(labels.get(class));
        }
        value
    }

    #[test]
    fn annotations_of_any_name_sort_among_the_fixed_keys() -> Result<(), serde_json::Error> {
        let classes: Vec<String> = ["a", "b", "c"].map(String::from).into();
        let model = json!({"name": "m", "version": 1});
        // Before `class`, between `confidence` and `model`, after
        // `probabilities`, and one that labels no class here.
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(c, l)| (c.to_string(), l.to_string()))
                .collect()
        };
        let annotations = Annotations::from([
            ("band".to_string(), labels(&[("a", "A"), ("b", "B")])),
            ("level".to_string(), labels(&[("b", "2"), ("c", "3")])),
            ("zone".to_string(), labels(&[("c", "\"quoted\"")])),
        ]);
        let writer = AnswerWriter::with_classes(&classes, &model, &annotations);
        for row in [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7]] {
            let mut value = expected(&classes, &row, &annotations);
            value["model"] = model.clone();
            assert_eq!(writer.single(&row), serde_json::to_vec(&value)?);
            let mut flagged = expected(&classes, &row, &annotations);
            flagged["flagged"] = json!("odd");
            let flags = [Flag {
                row: 0,
                reason: "odd".into(),
                values: Vec::new(),
            }];
            assert_eq!(
                writer.rows_flagged(&row, &flags),
                serde_json::to_vec(&flagged)?
            );
        }
        // Without annotations, no label keys at all.
        let plain = AnswerWriter::with_classes(&classes, &model, &Annotations::new());
        let value: Value = serde_json::from_slice(&plain.single(&[0.7, 0.2, 0.1]))?;
        assert_eq!(value.as_object().map(serde_json::Map::len), Some(4));
        Ok(())
    }

    #[test]
    fn single_answer_has_sorted_keys_class_probabilities_and_model() -> Result<(), serde_json::Error>
    {
        let classes = vec!["Obesity_Type_I".to_string(), "Normal_Weight".to_string()];
        let model = json!({"name": "obesity", "version": 3});
        let writer = AnswerWriter::with_classes(&classes, &model, &risk());
        let bytes = writer.single(&[0.75, 0.25]);
        let mut value = expected(&classes, &[0.75, 0.25], &risk());
        value["model"] = model;
        assert_eq!(bytes, serde_json::to_vec(&value)?);
        assert_eq!(
            serde_json::from_slice::<Value>(&bytes)?,
            json!({
                "class": "Obesity_Type_I",
                "probabilities": {"Normal_Weight": 0.25, "Obesity_Type_I": 0.75},
                "confidence": 0.75,
                "risk": "high",
                "model": {"name": "obesity", "version": 3}
            })
        );
        Ok(())
    }

    #[test]
    fn a_flagged_row_says_why_in_key_order() -> Result<(), serde_json::Error> {
        let classes: Vec<String> = ["a", "b"].map(String::from).into();
        let model = json!({"name": "m", "version": 1});
        let writer = AnswerWriter::with_classes(&classes, &model, &risk());
        let flags = [Flag {
            row: 1,
            reason: "field `Age`: 300 is \"high\"".into(),
            values: Vec::new(),
        }];
        let bytes = writer.batch([writer
            .rows_flagged(&[0.9, 0.1, 0.2, 0.8], &flags)
            .as_slice()]);
        let mut second = expected(&classes, &[0.2, 0.8], &risk());
        second["flagged"] = json!("field `Age`: 300 is \"high\"");
        let value = json!({"predictions": [expected(&classes, &[0.9, 0.1], &risk()), second], "model": model});
        assert_eq!(bytes, serde_json::to_vec(&value)?);
        Ok(())
    }

    #[test]
    fn batch_answer_from_pieces_matches_json_values() -> Result<(), serde_json::Error> {
        let classes: Vec<String> = ["b", "Normal_Weight", "a"].map(String::from).into();
        let model = json!({"name": "m", "version": 1});
        let rows = 2 * 1024 + 7;
        let probabilities: Vec<f64> = (0..rows)
            .flat_map(|i| {
                let x = (i % 97) as f64 / 97.0;
                [x / 3.0, 1.0 / 3.0, (2.0 - x) / 3.0]
            })
            .collect();
        let writer = AnswerWriter::with_classes(&classes, &model, &risk());
        let (first, rest) = probabilities.split_at(3 * 1000);
        let pieces = [writer.rows(first), writer.rows(&[]), writer.rows(rest)];
        let bytes = writer.batch(pieces.iter().map(Vec::as_slice));
        let predictions: Vec<Value> = probabilities
            .chunks(3)
            .map(|row| expected(&classes, row, &risk()))
            .collect();
        let value = json!({"predictions": predictions, "model": model});
        assert_eq!(bytes, serde_json::to_vec(&value)?);
        Ok(())
    }
}
