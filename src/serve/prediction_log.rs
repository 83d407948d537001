//! [`PredictionLog`]: a sampled CSV of what the server was asked,
//! `current.csv` under `<state_dir>/predictions/`: the model's input
//! columns plus `predicted`, `model_version`, `status` (`answered`,
//! `flagged`, `rejected`) and `reason`, so a monitoring DAG can read it as
//! its "current" batch — refused records included, since the most drifted
//! traffic is what monitoring must see.
//!
//! Requests only hand entries to a bounded channel; one writer thread owns
//! the files, flushes whenever the channel runs dry and rotates
//! `current.csv` to `current.1.csv` (newest) … `current.<keep>.csv` before
//! the first write after it reached the size bound. When the writer falls behind, entries are dropped
//! and counted rather than slowing requests down. It does not read the log.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use dag_operators::ml::{Field, FieldInput, FieldKind};

use crate::serve::LogConfig;

/// Entries waiting for the writer at most.
const QUEUE: usize = 65_536;

/// One logged record.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Column names, in the model's schema order.
    pub columns: Arc<[String]>,
    /// CSV-ready values of those columns.
    pub values: Vec<String>,
    /// Empty for a rejected record.
    pub predicted: String,
    pub model_version: u32,
    pub status: Status,
    /// Why a record was flagged or rejected; empty when answered.
    pub reason: String,
}

/// What the server did with a logged record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Answered,
    /// Answered, though a value was outside what the model knows.
    Flagged,
    /// Refused (422); logged with the values it was sent.
    Rejected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Flagged => "flagged",
            Self::Rejected => "rejected",
        }
    }
}

impl LogEntry {
    /// The entry for a checked record: `inputs` holds one value per field
    /// of `schema`, whose names are `columns`. Numbers are written in their
    /// shortest exact form (`21`, `1.62`).
    pub fn from_inputs(
        columns: Arc<[String]>,
        schema: &[Field],
        inputs: &[FieldInput],
        predicted: &str,
        model_version: u32,
    ) -> Self {
        let values = schema
            .iter()
            .zip(inputs)
            .map(|(field, input)| match (input, &field.kind) {
                (FieldInput::Number(x), _) => x.to_string(),
                (FieldInput::Category(Some(i)), FieldKind::Categorical { categories }) => {
                    categories.get(*i).cloned().unwrap_or_default()
                }
                (FieldInput::Category(_), _) => String::new(),
            })
            .collect();
        Self {
            columns,
            values,
            predicted: predicted.into(),
            model_version,
            status: Status::Answered,
            reason: String::new(),
        }
    }
}

/// Keeps every `rate`-th record, spread evenly and reproducibly.
#[derive(Debug)]
pub struct Sampler {
    rate: f64,
    seen: AtomicU64,
}

impl Sampler {
    pub fn new(rate: f64) -> Self {
        Self {
            rate,
            seen: AtomicU64::new(0),
        }
    }

    pub fn keep(&self) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * self.rate).floor() > (n * self.rate).floor()
    }
}

pub struct PredictionLog {
    sampler: Sampler,
    sender: Mutex<Option<SyncSender<LogEntry>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl PredictionLog {
    /// Starts the writer thread for `dir`.
    pub fn start(dir: PathBuf, config: &LogConfig) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let (sender, receiver) = sync_channel(QUEUE);
        let files = LogFiles {
            dir,
            max_bytes: config.max_bytes,
            keep: config.keep,
            open: None,
        };
        let writer = std::thread::Builder::new()
            .name("prediction-log".into())
            .spawn(move || files.write_all(&receiver))?;
        Ok(Self {
            sampler: Sampler::new(config.sample),
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Whether the next record should be logged.
    pub fn sample(&self) -> bool {
        self.sampler.keep()
    }

    /// Queues an entry; `false` when it was dropped (writer behind or closed).
    pub fn push(&self, entry: LogEntry) -> bool {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        match sender.as_ref().map(|s| s.try_send(entry)) {
            Some(Ok(())) => true,
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => false,
        }
    }

    /// Writes what is queued and stops the writer.
    pub fn close(&self) {
        drop(
            self.sender
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }
}

impl Drop for PredictionLog {
    fn drop(&mut self) {
        self.close();
    }
}

struct OpenFile {
    out: BufWriter<File>,
    bytes: u64,
    columns: Arc<[String]>,
}

struct LogFiles {
    dir: PathBuf,
    max_bytes: u64,
    keep: usize,
    open: Option<OpenFile>,
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn header(columns: &[String]) -> String {
    let mut fields: Vec<String> = columns.iter().map(|c| csv_field(c)).collect();
    for column in ["predicted", "model_version", "status", "reason"] {
        fields.push(column.into());
    }
    fields.join(",")
}

fn first_line(path: &Path) -> Option<String> {
    let file = File::open(path).ok()?;
    let mut line = String::new();
    BufReader::new(file).read_line(&mut line).ok()?;
    Some(line.trim_end_matches(['\n', '\r']).to_string())
}

impl LogFiles {
    fn current(&self) -> PathBuf {
        self.dir.join("current.csv")
    }

    fn rotated(&self, n: usize) -> PathBuf {
        self.dir.join(format!("current.{n}.csv"))
    }

    fn write_all(mut self, receiver: &Receiver<LogEntry>) {
        while let Ok(entry) = receiver.recv() {
            self.write_logged(&entry);
            while let Ok(entry) = receiver.try_recv() {
                self.write_logged(&entry);
            }
            if let Some(open) = &mut self.open
                && let Err(error) = open.out.flush()
            {
                tracing::warn!("cannot write the prediction log: {error}");
            }
        }
    }

    fn write_logged(&mut self, entry: &LogEntry) {
        if let Err(error) = self.write(entry) {
            tracing::warn!(
                "cannot write the prediction log `{}`: {error}",
                self.current().display()
            );
            self.open = None;
        }
    }

    fn write(&mut self, entry: &LogEntry) -> std::io::Result<()> {
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.columns != entry.columns || o.bytes >= self.max_bytes)
        {
            self.rotate()?;
        }
        let open = match &mut self.open {
            Some(open) => open,
            None => self.open_for(&entry.columns)?,
        };
        let mut line: Vec<String> = entry.values.iter().map(|v| csv_field(v)).collect();
        line.push(csv_field(&entry.predicted));
        line.push(entry.model_version.to_string());
        line.push(entry.status.as_str().to_string());
        line.push(csv_field(&entry.reason));
        let line = line.join(",") + "\n";
        open.out.write_all(line.as_bytes())?;
        open.bytes += line.len() as u64;
        Ok(())
    }

    /// Opens `current.csv` for appending; an existing file with another
    /// header is rotated away first.
    fn open_for(&mut self, columns: &Arc<[String]>) -> std::io::Result<&mut OpenFile> {
        let path = self.current();
        let header = header(columns);
        let existing = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if existing > 0 && first_line(&path).as_deref() != Some(header.as_str()) {
            self.shift()?;
        }
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut out = BufWriter::new(file);
        let mut bytes = bytes;
        if bytes == 0 {
            out.write_all(header.as_bytes())?;
            out.write_all(b"\n")?;
            bytes = header.len() as u64 + 1;
        }
        Ok(self.open.insert(OpenFile {
            out,
            bytes,
            columns: Arc::clone(columns),
        }))
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if let Some(mut open) = self.open.take() {
            open.out.flush()?;
        }
        self.shift()
    }

    /// `current.csv` → `current.1.csv` → … → `current.<keep>.csv`, dropping the oldest.
    fn shift(&self) -> std::io::Result<()> {
        if self.keep == 0 {
            return std::fs::remove_file(self.current());
        }
        let oldest = self.rotated(self.keep);
        if oldest.exists() {
            std::fs::remove_file(&oldest)?;
        }
        for n in (1..self.keep).rev() {
            let from = self.rotated(n);
            if from.exists() {
                std::fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        std::fs::rename(self.current(), self.rotated(1))
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;

    fn entry(columns: &Arc<[String]>, age: u32) -> LogEntry {
        LogEntry {
            columns: Arc::clone(columns),
            values: vec!["Fe,male".into(), age.to_string()],
            predicted: "Normal_Weight".into(),
            model_version: 2,
            status: Status::Answered,
            reason: String::new(),
        }
    }

    fn columns() -> Arc<[String]> {
        Arc::from(vec!["Gender".to_string(), "Age".to_string()])
    }

    #[test]
    fn entries_are_written_as_csv_with_a_header() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            sample: 1.0,
            max_bytes: 1 << 20,
            keep: 2,
        };
        let log = PredictionLog::start(dir.path().to_path_buf(), &config).unwrap();
        assert!(log.push(entry(&columns(), 21)));
        let rejected = LogEntry {
            predicted: String::new(),
            status: Status::Rejected,
            reason: "field `Age`: 300, outside 14 to 61".into(),
            ..entry(&columns(), 300)
        };
        assert!(log.push(rejected));
        log.close();
        let text = std::fs::read_to_string(dir.path().join("current.csv")).unwrap();
        assert_eq!(
            text,
            "Gender,Age,predicted,model_version,status,reason\n\"Fe,male\",21,Normal_Weight,2,answered,\n\"Fe,male\",300,,2,rejected,\"field `Age`: 300, outside 14 to 61\"\n"
        );
        assert!(
            !log.push(entry(&columns(), 23)),
            "closed log accepts nothing"
        );
    }

    #[test]
    fn size_bound_rotates_and_keeps_at_most_keep_files() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            sample: 1.0,
            max_bytes: 80,
            keep: 2,
        };
        let log = PredictionLog::start(dir.path().to_path_buf(), &config).unwrap();
        for age in 0..40 {
            assert!(log.push(entry(&columns(), age)));
        }
        log.close();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["current.1.csv", "current.2.csv", "current.csv"]);
        for name in &names {
            let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
            assert!(
                text.starts_with("Gender,Age,predicted,model_version,status,reason\n"),
                "{name}: {text}"
            );
            assert!(text.len() <= 80 + 60, "{name} is {} bytes", text.len());
        }
    }

    #[test]
    fn existing_log_with_another_header_is_rotated_not_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("current.csv"), "a,b\n1,2\n").unwrap();
        let config = LogConfig {
            sample: 1.0,
            max_bytes: 1 << 20,
            keep: 1,
        };
        let log = PredictionLog::start(dir.path().to_path_buf(), &config).unwrap();
        log.push(entry(&columns(), 30));
        log.close();
        let old = std::fs::read_to_string(dir.path().join("current.1.csv")).unwrap();
        assert_eq!(old, "a,b\n1,2\n");
        let new = std::fs::read_to_string(dir.path().join("current.csv")).unwrap();
        assert!(new.starts_with("Gender,Age,"), "{new}");
    }

    #[test]
    fn sampler_keeps_the_requested_fraction_evenly() {
        let half = Sampler::new(0.5);
        let kept: Vec<bool> = (0..6).map(|_| half.keep()).collect();
        assert_eq!(kept, [false, true, false, true, false, true]);
        let all = Sampler::new(1.0);
        assert!((0..100).all(|_| all.keep()));
        let none = Sampler::new(0.0);
        assert!((0..100).all(|_| !none.keep()));
    }
}
