//! [`TriggerRule`]: when a task runs, given how its upstream tasks ended.

use std::fmt;
use std::str::FromStr;

/// Airflow's trigger rules, by the same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    /// Every upstream task succeeded (or was up to date).
    #[default]
    AllSuccess,
    /// Every upstream task finished, however it ended.
    AllDone,
    /// Every upstream task failed.
    AllFailed,
    /// At least one upstream task failed; runs as soon as one does.
    OneFailed,
    /// At least one upstream task succeeded; runs as soon as one does.
    OneSuccess,
    /// No upstream task failed (skipped ones are fine).
    NoneFailed,
}

impl TriggerRule {
    pub const NAMES: [&'static str; 6] = [
        "all_success",
        "all_done",
        "all_failed",
        "one_failed",
        "one_success",
        "none_failed",
    ];
}

impl FromStr for TriggerRule {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        Ok(match text {
            "all_success" => Self::AllSuccess,
            "all_done" => Self::AllDone,
            "all_failed" => Self::AllFailed,
            "one_failed" => Self::OneFailed,
            "one_success" => Self::OneSuccess,
            "none_failed" => Self::NoneFailed,
            _ => return Err(()),
        })
    }
}

impl fmt::Display for TriggerRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let index = *self as usize;
        f.write_str(Self::NAMES[index])
    }
}
