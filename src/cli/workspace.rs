//! Finding DAG files, loading them with diagnostics, opening the store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dag_operators::Registry;
use dag_state::Store;

use super::args::Global;
use super::{Exit, Failure, color_enabled};
use crate::model::Dag;
use crate::parse::{Diagnostic, load_dag_file, parse_yaml};

/// Resolves `name_or_path`: an existing file, else `<dags>/<name>.yaml`.
pub fn resolve_dag_path(global: &Global, name_or_path: &str) -> Result<PathBuf, Failure> {
    let direct = PathBuf::from(name_or_path);
    if direct.is_file() {
        return Ok(direct);
    }
    for extension in ["yaml", "yml"] {
        let candidate = global.dags.join(format!("{name_or_path}.{extension}"));
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let known: Vec<String> = dag_files(&global.dags)
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    let help = crate::parse::did_you_mean(name_or_path, known.iter().map(String::as_str))
        .map(|h| format!("; {h}"))
        .unwrap_or_default();
    Err(Failure::invalid(format!(
        "no DAG file or DAG named `{name_or_path}` in `{}`{help}",
        global.dags.display()
    )))
}

/// The `.yaml`/`.yml` files directly in `dir`, sorted.
pub fn dag_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Whether a file in the DAG directory is a DAG (has `tasks` or `include`)
/// rather than a data file such as expectations.
pub fn looks_like_dag(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return true;
    };
    match parse_yaml(&text) {
        Ok(node) => match &node.value {
            crate::parse::NodeValue::Map(entries) => entries
                .iter()
                .any(|(k, _)| matches!(k.scalar_text().as_str(), "tasks" | "include" | "name")),
            _ => true,
        },
        Err(_) => true,
    }
}

/// Loads a DAG, printing its diagnostics to stderr on failure.
pub fn load(global: &Global, name_or_path: &str, registry: &Registry) -> Result<Arc<Dag>, Failure> {
    let path = resolve_dag_path(global, name_or_path)?;
    load_dag_file(&path, registry)
        .map(Arc::new)
        .map_err(|diagnostics| {
            print_diagnostics(&diagnostics);
            Failure::silent(Exit::Invalid)
        })
}

pub fn print_diagnostics(diagnostics: &[Diagnostic]) {
    let color = color_enabled(&std::io::stderr());
    for diagnostic in diagnostics {
        eprintln!("{}", diagnostic.render(color));
    }
    let count = diagnostics.len();
    eprintln!("{count} problem{} found", if count == 1 { "" } else { "s" });
}

/// The store of the daemon this process is, if it is one: commands the
/// daemon runs for clients read it instead of opening the database (which
/// the daemon holds).
static DAEMON_STORE: std::sync::OnceLock<Arc<Store>> = std::sync::OnceLock::new();

pub fn share_daemon_store(store: Arc<Store>) {
    let _ = DAEMON_STORE.set(store);
}

/// Opens the store, reporting runs a dead process left behind.
pub fn open_store(global: &Global) -> Result<Arc<Store>, Failure> {
    if let Some(store) = DAEMON_STORE.get() {
        return Ok(Arc::clone(store));
    }
    let dir = global.state_dir.join("db");
    let (store, report) = Store::open(&dir).map_err(|error| match error {
        dag_state::StateError::Locked { .. } => Failure::internal(format!(
            "{}; is `dag daemon` or another `dag run` using `{}`?",
            crate::record::error_chain(&error),
            global.state_dir.display()
        )),
        other => Failure::internal(crate::record::error_chain(&other)),
    })?;
    for run_id in &report.interrupted_runs {
        tracing::warn!(
            run_id,
            "run was left running by a process that died; marked interrupted"
        );
    }
    Ok(Arc::new(store))
}

/// `key=value` pairs; values typed as YAML types them.
pub fn parse_param_overrides(
    pairs: &[String],
) -> Result<BTreeMap<String, serde_json::Value>, Failure> {
    pairs
        .iter()
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                Failure::invalid(format!("`--param {pair}` must look like `key=value`"))
            })?;
            let typed = parse_yaml(value)
                .map_or_else(|_| serde_json::Value::String(value.into()), |n| n.to_json());
            Ok((key.trim().to_string(), typed))
        })
        .collect()
}
