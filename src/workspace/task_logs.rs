//! Task attempt logs as `dag logs` and the daemon's log endpoint read
//! them: which file, from where, in bounded pieces. A log can be large
//! (up to the attempt's log limit, 64 MiB by default); nothing here holds
//! more than one piece of it in memory.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use dag_state::{AttemptStatus, StateError, Store};

/// The most bytes one read of a log returns (and one API answer carries).
pub const LOG_CHUNK: u64 = 1 << 20;

/// Which log an attempt wrote, and whether it may still grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptLog {
    pub attempt: u32,
    /// `None` when the attempt has no log path on record.
    pub path: Option<PathBuf>,
    pub running: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("no run `{0}`; `dag runs` lists them")]
    NoRun(String),
    #[error("task `{task}` has no attempt{} in run `{run}`", .attempt.map(|n| format!(" {n}")).unwrap_or_default())]
    NoAttempt {
        run: String,
        task: String,
        attempt: Option<u32>,
    },
    #[error(transparent)]
    Store(#[from] StateError),
}

/// The log of `task`'s attempt `attempt` (default: the last) in `run_id`.
pub fn find_attempt_log(
    store: &Store,
    run_id: &str,
    task: &str,
    attempt: Option<u32>,
) -> Result<AttemptLog, LogError> {
    let attempts = store.attempts(run_id)?;
    if attempts.is_empty() && store.run(run_id)?.is_none() {
        return Err(LogError::NoRun(run_id.to_string()));
    }
    let of_task: Vec<_> = attempts.iter().filter(|a| a.task_id == task).collect();
    let chosen = match attempt {
        Some(n) => of_task.iter().find(|a| a.attempt == n),
        None => of_task.last(),
    }
    .ok_or_else(|| LogError::NoAttempt {
        run: run_id.to_string(),
        task: task.to_string(),
        attempt,
    })?;
    Ok(AttemptLog {
        attempt: chosen.attempt,
        path: chosen.log_path.as_ref().map(PathBuf::from),
        running: chosen.status == AttemptStatus::Running,
    })
}

/// Where the last `lines` lines of the file start (a final line without a
/// newline counts). Reads backwards in blocks: memory stays at one block.
pub fn tail_offset(path: &Path, lines: usize) -> io::Result<u64> {
    let mut file = open_log(path)?;
    let mut end = file.metadata()?.len();
    if lines == 0 {
        return Ok(end);
    }
    let mut block = vec![0u8; 64 * 1024];
    let mut newlines = 0usize;
    // A newline at the very end closes the last line rather than starting one.
    let mut skip_last = true;
    while end > 0 {
        let size = end.min(block.len() as u64);
        let start = end - size;
        file.seek(SeekFrom::Start(start))?;
        let chunk = &mut block[..usize::try_from(size).unwrap_or(0)];
        file.read_exact(chunk)?;
        for (index, byte) in chunk.iter().enumerate().rev() {
            if *byte != b'\n' {
                skip_last = false;
                continue;
            }
            if skip_last {
                skip_last = false;
                continue;
            }
            newlines += 1;
            if newlines == lines {
                return Ok(start + index as u64 + 1);
            }
        }
        end = start;
    }
    Ok(0)
}

/// Up to `limit` bytes of the log from `offset`, and the log's size.
pub fn read_chunk(path: &Path, offset: u64, limit: u64) -> io::Result<(Vec<u8>, u64)> {
    let mut file = open_log(path)?;
    let size = file.metadata()?.len();
    if offset >= size {
        return Ok((Vec::new(), size));
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.take(limit.min(LOG_CHUNK)).read_to_end(&mut bytes)?;
    Ok((bytes, size))
}

/// Copies the log from `offset` to its current end into `out`; returns
/// the offset reached.
pub fn copy_from(path: &Path, offset: u64, out: &mut impl Write) -> io::Result<u64> {
    let mut file = open_log(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let copied = io::copy(&mut file, out)?;
    Ok(offset + copied)
}

fn open_log(path: &Path) -> io::Result<File> {
    crate::cache::open_regular(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_starts_at_the_nth_line_from_the_end() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("t.log");
        let text: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, &text)?;
        let offset = tail_offset(&path, 3)?;
        assert_eq!(
            &text[usize::try_from(offset).unwrap_or(0)..],
            "line 199997\nline 199998\nline 199999\n"
        );
        assert_eq!(tail_offset(&path, 10_000_000)?, 0);
        assert_eq!(tail_offset(&path, 0)?, text.len() as u64);
        std::fs::write(&path, "a\nb\nno newline")?;
        assert_eq!(tail_offset(&path, 1)?, 4);
        assert_eq!(tail_offset(&path, 2)?, 2);
        Ok(())
    }

    #[test]
    fn chunks_are_bounded_and_continue_where_the_last_ended() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("t.log");
        std::fs::write(&path, "0123456789")?;
        assert_eq!(read_chunk(&path, 3, 4)?, (b"3456".to_vec(), 10));
        assert_eq!(read_chunk(&path, 10, 4)?, (Vec::new(), 10));
        let mut out = Vec::new();
        assert_eq!(copy_from(&path, 7, &mut out)?, 10);
        assert_eq!(out, b"789");
        Ok(())
    }
}
