//! The monitoring operators: `monitor.drift` compares a current table with a
//! reference (distribution drift per feature and data quality).
//!
//! They read tables and write reports; deciding what to do about drift is
//! left to the DAG (a `when:` condition or the short-circuit).

mod divergence;
mod drift;
#[cfg(test)]
mod drift_tests;
mod feature_drift;
mod quality;
mod reference;
mod traffic;

pub use divergence::Binning;
pub use drift::Drift;
