//! [`Exit`]: the documented exit codes of `dag`.

use std::process::ExitCode;

/// | code | meaning |
/// |---|---|
/// | 0 | success |
/// | 1 | a task failed |
/// | 2 | invalid input or usage (a DAG file, a param, an unknown run) |
/// | 3 | internal or state-store error |
/// | 130 | interrupted (Ctrl-C) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    TaskFailed = 1,
    Invalid = 2,
    Internal = 3,
    Interrupted = 130,
}

impl Exit {
    /// The exit for a numeric code (from a daemon's answer); unknown codes
    /// count as internal errors.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => Self::Success,
            1 => Self::TaskFailed,
            2 => Self::Invalid,
            130 => Self::Interrupted,
            _ => Self::Internal,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// A failed command: what to tell the user, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Invalid,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Internal,
            message: message.into(),
        }
    }

    /// Already reported (diagnostics printed); just exit.
    pub fn silent(exit: Exit) -> Self {
        Self {
            exit,
            message: String::new(),
        }
    }
}

pub type CliResult = Result<Exit, Failure>;
