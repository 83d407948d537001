//! Atomic file replacement: write to a temporary file in the target's
//! directory, sync it, rename it over the target. A killed process leaves
//! either the old file or the new one, never a half-written one (a stray
//! temporary file at worst, named `.<file>.<pid>.tmp`).
//!
//! It does not lock: two writers of the same path race, and the last
//! rename wins.

use std::fs::File;
use std::path::Path;

use super::TableError;

/// Runs `write` on a temporary file next to `path`, then renames it into
/// place; on failure the temporary file is removed and `path` is untouched.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> Result<(), TableError>,
) -> Result<(), TableError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("table");
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let io = |action, source| TableError::Io {
        action,
        path: temporary.clone(),
        source,
    };
    let result = File::create(&temporary)
        .map_err(|source| io("create", source))
        .and_then(|mut file| {
            write(&mut file)?;
            file.sync_all().map_err(|source| io("sync", source))
        });
    let result = result.and_then(|()| {
        std::fs::rename(&temporary, path).map_err(|source| TableError::Io {
            action: "replace",
            path: path.into(),
            source,
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use std::io::Write;

    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, "old").unwrap();
        let result = write_atomically(&path, |file| {
            file.write_all(b"half").unwrap();
            Err(TableError::Empty { path: path.clone() })
        });
        assert!(result.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
