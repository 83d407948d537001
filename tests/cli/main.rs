//! CLI tests: the real `dag` binary in temporary directories.
//!
//! - `validate`: one fixture per failure mode, every shipped DAG validates
//! - `run`: run semantics seen from outside (JSON shape, exit codes, rules)
//! - `daemon`: the daemon as a process: CLI through its API, triggers, drain, SIGKILL
//! - `durability`: kill -9 and Ctrl-C lose nothing that finished
//! - `incremental`: exactly the tasks affected by a change rerun
//! - `lifecycle`: the shipped obesity lifecycle and its feedback loop
//! - `lineage`: `dag lineage` from models, files and tasks, both ways
//! - `resume`: `run --resume` reruns only what did not finish
//! - `run_cache`: outputs restored from the run cache instead of recomputed; `dag gc`
//! - `why`: `plan --why` / `run --dry-run` predict what runs and say why
//! - `serve`: the prediction server: requests, auth, live model swaps, A/B, log
//! - `ui_http`: the web UI's refusals, sign-in and form errors over plain HTTP
//! - `ui_browser`: the web UI in headless Chromium (`webdriver`); writes the
//!   README's screenshots with `DAG_UI_SCREENSHOTS=docs/ui`

mod daemon;
mod durability;
mod incremental;
mod lifecycle;
mod lineage;
mod resume;
mod run;
mod run_cache;
mod serve;
mod support;
mod ui_browser;
mod ui_http;
mod ui_support;
mod validate;
mod webdriver;
mod why;
