//! [`RegistryError`]: why a model registry operation failed.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("unknown model `{name}`")]
    UnknownModel { name: String },
    #[error("model `{name}` has no version {version}")]
    UnknownVersion { name: String, version: u32 },
    #[error("model `{name}` has no alias or version `{reference}`")]
    UnknownReference { name: String, reference: String },
    #[error(
        "{name} v{version} has no stored `{data}` data{}",
        if known.is_empty() { " (it was registered before the registry kept data; register it again)".to_string() } else { format!(" (it has: {})", known.join(", ")) }
    )]
    NoData {
        name: String,
        version: u32,
        data: String,
        known: Vec<String>,
    },
    #[error("alias `{alias}` of model `{name}` has no earlier version to roll back to")]
    NoHistory { name: String, alias: String },
    #[error(
        "`{value}` is not a valid {what}: use lowercase letters, digits, `_` and `-`, not only digits, and not `blobs`, `lock` or `latest`"
    )]
    InvalidName { what: &'static str, value: String },
    #[error("model file `{path}` has digest {actual}, the registry recorded {expected}")]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("registry file `{path}` is corrupt")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a usable model")]
    Model {
        path: PathBuf,
        #[source]
        source: Box<crate::ml::MlError>,
    },
}

impl RegistryError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl From<RegistryError> for crate::OperatorError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Io {
                action,
                path,
                source,
            } => Self::io(action, path, source),
            other => Self::failed(crate::ml::chain(&other)),
        }
    }
}
