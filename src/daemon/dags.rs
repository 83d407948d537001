//! [`DagSet`]: every DAG in the DAG directory, as the daemon last loaded it.
//!
//! Reloading parses each file again, within [`ParseLimits`] that include a
//! time limit, so a hostile file is a load error, never a hang. A file that
//! no longer parses keeps its last valid version running, and its
//! diagnostics are kept for `dag daemon status` and logged; a deleted
//! file's DAG is dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dag_operators::Registry;

use crate::model::Dag;
use crate::parse::{ParseLimits, SourceReader, apply_ownership, load_dag_file_with};
use crate::workspace::{dag_files, looks_like_dag};

#[derive(Debug, Clone)]
pub struct Loaded {
    pub dag: Arc<Dag>,
    /// blake3 of the file and its includes; a change means a reload.
    pub spec_hash: String,
    /// The rendered diagnostics of the newest edit, when it did not load
    /// (the previous version keeps running).
    pub error: Option<String>,
}

/// What one reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reload {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Files that did not load: (file, diagnostics).
    pub failed: Vec<(PathBuf, String)>,
}

impl Reload {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.changed.is_empty()
            && self.removed.is_empty()
            && self.failed.is_empty()
    }
}

#[derive(Debug, Clone, Default)]
pub struct DagSet {
    /// By DAG name.
    pub dags: BTreeMap<String, Loaded>,
    /// Which file each name came from, to tell a rename from an edit.
    files: BTreeMap<PathBuf, String>,
    /// Files whose newest edit failed: (text hash, rendered diagnostics), so
    /// the same error is reported once, not on every reload.
    broken: BTreeMap<PathBuf, (blake3::Hash, String)>,
    /// What loading one file may cost.
    limits: ParseLimits,
    /// Layered over every DAG's param defaults (`dag daemon --env`).
    env: Option<crate::workspace::Environment>,
}

impl DagSet {
    /// An empty set whose files load within `limits`.
    pub fn with_limits(limits: ParseLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// The same set with `env`'s params layered over every DAG's defaults.
    pub fn with_env(mut self, env: Option<crate::workspace::Environment>) -> Self {
        self.env = env;
        self
    }

    /// The environment the DAGs run under, if any.
    pub fn env_name(&self) -> Option<&str> {
        self.env.as_ref().map(|e| e.name.as_str())
    }

    /// Files whose newest edit does not load, with their diagnostics:
    /// also those that never loaded, which have no DAG to show them on.
    pub fn load_errors(&self) -> impl Iterator<Item = (&Path, &str)> {
        self.broken
            .iter()
            .map(|(path, (_, error))| (path.as_path(), error.as_str()))
    }

    pub fn get(&self, name: &str) -> Option<&Loaded> {
        self.dags.get(name)
    }

    /// Loads (or reloads) every DAG file in `dir`.
    pub fn reload(&mut self, dir: &Path, registry: &Registry) -> Reload {
        let mut report = Reload::default();
        let mut seen = BTreeMap::new();
        let files: Vec<PathBuf> = dag_files(dir)
            .into_iter()
            .filter(|p| looks_like_dag(p))
            .collect();
        let project = std::env::current_dir().unwrap_or_default();
        let mut loaded: Vec<_> = files
            .iter()
            .map(|path| {
                let reader = SourceReader::new(&project, self.limits.max_file_bytes);
                load_dag_file_with(path, registry, reader, self.limits).and_then(|dag| match &self
                    .env
                {
                    None => Ok(dag),
                    Some(env) => env.apply(&dag).map_err(|message| {
                        vec![crate::parse::Diagnostic::new("dag::environment", message)]
                    }),
                })
            })
            .collect();
        // Two DAGs that would write one path differently both fail to load.
        apply_ownership(&mut loaded);
        for (path, result) in files.into_iter().zip(loaded) {
            let text_hash = bounded_hash(&path, self.limits.max_file_bytes);
            match result {
                Ok(dag) => {
                    self.broken.remove(&path);
                    let spec_hash = dag.spec_hash();
                    let name = dag.name.clone();
                    match self.dags.get(&name) {
                        Some(old) if old.spec_hash == spec_hash && old.error.is_none() => {}
                        Some(_) => report.changed.push(name.clone()),
                        None => report.added.push(name.clone()),
                    }
                    seen.insert(path.clone(), name.clone());
                    self.dags.insert(
                        name,
                        Loaded {
                            dag: Arc::new(dag),
                            spec_hash,
                            error: None,
                        },
                    );
                }
                Err(diagnostics) => {
                    let rendered: Vec<String> =
                        diagnostics.iter().map(|d| d.render(false)).collect();
                    let rendered = rendered.join("\n");
                    let repeated = matches!(
                        (self.broken.get(&path), text_hash),
                        (Some((old, _)), Some(new)) if *old == new
                    );
                    if let Some(hash) = text_hash {
                        self.broken.insert(path.clone(), (hash, rendered.clone()));
                    }
                    if !repeated {
                        report.failed.push((path.clone(), rendered.clone()));
                    }
                    // Keep the last valid version of this file, if any.
                    if let Some(name) = self.files.get(&path).cloned() {
                        if let Some(loaded) = self.dags.get_mut(&name) {
                            loaded.error = Some(rendered);
                        }
                        seen.insert(path.clone(), name);
                    }
                }
            }
        }
        let live: std::collections::BTreeSet<&String> = seen.values().collect();
        let gone: Vec<String> = self
            .dags
            .keys()
            .filter(|name| !live.contains(name))
            .cloned()
            .collect();
        for name in gone {
            self.dags.remove(&name);
            report.removed.push(name);
        }
        self.broken.retain(|path, _| path.exists());
        self.files = seen;
        report
    }

    /// Files that do not load and have no earlier valid version running:
    /// (file, rendered diagnostics).
    pub fn unloaded(&self) -> Vec<(PathBuf, String)> {
        self.broken
            .iter()
            .filter(|(path, _)| !self.files.contains_key(*path))
            .map(|(path, (_, diagnostics))| (path.clone(), diagnostics.clone()))
            .collect()
    }

    /// Looks a DAG up by name, or by file name stem (`dags/x.yaml` → `x`).
    pub fn find(&self, name_or_stem: &str) -> Option<&Loaded> {
        self.dags.get(name_or_stem).or_else(|| {
            self.files.iter().find_map(|(path, name)| {
                (path.file_stem().and_then(|s| s.to_str()) == Some(name_or_stem))
                    .then(|| self.dags.get(name))
                    .flatten()
            })
        })
    }
}

/// The blake3 of a file's first `limit + 1` bytes: enough to tell edits
/// apart without reading a huge file whole.
fn bounded_hash(path: &Path, limit: u64) -> Option<blake3::Hash> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut hasher = blake3::Hasher::new();
    std::io::copy(&mut file.take(limit.saturating_add(1)), &mut hasher).ok()?;
    Some(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: a\ntasks:\n  t:\n    operator: noop\n";

    #[test]
    fn an_invalid_edit_keeps_the_last_valid_version_and_reports_once() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let registry = crate::ops::registry();
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, GOOD)?;
        let mut set = DagSet::default();
        let first = set.reload(dir.path(), &registry);
        assert_eq!(first.added, vec!["a".to_string()]);
        let hash = set.get("a").map(|l| l.spec_hash.clone());

        std::fs::write(&file, "name: a\ntasks:\n  t:\n    operator: nope\n")?;
        let broken = set.reload(dir.path(), &registry);
        assert_eq!(broken.failed.len(), 1);
        assert!(
            broken.failed[0].1.contains("nope"),
            "{}",
            broken.failed[0].1
        );
        let kept = set.get("a");
        assert_eq!(kept.map(|l| l.spec_hash.clone()), hash);
        assert!(kept.is_some_and(|l| l.error.is_some()));
        // The same broken text is not reported again.
        assert!(set.reload(dir.path(), &registry).is_empty());

        std::fs::write(&file, GOOD.replace("noop", "noop\n    description: x"))?;
        let fixed = set.reload(dir.path(), &registry);
        assert_eq!(fixed.changed, vec!["a".to_string()]);
        assert!(set.get("a").is_some_and(|l| l.error.is_none()));

        std::fs::remove_file(&file)?;
        assert_eq!(
            set.reload(dir.path(), &registry).removed,
            vec!["a".to_string()]
        );
        assert!(set.get("a").is_none());
        Ok(())
    }

    #[test]
    fn a_hostile_file_is_a_load_error_beside_dags_that_load() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let registry = crate::ops::registry();
        std::fs::write(dir.path().join("good.yaml"), GOOD)?;
        let mut laughs = String::from("name: laughs\na0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for level in 1..9 {
            let items = vec![format!("*a{}", level - 1); 9].join(", ");
            laughs.push_str(&format!("a{level}: &a{level} [{items}]\n"));
        }
        std::fs::write(dir.path().join("laughs.yaml"), &laughs)?;
        let mut set = DagSet::default();
        let report = set.reload(dir.path(), &registry);
        assert_eq!(report.added, vec!["a".to_string()]);
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert!(
            report.failed[0].1.contains("dag::limit"),
            "{}",
            report.failed[0].1
        );
        let errors: Vec<_> = set.load_errors().collect();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].0.ends_with("laughs.yaml"));
        Ok(())
    }

    #[test]
    fn a_file_that_never_loaded_is_listed_as_unloaded() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let registry = crate::ops::registry();
        std::fs::write(dir.path().join("good.yaml"), GOOD)?;
        std::fs::write(
            dir.path().join("bad.yaml"),
            "name: b\ntasks:\n  t:\n    operator: nope\n",
        )?;
        let mut set = DagSet::default();
        set.reload(dir.path(), &registry);
        let unloaded = set.unloaded();
        assert_eq!(unloaded.len(), 1);
        assert!(unloaded[0].0.ends_with("bad.yaml"));
        assert!(unloaded[0].1.contains("nope"), "{}", unloaded[0].1);
        Ok(())
    }

    #[test]
    fn unchanged_files_report_nothing_and_stems_find_dags() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let registry = crate::ops::registry();
        std::fs::write(dir.path().join("file_stem.yaml"), GOOD)?;
        let mut set = DagSet::default();
        set.reload(dir.path(), &registry);
        assert!(set.reload(dir.path(), &registry).is_empty());
        assert!(set.find("file_stem").is_some());
        assert!(set.find("a").is_some());
        assert!(set.find("missing").is_none());
        Ok(())
    }
}
