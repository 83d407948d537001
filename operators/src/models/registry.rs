//! [`ModelRegistry`]: named, numbered model versions under
//! `<state_dir>/models/`, with movable aliases that keep their history.
//!
//! Layout: `blobs/<blake3>` holds model files content-addressed, and
//! `blobs/<blake3>.<ext>` the data versions were trained and tested on;
//! `<name>/versions/<n>.json` holds each version's metadata and gate
//! verdicts; `<name>/aliases.json` maps alias → current version, the stack
//! `rollback` pops, and a log of every move (who, when, from which run).
//! Every write is atomic (temp file + rename) and every operation that
//! writes metadata holds the `lock` file's advisory lock. Run history lives
//! in the state store, not here. Alias moves and rollback are in
//! `alias_moves.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::ml::{TrainedModel, write_atomic};
use crate::models::lock::RegistryLock;
use crate::models::version::AliasState;
use crate::models::{GateRecord, ModelVersion, RegisterInfo, RegistryError};

pub struct ModelRegistry {
    pub(super) root: PathBuf,
}

pub(super) fn check_name(what: &'static str, value: &str) -> Result<(), RegistryError> {
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

pub(super) fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), RegistryError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| RegistryError::Corrupt {
        path: path.into(),
        source,
    })?;
    write_atomic(path, &bytes).map_err(|source| RegistryError::Model {
        path: path.into(),
        source: Box::new(source),
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

    /// Removes temporary files (`.<file>.<pid>.tmp`, from atomic writes)
    /// that processes which died mid-write left in the registry; returns
    /// them with their sizes. Files of live processes stay.
    pub fn remove_stale_temporaries(&self) -> Vec<(PathBuf, u64)> {
        let mut dirs = vec![self.root.clone(), self.root.join("blobs")];
        if let Ok(models) = std::fs::read_dir(&self.root) {
            for model in models.flatten().filter(|e| e.path().is_dir()) {
                dirs.push(model.path());
                dirs.push(model.path().join("versions"));
            }
        }
        let mut removed = Vec::new();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let pid = name
                    .strip_prefix('.')
                    .and_then(|rest| rest.strip_suffix(".tmp"))
                    .and_then(|rest| rest.rsplit_once('.'))
                    .and_then(|(_, pid)| pid.parse::<i32>().ok());
                // SAFETY: signal 0 only checks whether the process exists.
                let dead = pid.is_some_and(|pid| pid > 0 && unsafe { libc::kill(pid, 0) } != 0);
                let size = entry.metadata().map_or(0, |m| m.len());
                if dead && std::fs::remove_file(entry.path()).is_ok() {
                    removed.push((entry.path(), size));
                }
            }
        }
        removed
    }

    pub(super) fn lock(&self) -> Result<RegistryLock, RegistryError> {
        RegistryLock::acquire(&self.root.join("lock"))
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join("blobs").join(digest)
    }

    pub(super) fn model_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub(super) fn aliases(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, AliasState>, RegistryError> {
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
        let bytes = std::fs::read(model_path)
            .map_err(|e| RegistryError::io("read model", model_path, e))?;
        self.register_bytes(name, model_path, &bytes, info)
    }

    /// Stores `bytes`, a model file made from `model_path` (an imported
    /// ONNX graph), as the next version of `name`; as [`Self::register`].
    pub fn register_bytes(
        &self,
        name: &str,
        model_path: &Path,
        bytes: &[u8],
        info: RegisterInfo,
    ) -> Result<ModelVersion, RegistryError> {
        check_name("model name", name)?;
        TrainedModel::from_bytes(model_path, bytes).map_err(|source| RegistryError::Model {
            path: model_path.into(),
            source: Box::new(source),
        })?;
        let digest = blake3::hash(bytes).to_hex().to_string();
        let _lock = self.lock()?;
        let blob = self.blob_path(&digest);
        if !blob.exists() {
            write_atomic(&blob, bytes).map_err(|source| RegistryError::Model {
                path: blob.clone(),
                source: Box::new(source),
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
            data_blobs: info.data_blobs,
            run_id: info.run_id,
            task_id: info.task_id,
            annotations: info.annotations,
            importance: info.importance,
            gates: Vec::new(),
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

    /// Loads a version's model file, refusing it if its bytes changed.
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
        TrainedModel::from_bytes(&path, &bytes).map_err(|source| RegistryError::Model {
            path,
            source: Box::new(source),
        })
    }

    /// The newest version of `name` whose model file has `digest` and whose
    /// data has `data_digests`: registering the same bytes again finds it.
    pub fn find_registered(
        &self,
        name: &str,
        digest: &str,
        data_digests: &BTreeMap<String, String>,
    ) -> Result<Option<ModelVersion>, RegistryError> {
        check_name("model name", name)?;
        let aliases = self.aliases(name)?;
        for version in self.version_numbers(name)?.into_iter().rev() {
            let record = self.read_version(name, version, &aliases)?;
            if record.digest == digest && record.data_digests == *data_digests {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// Copies a data file into the registry, content-addressed, and returns
    /// its blake3 digest and blob name (`<digest>.<extension>`).
    pub fn store_data(&self, path: &Path) -> Result<(String, String), RegistryError> {
        let bytes = std::fs::read(path).map_err(|e| RegistryError::io("read data", path, e))?;
        let digest = blake3::hash(&bytes).to_hex().to_string();
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or("bin")
            .to_ascii_lowercase();
        let blob = format!("{digest}.{extension}");
        let target = self.root.join("blobs").join(&blob);
        if !target.exists() {
            write_atomic(&target, &bytes).map_err(|source| RegistryError::Model {
                path: target.clone(),
                source: Box::new(source),
            })?;
        }
        Ok((digest, blob))
    }

    /// The registry's copy of the data `version` recorded as `data` (`train`,
    /// `test`), checked against its digest.
    pub fn data_file(&self, version: &ModelVersion, data: &str) -> Result<PathBuf, RegistryError> {
        let (Some(blob), Some(expected)) =
            (version.data_blobs.get(data), version.data_digests.get(data))
        else {
            return Err(RegistryError::NoData {
                name: version.name.clone(),
                version: version.version,
                data: data.to_string(),
                known: version.data_blobs.keys().cloned().collect(),
            });
        };
        let path = self.root.join("blobs").join(blob);
        let bytes = std::fs::read(&path).map_err(|e| RegistryError::io("read data", &path, e))?;
        let actual = blake3::hash(&bytes).to_hex().to_string();
        if actual != *expected {
            return Err(RegistryError::DigestMismatch {
                path,
                expected: expected.clone(),
                actual,
            });
        }
        Ok(path)
    }

    /// Appends a gate's verdict to `version`'s record.
    pub fn record_gate(
        &self,
        name: &str,
        version: u32,
        record: GateRecord,
    ) -> Result<(), RegistryError> {
        let _lock = self.lock()?;
        let mut stored = self.get(name, version)?;
        stored.aliases.clear();
        stored.gates.push(record);
        let path = self
            .model_dir(name)
            .join("versions")
            .join(format!("{version}.json"));
        write_json(&path, &stored)
    }
}
