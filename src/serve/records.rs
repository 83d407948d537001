//! [`read_records`]: a request body read straight into the feature rows a
//! model scores, in one pass: keys are matched against the model's schema as
//! they stream by, values stay borrowed from the body until their record has
//! been checked ([`check_or_flag`]), and each good record is encoded by the
//! model's [`RecordEncoder`] at once. No `serde_json::Value`, string or
//! table is built for a well-formed record. [`read_records_in_chunks`] hands
//! over blocks of rows while it reads, so a caller can score the first rows
//! while the rest are still being parsed.
//!
//! Problems are reported exactly as a parse into JSON values followed by
//! checks would report them: a syntax error anywhere wins over everything,
//! then the body's shape, then the batch size, then the first item that is
//! not an object, then the first record with a bad field. So the whole body
//! is always parsed, but records after the first problem are only skimmed.
//!
//! With [`InvalidRecords::Flag`] a well-typed record outside the training
//! range or with an unknown category is read like a good one and listed in
//! [`Records::flags`] with its reason and its values as given.
//!
//! It does not score, and it does not decide which model answers.

mod visitors;

use dag_operators::ml::{Field, FieldError, FieldInput, MlError, RecordEncoder};
use serde::de::{self, Deserializer as _, MapAccess};
use serde_json::Value;

use crate::serve::validate::{FieldValue, InvalidRecords, check_or_flag};
use visitors::{BodyVisitor, KeySeed, Skip, ValueSeed, skip_map};

/// What a request body must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One JSON object (`/predict`).
    One,
    /// A JSON array of at most `max` objects (`/predict/batch`).
    Many { max: usize },
}

/// Why a body was refused, in the order of precedence.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("request body is not valid JSON: {0}")]
    Syntax(serde_json::Error),
    #[error(
        "request body must be a JSON object with the model's input fields; `GET /model` lists them"
    )]
    NotAnObject,
    #[error("request body must be a JSON array of records")]
    NotAnArray,
    #[error("batch has {count} records, at most {max} are accepted; split it")]
    TooMany { count: usize, max: usize },
    #[error("record {index}: expected a JSON object")]
    NotARecord { index: usize },
    /// `index` is the record's position in a batch; `None` for `/predict`.
    #[error("{}", match index { Some(i) => format!("record {i}: {error}"), None => error.to_string() })]
    Field {
        index: Option<usize>,
        error: FieldError,
    },
    /// A checked record the model still cannot encode (a derived column
    /// that is not finite): the model's problem, not the client's.
    #[error("{0}")]
    Encode(MlError),
}

/// Records read from a body, encoded for the model.
#[derive(Debug, Default)]
pub struct Records {
    pub rows: usize,
    /// One feature row per record (the encoder's width), row after row.
    pub features: Vec<f64>,
    /// Each record's checked values, one per schema field, record after
    /// record; kept only when asked for (the prediction log writes them).
    pub inputs: Vec<FieldInput>,
    /// Records scored despite a value outside what the model knows, in
    /// row order (only with [`InvalidRecords::Flag`]).
    pub flags: Vec<Flag>,
}

/// A record read despite a value outside the training range or an unknown
/// category.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    /// The record's row within its block.
    pub row: usize,
    pub reason: String,
    /// Its values as given, one per schema field, as CSV cells.
    pub values: Vec<String>,
}

/// Reads `body` as records for `encoder`'s model. Without an encoder (no
/// model loaded) records are only counted, which still judges the body's
/// shape. `keep_inputs` keeps each record's values besides its features.
pub fn read_records(
    body: &[u8],
    encoder: Option<&RecordEncoder<'_>>,
    shape: Shape,
    keep_inputs: bool,
) -> Result<Records, ReadError> {
    read_records_as(body, encoder, shape, keep_inputs, InvalidRecords::Reject)
}

/// [`read_records`] with a choice of what a record failing the range and
/// category checks does.
pub fn read_records_as(
    body: &[u8],
    encoder: Option<&RecordEncoder<'_>>,
    shape: Shape,
    keep_inputs: bool,
    invalid: InvalidRecords,
) -> Result<Records, ReadError> {
    let mut whole = Records::default();
    let reading = Reading {
        keep_inputs,
        invalid,
        chunk_rows: usize::MAX,
    };
    read_records_in_chunks(body, encoder, shape, reading, |records| {
        whole = records;
    })?;
    Ok(whole)
}

/// How [`read_records_in_chunks`] reads.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// Keep each record's values besides its features (for the log).
    pub keep_inputs: bool,
    pub invalid: InvalidRecords,
    /// Records per block handed over.
    pub chunk_rows: usize,
}

/// Like [`read_records`], but hands the records to `on_chunk` in order, in
/// blocks of `chunk_rows` (the last one shorter) as soon as each is read.
/// Blocks may be handed over before a later record turns out to be bad;
/// when this returns an error, they must be discarded. Returns the number
/// of records.
pub fn read_records_in_chunks(
    body: &[u8],
    encoder: Option<&RecordEncoder<'_>>,
    shape: Shape,
    reading: Reading,
    on_chunk: impl FnMut(Records),
) -> Result<usize, ReadError> {
    let Ok(text) = std::str::from_utf8(body) else {
        // JSON is UTF-8; let the parser say where this body stops being it.
        let error = serde_json::from_slice::<Value>(body)
            .err()
            .unwrap_or_else(|| de::Error::custom("request body is not UTF-8"));
        return Err(ReadError::Syntax(error));
    };
    let mut on_chunk = on_chunk;
    let mut reader = Reader::new(encoder, shape, reading);
    reader.on_chunk = Some(&mut on_chunk);
    let mut parser = serde_json::Deserializer::from_str(text);
    parser
        .deserialize_any(BodyVisitor {
            reader: &mut reader,
        })
        .and_then(|()| parser.end())
        .map_err(ReadError::Syntax)?;
    reader.finish()
}

/// Rows of room a block reserves up front at most.
const MAX_RESERVED_ROWS: usize = 1024;

struct Reader<'s, 'de, 'c> {
    encoder: Option<&'s RecordEncoder<'s>>,
    schema: &'s [Field],
    shape: Shape,
    keep_inputs: bool,
    invalid: InvalidRecords,
    /// Items seen so far (records or not).
    items: usize,
    wrong_shape: bool,
    first_non_record: Option<usize>,
    first_bad_field: Option<(Option<usize>, FieldError)>,
    first_encode_error: Option<MlError>,
    /// The current record's values, one per schema field, and as checked.
    values: Vec<FieldValue<'de>>,
    inputs: Vec<FieldInput>,
    /// The schema field after the last one matched: keys usually arrive in
    /// schema order, so this is nearly always the next key.
    next_field: usize,
    /// Records read since the last block was handed over.
    block: Records,
    handed_over: usize,
    chunk_rows: usize,
    on_chunk: Option<&'c mut dyn FnMut(Records)>,
}

impl<'s, 'de, 'c> Reader<'s, 'de, 'c> {
    fn new(encoder: Option<&'s RecordEncoder<'s>>, shape: Shape, reading: Reading) -> Self {
        let schema = encoder.map_or(&[][..], |e| e.transformer().fields.as_slice());
        Self {
            encoder,
            schema,
            shape,
            keep_inputs: reading.keep_inputs,
            invalid: reading.invalid,
            items: 0,
            wrong_shape: false,
            first_non_record: None,
            first_bad_field: None,
            first_encode_error: None,
            values: vec![FieldValue::Missing; schema.len()],
            inputs: Vec::with_capacity(schema.len()),
            next_field: 0,
            block: Records::default(),
            handed_over: 0,
            chunk_rows: reading.chunk_rows.max(1),
            on_chunk: None,
        }
    }

    fn hand_over(&mut self) {
        let block = std::mem::take(&mut self.block);
        self.handed_over += block.rows;
        if let Some(on_chunk) = self.on_chunk.as_mut() {
            on_chunk(block);
        }
    }

    /// Whether the next record needs reading in full: after the first
    /// problem only the body's syntax, the item count and (before a bad
    /// field) the first non-object can change the answer.
    fn keeps_records(&self) -> bool {
        let within = match self.shape {
            Shape::One => true,
            Shape::Many { max } => self.items < max,
        };
        within
            && self.first_non_record.is_none()
            && self.first_bad_field.is_none()
            && self.first_encode_error.is_none()
    }

    fn field_index(&mut self, key: &str) -> Option<usize> {
        let found = match self.schema.get(self.next_field) {
            Some(field) if field.name == key => Some(self.next_field),
            _ => self.schema.iter().position(|field| field.name == key),
        };
        if let Some(index) = found {
            self.next_field = index + 1;
        }
        found
    }

    fn read_record<A: MapAccess<'de>>(&mut self, mut map: A) -> Result<(), A::Error> {
        let keep = self.keeps_records();
        let index = self.items;
        self.items += 1;
        if !keep {
            return skip_map(map);
        }
        self.values.fill(FieldValue::Missing);
        self.next_field = 0;
        while let Some(field) = map.next_key_seed(KeySeed { reader: self })? {
            match field {
                Some(field) => self.values[field] = map.next_value_seed(ValueSeed)?,
                None => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        let flagged = match check_or_flag(self.schema, &self.values, &mut self.inputs, self.invalid)
        {
            Ok(flagged) => flagged,
            Err(error) => {
                let index = matches!(self.shape, Shape::Many { .. }).then_some(index);
                self.first_bad_field = Some((index, error));
                return Ok(());
            }
        };
        if self.block.rows == 0 {
            // A block is filled to `chunk_rows`; growing it step by step
            // would copy it several times over.
            let rows = self.chunk_rows.min(MAX_RESERVED_ROWS);
            let width = self.encoder.map_or(0, RecordEncoder::width);
            self.block.features.reserve(rows * width);
            if self.keep_inputs {
                self.block.inputs.reserve(rows * self.schema.len());
            }
        }
        if let Some(encoder) = self.encoder
            && let Err(error) = encoder.encode(&self.inputs, &mut self.block.features)
        {
            self.first_encode_error = Some(error);
            return Ok(());
        }
        if self.keep_inputs {
            self.block.inputs.extend_from_slice(&self.inputs);
        }
        if let Some(problem) = flagged {
            self.block.flags.push(Flag {
                row: self.block.rows,
                reason: problem.to_string(),
                values: self
                    .schema
                    .iter()
                    .zip(&self.values)
                    .map(|(field, value)| value.to_cell(field))
                    .collect(),
            });
        }
        self.block.rows += 1;
        if self.block.rows >= self.chunk_rows {
            self.hand_over();
        }
        Ok(())
    }

    fn skip_non_record(&mut self) {
        if self.first_non_record.is_none() {
            self.first_non_record = Some(self.items);
        }
        self.items += 1;
    }

    fn finish(mut self) -> Result<usize, ReadError> {
        if self.wrong_shape {
            return Err(match self.shape {
                Shape::One => ReadError::NotAnObject,
                Shape::Many { .. } => ReadError::NotAnArray,
            });
        }
        if let Shape::Many { max } = self.shape
            && self.items > max
        {
            return Err(ReadError::TooMany {
                count: self.items,
                max,
            });
        }
        if let Some(index) = self.first_non_record {
            return Err(ReadError::NotARecord { index });
        }
        if let Some((index, error)) = self.first_bad_field {
            return Err(ReadError::Field { index, error });
        }
        if let Some(error) = self.first_encode_error {
            return Err(ReadError::Encode(error));
        }
        if self.block.rows > 0 {
            self.hand_over();
        }
        Ok(self.handed_over)
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;
    use crate::serve::test_support::{csv, registry_with_versions};
    use crate::serve::validate::check_record;
    use dag_operators::ml::{Table, TrainedModel, predictions_csv};
    use serde_json::{Map, json};

    fn model() -> (tempfile::TempDir, TrainedModel) {
        let (dir, registry, versions) = registry_with_versions(1);
        let model = registry.load_verified(&versions[0]).unwrap();
        (dir, model)
    }

    /// How bodies were judged before they were read in one pass: parsed
    /// into JSON values, then shape, size, item types and fields in turn.
    fn by_values(body: &[u8], model: &TrainedModel, shape: Shape) -> Result<usize, String> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| format!("request body is not valid JSON: {e}"))?;
        let records: Vec<Map<String, Value>> = match (shape, value) {
            (Shape::One, Value::Object(record)) => vec![record],
            (Shape::One, _) => return Err(ReadError::NotAnObject.to_string()),
            (Shape::Many { max }, Value::Array(items)) => {
                if items.len() > max {
                    return Err(format!(
                        "batch has {} records, at most {max} are accepted; split it",
                        items.len()
                    ));
                }
                let mut records = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::Object(record) => records.push(record),
                        _ => return Err(format!("record {i}: expected a JSON object")),
                    }
                }
                records
            }
            (Shape::Many { .. }, _) => return Err(ReadError::NotAnArray.to_string()),
        };
        for (i, record) in records.iter().enumerate() {
            check_record(model, record).map_err(|e| match shape {
                Shape::One => e.to_string(),
                Shape::Many { .. } => format!("record {i}: {e}"),
            })?;
        }
        Ok(records.len())
    }

    fn one_pass(body: &[u8], model: &TrainedModel, shape: Shape) -> Result<usize, String> {
        let encoder = model.transformer().record_encoder().unwrap();
        read_records(body, Some(&encoder), shape, false)
            .map(|records| records.rows)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_body_is_judged_as_a_parse_into_json_values_would_judge_it() {
        let (_dir, model) = model();
        let deep = format!("{{\"x\": {}1{}}}", "[".repeat(200), "]".repeat(200));
        let one: &[&[u8]] = &[
            br#"{"Gender": "Male", "Age": 30}"#,
            br#"{"Gender": "Male", "Age": 30, "extra": [1, {"a": null}]}"#,
            br#"{"Gen\u0064er": "Ma\u006ce", "Age": 30.0}"#,
            br#"{"Age": "x", "Gender": "Male", "Age": 30}"#,
            br#"{"Gender": "Male", "Age": 300}"#,
            br#"{"Gender": "Male", "Age": -0}"#,
            br#"{"Gender": "Male", "Age": 18446744073709551615}"#,
            br#"{"Gender": "Male", "Age": 1e400}"#,
            br#"{"Gender": "Other", "Age": "old"}"#,
            br#"{"Gender": null, "Age": 30}"#,
            br#"{"Gender": ["Male"], "Age": {"years": 30}}"#,
            br#"{"Gender": true, "Age": false}"#,
            br#"{"Gender": "Male"}"#,
            br#"{}"#,
            br#"[{"Gender": "Male", "Age": 30}]"#,
            br#""Male""#,
            b"42",
            b"null",
            b"{\"Gender\": \"Ma\xffle\", \"Age\": 30}",
            b"\xff\xfe",
            b"",
            b"not json",
            br#"{"Age": "#,
            br#"{"Gender": "Male", "Age": 30} trailing"#,
            deep.as_bytes(),
        ];
        for body in one {
            assert_eq!(
                one_pass(body, &model, Shape::One),
                by_values(body, &model, Shape::One),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let many: &[&[u8]] = &[
            br#"[]"#,
            br#"[{"Gender": "Male", "Age": 30}, {"Gender": "Female", "Age": 45}]"#,
            br#"[{"Gender": "Male", "Age": 300}, {"Gender": "Female", "Age": 45}]"#,
            br#"[{"Gender": "Male", "Age": 30}, {"Gender": "Female"}, {"Age": 1}]"#,
            br#"[{"Gender": "Male", "Age": 300}, 5]"#,
            br#"[1, {"Gender": "Male", "Age": 30}]"#,
            br#"[{"Gender": "Male", "Age": 30}, [], {}]"#,
            br#"[{"Gender": "Male", "Age": 30}, {}, {}, {}]"#,
            br#"[{}, {}, {}, 7"#,
            br#"[{"Gender": "Male", "Age": 30}, {"Gender": "Male", "Age": 30}, {"Gender": "Male", "Age": 30}]"#,
            br#"{"Gender": "Male", "Age": 30}"#,
            br#"[{"Gender": "Male", "Age": 30},]"#,
            b"[{\"Gender\": \"Male\", \"Age\": 30}, {\"x\": \"\xff\"}]",
            deep.as_bytes(),
        ];
        for body in many {
            assert_eq!(
                one_pass(body, &model, Shape::Many { max: 3 }),
                by_values(body, &model, Shape::Many { max: 3 }),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn errors_name_the_field_and_the_record() {
        let (_dir, model) = model();
        let body = br#"[{"Gender": "Male", "Age": 30}, {"Gender": "Male", "Age": "30"}]"#;
        let encoder = model.transformer().record_encoder().unwrap();
        match read_records(body, Some(&encoder), Shape::Many { max: 10 }, false) {
            Err(ReadError::Field { index, error }) => {
                assert_eq!((index, error.field.as_str()), (Some(1), "Age"));
            }
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn flagging_reads_out_of_range_records_and_lists_them_with_their_values() {
        let (_dir, model) = model();
        let encoder = model.transformer().record_encoder().unwrap();
        let body = br#"[{"Gender": "Male", "Age": 30}, {"Gender": "Robot", "Age": 300}, {"Gender": "Female"}]"#;
        let shape = Shape::Many { max: 10 };
        let refused = read_records_as(
            &body[..],
            Some(&encoder),
            shape,
            false,
            InvalidRecords::Flag,
        );
        assert!(
            matches!(refused, Err(ReadError::Field { index: Some(2), .. })),
            "a missing field is still refused: {refused:?}"
        );
        let body = br#"[{"Gender": "Male", "Age": 30}, {"Gender": "Robot", "Age": 300}]"#;
        let records = read_records_as(
            &body[..],
            Some(&encoder),
            shape,
            false,
            InvalidRecords::Flag,
        )
        .unwrap();
        assert_eq!(records.rows, 2);
        assert_eq!(records.flags.len(), 1);
        assert_eq!(records.flags[0].row, 1);
        assert_eq!(records.flags[0].values, ["Robot", "300"]);
        assert!(
            records.flags[0].reason.contains("`Gender`"),
            "{}",
            records.flags[0].reason
        );
        assert!(matches!(
            read_records(&body[..], Some(&encoder), shape, false),
            Err(ReadError::Field { index: Some(1), .. })
        ));
    }

    #[test]
    fn without_a_model_records_are_only_counted() {
        let body = br#"[{"anything": 1}, {}]"#;
        let records = read_records(body, None, Shape::Many { max: 10 }, true).unwrap();
        assert_eq!((records.rows, records.features.len()), (2, 0));
        assert!(matches!(
            read_records(br#"[1]"#, None, Shape::Many { max: 10 }, false),
            Err(ReadError::NotARecord { index: 0 })
        ));
    }

    #[test]
    fn blocks_are_handed_over_in_order_with_the_inputs_when_asked() {
        let (_dir, model) = model();
        let encoder = model.transformer().record_encoder().unwrap();
        let body = Value::Array(
            (0..7)
                .map(|i| {
                    let gender = if i % 2 == 0 { "Female" } else { "Male" };
                    json!({"Gender": gender, "Age": 20 + i})
                })
                .collect(),
        )
        .to_string();
        let mut blocks = Vec::new();
        let shape = Shape::Many { max: 10 };
        let reading = Reading {
            keep_inputs: true,
            invalid: InvalidRecords::Reject,
            chunk_rows: 3,
        };
        let rows = read_records_in_chunks(body.as_bytes(), Some(&encoder), shape, reading, |b| {
            blocks.push(b)
        })
        .unwrap();
        assert_eq!(rows, 7);
        let sizes: Vec<usize> = blocks.iter().map(|b| b.rows).collect();
        assert_eq!(sizes, [3, 3, 1]);
        let whole = read_records(body.as_bytes(), Some(&encoder), shape, true).unwrap();
        let joined: Vec<f64> = blocks.iter().flat_map(|b| b.features.clone()).collect();
        assert_eq!(joined, whole.features);
        assert_eq!(whole.features.len(), 7 * encoder.width());
        assert_eq!(
            whole.inputs[2..4],
            [FieldInput::Category(Some(1)), FieldInput::Number(21.0)]
        );
    }

    #[test]
    fn records_score_bit_for_bit_like_the_batch_operator() {
        let (dir, model) = model();
        let path = dir.path().join("rows.csv");
        std::fs::write(&path, csv(40)).unwrap();
        let file = Table::read(&path).unwrap();
        let ages = file.numeric("Age").unwrap();
        let genders = file.text("Gender").unwrap();
        let body = Value::Array(
            ages.iter()
                .zip(&genders)
                .map(|(age, gender)| json!({"Age": age, "Gender": gender, "NObeyesdad": "x"}))
                .collect(),
        )
        .to_string();
        let encoder = model.transformer().record_encoder().unwrap();
        let shape = Shape::Many { max: 100 };
        let read = read_records(body.as_bytes(), Some(&encoder), shape, false).unwrap();
        let served = model.predict_rows(&read.features).unwrap();
        let batch = model.predict_table(&file).unwrap();
        assert_eq!(served.len(), batch.len());
        for (a, b) in served.iter().zip(&batch) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        // The predictions file holds the same numbers, exactly.
        let text = predictions_csv(&model, &file, "obesity:v1").unwrap();
        let written: Vec<f64> = text
            .lines()
            .skip(1)
            .flat_map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                fields[2..fields.len() - 1]
                    .iter()
                    .map(|p| p.parse::<f64>().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(written.len(), batch.len());
        for (a, b) in written.iter().zip(&batch) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }
}
