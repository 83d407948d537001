//! [`AppState`]: what every request sees, and how a body becomes
//! predictions: which model answers, reading the records, scoring them (a
//! batch in blocks, while the rest is still being read), shadowing the
//! challenger, counting and logging — refused records too, with their
//! reason, so monitoring sees what the server was asked. Turning HTTP into
//! these calls and back is [`crate::serve::handlers`]' job.

use std::sync::Arc;

use axum::http::StatusCode;
use dag_operators::ml::RecordEncoder;

use crate::serve::answer::AnswerWriter;
use crate::serve::metrics::{Metrics, Role};
use crate::serve::prediction_log::{LogEntry, PredictionLog, Status};
use crate::serve::records::{
    ReadError, Reading, Records, Shape, read_records, read_records_as, read_records_in_chunks,
};
use crate::serve::response::ApiError;
use crate::serve::routing::choose;
use crate::serve::slot::{LoadedModel, ModelSlot};
use crate::serve::validate::{InvalidRecords, check_record, record_values};

/// The challenger side of an A/B pair.
pub struct Challenger {
    pub alias: String,
    pub slot: Arc<ModelSlot>,
    pub share: f64,
    pub shadow: bool,
}

pub struct AppState {
    pub name: String,
    pub alias: String,
    pub champion: Arc<ModelSlot>,
    pub challenger: Option<Challenger>,
    pub metrics: Arc<Metrics>,
    pub log: Option<Arc<PredictionLog>>,
    pub token: Option<String>,
    /// What a record outside the training range or categories gets.
    pub invalid: InvalidRecords,
}

/// Rows per block a batch is scored in: small enough that the first blocks
/// are scored while later records are still being read, large enough that a
/// block is worth a task.
const SCORE_BLOCK: usize = 512;

/// A block of scored records.
pub struct Part {
    pub records: Records,
    /// Class probabilities, one row of `classes` values per record.
    pub probabilities: Vec<f64>,
    /// The block's predictions as JSON, for a batch answer.
    pub answer: Vec<u8>,
}

/// What scored a request, and the scored blocks in request order.
pub struct Scored {
    pub model: Arc<LoadedModel>,
    pub parts: Vec<Part>,
}

fn failed_to_score(model: &LoadedModel, error: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("model v{} failed to score: {error}", model.version.version),
    )
}

/// The encoder of `model`'s records.
fn encoder(model: &LoadedModel) -> Result<RecordEncoder<'_>, ApiError> {
    model
        .model
        .transformer()
        .record_encoder()
        .map_err(|e| failed_to_score(model, &e))
}

/// Reads `body` for `model`; encoding failures are the model's (500).
fn read(
    model: &LoadedModel,
    body: &[u8],
    shape: Shape,
    keep_inputs: bool,
    invalid: InvalidRecords,
) -> Result<Records, ApiError> {
    let encoder = encoder(model)?;
    read_records_as(body, Some(&encoder), shape, keep_inputs, invalid)
        .map_err(|e| refused(model, e))
}

fn refused(model: &LoadedModel, error: ReadError) -> ApiError {
    match error {
        ReadError::Encode(error) => failed_to_score(model, &error),
        other => other.into(),
    }
}

/// Class probabilities of the records' feature rows, flattened row by row.
fn score(model: &LoadedModel, records: &Records) -> Result<Vec<f64>, ApiError> {
    model
        .model
        .predict_rows(&records.features)
        .map_err(|e| failed_to_score(model, &e))
}

fn score_part(
    model: &LoadedModel,
    records: Records,
    writer: Option<&AnswerWriter<'_>>,
) -> Result<Part, ApiError> {
    let probabilities = score(model, &records)?;
    let answer = writer
        .map(|w| w.rows_flagged(&probabilities, &records.flags))
        .unwrap_or_default();
    Ok(Part {
        records,
        probabilities,
        answer,
    })
}

/// Reads a batch and scores it block by block on the thread pool while the
/// rest of the body is still being read. The reading thread only parses.
fn score_in_blocks(
    model: &LoadedModel,
    body: &[u8],
    shape: Shape,
    reading: Reading,
) -> Result<Vec<Part>, ApiError> {
    let encoder = encoder(model)?;
    let writer = AnswerWriter::new(model);
    let (sender, scored) = std::sync::mpsc::channel();
    let read = rayon::in_place_scope(|scope| {
        let mut next = 0;
        let on_block = |records| {
            let (index, sender, writer) = (next, sender.clone(), &writer);
            next += 1;
            scope.spawn(move |_| {
                let _ = sender.send((index, score_part(model, records, Some(writer))));
            });
        };
        read_records_in_chunks(body, Some(&encoder), shape, reading, on_block)
    });
    drop(sender);
    read.map_err(|e| refused(model, e))?;
    let mut parts: Vec<_> = scored.into_iter().collect();
    parts.sort_by_key(|(index, _)| *index);
    parts.into_iter().map(|(_, part)| part).collect()
}

/// The rows of flattened probabilities with `model`'s class count.
fn rows<'p>(model: &LoadedModel, probabilities: &'p [f64]) -> std::slice::ChunksExact<'p, f64> {
    probabilities.chunks_exact(model.model.classes().len().max(1))
}

impl AppState {
    pub fn not_ready(&self) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no verified model for `{}@{}` is loaded yet; `GET /ready` says when one is",
                self.name, self.alias
            ),
        )
    }

    pub fn champion(&self) -> Result<Arc<LoadedModel>, ApiError> {
        self.champion.get().ok_or_else(|| self.not_ready())
    }

    /// Reads `body` as records, scores them with the model that answers it,
    /// shadows the challenger, counts and logs. `None` for an empty batch.
    pub fn score(&self, body: &[u8], shape: Shape) -> Result<Option<Scored>, ApiError> {
        let champion = self.champion.get();
        let challenger = self
            .challenger
            .as_ref()
            .and_then(|c| c.slot.get().map(|model| (c, model)));
        let answering = champion.map(|champion| match &challenger {
            Some((c, model)) if !c.shadow && choose(body, c.share) == Role::Challenger => {
                (Role::Challenger, Arc::clone(model))
            }
            _ => (Role::Champion, champion),
        });
        let Some((role, model)) = answering else {
            // Without a model the body's shape is still judged: records are only counted.
            let records = read_records(body, None, shape, false)?;
            return if records.rows == 0 {
                Ok(None)
            } else {
                Err(self.not_ready())
            };
        };
        let keep_inputs = self.log.is_some();
        let scored = match shape {
            Shape::One => read(&model, body, shape, keep_inputs, self.invalid)
                .and_then(|records| Ok(vec![score_part(&model, records, None)?])),
            Shape::Many { .. } => {
                let reading = Reading {
                    keep_inputs,
                    invalid: self.invalid,
                    chunk_rows: SCORE_BLOCK,
                };
                score_in_blocks(&model, body, shape, reading)
            }
        };
        let parts = match scored {
            Ok(parts) => parts,
            Err(error) => {
                if error.status == StatusCode::UNPROCESSABLE_ENTITY {
                    self.log_rejected(&model, body);
                }
                return Err(error);
            }
        };
        if parts.is_empty() {
            return Ok(None);
        }
        let writer = AnswerWriter::new(&model);
        self.metrics.answered(
            role,
            model.version.version,
            parts
                .iter()
                .flat_map(|part| rows(&model, &part.probabilities))
                .map(|row| writer.class(row)),
        );
        if let Some((c, shadow)) = challenger.filter(|(c, _)| c.shadow) {
            self.shadow(c, &shadow, (body, shape), (&model, &parts));
        }
        self.log(&model, &parts);
        Ok(Some(Scored { model, parts }))
    }

    /// Scores what `answered` scored with the shadow model and counts how
    /// often the two agree. A record the shadow model would refuse skips the
    /// comparison for the whole request.
    fn shadow(
        &self,
        challenger: &Challenger,
        shadow: &LoadedModel,
        (body, shape): (&[u8], Shape),
        (answered, parts): (&LoadedModel, &[Part]),
    ) {
        // The same transformer reads and encodes records identically.
        let same_encoding = shadow.model.transformer() == answered.model.transformer();
        let shadowed: Result<Vec<f64>, ApiError> = if same_encoding {
            parts.iter().try_fold(Vec::new(), |mut all, part| {
                all.extend(score(shadow, &part.records)?);
                Ok(all)
            })
        } else {
            match read(shadow, body, shape, false, self.invalid) {
                Ok(records) => score(shadow, &records),
                Err(_) => return,
            }
        };
        match shadowed {
            Ok(shadowed) => {
                let (ours, theirs) = (AnswerWriter::new(shadow), AnswerWriter::new(answered));
                let answered_rows = parts
                    .iter()
                    .flat_map(|part| rows(answered, &part.probabilities));
                let mut compared = 0;
                let mut agreed = 0;
                for (a, b) in rows(shadow, &shadowed).zip(answered_rows) {
                    compared += 1;
                    agreed += usize::from(ours.class(a) == theirs.class(b));
                }
                self.metrics.answered(
                    Role::Challenger,
                    shadow.version.version,
                    rows(shadow, &shadowed).map(|row| ours.class(row)),
                );
                self.metrics.shadow(compared as u64, agreed as u64);
            }
            Err(error) => tracing::warn!(
                alias = %challenger.alias,
                "shadow model v{} failed to score: {}",
                shadow.version.version,
                error.message
            ),
        }
    }

    fn log(&self, model: &LoadedModel, parts: &[Part]) {
        let Some(log) = &self.log else { return };
        let writer = AnswerWriter::new(model);
        let schema = model.model.schema();
        let columns: Arc<[String]> = schema.iter().map(|f| f.name.clone()).collect();
        for part in parts {
            let inputs = part.records.inputs.chunks_exact(schema.len().max(1));
            let mut flags = part.records.flags.iter().peekable();
            for (row, (scores, inputs)) in rows(model, &part.probabilities).zip(inputs).enumerate()
            {
                let flag = flags.next_if(|f| f.row == row);
                if !log.sample() {
                    continue;
                }
                let predicted = writer.class(scores);
                let entry = match flag {
                    // As given: an unknown category is encoded as none, but logged by name.
                    Some(flag) => LogEntry {
                        columns: Arc::clone(&columns),
                        values: flag.values.clone(),
                        predicted: predicted.into(),
                        model_version: model.version.version,
                        status: Status::Flagged,
                        reason: flag.reason.clone(),
                    },
                    None => LogEntry::from_inputs(
                        Arc::clone(&columns),
                        schema,
                        inputs,
                        predicted,
                        model.version.version,
                    ),
                };
                if !log.push(entry) {
                    self.metrics.log_dropped();
                }
            }
        }
    }

    /// Logs each record of a refused body that fails validation, with the
    /// values it was sent and the reason. Only the error path pays for this
    /// second reading; a body that is not JSON logs nothing.
    fn log_rejected(&self, model: &LoadedModel, body: &[u8]) {
        let Some(log) = &self.log else { return };
        let records: Vec<serde_json::Map<String, serde_json::Value>> =
            match serde_json::from_slice(body) {
                Ok(serde_json::Value::Object(record)) => vec![record],
                Ok(serde_json::Value::Array(items)) => items
                    .into_iter()
                    .filter_map(|item| match item {
                        serde_json::Value::Object(record) => Some(record),
                        _ => None,
                    })
                    .collect(),
                _ => return,
            };
        let columns: Arc<[String]> = model
            .model
            .schema()
            .iter()
            .map(|f| f.name.clone())
            .collect();
        for record in &records {
            let Err(problem) = check_record(&model.model, record) else {
                continue;
            };
            if !log.sample() {
                continue;
            }
            let entry = LogEntry {
                columns: Arc::clone(&columns),
                values: model
                    .model
                    .schema()
                    .iter()
                    .zip(record_values(&model.model, record))
                    .map(|(field, value)| value.to_cell(field))
                    .collect(),
                predicted: String::new(),
                model_version: model.version.version,
                status: Status::Rejected,
                reason: problem.to_string(),
            };
            if !log.push(entry) {
                self.metrics.log_dropped();
            }
        }
    }
}
