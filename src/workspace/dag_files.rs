//! DAG files: which files in the DAG directory are DAGs, how a name on the
//! command line or in an API request finds its file, and loading one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dag_operators::Registry;

use crate::model::Dag;
use crate::parse::{Diagnostic, load_dag_file, parse_yaml, read_regular_file};

/// Why a DAG could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No file and no DAG of that name.
    #[error("no DAG file or DAG named `{name}` in `{dags_dir}`{help}")]
    NotFound {
        name: String,
        dags_dir: String,
        /// `; did you mean ...?`, or empty.
        help: String,
    },
    /// The file does not load: every problem in it.
    #[error("the DAG file has {} problem(s)", .0.len())]
    Invalid(Vec<Diagnostic>),
}

/// Resolves `name_or_path`: an existing file, else `<dags_dir>/<name>.yaml`
/// (or `.yml`).
pub fn resolve_dag_path(dags_dir: &Path, name_or_path: &str) -> Result<PathBuf, LoadError> {
    let direct = PathBuf::from(name_or_path);
    if direct.is_file() {
        return Ok(direct);
    }
    for extension in ["yaml", "yml"] {
        let candidate = dags_dir.join(format!("{name_or_path}.{extension}"));
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let known: Vec<String> = dag_files(dags_dir)
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    let help = crate::parse::did_you_mean(name_or_path, known.iter().map(String::as_str))
        .map(|h| format!("; {h}"))
        .unwrap_or_default();
    Err(LoadError::NotFound {
        name: name_or_path.to_string(),
        dags_dir: dags_dir.display().to_string(),
        help,
    })
}

/// Loads the DAG `name_or_path` names (see [`resolve_dag_path`]).
pub fn load_dag(
    dags_dir: &Path,
    name_or_path: &str,
    registry: &Registry,
) -> Result<Arc<Dag>, LoadError> {
    load_dag_confined(dags_dir, name_or_path, registry, None)
}

/// [`load_dag`]; with `confine`, every file read (the DAG file included)
/// must be inside that directory: what a daemon loads for a client.
pub fn load_dag_confined(
    dags_dir: &Path,
    name_or_path: &str,
    registry: &Registry,
    confine: Option<&Path>,
) -> Result<Arc<Dag>, LoadError> {
    let path = resolve_dag_path(dags_dir, name_or_path)?;
    let loaded = match confine {
        Some(root) => {
            let limits = crate::parse::ParseLimits::default();
            let reader = crate::parse::SourceReader::confined(root, limits.max_file_bytes);
            crate::parse::load_dag_file_with(&path, registry, reader, limits)
        }
        None => load_dag_file(&path, registry),
    };
    loaded.map(Arc::new).map_err(LoadError::Invalid)
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
/// A file that cannot be read or parsed counts as a DAG, so that loading it
/// reports why.
pub fn looks_like_dag(path: &Path) -> bool {
    let limit = crate::parse::ParseLimits::default().max_file_bytes;
    let Ok(text) = read_regular_file(path, limit) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_name_suggests_the_closest_dag() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("training.yaml"),
            "name: training\ntasks:\n  t:\n    operator: noop\n",
        )?;
        let error = resolve_dag_path(dir.path(), "trainin").expect_err("no such DAG");
        assert!(
            error.to_string().contains("did you mean `training`"),
            "{error}"
        );
        assert!(resolve_dag_path(dir.path(), "training").is_ok());
        Ok(())
    }

    #[test]
    fn data_files_beside_dags_are_not_dags() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let expectations = dir.path().join("expectations.yaml");
        std::fs::write(&expectations, "columns:\n  a: {type: number}\n")?;
        let dag = dir.path().join("a.yaml");
        std::fs::write(&dag, "name: a\ntasks: {}\n")?;
        assert!(!looks_like_dag(&expectations));
        assert!(looks_like_dag(&dag));
        assert_eq!(dag_files(dir.path()), vec![dag, expectations]);
        Ok(())
    }
}
