//! [`LogSink`]: an attempt's log file, bounded.
//!
//! A task may print without end; its log may not grow without end. Each
//! attempt's log keeps at most `limit` bytes of what was written: the first
//! half as it came, and of the rest only the newest quarter-to-half of the
//! limit, in two rotating tail files beside the log. When the attempt ends
//! ([`LogSink::finish`]) a marker line saying how many bytes were dropped
//! is appended, then the tail. So the start (what ran) and the end (how it
//! failed) of a huge output are both kept, in bounded disk and memory.
//!
//! The file is created on first use, so tasks that log nothing leave no
//! file behind. Logging never fails the task: write errors are dropped.
//!
//! A log made [`masking`](LogSink::masking) secrets replaces each of them
//! with `***` before anything reaches the disk. Output is then held back to
//! the end of its line (at most [`MASK_HOLD`] bytes), so that a secret
//! split across two writes is still caught.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Default most bytes one attempt's log keeps: 64 MiB.
pub const DEFAULT_LOG_LIMIT: u64 = 64 << 20;

/// The smallest limit accepted; smaller ones are raised to it.
pub const MIN_LOG_LIMIT: u64 = 4096;

/// Most bytes a masking log holds back waiting for the end of a line.
pub const MASK_HOLD: usize = 64 << 10;

/// An attempt's log. Cloning shares the file and its byte counts.
#[derive(Clone)]
pub struct LogSink {
    shared: Option<Arc<Shared>>,
}

struct Shared {
    path: PathBuf,
    limit: u64,
    /// Secrets replaced by `***`, longest first.
    masks: Vec<Vec<u8>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// `None` until first written; `Some(None)` when opening failed.
    file: Option<Option<File>>,
    head: u64,
    total: u64,
    /// The tail segment being written, its size, and whether the older
    /// segment exists with its size.
    tail: Option<File>,
    tail_bytes: u64,
    older_bytes: Option<u64>,
    finished: bool,
    /// With masks: the start of a line not yet written.
    held: Vec<u8>,
}

impl LogSink {
    /// A log at `path` keeping at most [`DEFAULT_LOG_LIMIT`] bytes.
    pub fn at(path: PathBuf) -> Self {
        Self::with_limit(path, DEFAULT_LOG_LIMIT)
    }

    /// A log at `path` keeping at most `limit` bytes (at least
    /// [`MIN_LOG_LIMIT`]); the parent directory is created when the first
    /// byte is written.
    pub fn with_limit(path: PathBuf, limit: u64) -> Self {
        Self {
            shared: Some(Arc::new(Shared {
                path,
                limit: limit.max(MIN_LOG_LIMIT),
                masks: Vec::new(),
                state: Mutex::new(State::default()),
            })),
        }
    }

    /// The same log, with every occurrence of each (non-empty) secret
    /// replaced by `***`. Call before anything is written.
    pub fn masking(self, secrets: &[String]) -> Self {
        let mut masks: Vec<Vec<u8>> = secrets
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect();
        if masks.is_empty() {
            return self;
        }
        masks.sort_by_key(|m| std::cmp::Reverse(m.len()));
        masks.dedup();
        match self.shared {
            Some(shared) => Self {
                shared: Some(Arc::new(Shared {
                    path: shared.path.clone(),
                    limit: shared.limit,
                    masks,
                    state: Mutex::new(State::default()),
                })),
            },
            None => self,
        }
    }

    pub fn discard() -> Self {
        Self { shared: None }
    }

    /// Where the log lives (it may not exist until something is written).
    pub fn path(&self) -> Option<&Path> {
        self.shared.as_deref().map(|shared| shared.path.as_path())
    }

    /// Appends one line.
    pub fn line(&self, message: impl fmt::Display) {
        self.write(format!("{message}\n").as_bytes());
    }

    /// Appends raw bytes (a child's output), within the limit.
    pub fn write(&self, bytes: &[u8]) {
        if let Some(shared) = &self.shared {
            let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            if shared.masks.is_empty() {
                state.append(shared, bytes);
                return;
            }
            state.held.extend_from_slice(bytes);
            let cut = match state.held.iter().rposition(|b| *b == b'\n') {
                Some(newline) => newline + 1,
                None if state.held.len() > MASK_HOLD => state.held.len(),
                None => return,
            };
            let line: Vec<u8> = state.held.drain(..cut).collect();
            let masked = mask(&line, &shared.masks);
            state.append(shared, &masked);
        }
    }

    /// Bytes written so far, kept or not.
    pub fn total_bytes(&self) -> u64 {
        self.shared.as_ref().map_or(0, |shared| {
            shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .total
        })
    }

    /// Ends the log: if output was dropped, appends the marker and the
    /// kept tail. Returns the bytes dropped. Later writes go to the tail
    /// again and need another `finish`.
    pub fn finish(&self) -> u64 {
        let Some(shared) = &self.shared else {
            return 0;
        };
        let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.held.is_empty() {
            let rest = std::mem::take(&mut state.held);
            let masked = mask(&rest, &shared.masks);
            state.append(shared, &masked);
        }
        state.finish(shared)
    }
}

/// `bytes` with each mask replaced by `***` (masks longest first).
fn mask(bytes: &[u8], masks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    'scan: while at < bytes.len() {
        for secret in masks {
            if bytes[at..].starts_with(secret) {
                out.extend_from_slice(b"***");
                at += secret.len();
                continue 'scan;
            }
        }
        out.push(bytes[at]);
        at += 1;
    }
    out
}

impl Shared {
    fn head_limit(&self) -> u64 {
        self.limit / 2
    }

    /// Each of the two tail segments holds up to a quarter of the limit, so
    /// the tail keeps between a quarter and a half of it.
    fn segment_limit(&self) -> u64 {
        self.limit / 4
    }

    fn segment(&self, older: bool) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let suffix = if older { "older" } else { "newer" };
        self.path.with_file_name(format!(".{name}.tail-{suffix}"))
    }
}

impl State {
    fn append(&mut self, shared: &Shared, mut bytes: &[u8]) {
        self.total = self.total.saturating_add(bytes.len() as u64);
        self.finished = false;
        let room = shared.head_limit().saturating_sub(self.head);
        if room > 0 {
            let take = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            if let Some(file) = self.main(shared) {
                let _ = file.write_all(&bytes[..take]);
            }
            self.head += take as u64;
            bytes = &bytes[take..];
        }
        while !bytes.is_empty() {
            let room = shared.segment_limit().saturating_sub(self.tail_bytes);
            if room == 0 || self.tail.is_none() {
                self.rotate(shared);
                if self.tail.is_none() {
                    // Cannot keep a tail: the bytes are dropped.
                    return;
                }
                continue;
            }
            let take = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            if let Some(tail) = &mut self.tail {
                let _ = tail.write_all(&bytes[..take]);
            }
            self.tail_bytes += take as u64;
            bytes = &bytes[take..];
        }
    }

    /// Starts a new tail segment; the current one becomes the older one,
    /// and the older one's bytes are dropped.
    fn rotate(&mut self, shared: &Shared) {
        let newer = shared.segment(false);
        if self.tail.take().is_some() {
            let _ = std::fs::rename(&newer, shared.segment(true));
            self.older_bytes = Some(self.tail_bytes);
        }
        self.tail_bytes = 0;
        self.tail = File::create(&newer).ok();
    }

    fn main(&mut self, shared: &Shared) -> Option<&mut File> {
        self.file
            .get_or_insert_with(|| open_append(&shared.path).ok())
            .as_mut()
    }

    fn kept_tail(&self) -> u64 {
        self.tail_bytes + self.older_bytes.unwrap_or(0)
    }

    fn finish(&mut self, shared: &Shared) -> u64 {
        if self.finished || (self.tail.is_none() && self.older_bytes.is_none()) {
            return self.total.saturating_sub(self.head + self.kept_tail());
        }
        self.finished = true;
        let dropped = self.total.saturating_sub(self.head + self.kept_tail());
        let marker = format!(
            "\n[dag: {dropped} bytes of output dropped here; the attempt wrote {} bytes and its log keeps at most {} (the first and the last part)]\n",
            self.total, shared.limit
        );
        let older = shared.segment(true);
        let newer = shared.segment(false);
        self.tail = None;
        if let Some(file) = self.main(shared) {
            let _ = file.write_all(marker.as_bytes());
            for segment in [&older, &newer] {
                if let Ok(mut part) = File::open(segment) {
                    let _ = io::copy(&mut part, file);
                }
            }
        }
        let _ = std::fs::remove_file(&older);
        let _ = std::fs::remove_file(&newer);
        // What follows a finish starts a new tail after the marker.
        self.head = shared.head_limit();
        self.older_bytes = None;
        self.tail_bytes = 0;
        dropped
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_secrets_never_reach_the_file_even_split_across_writes() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("t.1.log");
        let log = LogSink::at(path.clone()).masking(&["hunter2".to_string(), String::new()]);
        log.write(b"password is hun");
        log.write(b"ter2\nand again hunter2 at the end");
        log.finish();
        let text = std::fs::read_to_string(&path)?;
        assert_eq!(text, "password is ***\nand again *** at the end");
        Ok(())
    }

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn output_over_the_limit_keeps_the_start_and_the_end_with_a_marker() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("logs/t.1.log");
        let sink = LogSink::with_limit(path.clone(), 8192);
        sink.line("FIRST LINE");
        for i in 0..100_000 {
            sink.line(format_args!("line {i:06}"));
        }
        sink.line("LAST LINE");
        let dropped = sink.finish();
        let text = std::fs::read_to_string(&path)?;
        assert!(text.len() <= 8192 + 200, "{} bytes kept", text.len());
        assert!(text.starts_with("FIRST LINE\n"), "{}", &text[..40]);
        assert!(
            text.ends_with("LAST LINE\n"),
            "{}",
            &text[text.len() - 40..]
        );
        let total = sink.total_bytes();
        assert_eq!(total, 11 + 100_000 * 12 + 10);
        assert!(
            text.contains(&format!(
                "[dag: {dropped} bytes of output dropped here; the attempt wrote {total} bytes"
            )),
            "{text}"
        );
        let kept_output = text.len() as u64
            - (text
                .lines()
                .find(|l| l.starts_with("[dag:"))
                .map_or(0, |l| l.len() as u64 + 2));
        assert_eq!(kept_output + dropped, total);
        // The tail files are merged in and gone.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("logs"))?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["t.1.log"]);
        Ok(())
    }

    #[test]
    fn output_under_the_limit_is_kept_whole_without_a_marker() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("t.log");
        let sink = LogSink::with_limit(path.clone(), 8192);
        sink.write(b"small\n");
        assert_eq!(sink.finish(), 0);
        assert_eq!(std::fs::read_to_string(&path)?, "small\n");
        Ok(())
    }

    #[test]
    fn nothing_written_leaves_no_file() -> TestResult {
        let dir = tempfile::tempdir()?;
        let sink = LogSink::with_limit(dir.path().join("t.log"), 8192);
        assert_eq!(sink.finish(), 0);
        assert!(!dir.path().join("t.log").exists());
        Ok(())
    }
}
