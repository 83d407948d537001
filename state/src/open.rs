//! Opening the sled database: the directory, the single-process lock, damaged
//! files, and the format version. Repair of what a dead process left behind
//! is `recovery`'s job, not this module's.

use std::io::ErrorKind;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{FORMAT_VERSION, StateError};

/// In sled's default tree, so it can be read without creating any tree.
const FORMAT_VERSION_KEY: &[u8] = b"format_version";

/// How long [`Store::open`](crate::Store::open) waits for a held lock
/// before reporting [`StateError::Locked`].
const LOCK_WAIT: Duration = Duration::from_secs(1);
const LOCK_POLL: Duration = Duration::from_millis(10);

/// The file sled 0.34 keeps its log in, inside the store directory.
const SLED_LOG_FILE: &str = "db";

/// Opens sled in `dir`, creating the directory if needed, and checks (or,
/// on a new store, writes) the format version.
pub(crate) fn open_db(dir: &Path) -> Result<sled::Db, StateError> {
    let path = dir.to_path_buf();
    std::fs::create_dir_all(dir).map_err(|error| StateError::Open {
        path: path.clone(),
        reason: error.to_string(),
    })?;
    let had_data = holds_data(dir);
    let db = open_sled(dir)?;
    check_format_version(&db, dir, had_data)?;
    Ok(db)
}

/// Whether sled's log file exists and is not empty. sled reads a log whose
/// contents are garbage as an empty database, so "had data before opening,
/// has no format version after" is how a damaged store is recognised.
pub(crate) fn holds_data(dir: &Path) -> bool {
    std::fs::metadata(dir.join(SLED_LOG_FILE)).is_ok_and(|metadata| metadata.len() > 0)
}

/// Opens sled, waiting up to [`LOCK_WAIT`] for its lock: a store just
/// dropped in this same process releases its lock only when sled's
/// background I/O lets go of the file (measured at up to ~170 ms), and
/// reopening it then must not fail.
fn open_sled(dir: &Path) -> Result<sled::Db, StateError> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match open_sled_once(dir) {
            Err(StateError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(LOCK_POLL);
            }
            result => return result,
        }
    }
}

fn open_sled_once(dir: &Path) -> Result<sled::Db, StateError> {
    let path = dir.to_path_buf();
    let config = sled::Config::new().path(dir);
    // sled 0.34 asserts on some shapes of damaged files instead of returning
    // an error; a damaged store must be a clean error, not a crash, and not
    // a panic message on the user's terminal either.
    match quietly(|| config.open()) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(error)) if is_lock_failure(&error) => Err(StateError::Locked { path }),
        Ok(Err(error @ sled::Error::Corruption { .. })) => Err(StateError::Damaged {
            path,
            detail: crate::error::describe_sled(&error),
        }),
        Ok(Err(error)) => Err(StateError::Open {
            path,
            reason: crate::error::describe_sled(&error),
        }),
        Err(panic) => {
            // sled's own words name its internals; keep them for a bug
            // report, tell the user what it means.
            tracing_free_debug(&panic_message(panic.as_ref()));
            Err(StateError::Damaged {
                path,
                detail: "the storage engine could not read its files".into(),
            })
        }
    }
}

/// sled reports a held lock as an `Other` i/o error whose message starts
/// with "could not acquire lock"; `WouldBlock` is what the OS call returns.
fn is_lock_failure(error: &sled::Error) -> bool {
    match error {
        sled::Error::Io(io) => {
            io.kind() == ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock")
        }
        _ => false,
    }
}

/// Runs `f`, catching a panic without the panic hook printing it when it
/// happens on this thread (other threads' panics print as before).
fn quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    let me = std::thread::current().id();
    let previous = std::sync::Arc::new(std::panic::take_hook());
    let delegate = std::sync::Arc::clone(&previous);
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != me {
            delegate(info);
        }
    }));
    let result = catch_unwind(AssertUnwindSafe(f));
    drop(std::panic::take_hook());
    std::panic::set_hook(Box::new(move |info| previous(info)));
    result
}

/// This crate has no logger; sled's panic text goes to stderr only when
/// `DAG_STATE_DEBUG` is set.
fn tracing_free_debug(message: &str) {
    if std::env::var_os("DAG_STATE_DEBUG").is_some() {
        eprintln!("dag-state: sled panicked while opening: {message}");
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "sled gave up reading its files".to_owned()
    }
}

/// Writes the format version into a new store; refuses a store written with
/// another one, and a store whose files held data sled could not read.
fn check_format_version(db: &sled::Db, dir: &Path, had_data: bool) -> Result<(), StateError> {
    let expected = FORMAT_VERSION.to_string();
    match db.get(FORMAT_VERSION_KEY)? {
        None if had_data => Err(StateError::Damaged {
            path: dir.to_path_buf(),
            detail: "its files hold no readable records (no format version)".into(),
        }),
        None => {
            db.insert(FORMAT_VERSION_KEY, expected.as_bytes())?;
            db.flush()?;
            Ok(())
        }
        Some(found) if found == expected.as_bytes() => Ok(()),
        Some(found) => Err(StateError::FormatVersion {
            path: dir.to_path_buf(),
            found: String::from_utf8_lossy(&found).into_owned(),
            expected: FORMAT_VERSION,
        }),
    }
}

/// Test support: overwrite the stored format version.
#[cfg(test)]
pub(crate) fn set_format_version(db: &sled::Db, version: &str) -> Result<(), StateError> {
    db.insert(FORMAT_VERSION_KEY, version.as_bytes())?;
    db.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TestResult, run};
    use crate::{RunStatus, Store, Write};

    /// A store with one committed run, closed again.
    fn closed_store_with_a_run()
    -> Result<(tempfile::TempDir, std::path::PathBuf), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state");
        let (store, _) = Store::open(&path)?;
        store.commit(vec![Write::Run(run("r1", "train", RunStatus::Succeeded))])?;
        drop(store);
        Ok((dir, path))
    }

    #[test]
    fn open_creates_missing_directories() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a").join("b").join("state");
        let (_store, report) = Store::open(&path)?;
        assert!(path.is_dir());
        assert_eq!(report, crate::OpenReport::default());
        Ok(())
    }

    #[test]
    fn second_open_in_the_same_process_is_locked() -> TestResult {
        let (_dir, path) = closed_store_with_a_run()?;
        let (_first, _) = Store::open(&path)?;
        let second = Store::open(&path);
        assert!(
            matches!(second, Err(StateError::Locked { ref path }) if path.ends_with("state")),
            "{:?}",
            second.err()
        );
        Ok(())
    }

    #[test]
    fn store_can_be_reopened_after_it_is_dropped() -> TestResult {
        let (_dir, path) = closed_store_with_a_run()?;
        let (store, _) = Store::open(&path)?;
        assert!(store.run("r1")?.is_some());
        Ok(())
    }

    #[test]
    fn other_format_version_is_refused_with_both_versions_named() -> TestResult {
        let (_dir, path) = closed_store_with_a_run()?;
        {
            let (store, _) = Store::open(&path)?;
            set_format_version(&store.db, "999")?;
        }
        match Store::open(&path) {
            Err(StateError::FormatVersion {
                found, expected, ..
            }) => {
                assert_eq!(found, "999");
                assert_eq!(expected, FORMAT_VERSION);
            }
            other => panic!("expected a format version error, got {:?}", other.err()),
        }
        Ok(())
    }

    fn damage(path: &Path, how: &str) -> TestResult {
        let garbage: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let log = path.join(SLED_LOG_FILE);
        let conf = path.join("conf");
        match how {
            "log replaced by garbage" => std::fs::write(&log, &garbage)?,
            "log zeroed" => std::fs::write(&log, vec![0u8; 4096])?,
            "log cut in half" => {
                let bytes = std::fs::read(&log)?;
                std::fs::write(&log, &bytes[..bytes.len() / 2])?;
            }
            "log bits flipped" => {
                let mut bytes = std::fs::read(&log)?;
                bytes
                    .iter_mut()
                    .skip(20)
                    .step_by(7)
                    .for_each(|byte| *byte ^= 0x5a);
                std::fs::write(&log, &bytes)?;
            }
            "config replaced by garbage" => std::fs::write(&conf, &garbage[..62])?,
            "everything replaced by garbage" => {
                std::fs::write(&log, &garbage)?;
                std::fs::write(&conf, &garbage[7..90])?;
            }
            "log is a directory" => {
                std::fs::remove_file(&log)?;
                std::fs::create_dir(&log)?;
            }
            _ => return Err(format!("unknown damage `{how}`").into()),
        }
        Ok(())
    }

    #[test]
    fn damaged_files_give_an_error_not_a_panic_or_an_empty_store() -> TestResult {
        for how in [
            "log replaced by garbage",
            "log zeroed",
            "log bits flipped",
            "config replaced by garbage",
            "everything replaced by garbage",
            "log is a directory",
        ] {
            let (_dir, path) = closed_store_with_a_run()?;
            damage(&path, how)?;
            let result = Store::open(&path);
            assert!(
                matches!(
                    result,
                    Err(StateError::Damaged { .. } | StateError::Open { .. })
                ),
                "{how}: {:?}",
                result.map(|(store, _)| store.run("r1").map(|run| run.is_some()))
            );
        }
        Ok(())
    }

    /// A log cut short is what a crash mid-write looks like: sled replays the
    /// records before the cut, which is a consistent earlier state.
    #[test]
    fn log_cut_short_opens_as_a_usable_earlier_state() -> TestResult {
        let (_dir, path) = closed_store_with_a_run()?;
        damage(&path, "log cut in half")?;
        let (store, _) = Store::open(&path)?;
        store.commit(vec![Write::Run(run("r2", "train", RunStatus::Succeeded))])?;
        assert!(store.run("r2")?.is_some());
        Ok(())
    }

    #[test]
    fn store_reopens_right_after_being_dropped() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state");
        for index in 0..40 {
            let (store, _) = Store::open(&path)?;
            let id = format!("r{index}");
            store.commit(vec![Write::Run(run(&id, "train", RunStatus::Succeeded))])?;
        }
        let (store, _) = Store::open(&path)?;
        assert_eq!(store.runs(None, 100)?.len(), 40);
        Ok(())
    }
}
