//! [`ModelRegistry`]: named, numbered model versions under
//! `<state_dir>/models/`, with movable aliases that keep their history.
//!
//! Layout: `blobs/<blake3>` holds model files content-addressed;
//! `<name>/versions/<n>.json` holds each version's metadata;
//! `<name>/aliases.json` maps alias → current version and history. Every
//! write is atomic (temp file + rename) and every operation that writes holds
//! the `lock` file's advisory lock. Run history lives in the state store, not
//! here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::ml::{TrainedModel, write_atomic};
use crate::models::lock::RegistryLock;
use crate::models::{AliasEvent, AliasMove, AliasState, ModelVersion, RegisterInfo, RegistryError};

pub struct ModelRegistry {
    root: PathBuf,
}

fn check_name(what: &'static str, value: &str) -> Result<(), RegistryError> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && !value.chars().all(|c| c.is_ascii_digit())
        && !matches!(value, "blobs" | "lock" | "latest");
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidName {
            what,
            value: value.to_string(),
        })
    }
}

fn alias_event(from: Option<u32>, to: u32, action: &str) -> AliasEvent {
    AliasEvent {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        from,
        to,
        action: action.into(),
    }
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), RegistryError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| RegistryError::Corrupt {
        path: path.into(),
        source,
    })?;
    write_atomic(path, &bytes).map_err(|source| RegistryError::Model {
        path: path.into(),
        source,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, RegistryError> {
    let bytes = std::fs::read(path).map_err(|e| RegistryError::io("read", path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| RegistryError::Corrupt {
        path: path.into(),
        source,
    })
}

impl ModelRegistry {
    /// Opens (creating if needed) the registry under `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, RegistryError> {
        let root = state_dir.join("models");
        let blobs = root.join("blobs");
        std::fs::create_dir_all(&blobs).map_err(|e| RegistryError::io("create", &blobs, e))?;
        Ok(Self { root })
    }

    fn lock(&self) -> Result<RegistryLock, RegistryError> {
        RegistryLock::acquire(&self.root.join("lock"))
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join("blobs").join(digest)
    }

    fn model_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn aliases(&self, name: &str) -> Result<BTreeMap<String, AliasState>, RegistryError> {
        let path = self.model_dir(name).join("aliases.json");
        if path.exists() {
            read_json(&path)
        } else {
            Ok(BTreeMap::new())
        }
    }

    fn version_numbers(&self, name: &str) -> Result<Vec<u32>, RegistryError> {
        let dir = self.model_dir(name).join("versions");
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut numbers = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| RegistryError::io("list", &dir, e))? {
            let entry = entry.map_err(|e| RegistryError::io("list", &dir, e))?;
            let file_name = entry.file_name();
            if let Some(n) = file_name
                .to_str()
                .and_then(|f| f.strip_suffix(".json"))
                .and_then(|s| s.parse().ok())
            {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();
        Ok(numbers)
    }

    fn read_version(
        &self,
        name: &str,
        version: u32,
        aliases: &BTreeMap<String, AliasState>,
    ) -> Result<ModelVersion, RegistryError> {
        let path = self
            .model_dir(name)
            .join("versions")
            .join(format!("{version}.json"));
        if !path.exists() {
            return Err(RegistryError::UnknownVersion {
                name: name.into(),
                version,
            });
        }
        let mut record: ModelVersion = read_json(&path)?;
        record.aliases = aliases
            .iter()
            .filter(|(_, s)| s.current == version)
            .map(|(a, _)| a.clone())
            .collect();
        Ok(record)
    }

    /// Stores `model_path` as the next version of `name`. The file must load
    /// as a model; nothing is written when it does not.
    pub fn register(
        &self,
        name: &str,
        model_path: &Path,
        info: RegisterInfo,
    ) -> Result<ModelVersion, RegistryError> {
        check_name("model name", name)?;
        let bytes = std::fs::read(model_path)
            .map_err(|e| RegistryError::io("read model", model_path, e))?;
        TrainedModel::from_bytes(model_path, &bytes).map_err(|source| RegistryError::Model {
            path: model_path.into(),
            source,
        })?;
        let digest = blake3::hash(&bytes).to_hex().to_string();
        let _lock = self.lock()?;
        let blob = self.blob_path(&digest);
        if !blob.exists() {
            write_atomic(&blob, &bytes).map_err(|source| RegistryError::Model {
                path: blob.clone(),
                source,
            })?;
        }
        let version = self.version_numbers(name)?.last().copied().unwrap_or(0) + 1;
        let dir = self.model_dir(name).join("versions");
        std::fs::create_dir_all(&dir).map_err(|e| RegistryError::io("create", &dir, e))?;
        let record = ModelVersion {
            name: name.into(),
            version,
            digest,
            aliases: Vec::new(),
            metrics: info.metrics,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            params: info.params,
            data_digests: info.data_digests,
            run_id: info.run_id,
            task_id: info.task_id,
        };
        write_json(&dir.join(format!("{version}.json")), &record)?;
        Ok(record)
    }

    /// Every version of `name`, or of every model, ordered by name then version.
    pub fn list(&self, name: Option<&str>) -> Result<Vec<ModelVersion>, RegistryError> {
        let names = match name {
            Some(name) => {
                if !self.model_dir(name).join("versions").exists() {
                    return Err(RegistryError::UnknownModel { name: name.into() });
                }
                vec![name.to_string()]
            }
            None => {
                let mut names = Vec::new();
                for entry in std::fs::read_dir(&self.root)
                    .map_err(|e| RegistryError::io("list", &self.root, e))?
                {
                    let entry = entry.map_err(|e| RegistryError::io("list", &self.root, e))?;
                    if entry.path().join("versions").is_dir() {
                        names.extend(entry.file_name().to_str().map(str::to_string));
                    }
                }
                names.sort();
                names
            }
        };
        let mut out = Vec::new();
        for name in names {
            let aliases = self.aliases(&name)?;
            for version in self.version_numbers(&name)? {
                out.push(self.read_version(&name, version, &aliases)?);
            }
        }
        Ok(out)
    }

    pub fn get(&self, name: &str, version: u32) -> Result<ModelVersion, RegistryError> {
        check_name("model name", name)?;
        if !self.model_dir(name).join("versions").exists() {
            return Err(RegistryError::UnknownModel { name: name.into() });
        }
        self.read_version(name, version, &self.aliases(name)?)
    }

    /// Resolves an alias (`champion`), a version number (`3`, `v3`) or `latest`.
    pub fn resolve(&self, name: &str, reference: &str) -> Result<ModelVersion, RegistryError> {
        check_name("model name", name)?;
        if !self.model_dir(name).join("versions").exists() {
            return Err(RegistryError::UnknownModel { name: name.into() });
        }
        let aliases = self.aliases(name)?;
        let number = reference
            .strip_prefix('v')
            .unwrap_or(reference)
            .parse::<u32>()
            .ok();
        let version = match (number, aliases.get(reference)) {
            (_, Some(state)) => state.current,
            (Some(n), None) => n,
            (None, None) if reference == "latest" => {
                self.version_numbers(name)?.last().copied().unwrap_or(0)
            }
            (None, None) => {
                return Err(RegistryError::UnknownReference {
                    name: name.into(),
                    reference: reference.into(),
                });
            }
        };
        self.read_version(name, version, &aliases)
    }

    /// Points `alias` at `version`, remembering where it pointed before.
    pub fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: u32,
    ) -> Result<AliasMove, RegistryError> {
        check_name("alias", alias)?;
        let _lock = self.lock()?;
        self.get(name, version)?;
        let mut aliases = self.aliases(name)?;
        let state = aliases.entry(alias.to_string()).or_default();
        let from = (state.current != 0).then_some(state.current);
        if let Some(from) = from
            && from != version
        {
            state.history.push(from);
        }
        if from != Some(version) {
            state.moves.push(alias_event(from, version, "set"));
        }
        state.current = version;
        write_json(&self.model_dir(name).join("aliases.json"), &aliases)?;
        Ok(AliasMove {
            alias: alias.into(),
            from,
            to: version,
        })
    }

    /// Moves `alias` back to the version it pointed at before its last move.
    pub fn rollback(&self, name: &str, alias: &str) -> Result<AliasMove, RegistryError> {
        let _lock = self.lock()?;
        let mut aliases = self.aliases(name)?;
        let state = aliases
            .get_mut(alias)
            .ok_or_else(|| RegistryError::UnknownReference {
                name: name.into(),
                reference: alias.into(),
            })?;
        let to = state
            .history
            .pop()
            .ok_or_else(|| RegistryError::NoHistory {
                name: name.into(),
                alias: alias.into(),
            })?;
        let from = Some(state.current);
        state.moves.push(alias_event(from, to, "rollback"));
        state.current = to;
        write_json(&self.model_dir(name).join("aliases.json"), &aliases)?;
        Ok(AliasMove {
            alias: alias.into(),
            from,
            to,
        })
    }

    /// Loads a version's model file, refusing it if its bytes changed.
    /// Every alias of model `name` with its target, rollback stack and
    /// recorded moves.
    pub fn alias_states(&self, name: &str) -> Result<BTreeMap<String, AliasState>, RegistryError> {
        check_name("model name", name)?;
        self.aliases(name)
    }

    pub fn load_verified(&self, version: &ModelVersion) -> Result<TrainedModel, RegistryError> {
        let path = self.blob_path(&version.digest);
        let bytes = std::fs::read(&path).map_err(|e| RegistryError::io("read model", &path, e))?;
        let actual = blake3::hash(&bytes).to_hex().to_string();
        if actual != version.digest {
            return Err(RegistryError::DigestMismatch {
                path,
                expected: version.digest.clone(),
                actual,
            });
        }
        TrainedModel::from_bytes(&path, &bytes)
            .map_err(|source| RegistryError::Model { path, source })
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;
    use crate::ml::test_fixtures::tiny_model;

    fn setup() -> (tempfile::TempDir, ModelRegistry) {
        let dir = tempfile::tempdir().unwrap();
        let registry = ModelRegistry::open(&dir.path().join(".dag")).unwrap();
        (dir, registry)
    }

    #[test]
    fn versions_are_numbered_and_listed_with_aliases() {
        let (dir, registry) = setup();
        let model = tiny_model(dir.path(), 1);
        let info = RegisterInfo {
            metrics: BTreeMap::from([("accuracy".into(), 0.9)]),
            ..Default::default()
        };
        let v1 = registry.register("obesity", &model, info.clone()).unwrap();
        let v2 = registry
            .register("obesity", &tiny_model(dir.path(), 2), info)
            .unwrap();
        assert_eq!((v1.version, v2.version), (1, 2));
        registry.set_alias("obesity", "champion", 2).unwrap();
        let listed = registry.list(Some("obesity")).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].aliases, ["champion"]);
        assert_eq!(listed[0].metrics["accuracy"], 0.9);
        assert_eq!(registry.resolve("obesity", "champion").unwrap().version, 2);
        assert_eq!(registry.resolve("obesity", "1").unwrap().digest, v1.digest);
        assert_eq!(registry.list(None).unwrap().len(), 2);
    }

    #[test]
    fn rollback_returns_to_the_previous_target_then_reports_no_history() {
        let (dir, registry) = setup();
        let model = tiny_model(dir.path(), 1);
        registry
            .register("m", &model, RegisterInfo::default())
            .unwrap();
        registry
            .register("m", &model, RegisterInfo::default())
            .unwrap();
        let first = registry.set_alias("m", "production", 1).unwrap();
        assert_eq!(
            first,
            AliasMove {
                alias: "production".into(),
                from: None,
                to: 1
            }
        );
        registry.set_alias("m", "production", 2).unwrap();
        let back = registry.rollback("m", "production").unwrap();
        assert_eq!(
            back,
            AliasMove {
                alias: "production".into(),
                from: Some(2),
                to: 1
            }
        );
        let error = registry.rollback("m", "production").unwrap_err();
        assert!(matches!(error, RegistryError::NoHistory { .. }), "{error}");
    }

    #[test]
    fn alias_moves_are_recorded_in_order_with_their_action() {
        let (dir, registry) = setup();
        let model = tiny_model(dir.path(), 1);
        for _ in 0..2 {
            registry
                .register("m", &model, RegisterInfo::default())
                .unwrap();
        }
        registry.set_alias("m", "production", 1).unwrap();
        registry.set_alias("m", "production", 1).unwrap();
        registry.set_alias("m", "production", 2).unwrap();
        registry.rollback("m", "production").unwrap();
        let states = registry.alias_states("m").unwrap();
        let moves: Vec<(Option<u32>, u32, &str)> = states["production"]
            .moves
            .iter()
            .map(|m| (m.from, m.to, m.action.as_str()))
            .collect();
        // Pointing an alias where it already points is not a move.
        assert_eq!(
            moves,
            [
                (None, 1, "set"),
                (Some(1), 2, "set"),
                (Some(2), 1, "rollback")
            ]
        );
        assert!(
            states["production"]
                .moves
                .iter()
                .all(|m| m.at.ends_with('Z'))
        );
        assert!(registry.alias_states("no such").is_err());
    }

    #[test]
    fn unknown_model_version_and_alias_are_clear_errors() {
        let (dir, registry) = setup();
        registry
            .register("m", &tiny_model(dir.path(), 1), RegisterInfo::default())
            .unwrap();
        assert_eq!(
            registry.resolve("other", "1").unwrap_err().to_string(),
            "unknown model `other`"
        );
        assert_eq!(
            registry.get("m", 9).unwrap_err().to_string(),
            "model `m` has no version 9"
        );
        assert!(
            registry
                .resolve("m", "champion")
                .unwrap_err()
                .to_string()
                .contains("`champion`")
        );
        assert!(registry.set_alias("m", "champion", 4).is_err());
    }

    #[test]
    fn tampered_blob_is_refused_with_both_digests() {
        let (dir, registry) = setup();
        let version = registry
            .register("m", &tiny_model(dir.path(), 1), RegisterInfo::default())
            .unwrap();
        std::fs::write(registry.blob_path(&version.digest), b"{}").unwrap();
        let message = registry.load_verified(&version).unwrap_err().to_string();
        assert!(
            message.contains(&version.digest) && message.contains("blobs"),
            "{message}"
        );
    }

    #[test]
    fn loads_a_verified_model() {
        let (dir, registry) = setup();
        let version = registry
            .register("m", &tiny_model(dir.path(), 1), RegisterInfo::default())
            .unwrap();
        assert_eq!(
            registry.load_verified(&version).unwrap().classes(),
            ["high", "low", "mid"]
        );
    }

    #[test]
    fn failed_registration_leaves_the_registry_intact() {
        let (dir, registry) = setup();
        registry
            .register("m", &tiny_model(dir.path(), 1), RegisterInfo::default())
            .unwrap();
        let garbage = dir.path().join("garbage.json");
        std::fs::write(&garbage, b"not a model").unwrap();
        assert!(matches!(
            registry.register("m", &garbage, RegisterInfo::default()),
            Err(RegistryError::Model { .. })
        ));
        assert_eq!(registry.list(Some("m")).unwrap().len(), 1);
        assert_eq!(
            std::fs::read_dir(dir.path().join(".dag/models/blobs"))
                .unwrap()
                .count(),
            1
        );
    }

    #[test]
    fn names_that_could_escape_the_registry_are_rejected() {
        let (dir, registry) = setup();
        let model = tiny_model(dir.path(), 1);
        for bad in ["../x", "blobs", "7", ""] {
            assert!(matches!(
                registry.register(bad, &model, RegisterInfo::default()),
                Err(RegistryError::InvalidName { .. })
            ));
        }
    }

    #[test]
    fn corrupt_metadata_names_the_file() {
        let (dir, registry) = setup();
        registry
            .register("m", &tiny_model(dir.path(), 1), RegisterInfo::default())
            .unwrap();
        std::fs::write(dir.path().join(".dag/models/m/versions/1.json"), b"{").unwrap();
        let message = registry.get("m", 1).unwrap_err().to_string();
        assert!(
            message.contains("1.json") && message.contains("corrupt"),
            "{message}"
        );
    }
}
