//! [`StateError`].

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the state store at `{path}` is in use by another process")]
    Locked { path: PathBuf },
    #[error(
        "the state store at `{path}` has format version {found}, this build reads version {expected}"
    )]
    FormatVersion { path: PathBuf, found: String, expected: u32 },
    #[error("cannot open the state store at `{path}`")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("state store i/o failed")]
    Storage(#[from] sled::Error),
    #[error("a stored record is corrupt: {what}")]
    Corrupt {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}
