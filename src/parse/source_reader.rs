//! [`SourceReader`]: how DAG files and their includes are read from disk —
//! only regular files, only so many bytes, and includes only from inside
//! the project or the including DAG's own directory.
//!
//! An include may be written by someone else (a shared DAG directory, a
//! file dropped into a watched `dags/`), so nothing it names is opened
//! before it is known to be a regular file inside an allowed root: a FIFO
//! would block the reader forever, a device never ends, and a file outside
//! the project (`/etc/shadow`) must never be read, let alone quoted in a
//! diagnostic.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a DAG file or an include was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("it is {0}, not a regular file")]
    NotAFile(&'static str),
    #[error("it is larger than {} bytes", .0)]
    TooLarge(u64),
    #[error("it is outside {}", describe_roots(.0))]
    Outside(Vec<PathBuf>),
}

impl ReadError {
    /// The diagnostic code of this refusal, for the main file or an include.
    pub fn code(&self, include: bool) -> &'static str {
        match (self, include) {
            (Self::TooLarge(_), _) => "dag::file_too_large",
            (Self::NotAFile(_) | Self::Outside(_), true) => "dag::include_refused",
            (Self::Io(_), true) => "dag::include_failed",
            (_, false) => "dag::unreadable",
        }
    }
}

fn describe_roots(roots: &[PathBuf]) -> String {
    let names: Vec<String> = roots
        .iter()
        .map(|root| format!("`{}`", root.display()))
        .collect();
    match names.as_slice() {
        [] => "every allowed directory".to_string(),
        [one] => one.clone(),
        _ => format!(
            "{} and {}",
            names[..names.len() - 1].join(", "),
            names[names.len() - 1]
        ),
    }
}

/// Reads the DAG file first, then its includes (the order
/// [`load_dag`](super::load_dag) asks for them).
#[derive(Debug, Clone)]
pub struct SourceReader {
    /// Directories includes must be inside (canonical).
    roots: Vec<PathBuf>,
    /// Whether the DAG file itself must be inside `roots` too.
    confine_main: bool,
    max_file_bytes: u64,
    /// Set once the DAG file has been read: later reads are includes.
    read_main: bool,
}

impl SourceReader {
    /// Includes may come from `project` (the directory `dag` runs in) or
    /// from the DAG file's own directory; the DAG file may be anywhere.
    pub fn new(project: &Path, max_file_bytes: u64) -> Self {
        Self {
            roots: std::fs::canonicalize(project).into_iter().collect(),
            confine_main: false,
            max_file_bytes,
            read_main: false,
        }
    }

    /// Everything read, the DAG file included, must be inside `root`: what
    /// a daemon reads on behalf of a client.
    pub fn confined(root: &Path, max_file_bytes: u64) -> Self {
        Self {
            confine_main: true,
            ..Self::new(root, max_file_bytes)
        }
    }

    /// Reads `path` as UTF-8 text: the DAG file on the first call, an
    /// include afterwards.
    pub fn read(&mut self, path: &Path) -> Result<String, ReadError> {
        let real = std::fs::canonicalize(path)?;
        let is_main = !self.read_main;
        if (!is_main || self.confine_main) && !self.roots.iter().any(|root| real.starts_with(root))
        {
            return Err(ReadError::Outside(self.roots.clone()));
        }
        let text = read_regular_file(&real, self.max_file_bytes)?;
        if is_main {
            self.read_main = true;
            if !self.confine_main
                && let Some(dir) = real.parent()
            {
                self.roots.push(dir.to_path_buf());
            }
        }
        Ok(text)
    }
}

/// Reads a regular file of at most `limit` bytes. The file is opened
/// without blocking and checked through the open descriptor, so a FIFO or
/// a device swapped in after a check is still refused, never read.
pub fn read_regular_file(path: &Path, limit: u64) -> Result<String, ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotAFile(if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_dir() {
            "a directory"
        } else {
            "special"
        }));
    }
    read_at_most(file, limit)
}

fn read_at_most(file: File, limit: u64) -> Result<String, ReadError> {
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    String::from_utf8(bytes).map_err(|_| {
        ReadError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "it is not UTF-8 text",
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn mkfifo(path: &Path) -> TestResult {
        let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
        // SAFETY: `name` is a valid NUL-terminated path for the call's duration.
        let status = unsafe { libc::mkfifo(name.as_ptr(), 0o600) };
        if status != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(())
    }

    #[test]
    fn fifos_and_devices_are_refused_without_blocking_or_reading() -> TestResult {
        let dir = tempfile::tempdir()?;
        let fifo = dir.path().join("pipe.yaml");
        mkfifo(&fifo)?;
        let error = read_regular_file(&fifo, 1024).expect_err("a FIFO");
        assert!(matches!(error, ReadError::NotAFile("a FIFO")), "{error:?}");
        let error = read_regular_file(Path::new("/dev/zero"), 1024).expect_err("a device");
        assert!(
            matches!(error, ReadError::NotAFile("a device")),
            "{error:?}"
        );
        Ok(())
    }

    #[test]
    fn files_over_the_limit_are_refused_and_at_the_limit_read() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, "x".repeat(100))?;
        assert_eq!(read_regular_file(&path, 100)?.len(), 100);
        let error = read_regular_file(&path, 99).expect_err("one byte over");
        assert!(matches!(error, ReadError::TooLarge(99)), "{error:?}");
        Ok(())
    }

    #[test]
    fn includes_stay_inside_the_project_or_the_dags_own_directory() -> TestResult {
        let project = tempfile::tempdir()?;
        let elsewhere = tempfile::tempdir()?;
        let outside = elsewhere.path().join("secret.yaml");
        std::fs::write(&outside, "secret")?;
        let sibling = elsewhere.path().join("sibling.yaml");
        std::fs::write(&sibling, "name: s")?;
        let inside = project.path().join("inside.yaml");
        std::fs::write(&inside, "name: i")?;
        let link = project.path().join("link.yaml");
        std::os::unix::fs::symlink(&outside, &link)?;

        // A DAG file inside the project: includes inside it are read, a
        // file elsewhere (or a symlink to one) is not.
        let mut reader = SourceReader::new(project.path(), 1024);
        assert_eq!(reader.read(&inside)?, "name: i");
        assert_eq!(reader.read(&inside)?, "name: i");
        for refused in [&outside, &link] {
            let error = reader.read(refused).expect_err("outside");
            assert!(matches!(error, ReadError::Outside(_)), "{error:?}");
            assert!(!error.to_string().contains("secret"), "{error}");
        }
        // A DAG file elsewhere may include its own siblings.
        let mut reader = SourceReader::new(project.path(), 1024);
        reader.read(&outside)?;
        assert_eq!(reader.read(&sibling)?, "name: s");

        // Confined: the DAG file itself must be inside the root.
        let mut reader = SourceReader::confined(project.path(), 1024);
        assert!(matches!(reader.read(&outside), Err(ReadError::Outside(_))));
        let mut reader = SourceReader::confined(project.path(), 1024);
        assert_eq!(reader.read(&inside)?, "name: i");
        Ok(())
    }
}
