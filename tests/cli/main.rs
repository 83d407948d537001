//! CLI tests: the real `dag` binary in temporary directories.
//!
//! - `validate`: one fixture per failure mode, every shipped DAG validates
//! - `run`: run semantics seen from outside (JSON shape, exit codes, rules)
//! - `durability`: kill -9 and Ctrl-C lose nothing that finished

mod durability;
mod incremental;
mod lifecycle;
mod run;
mod support;
mod validate;
