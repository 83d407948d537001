//! CLI tests: the real `dag` binary in temporary directories.
//!
//! - `validate`: one fixture per failure mode, every shipped DAG validates
//! - `commands`: `dag graph` formats, `--log-format json`, exit 3 on a held store
//! - `run`: run semantics seen from outside (JSON shape, exit codes, rules)
//! - `daemon`: the daemon as a process: CLI through its API, triggers, drain, SIGKILL
//! - `durability`: kill -9 and Ctrl-C lose nothing that finished
//! - `evidence`: data too thin to learn or judge from never reaches production
//! - `incremental`: exactly the tasks affected by a change rerun
//! - `lifecycle`: the shipped obesity lifecycle and its feedback loop
//! - `lineage`: `dag lineage` from models, files and tasks, both ways
//! - `resume`: `run --resume` reruns only what did not finish
//! - `run_cache`: outputs restored from the run cache instead of recomputed; `dag gc`
//! - `why`: `plan --why` / `run --dry-run` predict what runs and say why
//! - `serve`: the prediction server: requests, auth, live model swaps, A/B, log
//! - `soak`: 32 cycles of the closed loop with every invariant checked after each

mod commands;
mod daemon;
mod durability;
mod evidence;
mod incremental;
mod lifecycle;
mod lineage;
mod resume;
mod run;
mod run_cache;
mod serve;
mod soak;
mod support;
mod validate;
mod why;
