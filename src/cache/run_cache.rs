//! [`RunCache`]: content-addressed copies of task outputs, at
//! `<state_dir>/cache/<first 2 hex>/<blake3 hex>`, so that a task whose
//! outputs were deleted or overwritten can get them back instead of running.
//!
//! Every file arrives by copy into a temporary file in the destination's
//! directory and a rename, hashed on the way: an entry is written only if
//! its bytes have the digest it is named after, and an output is restored
//! only if the entry still has it. A corrupt entry is removed when found.
//! Entries are read-only and never hard-linked to outputs, so editing an
//! output in place cannot change the cache. Nothing is fsynced: a crash can
//! leave a damaged entry, which the digest check catches.
//!
//! Which entries are still wanted is [`super::gc`]'s business.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use dag_state::Store;

use super::restore_journal::RestoreJournal;

/// Why the run cache could not store or restore a file.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("`{digest}` is not a blake3 hex digest")]
    InvalidDigest { digest: String },
    #[error("the run cache has no entry {digest}")]
    Missing { digest: String },
    #[error(
        "the run cache entry `{}` is corrupt (its bytes hash to {found}); it was removed",
        path.display()
    )]
    Corrupt { path: PathBuf, found: String },
    #[error("`{}` changed while it was being copied into the run cache", path.display())]
    Changed { path: PathBuf },
    #[error("cannot {action} `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl CacheError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

/// One file in the cache directory: an entry, or a temporary file a dead
/// process left behind (`digest` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub digest: Option<String>,
    pub path: PathBuf,
    pub size: u64,
}

/// An output to restore: where it goes and the digest it must have.
#[derive(Debug, Clone)]
pub struct Restore {
    pub digest: String,
    pub destination: PathBuf,
}

#[derive(Debug, Clone)]
pub struct RunCache {
    root: PathBuf,
}

/// Distinguishes temporary files of concurrent copies within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);
pub(super) const TEMP_SUFFIX: &str = ".tmp";

impl RunCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache of the state directory `store` lives in: `cache/` beside
    /// the store's own directory, so cache entries and the records that
    /// reference them always go together.
    pub fn beside(store: &Store) -> Self {
        let state_dir = store.path().parent().unwrap_or(Path::new(""));
        Self::new(state_dir.join("cache"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the entry for `digest` lives (whether or not it exists).
    pub fn entry_path(&self, digest: &str) -> Result<PathBuf, CacheError> {
        let valid = digest.len() == 64
            && digest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(CacheError::InvalidDigest {
                digest: digest.to_owned(),
            });
        }
        Ok(self.root.join(&digest[..2]).join(digest))
    }

    pub fn contains(&self, digest: &str) -> bool {
        self.entry_path(digest).is_ok_and(|path| path.is_file())
    }

    /// Copies `source`, whose digest is `digest`, into the cache. Returns
    /// whether a new entry was written (false: it was already there).
    pub fn insert(&self, source: &Path, digest: &str) -> Result<bool, CacheError> {
        let entry = self.entry_path(digest)?;
        if entry.is_file() {
            return Ok(false);
        }
        let shard = entry.parent().unwrap_or(&self.root);
        fs::create_dir_all(shard).map_err(CacheError::io("create", shard))?;
        let (temp, found) = copy_to_temp(source, &entry)?;
        if found != digest {
            remove_quietly(&temp);
            return Err(CacheError::Changed {
                path: source.to_path_buf(),
            });
        }
        let readonly = fs::metadata(&temp).map(|metadata| {
            let mut permissions = metadata.permissions();
            permissions.set_readonly(true);
            permissions
        });
        if let Ok(permissions) = readonly {
            // Read-only is a guard against accidents, not a requirement.
            let _ = fs::set_permissions(&temp, permissions);
        }
        rename(&temp, &entry)?;
        Ok(true)
    }

    /// Copies each entry to its destination, creating parent directories.
    /// Every copy is verified before any destination is replaced, so a
    /// missing or corrupt entry leaves every output as it was. A corrupt
    /// entry is removed.
    pub fn restore(&self, outputs: &[Restore]) -> Result<(), CacheError> {
        // Names where temporary files go, so a kill cannot leave them for good.
        let destinations: Vec<&Path> = outputs.iter().map(|o| o.destination.as_path()).collect();
        let _journal = RestoreJournal::start(&self.root, &destinations)
            .map_err(CacheError::io("write a restore journal in", &self.root))?;
        let mut staged: Vec<(PathBuf, &Path)> = Vec::with_capacity(outputs.len());
        let result = self.stage(outputs, &mut staged);
        if let Err(error) = result {
            for (temp, _) in &staged {
                remove_quietly(temp);
            }
            return Err(error);
        }
        for (index, (temp, destination)) in staged.iter().enumerate() {
            if let Err(error) = rename(temp, destination) {
                for (temp, _) in &staged[index..] {
                    remove_quietly(temp);
                }
                return Err(error);
            }
        }
        Ok(())
    }

    fn stage<'a>(
        &self,
        outputs: &'a [Restore],
        staged: &mut Vec<(PathBuf, &'a Path)>,
    ) -> Result<(), CacheError> {
        for output in outputs {
            let entry = self.entry_path(&output.digest)?;
            if !entry.is_file() {
                return Err(CacheError::Missing {
                    digest: output.digest.clone(),
                });
            }
            if let Some(parent) = output.destination.parent() {
                fs::create_dir_all(parent).map_err(CacheError::io("create", parent))?;
            }
            let (temp, found) = copy_to_temp(&entry, &output.destination)?;
            staged.push((temp, &output.destination));
            if found != output.digest {
                remove_quietly(&entry);
                return Err(CacheError::Corrupt { path: entry, found });
            }
        }
        Ok(())
    }

    /// Every entry and leftover temporary file, sorted by path. A missing
    /// cache directory is an empty cache; files that are neither are not
    /// listed (they are not the cache's to judge).
    pub fn entries(&self) -> Result<Vec<CacheEntry>, CacheError> {
        let mut entries = Vec::new();
        let shards = match fs::read_dir(&self.root) {
            Ok(shards) => shards,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(entries),
            Err(error) => return Err(CacheError::io("list", &self.root)(error)),
        };
        for shard in shards {
            let shard = shard.map_err(CacheError::io("list", &self.root))?.path();
            if !shard.is_dir() {
                continue;
            }
            for file in fs::read_dir(&shard).map_err(CacheError::io("list", &shard))? {
                let file = file.map_err(CacheError::io("list", &shard))?;
                let path = file.path();
                let metadata = file.metadata().map_err(CacheError::io("inspect", &path))?;
                if !metadata.is_file() {
                    continue;
                }
                let name = file.file_name().to_string_lossy().into_owned();
                let digest = if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
                    None
                } else if self
                    .entry_path(&name)
                    .is_ok_and(|expected| expected == path)
                {
                    Some(name)
                } else {
                    continue;
                };
                entries.push(CacheEntry {
                    digest,
                    path,
                    size: metadata.len(),
                });
            }
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }

    /// Deletes an entry, and its shard directory once empty.
    pub fn remove(&self, entry: &CacheEntry) -> Result<(), CacheError> {
        match fs::remove_file(&entry.path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(CacheError::io("remove", &entry.path)(error)),
        }
        if let Some(shard) = entry.path.parent()
            && shard != self.root
        {
            // Fails while other entries remain, which is the point.
            let _ = fs::remove_dir(shard);
        }
        Ok(())
    }
}

/// Copies `source` into a new temporary file beside `destination`, hashing
/// the bytes as they go; returns the temporary file and the digest.
fn copy_to_temp(source: &Path, destination: &Path) -> Result<(PathBuf, String), CacheError> {
    let mut reader = File::open(source).map_err(CacheError::io("open", source))?;
    let (temp, mut writer) = create_temp(destination)?;
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let copied = (|| -> Result<(), CacheError> {
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(CacheError::io("read", source)(error)),
            };
            let chunk = &buffer[..read];
            hasher.update(chunk);
            writer
                .write_all(chunk)
                .map_err(CacheError::io("write", &temp))?;
        }
    })();
    if let Err(error) = copied {
        drop(writer);
        remove_quietly(&temp);
        return Err(error);
    }
    Ok((temp, hasher.finalize().to_hex().to_string()))
}

/// `.<name>.<pid>.<n>.tmp` in `destination`'s directory, created new.
fn create_temp(destination: &Path) -> Result<(PathBuf, File), CacheError> {
    let name = destination
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let directory = destination.parent().unwrap_or(Path::new(""));
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = directory.join(format!(".{name}.{}.{n}{TEMP_SUFFIX}", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(CacheError::io("create", &temp)(error)),
        }
    }
}

fn rename(from: &Path, to: &Path) -> Result<(), CacheError> {
    fs::rename(from, to).map_err(|source| {
        remove_quietly(from);
        CacheError::Io {
            action: "replace",
            path: to.to_path_buf(),
            source,
        }
    })
}

fn remove_quietly(path: &Path) {
    let _ = fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn digest_of(bytes: &[u8]) -> String {
        blake3::hash(bytes).to_hex().to_string()
    }

    #[test]
    fn an_inserted_file_is_stored_under_its_digest_once() -> TestResult {
        let dir = tempfile::tempdir()?;
        let cache = RunCache::new(dir.path().join("cache"));
        let source = dir.path().join("model.json");
        fs::write(&source, b"{\"w\": 1}")?;
        let digest = digest_of(b"{\"w\": 1}");
        assert!(cache.insert(&source, &digest)?);
        assert!(!cache.insert(&source, &digest)?);
        let entry = dir.path().join("cache").join(&digest[..2]).join(&digest);
        assert_eq!(fs::read(&entry)?, b"{\"w\": 1}");
        assert!(cache.contains(&digest));
        let entries = cache.entries()?;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].digest.as_deref(), Some(digest.as_str()));
        assert_eq!(entries[0].size, 8);
        Ok(())
    }

    #[test]
    fn a_file_whose_bytes_do_not_match_the_digest_is_not_stored() -> TestResult {
        let dir = tempfile::tempdir()?;
        let cache = RunCache::new(dir.path().join("cache"));
        let source = dir.path().join("out.txt");
        fs::write(&source, b"changed after hashing")?;
        let result = cache.insert(&source, &digest_of(b"as hashed"));
        assert!(
            matches!(result, Err(CacheError::Changed { .. })),
            "{result:?}"
        );
        assert!(cache.entries()?.is_empty());
        Ok(())
    }

    #[test]
    fn digests_that_are_not_blake3_hex_are_refused() {
        let cache = RunCache::new("cache");
        for digest in ["", "../../etc/passwd", &"A".repeat(64), &"a".repeat(63)] {
            assert!(
                matches!(
                    cache.entry_path(digest),
                    Err(CacheError::InvalidDigest { .. })
                ),
                "{digest}"
            );
        }
    }

    #[test]
    fn restore_writes_every_output_creating_directories() -> TestResult {
        let dir = tempfile::tempdir()?;
        let cache = RunCache::new(dir.path().join("cache"));
        let mut outputs = Vec::new();
        for (name, bytes) in [("a.txt", &b"first"[..]), ("b.txt", &b"second"[..])] {
            let source = dir.path().join(name);
            fs::write(&source, bytes)?;
            cache.insert(&source, &digest_of(bytes))?;
            outputs.push(Restore {
                digest: digest_of(bytes),
                destination: dir.path().join("restored/deep").join(name),
            });
        }
        cache.restore(&outputs)?;
        assert_eq!(fs::read(dir.path().join("restored/deep/a.txt"))?, b"first");
        assert_eq!(fs::read(dir.path().join("restored/deep/b.txt"))?, b"second");
        // Restored outputs are ordinary, writable files.
        let permissions = fs::metadata(dir.path().join("restored/deep/a.txt"))?.permissions();
        assert!(!permissions.readonly());
        Ok(())
    }

    #[test]
    fn a_corrupt_entry_is_removed_and_no_output_is_touched() -> TestResult {
        let dir = tempfile::tempdir()?;
        let cache = RunCache::new(dir.path().join("cache"));
        let good = dir.path().join("good.txt");
        let bad = dir.path().join("bad.txt");
        fs::write(&good, b"good")?;
        fs::write(&bad, b"bad!")?;
        cache.insert(&good, &digest_of(b"good"))?;
        cache.insert(&bad, &digest_of(b"bad!"))?;
        let entry = cache.entry_path(&digest_of(b"bad!"))?;
        let mut permissions = fs::metadata(&entry)?.permissions();
        #[expect(clippy::permissions_set_readonly_false, reason = "simulating damage")]
        permissions.set_readonly(false);
        fs::set_permissions(&entry, permissions)?;
        fs::write(&entry, b"rot!")?;
        fs::write(&good, b"edited")?;
        let result = cache.restore(&[
            Restore {
                digest: digest_of(b"good"),
                destination: good.clone(),
            },
            Restore {
                digest: digest_of(b"bad!"),
                destination: bad.clone(),
            },
        ]);
        assert!(
            matches!(result, Err(CacheError::Corrupt { .. })),
            "{result:?}"
        );
        assert!(!entry.exists(), "the corrupt entry stays");
        assert_eq!(fs::read(&good)?, b"edited", "an output was replaced");
        let leftovers: Vec<_> = fs::read_dir(dir.path())?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(TEMP_SUFFIX))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        Ok(())
    }

    #[test]
    fn restoring_a_missing_entry_says_which() -> TestResult {
        let dir = tempfile::tempdir()?;
        let cache = RunCache::new(dir.path().join("cache"));
        let digest = digest_of(b"never stored");
        let result = cache.restore(&[Restore {
            digest: digest.clone(),
            destination: dir.path().join("out"),
        }]);
        match result {
            Err(CacheError::Missing { digest: missing }) => assert_eq!(missing, digest),
            other => return Err(format!("expected a missing entry, got {other:?}").into()),
        }
        Ok(())
    }

    #[test]
    fn leftover_temporary_files_are_listed_and_removed_with_their_shard() -> TestResult {
        let dir = tempfile::tempdir()?;
        let cache = RunCache::new(dir.path().join("cache"));
        let shard = dir.path().join("cache/ab");
        fs::create_dir_all(&shard)?;
        fs::write(shard.join(".abcd.123.0.tmp"), b"partial")?;
        fs::write(shard.join("notes.txt"), b"not ours")?;
        let entries = cache.entries()?;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].digest, None);
        cache.remove(&entries[0])?;
        assert!(cache.entries()?.is_empty());
        assert!(shard.join("notes.txt").exists());
        Ok(())
    }

    #[test]
    fn a_missing_cache_directory_is_an_empty_cache() -> TestResult {
        let dir = tempfile::tempdir()?;
        assert!(RunCache::new(dir.path().join("none")).entries()?.is_empty());
        Ok(())
    }
}
