//! [`StateError`]: why a store operation failed.
//!
//! Every failure names the store directory, the tree or the key involved, so
//! a user can tell a busy store from a damaged one from a version mismatch.

use std::path::PathBuf;

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
    #[error("cannot open the state store at `{path}`")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    /// The database files exist but cannot be read back (sled gave up on
    /// them); the store directory needs to be moved aside.
    #[error("the state store at `{path}` is damaged and cannot be opened: {detail}")]
    Damaged { path: PathBuf, detail: String },
    #[error("state store i/o failed")]
    Storage(#[from] sled::Error),
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
