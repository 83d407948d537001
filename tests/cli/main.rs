//! CLI tests: the real `dag` binary in temporary directories.
//!
//! - `backfill`: a schedule's logical dates in a range, with and without a daemon
//! - `validate`: one fixture per failure mode, every shipped DAG validates
//! - `commands`: `dag graph` formats, `--log-format json`, exit 3 on a held store
//! - `run`: run semantics seen from outside (JSON shape, exit codes, rules)
//! - `crash`: kill -9 of the daemon and of `dag run`; accepted runs, resumes and task processes
//! - `daemon`: the daemon as a process: CLI through its API, triggers, drain, SIGKILL
//! - `daemon_policy`: `max_active_runs` runs at once, the rest queued until one ends
//! - `doctor`: damaged and missing stores: messages, `dag doctor` check, repair, rebuild
//! - `durability`: kill -9 and Ctrl-C lose nothing that finished
//! - `evidence`: data too thin to learn or judge from never reaches production
//! - `fuzz`: seeded mutations of the shipped DAGs and the dataset, bounded in time and memory
//! - `hostile`: DAG files built to exhaust memory, hang, read secrets or flood output
//! - `incremental`: exactly the tasks affected by a change rerun
//! - `lifecycle`: the shipped obesity lifecycle and its feedback loop
//! - `logs`: bounded task logs, `dag logs --tail/--follow` in bounded memory
//! - `notify`: hooks to a real webhook receiver and commands: retries, SLA, records
//! - `onnx`: scikit-learn models as ONNX versions; bad graphs refused at registration
//! - `lineage`: `dag lineage` from models, files and tasks, both ways
//! - `ray`: tasks on a real local Ray head (`ray_support`): mixed with local
//!   tasks, retries, timeouts, cancellation, resume after a crash, a lost head
//! - `quickstart`: every command of README's Quickstart, as written, in a fresh copy
//! - `resume`: `run --resume` reruns only what did not finish
//! - `run_cache`: outputs restored from the run cache instead of recomputed; `dag gc`
//! - `why`: `plan --why` / `run --dry-run` predict what runs and say why
//! - `secrets`: `{{ secrets.NAME }}` from env or file, masked in logs, never recorded
//! - `serve`: the prediction server: requests, auth, live model swaps, A/B, log
//! - `serve_models`: which model `dag serve` takes, and the class labels it answers with
//! - `soak`: 32 cycles of the closed loop with every invariant checked after each
//! - `ui_http`: the web UI's refusals, sign-in and form errors over plain HTTP
//! - `ui_browser`: the web UI in headless Chromium (`webdriver`); writes the
//!   README's screenshots with `DAG_UI_SCREENSHOTS=docs/ui`

mod backfill;
mod commands;
mod crash;
mod daemon;
mod daemon_policy;
mod daemon_support;
mod doctor;
mod durability;
mod environments;
mod evidence;
mod fuzz;
mod hostile;
mod incremental;
mod lifecycle;
mod lineage;
mod logs;
mod mapping;
mod notify;
mod notify_support;
mod onnx;
mod onnx_export;
mod penguins;
mod python_env;
mod python_task;
mod quickstart;
mod ray;
mod ray_support;
mod resume;
mod run;
mod run_cache;
mod run_params;
mod secrets;
mod serve;
mod serve_models;
mod serve_support;
mod soak;
mod support;
mod ui_browser;
mod ui_http;
mod ui_support;
mod upstream_map;
mod validate;
mod webdriver;
mod why;
