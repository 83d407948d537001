//! [`DigestMemo`]: a file's digest reused while the file is unchanged on
//! disk, judged by its [`FileStamp`] (size, mtime, ctime, inode, device), the
//! way git and DVC judge their working trees without reading them. Entries
//! live in the state store's `file_digests` tree.
//!
//! Two rules keep a reused digest honest:
//! - The stamp is taken from the open file before and after reading it; a
//!   digest is remembered only when both agree, so a file written while it
//!   was read is never remembered with the wrong content.
//! - A file changed less than [`SETTLE`] ago is hashed but not remembered.
//!   File times have a granularity (a few milliseconds on ext4, 2 s on FAT),
//!   and a second write within the same tick would leave the stamp as it
//!   was. Once a file has been quiet that long, any later write moves its
//!   times.
//!
//! The memo is advisory: if the store cannot be read or written, files are
//! hashed as if it were empty. Without Unix metadata (no inode) every file
//! is hashed.

use std::fs::Metadata;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dag_state::{FileStamp, Store};

use super::file_digest::{hash_file, hash_open, open_regular};

/// How long a file must have been left alone before its digest is remembered.
pub const SETTLE: Duration = Duration::from_secs(2);

/// Hashes files, reusing remembered digests of unchanged ones.
#[derive(Clone, Copy)]
pub struct DigestMemo<'a> {
    store: Option<&'a Store>,
}

impl<'a> DigestMemo<'a> {
    /// A memo kept in `store`.
    pub fn new(store: &'a Store) -> Self {
        Self { store: Some(store) }
    }

    /// Hashes every file, remembering nothing.
    pub fn disabled() -> Self {
        Self { store: None }
    }

    /// blake3 hex digest and size of the file at `path`: the remembered
    /// digest when the file's stamp is the one it had then, else read.
    pub fn hash(&self, path: &Path) -> io::Result<(String, u64)> {
        let Some(store) = self.store else {
            return hash_file(path);
        };
        if let Some(stamp) = file_stamp(&std::fs::metadata(path)?) {
            match store.known_digest(path) {
                Ok(Some(known)) if known.stamp == stamp => return Ok((known.digest, stamp.size)),
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(path = %path.display(), error = %error, "digest memo unreadable");
                }
            }
        }
        let file = open_regular(path)?;
        let before = file.metadata()?;
        let (digest, size) = hash_open(&file)?;
        let after = file.metadata()?;
        if let (Some(before), Some(after)) = (file_stamp(&before), file_stamp(&after))
            && before == after
            && settled(&before, SystemTime::now())
            && let Err(error) = store.remember_digest(path, before, &digest)
        {
            tracing::debug!(path = %path.display(), error = %error, "digest memo not written");
        }
        Ok((digest, size))
    }
}

/// The stamp of a regular file; `None` for anything else, or where the
/// platform has no inode numbers.
#[cfg(unix)]
fn file_stamp(metadata: &Metadata) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    if !metadata.is_file() {
        return None;
    }
    let nanos = |seconds: i64, nanoseconds: i64| {
        seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(nanoseconds)
    };
    Some(FileStamp {
        size: metadata.size(),
        mtime_ns: nanos(metadata.mtime(), metadata.mtime_nsec()),
        ctime_ns: nanos(metadata.ctime(), metadata.ctime_nsec()),
        inode: metadata.ino(),
        device: metadata.dev(),
    })
}

#[cfg(not(unix))]
fn file_stamp(_metadata: &Metadata) -> Option<FileStamp> {
    None
}

/// Whether the file's last change is at least [`SETTLE`] before `now`.
fn settled(stamp: &FileStamp, now: SystemTime) -> bool {
    let Ok(now) = now.duration_since(UNIX_EPOCH) else {
        return false;
    };
    let now = i64::try_from(now.as_nanos()).unwrap_or(i64::MAX);
    let settle = i64::try_from(SETTLE.as_nanos()).unwrap_or(i64::MAX);
    let changed = stamp.mtime_ns.max(stamp.ctime_ns);
    now.saturating_sub(changed) >= settle
}

#[cfg(test)]
mod tests {
    use std::fs::FileTimes;
    use std::time::Duration;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn blake3_hex(bytes: &[u8]) -> String {
        blake3::hash(bytes).to_hex().to_string()
    }

    /// Writes `bytes` and sets the file's mtime an hour back, so that its
    /// digest may be remembered. Setting the mtime changes the ctime, which
    /// is why the memo also needs the ctime to be settled: these tests
    /// only reach the memo after waiting for it.
    fn write_old(path: &Path, bytes: &[u8], mtime: SystemTime) -> io::Result<()> {
        std::fs::write(path, bytes)?;
        std::fs::File::options()
            .write(true)
            .open(path)?
            .set_times(FileTimes::new().set_modified(mtime))
    }

    fn memo_store(dir: &Path) -> Result<Store, dag_state::StateError> {
        Store::open(&dir.join("db")).map(|(store, _)| store)
    }

    #[test]
    fn a_digest_is_reused_while_size_times_and_inode_are_unchanged() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = memo_store(dir.path())?;
        let path = dir.path().join("raw.csv");
        std::fs::write(&path, b"a,b\n1,2\n")?;
        let metadata = std::fs::metadata(&path)?;
        let stamp = file_stamp(&metadata).ok_or("no stamp")?;
        // A stand-in digest no file hashes to: if it comes back, the file
        // was not read.
        store.remember_digest(&path, stamp, "remembered")?;
        let memo = DigestMemo::new(&store);
        assert_eq!(memo.hash(&path)?, ("remembered".to_owned(), 8));
        assert_eq!(
            DigestMemo::disabled().hash(&path)?.0,
            blake3_hex(b"a,b\n1,2\n")
        );
        Ok(())
    }

    #[test]
    fn a_stamp_that_differs_in_any_field_means_the_file_is_read_again() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = memo_store(dir.path())?;
        let path = dir.path().join("raw.csv");
        std::fs::write(&path, b"a,b\n1,2\n")?;
        let stamp = file_stamp(&std::fs::metadata(&path)?).ok_or("no stamp")?;
        let memo = DigestMemo::new(&store);
        let variants = [
            (
                "size",
                FileStamp {
                    size: stamp.size + 1,
                    ..stamp.clone()
                },
            ),
            (
                "mtime",
                FileStamp {
                    mtime_ns: stamp.mtime_ns - 1,
                    ..stamp.clone()
                },
            ),
            (
                "ctime",
                FileStamp {
                    ctime_ns: stamp.ctime_ns - 1,
                    ..stamp.clone()
                },
            ),
            (
                "inode",
                FileStamp {
                    inode: stamp.inode + 1,
                    ..stamp.clone()
                },
            ),
            (
                "device",
                FileStamp {
                    device: stamp.device + 1,
                    ..stamp.clone()
                },
            ),
        ];
        for (field, remembered) in variants {
            store.remember_digest(&path, remembered, "remembered")?;
            assert_eq!(
                memo.hash(&path)?.0,
                blake3_hex(b"a,b\n1,2\n"),
                "a different {field} must not reuse the digest"
            );
        }
        Ok(())
    }

    #[test]
    fn content_changed_with_the_same_size_and_a_restored_mtime_is_read_again() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = memo_store(dir.path())?;
        let path = dir.path().join("raw.csv");
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        write_old(&path, b"a,b\n1,2\n", an_hour_ago)?;
        let stamp = file_stamp(&std::fs::metadata(&path)?).ok_or("no stamp")?;
        store.remember_digest(&path, stamp.clone(), "remembered")?;
        // Rewritten in place (same inode, same size), mtime put back: only
        // the ctime, which no process can set, tells.
        std::thread::sleep(Duration::from_millis(20));
        write_old(&path, b"a,b\n3,4\n", an_hour_ago)?;
        let now = file_stamp(&std::fs::metadata(&path)?).ok_or("no stamp")?;
        assert_eq!(
            (now.size, now.mtime_ns, now.inode),
            (stamp.size, stamp.mtime_ns, stamp.inode)
        );
        let memo = DigestMemo::new(&store);
        assert_eq!(memo.hash(&path)?.0, blake3_hex(b"a,b\n3,4\n"));
        Ok(())
    }

    #[test]
    fn only_settled_files_are_remembered() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = memo_store(dir.path())?;
        let memo = DigestMemo::new(&store);
        let fresh = dir.path().join("fresh.csv");
        std::fs::write(&fresh, b"new")?;
        assert_eq!(memo.hash(&fresh)?.0, blake3_hex(b"new"));
        assert_eq!(store.known_digest(&fresh)?, None);

        let stamp = FileStamp {
            size: 3,
            mtime_ns: 0,
            ctime_ns: 0,
            inode: 1,
            device: 1,
        };
        assert!(settled(&stamp, SystemTime::now()));
        let just_now = FileStamp {
            ctime_ns: i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos())?,
            ..stamp
        };
        assert!(!settled(&just_now, SystemTime::now()));
        assert!(settled(&just_now, SystemTime::now() + SETTLE));
        Ok(())
    }

    #[test]
    fn a_settled_file_is_remembered_and_then_served_from_the_memo() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = memo_store(dir.path())?;
        let path = dir.path().join("old.csv");
        write_old(&path, b"old", SystemTime::now() - Duration::from_secs(3600))?;
        // Setting the mtime just moved the ctime; wait until that settles.
        std::thread::sleep(SETTLE + Duration::from_millis(50));
        let memo = DigestMemo::new(&store);
        assert_eq!(memo.hash(&path)?.0, blake3_hex(b"old"));
        let known = store.known_digest(&path)?.ok_or("not remembered")?;
        assert_eq!(known.digest, blake3_hex(b"old"));
        assert_eq!(known.stamp.size, 3);
        Ok(())
    }
}
