//! [`MlError`]: why reading data, fitting, scoring or loading a model failed.
//!
//! Every variant names the file, column or row at fault. Conversion into the
//! engine's [`OperatorError`] keeps the whole source chain in the message.

use std::path::PathBuf;

use crate::OperatorError;

#[derive(Debug, thiserror::Error)]
pub enum MlError {
    #[error(transparent)]
    Table(#[from] crate::table::TableError),
    #[error("cannot read table `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: polars::error::PolarsError,
    },
    #[error("table `{path}` has no rows")]
    Empty { path: PathBuf },
    #[error("table `{path}` has no column `{column}`")]
    MissingColumn { path: PathBuf, column: String },
    #[error("table `{path}`, column `{column}`, {row}: value `{value}` is not a number")]
    NotNumeric {
        path: PathBuf,
        column: String,
        /// `row N`, with the source file's row when known.
        row: String,
        value: String,
    },
    #[error("table `{path}`, column `{column}`, {row}: value is missing")]
    MissingValue {
        path: PathBuf,
        column: String,
        /// `row N`, with the source file's row when known.
        row: String,
    },
    #[error("table `{path}`, column `{column}`, {row}: {message}")]
    BadValue {
        path: PathBuf,
        column: String,
        /// `row N`, with the source file's row when known.
        row: String,
        message: String,
    },
    #[error("column `{column}` in `{path}` has type `{dtype}`, expected numbers or text")]
    UnsupportedType {
        path: PathBuf,
        column: String,
        dtype: String,
    },
    #[error("cannot {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a valid {what} file")]
    Format {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot encode {what}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("linfa rejected the data")]
    Linfa(#[from] linfa::Error),
    #[error("logistic regression failed to fit")]
    Logistic(#[from] linfa_logistic::error::Error),
    #[error("cannot write png `{path}`")]
    Png {
        path: PathBuf,
        #[source]
        source: png::EncodingError,
    },
    #[error("cancelled")]
    Cancelled,
}

impl MlError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

pub use crate::error::error_chain as chain;

impl From<MlError> for OperatorError {
    fn from(error: MlError) -> Self {
        match error {
            MlError::Io {
                action,
                path,
                source,
            } => OperatorError::io(action, path, source),
            MlError::Cancelled => OperatorError::Cancelled,
            other => OperatorError::failed(chain(&other)),
        }
    }
}
