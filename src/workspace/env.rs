//! Environments: `envs/NAME.yaml` layers params over the DAG's defaults,
//! for development, staging and production settings kept beside the DAGs.
//!
//! ```yaml
//! params:                  # for every DAG that declares them
//!   model_dir: data/staging
//! dags:
//!   obesity_training:      # for this DAG only; each must be one of its params
//!     n_trees: 50
//! ```
//!
//! Layers, lowest first: the DAG's `params:` defaults, the environment's
//! `params`, its `dags.<name>`, then `--param`. A value is checked against
//! the type of the default it replaces, as `--param` is. The environment's
//! name is recorded with every run made under it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::model::Dag;

/// A loaded environment file.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    pub name: String,
    pub path: PathBuf,
    shared: BTreeMap<String, Value>,
    per_dag: BTreeMap<String, BTreeMap<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvFile {
    #[serde(default)]
    params: BTreeMap<String, Value>,
    #[serde(default)]
    dags: BTreeMap<String, BTreeMap<String, Value>>,
}

/// The most bytes an environment file may have.
const MAX_ENV_BYTES: u64 = 1024 * 1024;

impl Environment {
    /// Reads `envs_dir/NAME.yaml`. The name is a plain file stem, so it
    /// cannot point outside the directory.
    pub fn load(envs_dir: &Path, name: &str) -> Result<Self, String> {
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        if !plain {
            return Err(format!(
                "`{name}` is not an environment name (letters, digits, `_` and `-`)"
            ));
        }
        let path = envs_dir.join(format!("{name}.yaml"));
        let size = std::fs::metadata(&path).map(|m| m.len()).map_err(|_| {
            let known = known_environments(envs_dir);
            let listed = if known.is_empty() {
                format!("`{}` has none", envs_dir.display())
            } else {
                format!("known: {}", known.join(", "))
            };
            format!(
                "no environment `{name}`: `{}` does not exist ({listed})",
                path.display()
            )
        })?;
        if size > MAX_ENV_BYTES {
            return Err(format!(
                "`{}` is {size} bytes; an environment file may have at most {MAX_ENV_BYTES}",
                path.display()
            ));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let file: EnvFile = if text.trim().is_empty() {
            EnvFile::default()
        } else {
            serde_yaml::from_str(&text).map_err(|error| {
                let at = error
                    .location()
                    .map(|l| format!("{}:{}:{}", path.display(), l.line(), l.column()))
                    .unwrap_or_else(|| path.display().to_string());
                let message = error.to_string();
                let message = message
                    .rsplit_once(" at line ")
                    .map_or(message.as_str(), |(before, _)| before)
                    .to_string();
                format!("{at}: {message} (an environment has `params:` and `dags:`)")
            })?
        };
        Ok(Self {
            name: name.to_string(),
            path,
            shared: file.params,
            per_dag: file.dags,
        })
    }

    /// `dag` with this environment's params over its defaults, and its name.
    pub fn apply(&self, dag: &Dag) -> Result<Dag, String> {
        let mut layered = BTreeMap::new();
        for (name, value) in &self.shared {
            if dag.params.contains_key(name) {
                layered.insert(name.clone(), value.clone());
            }
        }
        if let Some(own) = self.per_dag.get(&dag.name) {
            for (name, value) in own {
                if !dag.params.contains_key(name) {
                    let known: Vec<&str> = dag.params.keys().map(String::as_str).collect();
                    let hint = dag_operators::did_you_mean(name, known.iter().copied())
                        .map(|h| format!("; {h}"))
                        .unwrap_or_default();
                    return Err(format!(
                        "{}: `dags.{}.{name}` is not a param of `{}`{hint} (params: {})",
                        self.path.display(),
                        dag.name,
                        dag.name,
                        known.join(", ")
                    ));
                }
                layered.insert(name.clone(), value.clone());
            }
        }
        crate::workspace::check_param_types(&dag.params, &layered)
            .map_err(|error| format!("{}: {error}", self.path.display()))?;
        let mut dag = dag.clone();
        dag.params.extend(layered);
        dag.env = Some(self.name.clone());
        Ok(dag)
    }
}

fn known_environments(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            (path.extension().and_then(|e| e.to_str()) == Some("yaml"))
                .then(|| path.file_stem()?.to_str().map(String::from))
                .flatten()
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dag() -> Dag {
        let registry = crate::ops::registry();
        let text = "name: d\nparams: { n_trees: 300, model_dir: data, seed: 1 }\ntasks:\n  a: { operator: noop }\n";
        let mut read = |_: &Path| Ok(text.to_string());
        crate::parse::load_dag(Path::new("d.yaml"), &mut read, &registry)
            .unwrap_or_else(|d| panic!("{d:?}"))
    }

    fn env(text: &str) -> Result<Environment, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        std::fs::write(dir.path().join("staging.yaml"), text).map_err(|e| e.to_string())?;
        Environment::load(dir.path(), "staging")
    }

    #[test]
    fn shared_then_per_dag_params_layer_over_the_defaults() {
        let staging =
            env("params: { model_dir: data/staging, other: 1 }\ndags:\n  d: { n_trees: 50 }\n")
                .expect("loads");
        let dag = staging.apply(&dag()).expect("applies");
        assert_eq!(dag.params["model_dir"], "data/staging");
        assert_eq!(dag.params["n_trees"], 50);
        assert_eq!(dag.params["seed"], 1);
        assert!(
            !dag.params.contains_key("other"),
            "a param this DAG lacks is left out"
        );
        assert_eq!(dag.env.as_deref(), Some("staging"));
    }

    #[test]
    fn mistakes_name_the_file_and_what_is_wrong() {
        let typo = env("dags:\n  d: { n_tree: 50 }\n").expect("loads");
        let error = typo.apply(&dag()).expect_err("unknown param");
        assert!(
            error.contains("`dags.d.n_tree` is not a param of `d`; did you mean `n_trees`?"),
            "{error}"
        );
        let mistyped = env("params: { n_trees: many }\n").expect("loads");
        let error = mistyped.apply(&dag()).expect_err("wrong type");
        assert!(error.contains("staging.yaml: "), "{error}");
        let error = env("param: { n_trees: 5 }\n").expect_err("unknown key");
        assert!(
            error.contains("staging.yaml:1:1: unknown field `param`"),
            "{error}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let error = Environment::load(dir.path(), "../etc").expect_err("not a name");
        assert!(error.contains("not an environment name"), "{error}");
        let error = Environment::load(dir.path(), "prod").expect_err("missing");
        assert!(error.contains("no environment `prod`"), "{error}");
    }
}
