//! [`StateError`]: why a store operation failed.
//!
//! Every failure names the store directory, the tree or the key involved, so
//! a user can tell a busy store from a damaged one from a version mismatch.

use std::path::PathBuf;

/// A failure of the storage engine (sled), said in words: sled's own
/// messages name its internals (`Some(Inline(1665))`), which tell a user
/// nothing. Deliberately not an error source, so no chain prints them.
#[derive(Debug)]
pub struct StorageFailure(sled::Error);

impl StorageFailure {
    /// Whether the files themselves are damaged (not, say, a full disk).
    pub fn is_corruption(&self) -> bool {
        matches!(self.0, sled::Error::Corruption { .. })
    }
}

impl std::fmt::Display for StorageFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe_sled(&self.0))
    }
}

impl From<sled::Error> for StorageFailure {
    fn from(error: sled::Error) -> Self {
        Self(error)
    }
}

impl From<sled::Error> for StateError {
    fn from(error: sled::Error) -> Self {
        Self::Storage(StorageFailure(error))
    }
}

/// sled's error in words a user can act on.
pub(crate) fn describe_sled(error: &sled::Error) -> String {
    match error {
        sled::Error::Io(io) => io.to_string(),
        sled::Error::Corruption { .. } => "its files hold damaged data".into(),
        sled::Error::CollectionNotFound(_) => "one of its trees is missing".into(),
        sled::Error::Unsupported(what) => format!("unsupported: {what}"),
        sled::Error::ReportableBug(_) => "the storage engine failed unexpectedly".into(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the state store at `{path}` is in use by another process")]
    Locked { path: PathBuf },
    #[error(
        "the state store at `{path}` has format version {found}, this build reads version {expected}"
    )]
    FormatVersion {
        path: PathBuf,
        found: String,
        expected: u32,
    },
    /// Opening failed for a reason other than damage (permissions, a full
    /// disk): `reason` says which, in words.
    #[error("cannot open the state store at `{path}`: {reason}")]
    Open { path: PathBuf, reason: String },
    /// The database files exist but cannot be read back (sled gave up on
    /// them); the store directory needs to be moved aside.
    #[error("the state store at `{path}` is damaged and cannot be opened: {detail}")]
    Damaged { path: PathBuf, detail: String },
    #[error("reading or writing the state store failed: {0}")]
    Storage(StorageFailure),
    #[error("a stored record is corrupt: {what}")]
    Corrupt {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A key in an index tree does not have the layout this build writes.
    #[error("a stored key is corrupt: {what}")]
    CorruptKey { what: String },
    /// A record could not be serialized (never expected for the plain
    /// records of this crate; kept so no write path can panic).
    #[error("cannot encode {what}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// Only a `queued` run record can be put in the queue.
    #[error("run `{run_id}` is {status}, not queued")]
    NotQueued { run_id: String, status: String },
    /// Ids, paths, digests and cache keys become parts of keys separated by
    /// a NUL byte, so they must not contain one.
    #[error("{kind} `{value}` contains a NUL byte, which the store cannot key on")]
    InvalidKeyPart { kind: &'static str, value: String },
}
