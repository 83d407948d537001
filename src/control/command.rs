//! [`CommandHost`]: how a daemon runs a client's read-only command line.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What a read-only command printed and how it ended, when a daemon runs
/// it for a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutput {
    /// The process exit code the command would have had.
    pub exit: u8,
    pub stdout: String,
    /// The error message, when it failed.
    pub error: String,
    /// Diagnostics and warnings the command wrote for the user (what it
    /// would have printed on stderr before `error`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr: String,
}

/// Runs `argv` (a `dag` command line without the program name) against the
/// daemon's state directory (first path) and DAG directory (second path).
pub type CommandHost = Arc<dyn Fn(&[String], &Path, &Path) -> CommandOutput + Send + Sync>;
