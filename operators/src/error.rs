//! [`OperatorError`]: why an attempt failed.

use std::path::PathBuf;

/// Why an operator attempt failed. The message is shown to the user as the
/// task's error, so it names the file, column or row at fault.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The operator's own judgement: bad data, a failed expectation, a
    /// non-zero exit status.
    #[error("{0}")]
    Failed(String),
    #[error("cannot {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid params: {0}")]
    Params(String),
    #[error("cancelled")]
    Cancelled,
    #[error("timed out")]
    TimedOut,
    #[error("operator panicked: {0}")]
    Panicked(String),
}

impl OperatorError {
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Renders an error and every source under it as `outer: inner: root`, for
/// the one line a failure becomes in a task record.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
