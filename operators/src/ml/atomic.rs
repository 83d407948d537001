//! Atomic file writes: a temp file in the target's directory, then a rename,
//! so a killed process never leaves a half-written artifact behind.

use std::io::Write;
use std::path::Path;

use crate::ml::MlError;
use crate::table::TableError;
use crate::table::atomic::write_atomically;

/// Writes `bytes` to `path` atomically (see [`write_atomically`]). The parent
/// directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MlError> {
    write_atomically(path, |file| {
        file.write_all(bytes).map_err(|source| TableError::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })
    })?;
    Ok(())
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
