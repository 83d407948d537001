//! The data-stage operators: `data.clean`, `data.validate`, `data.split` and
//! `data.synthesize`, plus what they share (column kinds, row fingerprints,
//! the seeded random number generator).
//!
//! They read and write tables through [`crate::table`] and never keep state
//! between attempts; the same input, params and seed give the same bytes.

mod category_rule;
mod clean;
mod clean_schema;
pub(crate) mod column;
mod concat;
mod csv_header;
#[cfg(test)]
mod dirty_obesity_tests;
mod expectation;
mod expectation_check;
mod null_tokens;
mod numeric_rule;
#[cfg(test)]
mod obesity_tests;
pub(crate) mod rng;
mod row_hash;
mod split;
mod synthesize;
#[cfg(test)]
pub(crate) mod testing;
mod validate;

pub use clean::Clean;
pub use column::ColumnKind;
pub use concat::Concat;
pub use split::Split;
pub use synthesize::Synthesize;
pub use validate::Validate;
