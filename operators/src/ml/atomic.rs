//! Atomic file writes: a temp file in the target's directory, then a rename,
//! so a killed process never leaves a half-written artifact behind.

use std::io::Write;
use std::path::Path;

use crate::ml::MlError;

/// Writes `bytes` to `path` atomically. The parent directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MlError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| MlError::io("create a temp file in", dir, e))?;
    temp.write_all(bytes)
        .map_err(|e| MlError::io("write", path, e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| MlError::io("sync", path, e))?;
    temp.persist(path)
        .map_err(|e| MlError::io("replace", path, e.error))?;
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
