//! CLI tests: the real `dag` binary in temporary directories.
//!
//! - `validate`: one fixture per failure mode, every shipped DAG validates
//! - `run`: run semantics seen from outside (JSON shape, exit codes, rules)
//! - `durability`: kill -9 and Ctrl-C lose nothing that finished
//! - `serve`: the prediction server: requests, auth, live model swaps, A/B, log

mod durability;
mod incremental;
mod run;
mod serve;
mod support;
mod validate;
