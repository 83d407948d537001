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
    /// The store was found held by a daemon that started meanwhile: the
    /// command should go through it instead.
    pub store_taken_by_daemon: bool,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
            store_taken_by_daemon: false,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Exit::Invalid, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Exit::Internal, message)
    }

    /// Already reported (diagnostics printed); just exit.
    pub fn silent(exit: Exit) -> Self {
        Self::new(exit, String::new())
    }

    /// The store is held by a daemon that is starting or running.
    pub fn store_taken_by_daemon(message: impl Into<String>) -> Self {
        Self {
            store_taken_by_daemon: true,
            ..Self::internal(message)
        }
    }
}

pub type CliResult = Result<Exit, Failure>;
