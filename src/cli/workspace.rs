//! The CLI's side of the [workspace](crate::workspace): the same lookups,
//! with failures turned into messages and exit codes, and diagnostics
//! printed to stderr.

use std::collections::BTreeMap;
use std::sync::Arc;

use dag_operators::Registry;
use dag_state::Store;

use super::args::Global;
use super::{Exit, Failure, color_enabled};
use crate::model::Dag;
use crate::parse::Diagnostic;
use crate::workspace::{self, LoadError, OpenError};

pub use crate::workspace::{dag_files, looks_like_dag};

impl Global {
    /// The workspace these flags name.
    pub fn workspace(&self) -> workspace::Workspace {
        workspace::Workspace {
            dags_dir: self.dags.clone(),
            state_dir: self.state_dir.clone(),
        }
    }
}

/// Loads a DAG, printing its diagnostics to stderr on failure.
pub fn load(global: &Global, name_or_path: &str, registry: &Registry) -> Result<Arc<Dag>, Failure> {
    let confine = global.confined_to.as_deref();
    let dag = workspace::load_dag_confined(&global.dags, name_or_path, registry, confine).map_err(
        |error| match error {
            LoadError::Invalid(diagnostics) => {
                print_diagnostics(&diagnostics);
                Failure::silent(Exit::Invalid)
            }
            not_found @ LoadError::NotFound { .. } => Failure::invalid(not_found.to_string()),
        },
    )?;
    match environment(global)? {
        None => Ok(dag),
        Some(env) => env.apply(&dag).map(Arc::new).map_err(Failure::invalid),
    }
}

/// The environment `--env` names, read from `envs/NAME.yaml`.
pub fn environment(global: &Global) -> Result<Option<workspace::Environment>, Failure> {
    global
        .env
        .as_deref()
        .map(|name| workspace::Environment::load(std::path::Path::new(ENVS_DIR), name))
        .transpose()
        .map_err(Failure::invalid)
}

/// Where environment files live, relative to the project root.
pub const ENVS_DIR: &str = "envs";

pub fn print_diagnostics(diagnostics: &[Diagnostic]) {
    use super::console::errln;
    let color = !super::console::capturing() && color_enabled(&std::io::stderr());
    for diagnostic in diagnostics {
        errln!("{}", diagnostic.render(color));
    }
    let count = diagnostics.len();
    errln!("{count} problem{} found", if count == 1 { "" } else { "s" });
}

/// Opens the store; a store held by another process is an internal error
/// (exit 3) with a hint.
pub fn open_store(global: &Global) -> Result<Arc<Store>, Failure> {
    workspace::open_store(&global.state_dir).map_err(|error| match error {
        OpenError::Locked { .. }
            if crate::daemon::info::starting(&global.state_dir).is_some()
                || crate::daemon::info::running(&global.state_dir).is_some() =>
        {
            Failure::store_taken_by_daemon(format!(
                "a daemon started for `{}` and holds the store; try again once `dag daemon status` answers",
                global.state_dir.display()
            ))
        }
        OpenError::Locked { .. }
        | OpenError::Damaged(_)
        | OpenError::MissingHistory { .. }
        | OpenError::Other(_) => Failure::internal(error.to_string()),
    })
}

/// `key=value` pairs; values typed as YAML types them.
pub fn parse_param_overrides(
    pairs: &[String],
) -> Result<BTreeMap<String, serde_json::Value>, Failure> {
    workspace::parse_param_overrides(pairs).map_err(|error| Failure::invalid(error.to_string()))
}
