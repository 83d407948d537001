//! [`RestoreJournal`]: where a run-cache restore is putting temporary
//! files, so that a restore killed half-way leaves nothing behind for good.
//!
//! A restore copies each entry to a temporary file beside its destination
//! (`.<name>.<pid>.<n>.tmp`, in the project's output directories) and
//! renames them all into place once every copy is verified. Before the
//! first copy it writes a journal in `<cache>/.restores/` naming the
//! destinations; a finished restore deletes it. A journal whose process is
//! gone marks a restore that was killed: [`sweep_restores`] (run when the
//! store is opened, and by `dag gc`) removes the temporary files it names
//! — only files with that dead process's id in their name — and the
//! journal.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::run_cache::{CacheEntry, TEMP_SUFFIX};

static JOURNAL_COUNTER: AtomicU64 = AtomicU64::new(0);
const JOURNAL_DIR: &str = ".restores";
const JOURNAL_SUFFIX: &str = ".journal";

/// The journal of one restore in progress; deleted when dropped.
pub(super) struct RestoreJournal {
    path: PathBuf,
}

impl RestoreJournal {
    /// Writes the journal naming `destinations` before anything is copied.
    pub(super) fn start(cache_root: &Path, destinations: &[&Path]) -> io::Result<Self> {
        let dir = cache_root.join(JOURNAL_DIR);
        fs::create_dir_all(&dir)?;
        let n = JOURNAL_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{}.{n}{JOURNAL_SUFFIX}", std::process::id()));
        let mut file = File::create(&path)?;
        for destination in destinations {
            let absolute = std::path::absolute(destination)?;
            file.write_all(absolute.as_os_str().as_encoded_bytes())?;
            file.write_all(b"\n")?;
        }
        Ok(Self { path })
    }
}

impl Drop for RestoreJournal {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Removes what restores killed before they finished left behind; returns
/// the temporary files removed.
pub fn sweep_restores(cache_root: &Path) -> Vec<CacheEntry> {
    let Ok(journals) = fs::read_dir(cache_root.join(JOURNAL_DIR)) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for journal in journals.flatten() {
        let path = journal.path();
        let Some(pid) = journal_pid(&path) else {
            continue;
        };
        if pid_alive(pid) {
            continue;
        }
        let Ok(text) = fs::read(&path) else {
            continue;
        };
        for line in text.split(|byte| *byte == b'\n').filter(|l| !l.is_empty()) {
            use std::os::unix::ffi::OsStrExt;
            let destination = PathBuf::from(std::ffi::OsStr::from_bytes(line));
            removed.extend(remove_temporaries(&destination, pid));
        }
        let _ = fs::remove_file(&path);
    }
    removed
}

/// Removes `.<name>.<pid>.<n>.tmp` files beside `destination`.
fn remove_temporaries(destination: &Path, pid: u32) -> Vec<CacheEntry> {
    let (Some(dir), Some(name)) = (destination.parent(), destination.file_name()) else {
        return Vec::new();
    };
    let prefix = format!(".{}.{pid}.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(counter) = file_name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
        else {
            continue;
        };
        if counter.is_empty() || !counter.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let size = entry.metadata().map_or(0, |m| m.len());
        if fs::remove_file(entry.path()).is_ok() {
            removed.push(CacheEntry {
                digest: None,
                path: entry.path(),
                size,
            });
        }
    }
    removed
}

fn journal_pid(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?.strip_suffix(JOURNAL_SUFFIX)?;
    name.split('.').next()?.parse().ok()
}

/// Whether a process with this id exists (and is not this one's journal
/// of a restore still running in this process).
fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_restore_leaves_temporaries_that_the_sweep_removes() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let cache = dir.path().join(".dag/cache");
        let out = dir.path().join("data/out.parquet");
        fs::create_dir_all(dir.path().join("data"))?;
        fs::write(&out, b"old output")?;
        // What a restore by a process that died (pid 4194305 is above any
        // Linux pid_max) leaves: its journal and a half-copied temporary.
        let dead = 4_194_305u32;
        fs::create_dir_all(cache.join(JOURNAL_DIR))?;
        fs::write(
            cache
                .join(JOURNAL_DIR)
                .join(format!("{dead}.0{JOURNAL_SUFFIX}")),
            format!("{}\n", out.display()),
        )?;
        let temp = dir.path().join(format!("data/.out.parquet.{dead}.3.tmp"));
        fs::write(&temp, vec![0u8; 4096])?;
        // Not ours to remove: another process's temporary, and a user file.
        let other = dir.path().join("data/.out.parquet.1.0.tmp");
        fs::write(&other, b"x")?;
        let user = dir.path().join("data/.out.parquet.notes");
        fs::write(&user, b"x")?;

        let removed = sweep_restores(&cache);
        assert_eq!(removed.len(), 1, "{removed:?}");
        assert_eq!(removed[0].size, 4096);
        assert!(!temp.exists());
        assert!(other.exists() && user.exists() && out.exists());
        assert_eq!(fs::read_dir(cache.join(JOURNAL_DIR))?.count(), 0);
        Ok(())
    }

    #[test]
    fn a_restore_in_progress_is_left_alone() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("out.txt");
        let journal = RestoreJournal::start(dir.path(), &[&out])?;
        let temp = dir
            .path()
            .join(format!(".out.txt.{}.0.tmp", std::process::id()));
        fs::write(&temp, b"copying")?;
        assert!(sweep_restores(dir.path()).is_empty());
        assert!(temp.exists());
        drop(journal);
        assert_eq!(fs::read_dir(dir.path().join(JOURNAL_DIR))?.count(), 0);
        Ok(())
    }
}
