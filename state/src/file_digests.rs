//! The `file_digests` tree: the digest each file had the last time it was
//! hashed, with the [`FileStamp`] it had then, so that an unchanged file
//! (same size, times, inode and device) need not be read again.
//!
//! This is a cache, not history: entries are written one by one, outside
//! [`Store::commit`]'s transaction and without a flush of their own (the
//! next commit, or sled's periodic flush, makes them durable). Losing an
//! entry costs one rehash, never a wrong answer. Deciding when a stamp is
//! trustworthy (a file written a moment ago may change again within the
//! same timestamp tick) is the caller's job.

use std::path::{Path, PathBuf};

use crate::trees::TreeId;
use crate::{FileStamp, KnownDigest, StateError, Store, codec};

impl Store {
    /// The digest recorded for the file at `path` (absolute), if any.
    pub fn known_digest(&self, path: &Path) -> Result<Option<KnownDigest>, StateError> {
        self.record(TreeId::FileDigests, path_key(path))
    }

    /// Records the digest of the file at `path` (absolute) as it was when
    /// `stamp` was taken, replacing any earlier entry.
    pub fn remember_digest(
        &self,
        path: &Path,
        stamp: FileStamp,
        digest: &str,
    ) -> Result<(), StateError> {
        let key = path_key(path);
        let known = KnownDigest {
            stamp,
            digest: digest.to_owned(),
        };
        let value = codec::encode(TreeId::FileDigests.name(), key, &known)?;
        self.trees.get(TreeId::FileDigests).insert(key, value)?;
        Ok(())
    }

    /// Drops the entry for `path`; true if there was one.
    pub fn forget_digest(&self, path: &Path) -> Result<bool, StateError> {
        let removed = self.trees.get(TreeId::FileDigests).remove(path_key(path))?;
        Ok(removed.is_some())
    }

    /// Every path with a recorded digest, in byte order.
    pub fn known_digest_paths(&self) -> Result<Vec<PathBuf>, StateError> {
        self.trees
            .get(TreeId::FileDigests)
            .iter()
            .keys()
            .map(|key| {
                let key = key?;
                let text = codec::decode_text(TreeId::FileDigests.name(), &key, &key)?;
                Ok(PathBuf::from(text))
            })
            .collect()
    }
}

/// Paths are keyed by their bytes. Non-UTF-8 paths are stored too; listing
/// them back is refused as a corrupt key rather than guessed at.
fn path_key(path: &Path) -> &[u8] {
    path.as_os_str().as_encoded_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TestResult, temp_store};

    fn stamp(size: u64) -> FileStamp {
        FileStamp {
            size,
            mtime_ns: 1_700_000_000_000_000_000,
            ctime_ns: 1_700_000_000_000_000_001,
            inode: 42,
            device: 7,
        }
    }

    #[test]
    fn remembered_digest_comes_back_with_its_stamp_and_can_be_forgotten() -> TestResult {
        let (_dir, store) = temp_store()?;
        let path = Path::new("/project/data/raw.csv");
        assert_eq!(store.known_digest(path)?, None);
        store.remember_digest(path, stamp(10), "aa")?;
        store.remember_digest(path, stamp(11), "bb")?;
        assert_eq!(
            store.known_digest(path)?,
            Some(KnownDigest {
                stamp: stamp(11),
                digest: "bb".into()
            })
        );
        assert_eq!(store.known_digest_paths()?, vec![path.to_path_buf()]);
        assert!(store.forget_digest(path)?);
        assert!(!store.forget_digest(path)?);
        assert_eq!(store.known_digest(path)?, None);
        Ok(())
    }

    #[test]
    fn remembered_digests_survive_a_reopen_after_a_commit() -> TestResult {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("state");
        let path = Path::new("/project/model.json");
        {
            let (store, _) = Store::open(&db)?;
            store.remember_digest(path, stamp(3), "cc")?;
            store.commit(vec![crate::Write::Run(crate::test_support::run(
                "r1",
                "d",
                crate::RunStatus::Succeeded,
            ))])?;
        }
        let (store, _) = Store::open(&db)?;
        assert_eq!(
            store.known_digest(path)?.map(|known| known.digest),
            Some("cc".to_owned())
        );
        Ok(())
    }
}
