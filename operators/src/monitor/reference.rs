//! Where `monitor.drift` gets its reference: a file (`inputs.reference`),
//! or the data a registered version was trained on (`reference_model`),
//! resolved through the registry each run so that the reference follows
//! `production` as promotions move it. The report names which it was.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::models::{ModelRegistry, RegistryError};
use crate::{Context, Earlier, OperatorError};

/// `reference_model: {name, alias, data}`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceModel {
    /// The registered model.
    pub name: String,
    /// Its alias whose data is the reference.
    #[serde(default = "production")]
    pub alias: String,
    /// Which of the version's data: `train` (what it learned from).
    #[serde(default = "train")]
    pub data: String,
}

fn production() -> String {
    "production".into()
}
fn train() -> String {
    "train".into()
}

/// What the drift report says about its reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferenceInfo {
    /// The reference file's name, for a file reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// blake3 of the reference data.
    pub digest: String,
    pub rows: usize,
}

/// A resolved reference, or why there is none yet.
pub enum Resolved {
    Found {
        path: PathBuf,
        info: ReferenceInfo,
    },
    /// The alias points at nothing yet: nothing to compare with.
    Missing(String),
}

pub fn resolve(ctx: &Context, model: Option<&ReferenceModel>) -> Result<Resolved, OperatorError> {
    let Some(model) = model else {
        let path = ctx.input("reference")?;
        let bytes = std::fs::read(path).map_err(|e| OperatorError::io("read", path, e))?;
        let info = ReferenceInfo {
            file: path.file_name().map(|n| n.to_string_lossy().into_owned()),
            model: None,
            alias: None,
            version: None,
            data: None,
            digest: blake3::hash(&bytes).to_hex().to_string(),
            rows: 0,
        };
        return Ok(Resolved::Found {
            path: path.to_path_buf(),
            info,
        });
    };
    let registry = ModelRegistry::open(&ctx.state_dir)?;
    let version = match registry.resolve(&model.name, &model.alias) {
        Ok(version) => version,
        Err(RegistryError::UnknownModel { .. } | RegistryError::UnknownReference { .. }) => {
            return Ok(Resolved::Missing(format!(
                "no `{}` version of `{}` yet: nothing to compare with",
                model.alias, model.name
            )));
        }
        Err(other) => return Err(other.into()),
    };
    let path = registry.data_file(&version, &model.data)?;
    let digest = version
        .data_digests
        .get(&model.data)
        .cloned()
        .unwrap_or_default();
    Ok(Resolved::Found {
        path,
        info: ReferenceInfo {
            file: None,
            model: Some(model.name.clone()),
            alias: Some(model.alias.clone()),
            version: Some(version.version),
            data: Some(model.data.clone()),
            digest,
            rows: 0,
        },
    })
}

/// Whether an earlier drift check's registry reference is still the one
/// the alias points at.
pub fn reference_holds(
    earlier: &Earlier<'_>,
    model: Option<&ReferenceModel>,
) -> Result<(), String> {
    let Some(model) = model else { return Ok(()) };
    let before = earlier
        .values
        .get("reference_version")
        .and_then(Value::as_u64);
    let registry = ModelRegistry::open(earlier.state_dir).map_err(|e| crate::error_chain(&e))?;
    let now = registry
        .alias_target(&model.name, &model.alias)
        .map_err(|e| crate::error_chain(&e))?
        .map(u64::from);
    if now == before {
        return Ok(());
    }
    let show = |v: Option<u64>| v.map_or_else(|| "nothing".to_string(), |v| format!("v{v}"));
    Err(format!(
        "the reference moved: `{}` points at {}, the last check used {}",
        model.alias,
        show(now),
        show(before)
    ))
}
