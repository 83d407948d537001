//! [`RegistryLock`]: an exclusive advisory lock (`flock`) on the registry's
//! lock file, held for the duration of one operation so that two processes
//! never interleave their writes. Released when dropped (or the process dies).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::models::RegistryError;

pub struct RegistryLock {
    _file: File,
}

impl RegistryLock {
    /// Blocks until the lock on `path` is held.
    pub fn acquire(path: &Path) -> Result<Self, RegistryError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| RegistryError::io("open lock file", path, e))?;
        loop {
            // SAFETY: `flock` only reads the descriptor, which `file` keeps open.
            let status = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if status == 0 {
                return Ok(Self { _file: file });
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(RegistryError::io("lock", path, error));
            }
        }
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn second_holder_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = RegistryLock::acquire(&path).unwrap();
        let acquired = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&acquired);
        let path2 = path.clone();
        let waiter = std::thread::spawn(move || {
            let _second = RegistryLock::acquire(&path2).unwrap();
            flag.store(true, Ordering::SeqCst);
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!acquired.load(Ordering::SeqCst));
        drop(first);
        waiter.join().unwrap();
        assert!(acquired.load(Ordering::SeqCst));
    }
}
