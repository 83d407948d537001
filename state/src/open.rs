//! Opening the sled database: the directory, the single-process lock, damaged
//! files, and the format version. Repair of what a dead process left behind
//! is `recovery`'s job, not this module's.

use std::io::ErrorKind;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use crate::trees::{TreeId, Trees};
use crate::{FORMAT_VERSION, StateError};

const FORMAT_VERSION_KEY: &[u8] = b"format_version";

/// Opens sled in `dir`, creating the directory if needed.
pub(crate) fn open_db(dir: &Path) -> Result<sled::Db, StateError> {
    let path = dir.to_path_buf();
    std::fs::create_dir_all(dir).map_err(|error| StateError::Open {
        path: path.clone(),
        source: sled::Error::Io(error),
    })?;
    let config = sled::Config::new().path(dir);
    // sled 0.34 asserts on some shapes of damaged files instead of returning
    // an error; a damaged store must be a clean error, not a crash.
    match catch_unwind(AssertUnwindSafe(|| config.open())) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(error)) if is_lock_failure(&error) => Err(StateError::Locked { path }),
        Ok(Err(source)) => Err(StateError::Open { path, source }),
        Err(panic) => Err(StateError::Damaged {
            path,
            detail: panic_message(panic.as_ref()),
        }),
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
/// another one.
pub(crate) fn check_format_version(trees: &Trees, dir: &Path) -> Result<(), StateError> {
    let meta = trees.get(TreeId::Meta);
    let expected = FORMAT_VERSION.to_string();
    match meta.get(FORMAT_VERSION_KEY)? {
        None => {
            meta.insert(FORMAT_VERSION_KEY, expected.as_bytes())?;
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
pub(crate) fn set_format_version(trees: &Trees, version: &str) -> Result<(), StateError> {
    trees
        .get(TreeId::Meta)
        .insert(FORMAT_VERSION_KEY, version.as_bytes())?;
    Ok(())
}
