//! blake3 digests of files, streamed. `update_reader` reads in blocks large
//! enough for blake3's SIMD code to hash many chunks at once (a plain
//! `io::copy` feeds it 8 KiB at a time).

use std::fs::File;
use std::io;
use std::path::Path;

/// blake3 hex digest and size of the regular file at `path`.
pub fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    hash_open(&open_regular(path)?)
}

/// Opens `path` for reading if it is a regular file. The open does not
/// block and the type is checked on the open descriptor, so a FIFO (which
/// would block a reader forever) or a device (which never ends) is an
/// error, never read.
pub fn open_regular(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{}` is not a regular file", path.display()),
        ))
    }
}

/// blake3 hex digest and size of the rest of an open file.
pub fn hash_open(mut file: &File) -> io::Result<(String, u64)> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(&mut file)?;
    Ok((hasher.finalize().to_hex().to_string(), hasher.count()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_and_size_match_hashing_the_bytes_in_memory() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("data.bin");
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes)?;
        let (digest, size) = hash_file(&path)?;
        assert_eq!(digest, blake3::hash(&bytes).to_hex().to_string());
        assert_eq!(size, 300_000);
        Ok(())
    }

    #[test]
    fn devices_are_refused_not_read() {
        let error = hash_file(Path::new("/dev/zero")).err();
        assert_eq!(error.map(|e| e.kind()), Some(io::ErrorKind::InvalidInput));
    }

    #[test]
    fn a_missing_file_is_a_not_found_error() {
        let error = hash_file(Path::new("/nonexistent/dag/file")).err();
        assert_eq!(error.map(|e| e.kind()), Some(io::ErrorKind::NotFound));
    }
}
