//! [`ServeConfig`]: what `dag serve` serves and how, checked before binding.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::serve::ServeError;
use crate::serve::validate::InvalidRecords;

/// Requests bigger than this are refused with 413 on `/predict`.
pub const MAX_SINGLE_BYTES: usize = 1 << 20;
/// Requests bigger than this are refused with 413 on `/predict/batch`.
pub const MAX_BATCH_BYTES: usize = 8 << 20;
/// A batch holds at most this many records.
pub const MAX_BATCH_RECORDS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub state_dir: PathBuf,
    /// Registry name of the model.
    pub model: String,
    /// The alias whose version answers requests (the champion).
    pub alias: String,
    pub addr: SocketAddr,
    pub challenger: Option<ChallengerConfig>,
    pub log: LogConfig,
    /// When set, every request needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// How often aliases are re-read.
    pub poll_interval: Duration,
    /// A record outside the training range or categories: 422, or scored
    /// and flagged. Logged either way.
    pub invalid: InvalidRecords,
}

#[derive(Debug, Clone)]
pub struct ChallengerConfig {
    pub alias: String,
    /// Fraction of requests the challenger answers (0 in shadow mode).
    pub share: f64,
    /// The challenger scores every request; only the champion answers.
    pub shadow: bool,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Fraction of predicted records written to the log; 0 disables it.
    pub sample: f64,
    /// `current.csv` is rotated once it reaches this size.
    pub max_bytes: u64,
    /// Rotated files kept (`current.1.csv` is the newest).
    pub keep: usize,
}

impl LogConfig {
    pub fn dir(state_dir: &std::path::Path) -> PathBuf {
        state_dir.join("predictions")
    }
}

impl ServeConfig {
    /// Refuses settings that would serve unsafely or mean nothing.
    pub fn check(&self) -> Result<(), ServeError> {
        if !self.addr.ip().is_loopback() && self.token.as_deref().is_none_or(str::is_empty) {
            return Err(ServeError::TokenRequired { addr: self.addr });
        }
        let fraction = |flag, value: f64| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err(ServeError::Fraction { flag, value })
            }
        };
        fraction("--log-sample", self.log.sample)?;
        if let Some(challenger) = &self.challenger {
            fraction("--challenger-share", challenger.share)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(addr: &str, token: Option<&str>) -> ServeConfig {
        ServeConfig {
            state_dir: PathBuf::from(".dag"),
            model: "obesity".into(),
            alias: "production".into(),
            addr: addr
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([0; 4], 0))),
            challenger: None,
            log: LogConfig {
                sample: 1.0,
                max_bytes: 1 << 20,
                keep: 3,
            },
            token: token.map(str::to_string),
            poll_interval: Duration::from_millis(250),
            invalid: InvalidRecords::Reject,
        }
    }

    #[test]
    fn non_loopback_address_requires_a_token() {
        assert!(matches!(
            config("0.0.0.0:8080", None).check(),
            Err(ServeError::TokenRequired { .. })
        ));
        assert!(matches!(
            config("0.0.0.0:8080", Some("")).check(),
            Err(ServeError::TokenRequired { .. })
        ));
        assert!(config("0.0.0.0:8080", Some("secret")).check().is_ok());
        assert!(config("127.0.0.1:8080", None).check().is_ok());
        assert!(config("[::1]:8080", None).check().is_ok());
    }

    #[test]
    fn fractions_outside_zero_to_one_are_refused() {
        let mut bad = config("127.0.0.1:0", None);
        bad.log.sample = 1.5;
        assert!(matches!(bad.check(), Err(ServeError::Fraction { .. })));
        let mut bad = config("127.0.0.1:0", None);
        bad.challenger = Some(ChallengerConfig {
            alias: "challenger".into(),
            share: -0.1,
            shadow: false,
        });
        assert!(matches!(bad.check(), Err(ServeError::Fraction { .. })));
    }
}
